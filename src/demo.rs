//! `procore-token-mcp demo`: the local OAuth emulator and this server's HTTP transport,
//! pointed at it, both on loopback, with instructions for trying the whole token flow.
//!
//! Needs no credentials and no network; it must never point at, or claim to reach, Procore.
//! The generated demo secret is printed on purpose (it exists only in this process).

use std::{io::Write, net::SocketAddr, time::Duration};

use clap::Args;
use procore_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use tokio_util::sync::CancellationToken;

use crate::{
    exchange::TokenExchange,
    procore::ClientCredentials,
    procore::{LoginBase, OOB_REDIRECT_URI, ProcoreClient},
    tools::{ProcoreTokenServer, token},
    transport::http_config::{DEFAULT_LISTEN, HttpConfig},
    transport::{self, http::MCP_PATH, sse::SSE_PATH},
};

/// How long the demo server waits for the emulator to answer one request.
const DEMO_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of `procore-token-mcp demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Loopback address (IP:PORT) of the MCP server's HTTP transport; port 0 picks a free one.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Loopback address (IP:PORT) of the local OAuth emulator; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub emulator_listen: SocketAddr,
}

/// Why the demo cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo listens on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error(
        "{address} is already in use (another demo or server?); pick another port with \
         {flag} 127.0.0.1:PORT, or {flag} 127.0.0.1:0 for any free one"
    )]
    Busy {
        address: SocketAddr,
        flag: &'static str,
    },
}

/// Run the demo until `shutdown` is cancelled.
pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    for address in [args.listen, args.emulator_listen] {
        if !address.ip().is_loopback() {
            return Err(DemoError::NotLoopback(address).into());
        }
    }
    let emulator =
        Emulator::start(EmulatorConfig::generated().with_listen(args.emulator_listen)).await?;
    let http = HttpConfig::loopback(args.listen);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(DemoError::Busy {
                address: args.listen,
                flag: "--listen",
            }
            .into());
        }
        Err(error) => return Err(anyhow::anyhow!("cannot listen on {}: {error}", args.listen)),
    };
    let mcp_base = format!("http://{}", listener.local_addr()?);
    let held = ClientCredentials {
        client_id: emulator.client_id().into(),
        client_secret: emulator.client_secret().expose().into(),
    };
    let procore = ProcoreClient::new(LoginBase::parse(emulator.base_url())?, DEMO_TIMEOUT)
        .with_host_name("the local emulator");
    let server = ProcoreTokenServer::new(TokenExchange::new(procore, None), Some(held))?;
    tracing::info!(
        login_host = emulator.base_url(),
        environment = "local-emulator",
        "demo starting: the MCP server's login host is the local OAuth emulator"
    );
    // Written, not `println!`ed: a closed stdout must not stop the demo.
    let _ = writeln!(std::io::stdout(), "{}", instructions(&emulator, &mcp_base));
    let served = transport::http::serve_on(listener, server, &http, shutdown).await;
    emulator.shutdown().await;
    served
}

/// What the demo prints: URLs, the demo app's credentials, and commands to paste.
pub fn instructions(emulator: &RunningEmulator, mcp_base: &str) -> String {
    let mcp_url = format!("{mcp_base}{MCP_PATH}");
    let sse_url = format!("{mcp_base}{SSE_PATH}");
    let login = emulator.base_url();
    let authorize = emulator.authorize_url(OOB_REDIRECT_URI, "demo");
    let inspector =
        format!("npx -y @modelcontextprotocol/inspector --cli {mcp_url} --transport http");
    let call = format!(
        "{inspector} --method tools/call --tool-name {}",
        token::NAME
    );
    format!(
        "\
procore-token-mcp demo: the MCP server and a local OAuth emulator, both on this machine.
The emulator stands in for the login host with a generated demo app; nothing leaves this
machine and no real account is involved.

  MCP URL (streamable HTTP):  {mcp_url}
  MCP URL (old HTTP+SSE):     {sse_url}
  Emulator (login host):      {login}
  Demo client_id:             {client_id}
  Demo client_secret:         {client_secret}
  The MCP server holds this client_id and client_secret, so tool calls may leave them out.

1. Get an authorization code: open this URL in a browser. The emulated user approves at
   once and the page shows a one-use code, valid 10 minutes:
     {authorize}
   Without a browser: curl -sL '{authorize}' | grep -o '[0-9a-f]\\{{64\\}}'
2. List the tool, then exchange the code (MCP Inspector CLI, Node 22 or newer):
     {inspector} --method tools/list
     {call} --tool-args-json '{{\"grant_type\":\"authorization_code\",\"code\":\"PASTE_CODE\",\"redirect_uri\":\"{OOB_REDIRECT_URI}\"}}'
3. Check the access token against the emulator:
     curl -s -H 'Authorization: Bearer PASTE_ACCESS_TOKEN' {login}/oauth/token/info
4. Renew it with the refresh_token of that answer (each works once; the answer holds the next):
     {call} --tool-args-json '{{\"grant_type\":\"refresh_token\",\"refresh_token\":\"PASTE_REFRESH_TOKEN\"}}'
   A service-account token, no user and no refresh token:
     {call} --tool-args-json '{{\"grant_type\":\"client_credentials\"}}'
5. Or hand the server to Claude Code and ask it for a token:
     claude mcp add --transport http procore-token-demo {mcp_url}

Ctrl-C stops the demo.",
        client_id = emulator.client_id(),
        client_secret = emulator.client_secret().expose(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_says_how_to_pick_another() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let args = DemoArgs {
            listen: address,
            emulator_listen: "127.0.0.1:0".parse().unwrap(),
        };
        let error = run(args, CancellationToken::new()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{address} is already in use (another demo or server?); pick another port \
                 with --listen 127.0.0.1:PORT, or --listen 127.0.0.1:0 for any free one"
            )
        );
    }
}

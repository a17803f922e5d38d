//! The command line: the server's flags, or a subcommand (`emulator`, `demo`). Used by
//! `main` only; what the flags mean is [`crate::config`]'s.

use clap::{Parser, Subcommand};

use procore_emulator::settings::EmulatorArgs;

use crate::{config::ServeArgs, demo::DemoArgs};

const HELP_FOOTER: &str = "\
Server-held credentials (environment only, never on the command line):
  PROCORE_CLIENT_ID      the application's client id
  PROCORE_CLIENT_SECRET  the application's client secret
  When both are set, callers may omit client_id and client_secret and the secret never
  passes through the model.

Logging goes to stderr; RUST_LOG sets the level (default: info). No secret is ever logged.

Examples:
  procore-token-mcp                                  stdio, production login host
  procore-token-mcp --procore-env sandbox            stdio, developer sandbox
  procore-token-mcp --transport http --listen 127.0.0.1:8722
                                                     streamable HTTP at /mcp, old SSE at /sse
  procore-token-mcp demo                             try it all locally, no credentials
  procore-token-mcp emulator --listen 127.0.0.1:0    a local OAuth emulator for tests
  MCP_AUTH_TOKEN=… procore-token-mcp --transport http --listen 0.0.0.0:8722
                                                     every interface; callers send
                                                     Authorization: Bearer <the token>";

/// `procore-token-mcp`: an MCP server that obtains and renews Procore OAuth 2.0 access tokens.
#[derive(Debug, Parser)]
#[command(
    name = "procore-token-mcp",
    version,
    about = "MCP server that obtains and renews Procore OAuth 2.0 access tokens",
    long_about = "An MCP server whose tool get_or_refresh_an_access_token forwards the \
                  token request to the Procore login host's /oauth/token and returns \
                  Procore's token JSON as received; grant_app_authorization, get_token_info \
                  and revoke_token build the sign-in link, check a token and revoke one. \
                  Token requests are never retried: authorization codes and refresh tokens \
                  are single-use.",
    after_help = HELP_FOOTER,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands; without one, the server runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run a local emulator of Procore's OAuth endpoints (for tests, CI and demos; it is
    /// not Procore). Prints its URL and its application's credentials at start-up.
    Emulator(EmulatorArgs),
    /// Start the local OAuth emulator and this server's HTTP transport pointed at it, both
    /// on loopback, and print how to try the whole token flow. Runs until Ctrl-C.
    Demo(DemoArgs),
}

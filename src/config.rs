//! Command line and environment → one validated [`Config`].
//!
//! Every flag has an environment variable; the Procore environment presets live here. The
//! client secret is read from the environment only (a command line is visible to every user
//! of the machine) and never printed.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    demo::DemoArgs,
    emulator::settings::EmulatorArgs,
    procore::{LoginBase, LoginBaseError},
    secret::Secret,
};

/// The environment variable that holds the application's client id on the server side.
pub const CLIENT_ID_VAR: &str = "PROCORE_CLIENT_ID";
/// The environment variable that holds the application's client secret on the server side.
pub const CLIENT_SECRET_VAR: &str = "PROCORE_CLIENT_SECRET";

/// The address the HTTP transport listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8722";

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
  procore-token-mcp emulator --listen 127.0.0.1:0    a local OAuth emulator for tests";

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

/// How the server reaches its MCP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// JSON-RPC over stdin/stdout (what desktop MCP clients launch).
    Stdio,
    /// Streamable HTTP at /mcp and the 2024-11-05 HTTP+SSE transport at /sse + /message.
    Http,
}

/// Which Procore environment's login host receives token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcoreEnv {
    /// https://login.procore.com (also on-demand sandboxes).
    Production,
    /// https://login-sandbox.procore.com (the developer sandbox; sandbox credentials).
    Sandbox,
    /// https://login-sandbox-monthly.procore.com (reset on the first working day of each month).
    MonthlySandbox,
}

impl ProcoreEnv {
    /// The login host Procore documents for this environment.
    pub fn login_url(self) -> &'static str {
        match self {
            Self::Production => "https://login.procore.com",
            Self::Sandbox => "https://login-sandbox.procore.com",
            Self::MonthlySandbox => "https://login-sandbox-monthly.procore.com",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Sandbox => "sandbox",
            Self::MonthlySandbox => "monthly-sandbox",
        }
    }
}

/// Flags of the server itself.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// MCP transport to serve.
    #[arg(long, env = "MCP_TRANSPORT", value_enum, default_value_t = TransportKind::Stdio)]
    pub transport: TransportKind,

    /// Address (IP:PORT) the HTTP transport listens on.
    #[arg(long, env = "MCP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Extra Host (and Origin host) value the HTTP transport accepts, e.g. mcp.example.com or
    /// mcp.example.com:443, for deployments behind a proxy. Repeatable; loopback names are
    /// always accepted.
    #[arg(
        long = "allowed-host",
        env = "MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Procore environment whose login host issues the tokens.
    #[arg(long, env = "PROCORE_ENV", value_enum, default_value_t = ProcoreEnv::Production)]
    pub procore_env: ProcoreEnv,

    /// Login host base URL, overriding --procore-env (e.g. https://login.procoregov.com).
    /// Plain http:// is accepted only for a loopback host.
    #[arg(long, env = "PROCORE_LOGIN_URL")]
    pub login_url: Option<String>,

    /// Seconds a request to the login host may take, from connecting to the last byte.
    #[arg(long, env = "PROCORE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,

    /// Keep every token response in this file (created 0600, its directory 0700), one
    /// current pair per (login host, client_id); refreshes may then omit refresh_token.
    /// Several server processes may share one store.
    #[arg(long, env = "PROCORE_TOKEN_STORE", value_name = "PATH")]
    pub token_store: Option<PathBuf>,

    /// With a token store: for this many seconds after the store rotated a refresh token, a
    /// retry with the old token gets the stored new pair instead of a request Procore would
    /// refuse.
    #[arg(long, env = "PROCORE_REUSE_WINDOW_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub reuse_window_secs: u64,
}

/// The application's credentials, held by the server so callers need not pass them.
#[derive(Debug, Clone)]
pub struct HeldCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// The transport and its settings.
#[derive(Debug, Clone)]
pub enum TransportConfig {
    Stdio,
    Http(HttpConfig),
}

/// Settings of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Host names (or host:port) accepted in `Host` and `Origin`; loopback names included.
    pub allowed_hosts: Vec<String>,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub login: LoginBase,
    /// `production`, `sandbox`, `monthly-sandbox`, or `custom` for `--login-url`.
    pub environment: &'static str,
    pub timeout: Duration,
    pub held: Option<HeldCredentials>,
    pub transport: TransportConfig,
    /// The token store's path, when one is configured.
    pub token_store: Option<PathBuf>,
    pub reuse_window: Duration,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid login URL: {0}")]
    LoginUrl(#[from] LoginBaseError),
    #[error(
        "{set} is set but {missing} is not: set both to hold the credentials on the server, \
         or neither to have callers pass them"
    )]
    HalfHeldCredentials {
        set: &'static str,
        missing: &'static str,
    },
    #[error("invalid --allowed-host {0:?}: give a host name or host:port, without scheme or path")]
    AllowedHost(String),
}

/// Host names every HTTP listener accepts: the loopback names.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl Config {
    /// Validate flags, reading server-held credentials through `env` (the process
    /// environment in `main`, a map in tests).
    pub fn resolve(
        args: &ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (login, environment) = match &args.login_url {
            Some(url) => (LoginBase::parse(url)?, "custom"),
            None => (
                LoginBase::parse(args.procore_env.login_url())?,
                args.procore_env.name(),
            ),
        };
        let held = held_credentials(&env)?;
        let transport = match args.transport {
            TransportKind::Stdio => TransportConfig::Stdio,
            TransportKind::Http => TransportConfig::Http(HttpConfig {
                listen: args.listen,
                allowed_hosts: allowed_hosts(&args.allowed_hosts)?,
            }),
        };
        Ok(Self {
            login,
            environment,
            timeout: Duration::from_secs(args.timeout_secs),
            held,
            transport,
            token_store: args.token_store.clone(),
            reuse_window: Duration::from_secs(args.reuse_window_secs),
        })
    }
}

fn held_credentials(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<HeldCredentials>, ConfigError> {
    let non_empty = |name| env(name).filter(|value: &String| !value.trim().is_empty());
    match (non_empty(CLIENT_ID_VAR), non_empty(CLIENT_SECRET_VAR)) {
        (Some(client_id), Some(secret)) => Ok(Some(HeldCredentials {
            client_id,
            client_secret: Secret::new(secret),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::HalfHeldCredentials {
            set: CLIENT_ID_VAR,
            missing: CLIENT_SECRET_VAR,
        }),
        (None, Some(_)) => Err(ConfigError::HalfHeldCredentials {
            set: CLIENT_SECRET_VAR,
            missing: CLIENT_ID_VAR,
        }),
    }
}

fn allowed_hosts(extra: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
    for host in extra {
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() {
            continue;
        }
        let looks_like_authority = !host.contains(['/', '?', '#', '@', ' '])
            && url::Url::parse(&format!("http://{host}/")).is_ok();
        if !looks_like_authority {
            return Err(ConfigError::AllowedHost(host));
        }
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["procore-token-mcp"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
            .expect("test arguments parse")
            .serve
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn environments_map_to_documented_login_hosts() {
        for (flag, url) in [
            ("production", "https://login.procore.com/oauth/token"),
            ("sandbox", "https://login-sandbox.procore.com/oauth/token"),
            (
                "monthly-sandbox",
                "https://login-sandbox-monthly.procore.com/oauth/token",
            ),
        ] {
            let config = Config::resolve(&args(&["--procore-env", flag]), env(&[])).unwrap();
            assert_eq!(config.login.endpoint("/oauth/token").as_str(), url);
            assert_eq!(config.environment, flag);
        }
        let default = Config::resolve(&args(&[]), env(&[])).unwrap();
        assert_eq!(default.environment, "production");
    }

    #[test]
    fn login_url_overrides_the_environment() {
        let config = Config::resolve(
            &args(&[
                "--procore-env",
                "sandbox",
                "--login-url",
                "https://login.procoregov.com/",
            ]),
            env(&[]),
        )
        .unwrap();
        assert_eq!(
            config.login.endpoint("/oauth/token").as_str(),
            "https://login.procoregov.com/oauth/token"
        );
        assert_eq!(config.environment, "custom");
    }

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        let err = Config::resolve(
            &args(&["--login-url", "http://login.example.com"]),
            env(&[]),
        );
        assert!(matches!(err, Err(ConfigError::LoginUrl(_))));
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(
                Config::resolve(&args(&["--login-url", ok]), env(&[])).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn held_credentials_need_both_variables() {
        let both = Config::resolve(
            &args(&[]),
            env(&[(CLIENT_ID_VAR, "id"), (CLIENT_SECRET_VAR, "s3cret")]),
        )
        .unwrap();
        let held = both.held.unwrap();
        assert_eq!(held.client_id, "id");
        assert_eq!(held.client_secret.expose(), "s3cret");

        let half = Config::resolve(&args(&[]), env(&[(CLIENT_ID_VAR, "id")]));
        let message = half.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains(CLIENT_SECRET_VAR), "{message}");
        assert!(!message.contains("s3cret"));

        let none = Config::resolve(&args(&[]), env(&[(CLIENT_ID_VAR, " ")])).unwrap();
        assert!(none.held.is_none());
    }

    #[test]
    fn allowed_hosts_extend_the_loopback_names() {
        let config = Config::resolve(
            &args(&[
                "--transport",
                "http",
                "--allowed-host",
                "MCP.example.com",
                "--allowed-host",
                "proxy:8443",
            ]),
            env(&[]),
        )
        .unwrap();
        let TransportConfig::Http(http) = config.transport else {
            unreachable!("http transport");
        };
        assert_eq!(
            http.allowed_hosts,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "mcp.example.com",
                "proxy:8443"
            ]
        );
        let bad = Config::resolve(
            &args(&[
                "--transport",
                "http",
                "--allowed-host",
                "https://x.example/",
            ]),
            env(&[]),
        );
        assert!(matches!(bad, Err(ConfigError::AllowedHost(_))));
    }
}

//! The server's flags and environment → one validated [`Config`].
//!
//! Every flag has an environment variable; the Procore environment presets live here. The
//! client secret is read from the environment only (a command line is visible to every user
//! of the machine) and never printed.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

use crate::{
    procore::{ClientCredentials, LoginBase, LoginBaseError, RequestEncoding},
    resource_server::ResourceServerConfig,
    secret::Secret,
    store::{AtRestError, Durability, StoreKeys, is_redis_url},
    transport::http_config::{
        DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_SESSIONS,
        DEFAULT_READ_TIMEOUT_SECS, DEFAULT_SESSION_IDLE_SECS, HttpConfig, LOOPBACK_HOSTS,
        saturating_usize,
    },
};

/// The environment variable that holds the application's client id on the server side.
pub const CLIENT_ID_VAR: &str = "PROCORE_CLIENT_ID";
/// The environment variable that holds the application's client secret on the server side.
pub const CLIENT_SECRET_VAR: &str = "PROCORE_CLIENT_SECRET";

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

/// How token requests are encoded (`--request-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// A JSON body, as Procore's API reference documents it.
    Json,
    /// application/x-www-form-urlencoded, as Procore's guides and curl examples send it.
    Form,
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

    /// Body encoding of token requests (POST /oauth/token). Revocations are always sent
    /// form-encoded, as Procore documents them.
    #[arg(long, env = "PROCORE_REQUEST_ENCODING", value_enum, default_value_t = EncodingArg::Json)]
    pub request_encoding: EncodingArg,

    /// Seconds a request to the login host may take, from connecting to the last byte.
    #[arg(long, env = "PROCORE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,

    /// Keep every token response in this file (created 0600, its directory 0700), one
    /// current pair per (login host, client_id); refreshes may then omit refresh_token.
    /// Several server processes may share one store. Or a Redis that servers on any number
    /// of machines share: redis://[user:pass@]HOST:PORT[/DB], or rediss:// for TLS.
    #[arg(long, env = "PROCORE_TOKEN_STORE", value_name = "PATH|URL",
          value_parser = parse_store_location)]
    pub token_store: Option<StoreLocation>,

    /// With a Redis token store: `strict` refuses to start on a Redis that can lose an
    /// acknowledged pair (appendonly no, appendfsync other than always, an eviction
    /// policy); `relaxed` warns and starts.
    #[arg(long, env = "PROCORE_STORE_DURABILITY", value_enum, default_value_t = DurabilityArg::Strict)]
    pub store_durability: DurabilityArg,

    /// With a token store: for this many seconds after the store rotated a refresh token, a
    /// retry with the old token gets the stored new pair instead of a request Procore would
    /// refuse.
    #[arg(long, env = "PROCORE_REUSE_WINDOW_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub reuse_window_secs: u64,
    /// Largest answer read from the login host, in bytes; a larger one is cut off there
    /// and reported as an error.
    #[arg(long, env = "PROCORE_MAX_RESPONSE_BYTES", default_value_t = DEFAULT_MAX_RESPONSE_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub max_response_bytes: u64,

    /// Bearer token every HTTP request must carry (`Authorization: Bearer <token>`), at
    /// least 16 characters. Prefer the environment variable: a command line is visible to
    /// other users of the machine.
    #[arg(long, env = "MCP_AUTH_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub auth_token: Option<Secret>,

    /// Make the HTTP transport an OAuth 2.1 resource server: every request carries an access
    /// token (a JWT) issued by this authorization server, e.g. https://id.example.com/realms/team.
    /// Its metadata and keys are discovered at start-up; each user's stored pairs are
    /// theirs. https:// only, except for a loopback host.
    #[arg(long, env = "MCP_AUTH_ISSUER", value_name = "URL")]
    pub auth_issuer: Option<String>,

    /// The canonical URL of this server's MCP endpoint as clients reach it, e.g.
    /// https://mcp.example.com/mcp: the resource identifier (and default audience).
    /// Required with --auth-issuer.
    #[arg(long, env = "MCP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// The audience access tokens must name (`aud`), when the issuer uses another value than
    /// the public URL (e.g. an Auth0 API identifier or an Entra api://… URI).
    #[arg(long, env = "MCP_AUTH_AUDIENCE", value_name = "AUD")]
    pub auth_audience: Option<String>,

    /// A scope every access token must carry (403 insufficient_scope otherwise).
    /// Repeatable; the environment variable takes a comma-separated list.
    #[arg(
        long = "auth-scope",
        env = "MCP_AUTH_SCOPES",
        value_name = "SCOPE",
        value_delimiter = ','
    )]
    pub auth_scopes: Vec<String>,

    /// With --auth-issuer: only callers whose access token carries this scope may obtain
    /// service-account tokens (grant_type=client_credentials); without it, any
    /// authenticated user may, with the credentials the server holds.
    #[arg(long, env = "MCP_SERVICE_SCOPE", value_name = "SCOPE")]
    pub service_scope: Option<String>,

    /// Serve HTTP on a non-loopback address without --auth-token. Anyone who can reach
    /// the address can then call the tools; a warning is logged at every start.
    #[arg(long, env = "MCP_ALLOW_UNAUTHENTICATED",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unauthenticated: bool,

    /// Largest request body accepted on /mcp and /message, in bytes; larger ones get 413.
    #[arg(long, env = "MCP_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub max_request_bytes: u64,

    /// Seconds an HTTP client gets to send a request's headers, and again its body; a
    /// slower client is cut off.
    #[arg(long, env = "MCP_READ_TIMEOUT_SECS", default_value_t = DEFAULT_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub read_timeout_secs: u64,

    /// Most live sessions of each HTTP transport (streamable HTTP, old SSE); further ones
    /// get 503 until one ends.
    #[arg(long, env = "MCP_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_sessions: u64,

    /// Most HTTP connections open at once; a connection beyond them gets 503 and is closed,
    /// while those already open are served as usual.
    #[arg(long, env = "MCP_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,

    /// Seconds a session may pass without a message in either direction before it is
    /// closed; its id then gets 404.
    #[arg(long, env = "MCP_SESSION_IDLE_SECS", default_value_t = DEFAULT_SESSION_IDLE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_idle_secs: u64,

    /// Threads that run the server. 1 (the default) runs everything on one thread: the
    /// lowest latency and memory, and enough for one user or a few agents. 2 or more run
    /// that many worker threads, for many HTTP clients at once on a machine with as many
    /// cores (see the README's performance figures for both).
    #[arg(long, env = "MCP_WORKER_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub worker_threads: u64,
}

/// The limit on a login host's answer unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// The shortest bearer token accepted for the HTTP transport.
pub const MIN_AUTH_TOKEN_CHARS: usize = 16;

/// Never fails: clap quotes a refused value in its error, so checks come later, in
/// [`Config::resolve`], whose errors name no secret.
fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value.trim()))
}

/// A store URL may carry a password: it is a secret from the moment it is parsed.
fn parse_store_location(value: &str) -> Result<StoreLocation, std::convert::Infallible> {
    Ok(StoreLocation::of(std::path::Path::new(value)))
}

/// The transport and its settings.
#[derive(Debug, Clone)]
pub enum TransportConfig {
    Stdio,
    Http(HttpConfig),
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub login: LoginBase,
    /// `production`, `sandbox`, `monthly-sandbox`, or `custom` for `--login-url`.
    pub environment: &'static str,
    pub timeout: Duration,
    /// Largest answer read from the login host.
    pub max_response_bytes: usize,
    pub request_encoding: RequestEncoding,
    pub held: Option<ClientCredentials>,
    pub transport: TransportConfig,
    /// The token store, when one is configured.
    pub token_store: Option<StoreLocation>,
    /// How strictly a Redis store's durability settings are checked.
    pub store_durability: Durability,
    /// The keys token responses are sealed with at rest (`PROCORE_STORE_KEY`, environment
    /// only); none: plain text.
    pub store_keys: std::sync::Arc<StoreKeys>,
    pub reuse_window: Duration,
    /// Threads of the async runtime: 1 is a current-thread runtime.
    pub worker_threads: usize,
}

/// Where the token store is: a file, or a Redis (its URL may hold a password, so it is a
/// secret; [`crate::store::redacted_location`] gives the printable form).
#[derive(Debug, Clone)]
pub enum StoreLocation {
    File(PathBuf),
    Redis(Secret),
}

impl StoreLocation {
    /// A `redis://` or `rediss://` URL names a Redis; anything else is a path.
    pub fn of(given: &std::path::Path) -> Self {
        match given.to_str() {
            Some(url) if is_redis_url(url) => Self::Redis(Secret::new(url)),
            _ => Self::File(given.to_path_buf()),
        }
    }
}

/// `--store-durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Refuse a Redis that can lose an acknowledged pair.
    Strict,
    /// Warn about such a Redis and start.
    Relaxed,
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
    HalfClientCredentials {
        set: &'static str,
        missing: &'static str,
    },
    #[error("invalid --allowed-host {0:?}: give a host name or host:port, without scheme or path")]
    AllowedHost(String),
    #[error(
        "refusing to serve HTTP on {0}, which is not a loopback address, without \
         authentication: anyone who reaches it could call the tools. Set MCP_AUTH_TOKEN (or \
         --auth-token), or pass --allow-unauthenticated if something in front of this server \
         authenticates callers"
    )]
    UnauthenticatedPublicListener(SocketAddr),
    #[error("the auth token (MCP_AUTH_TOKEN or --auth-token) must be at least {0} characters long")]
    ShortAuthToken(usize),
    #[error(
        "--auth-issuer and --auth-token (MCP_AUTH_TOKEN) are both set: choose one, access \
         tokens from the issuer (one principal per user) or the one shared token"
    )]
    IssuerWithStaticToken,
    #[error(
        "--auth-issuer needs --public-url (MCP_PUBLIC_URL): the URL clients reach the MCP \
         endpoint at, e.g. https://mcp.example.com/mcp"
    )]
    IssuerWithoutPublicUrl,
    #[error("{0} is set but --auth-issuer (MCP_AUTH_ISSUER) is not; it has no effect without it")]
    WithoutIssuer(&'static str),
    #[error("--auth-issuer is for the HTTP transport; add --transport http")]
    IssuerWithoutHttp,
    #[error("invalid {flag}: {error}")]
    AuthUrl {
        flag: &'static str,
        error: LoginBaseError,
    },
    #[error(
        "invalid scope {0:?} (--auth-scope or --service-scope): a scope is one word of \
         printable ASCII, without quotes"
    )]
    Scope(String),
    #[error(transparent)]
    StoreKey(#[from] AtRestError),
}

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
        let store_keys = std::sync::Arc::new(StoreKeys::from_env(&env)?);
        let transport = match args.transport {
            TransportKind::Stdio if args.auth_issuer.is_some() => {
                return Err(ConfigError::IssuerWithoutHttp);
            }
            TransportKind::Stdio => TransportConfig::Stdio,
            TransportKind::Http => TransportConfig::Http(http_config(args)?),
        };
        Ok(Self {
            login,
            environment,
            timeout: Duration::from_secs(args.timeout_secs),
            max_response_bytes: saturating_usize(args.max_response_bytes),
            request_encoding: match args.request_encoding {
                EncodingArg::Json => RequestEncoding::Json,
                EncodingArg::Form => RequestEncoding::Form,
            },
            held,
            transport,
            token_store: args.token_store.clone(),
            store_durability: match args.store_durability {
                DurabilityArg::Strict => Durability::Strict,
                DurabilityArg::Relaxed => Durability::Relaxed,
            },
            store_keys,
            reuse_window: Duration::from_secs(args.reuse_window_secs),
            worker_threads: saturating_usize(args.worker_threads),
        })
    }
}

fn held_credentials(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ClientCredentials>, ConfigError> {
    let non_empty = |name| env(name).filter(|value: &String| !value.trim().is_empty());
    match (non_empty(CLIENT_ID_VAR), non_empty(CLIENT_SECRET_VAR)) {
        (Some(client_id), Some(secret)) => Ok(Some(ClientCredentials {
            client_id: client_id.into(),
            client_secret: secret.into(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::HalfClientCredentials {
            set: CLIENT_ID_VAR,
            missing: CLIENT_SECRET_VAR,
        }),
        (None, Some(_)) => Err(ConfigError::HalfClientCredentials {
            set: CLIENT_SECRET_VAR,
            missing: CLIENT_ID_VAR,
        }),
    }
}

fn http_config(args: &ServeArgs) -> Result<HttpConfig, ConfigError> {
    if args
        .auth_token
        .as_ref()
        .is_some_and(|token| token.expose().chars().count() < MIN_AUTH_TOKEN_CHARS)
    {
        return Err(ConfigError::ShortAuthToken(MIN_AUTH_TOKEN_CHARS));
    }
    let resource_server = resource_server(args)?;
    let ip = args.listen.ip().to_canonical();
    let authenticated = args.auth_token.is_some() || resource_server.is_some();
    if !ip.is_loopback() && !authenticated && !args.allow_unauthenticated {
        return Err(ConfigError::UnauthenticatedPublicListener(args.listen));
    }
    Ok(HttpConfig {
        listen: args.listen,
        allowed_hosts: allowed_hosts(&args.allowed_hosts)?,
        auth_token: args.auth_token.clone(),
        resource_server: resource_server.map(Box::new),
        allow_unauthenticated: args.allow_unauthenticated,
        max_request_bytes: saturating_usize(args.max_request_bytes),
        read_timeout: Duration::from_secs(args.read_timeout_secs),
        max_sessions: saturating_usize(args.max_sessions),
        max_connections: saturating_usize(args.max_connections),
        session_idle: Duration::from_secs(args.session_idle_secs),
    })
}

/// The resource server settings of `--auth-issuer`, checked; `None` without it.
fn resource_server(args: &ServeArgs) -> Result<Option<ResourceServerConfig>, ConfigError> {
    let Some(issuer) = args.auth_issuer.as_deref().map(str::trim) else {
        if args.public_url.is_some() {
            return Err(ConfigError::WithoutIssuer("--public-url (MCP_PUBLIC_URL)"));
        }
        if args.auth_audience.is_some() {
            return Err(ConfigError::WithoutIssuer(
                "--auth-audience (MCP_AUTH_AUDIENCE)",
            ));
        }
        if !args.auth_scopes.is_empty() {
            return Err(ConfigError::WithoutIssuer("--auth-scope (MCP_AUTH_SCOPES)"));
        }
        if args.service_scope.is_some() {
            return Err(ConfigError::WithoutIssuer(
                "--service-scope (MCP_SERVICE_SCOPE)",
            ));
        }
        return Ok(None);
    };
    if args.auth_token.is_some() {
        return Err(ConfigError::IssuerWithStaticToken);
    }
    // https:// (or loopback http://), no credentials, query or fragment.
    LoginBase::parse(issuer).map_err(|error| ConfigError::AuthUrl {
        flag: "--auth-issuer",
        error,
    })?;
    let public_url = args
        .public_url
        .as_deref()
        .map(str::trim)
        .ok_or(ConfigError::IssuerWithoutPublicUrl)?;
    let public_error = |error| ConfigError::AuthUrl {
        flag: "--public-url",
        error,
    };
    LoginBase::parse(public_url).map_err(public_error)?;
    let public_url = url::Url::parse(public_url)
        .map_err(|_| public_error(LoginBaseError::NotAUrl(public_url.to_owned())))?;
    let mut scopes = Vec::new();
    for scope in &args.auth_scopes {
        let scope = scope.trim();
        if scope.is_empty() {
            continue;
        }
        let scope = checked_scope(scope)?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let service_scope = args
        .service_scope
        .as_deref()
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .map(checked_scope)
        .transpose()?;
    let audience = args
        .auth_audience
        .as_deref()
        .map(str::trim)
        .filter(|audience| !audience.is_empty())
        .map_or_else(|| public_url.as_str().to_owned(), str::to_owned);
    Ok(Some(ResourceServerConfig {
        issuer: issuer.to_owned(),
        public_url,
        audience,
        scopes,
        service_scope,
        fetch_timeout: Duration::from_secs(args.timeout_secs),
        max_response_bytes: saturating_usize(args.max_response_bytes),
    }))
}

/// A scope as RFC 6749 §3.3 allows it, minus what a quoted challenge cannot carry.
fn checked_scope(scope: &str) -> Result<String, ConfigError> {
    let printable = scope
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if printable {
        Ok(scope.to_owned())
    } else {
        Err(ConfigError::Scope(scope.to_owned()))
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

    /// The server's flags alone, as the command line parses them.
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["procore-token-mcp"];
        argv.extend_from_slice(extra);
        <Flags as clap::Parser>::try_parse_from(argv)
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
    fn token_requests_are_json_unless_form_is_asked_for() {
        let json = Config::resolve(&args(&[]), env(&[])).unwrap();
        assert_eq!(json.request_encoding, RequestEncoding::Json);
        let form = Config::resolve(&args(&["--request-encoding", "form"]), env(&[])).unwrap();
        assert_eq!(form.request_encoding, RequestEncoding::Form);
    }

    #[test]
    fn a_redis_url_selects_the_redis_store_and_a_path_the_file_store() {
        let url = "redis://:pw-in-url@cache:6379/2";
        let redis = Config::resolve(&args(&["--token-store", url]), env(&[])).unwrap();
        let Some(StoreLocation::Redis(given)) = &redis.token_store else {
            panic!("not the Redis store: {:?}", redis.token_store);
        };
        assert_eq!(given.expose(), url);
        assert!(
            !format!("{redis:?}").contains("pw-in-url"),
            "the URL is a secret"
        );
        let parsed = args(&["--token-store", url]);
        assert!(
            !format!("{parsed:?}").contains("pw-in-url"),
            "from the start"
        );
        assert_eq!(redis.store_durability, Durability::Strict);
        let tls = Config::resolve(&args(&["--token-store", "rediss://cache"]), env(&[])).unwrap();
        assert!(matches!(tls.token_store, Some(StoreLocation::Redis(_))));
        let file = Config::resolve(
            &args(&[
                "--token-store",
                "redis-tokens.json",
                "--store-durability",
                "relaxed",
            ]),
            env(&[]),
        )
        .unwrap();
        assert!(
            matches!(&file.token_store, Some(StoreLocation::File(path)) if path.as_os_str() == "redis-tokens.json")
        );
        assert_eq!(file.store_durability, Durability::Relaxed);
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
        assert_eq!(held.client_id.as_str(), "id");
        assert_eq!(held.client_secret.expose(), "s3cret");

        let half = Config::resolve(&args(&[]), env(&[(CLIENT_ID_VAR, "id")]));
        let message = half.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains(CLIENT_SECRET_VAR), "{message}");
        assert!(!message.contains("s3cret"));

        let none = Config::resolve(&args(&[]), env(&[(CLIENT_ID_VAR, " ")])).unwrap();
        assert!(none.held.is_none());
    }

    #[test]
    fn a_public_listener_needs_a_token_or_an_explicit_opt_out() {
        let public = ["--transport", "http", "--listen", "0.0.0.0:8722"];
        let refused = Config::resolve(&args(&public), env(&[]));
        assert!(matches!(
            refused,
            Err(ConfigError::UnauthenticatedPublicListener(_))
        ));
        for ok in [
            &["--auth-token", "0123456789abcdef-token"][..],
            &["--allow-unauthenticated"][..],
        ] {
            let argv: Vec<&str> = public.iter().chain(ok).copied().collect();
            assert!(Config::resolve(&args(&argv), env(&[])).is_ok(), "{ok:?}");
        }
        for loopback in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            let argv = ["--transport", "http", "--listen", loopback];
            assert!(
                Config::resolve(&args(&argv), env(&[])).is_ok(),
                "{loopback}"
            );
        }
        // stdio ignores the listen address.
        assert!(Config::resolve(&args(&["--listen", "0.0.0.0:1"]), env(&[])).is_ok());
    }

    #[test]
    fn auth_tokens_are_secrets_of_some_length() {
        let short = Config::resolve(
            &args(&["--transport", "http", "--auth-token", "short-canary"]),
            env(&[]),
        );
        let message = short.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains("at least 16 characters"), "{message}");
        assert!(!message.contains("short-canary"), "{message}");
        let parsed = args(&["--auth-token", "long-enough-token-canary"]);
        assert!(!format!("{parsed:?}").contains("long-enough-token-canary"));
        assert_eq!(
            parsed.auth_token.unwrap().expose(),
            "long-enough-token-canary"
        );
    }

    #[test]
    fn http_limits_come_from_the_flags() {
        let config = Config::resolve(
            &args(&[
                "--transport",
                "http",
                "--max-request-bytes",
                "2048",
                "--read-timeout-secs",
                "2",
                "--max-sessions",
                "3",
                "--max-connections",
                "5",
                "--session-idle-secs",
                "4",
            ]),
            env(&[]),
        )
        .unwrap();
        let TransportConfig::Http(http) = config.transport else {
            unreachable!("http transport");
        };
        assert_eq!(http.max_request_bytes, 2048);
        assert_eq!(http.read_timeout, Duration::from_secs(2));
        assert_eq!(http.max_sessions, 3);
        assert_eq!(http.max_connections, 5);
        assert_eq!(http.session_idle, Duration::from_secs(4));
        assert_eq!(config.max_response_bytes, 1024 * 1024, "the default");
        let small = Config::resolve(&args(&["--max-response-bytes", "4096"]), env(&[])).unwrap();
        assert_eq!(small.max_response_bytes, 4096);
        let defaults = Config::resolve(&args(&["--transport", "http"]), env(&[])).unwrap();
        let TransportConfig::Http(http) = defaults.transport else {
            unreachable!("http transport");
        };
        let loopback = HttpConfig::loopback(http.listen);
        assert_eq!(http.max_request_bytes, 1024 * 1024);
        assert_eq!(http.max_request_bytes, loopback.max_request_bytes);
        assert_eq!(http.read_timeout, loopback.read_timeout);
        assert_eq!(http.max_sessions, loopback.max_sessions);
        assert_eq!(http.max_connections, loopback.max_connections);
        assert_eq!(http.session_idle, loopback.session_idle);
        assert!(http.auth_token.is_none());
    }

    #[test]
    fn an_issuer_makes_a_resource_server_with_the_public_url_as_audience() {
        let http = |extra: &[&str]| {
            let mut argv = vec!["--transport", "http"];
            argv.extend_from_slice(extra);
            Config::resolve(&args(&argv), env(&[]))
        };
        let issuer = ["--auth-issuer", "https://id.example/realms/team"];
        let public = ["--public-url", "https://mcp.example/mcp"];
        let both: Vec<&str> = issuer.iter().chain(&public).copied().collect();
        let config = http(&both).unwrap();
        let TransportConfig::Http(settings) = config.transport else {
            unreachable!("http transport");
        };
        let resource = settings.resource_server.unwrap();
        assert_eq!(resource.issuer, "https://id.example/realms/team");
        assert_eq!(resource.audience, "https://mcp.example/mcp");
        assert!(resource.scopes.is_empty());

        let mut more = both.clone();
        more.extend([
            "--auth-audience",
            "api://procore-tokens",
            "--auth-scope",
            "tokens",
            "--auth-scope",
            "read,tokens",
            "--listen",
            "0.0.0.0:8722",
        ]);
        let TransportConfig::Http(settings) = http(&more).unwrap().transport else {
            unreachable!("http transport");
        };
        let resource = settings.resource_server.unwrap();
        assert_eq!(resource.audience, "api://procore-tokens");
        assert_eq!(resource.scopes, ["tokens", "read"]);
        assert_eq!(resource.service_scope, None);
        let mut service = both.clone();
        service.extend(["--service-scope", "procore.service"]);
        let TransportConfig::Http(settings) = http(&service).unwrap().transport else {
            unreachable!("http transport");
        };
        let resource = settings.resource_server.unwrap();
        assert_eq!(resource.service_scope.as_deref(), Some("procore.service"));

        for (refused, why) in [
            (vec!["--auth-issuer", "https://id.example"], "--public-url"),
            (
                [&both[..], &["--auth-token", "0123456789abcdef-token"]].concat(),
                "--auth-token",
            ),
            (
                vec!["--auth-issuer", "http://id.example", public[0], public[1]],
                "http://",
            ),
            (
                vec![
                    issuer[0],
                    issuer[1],
                    "--public-url",
                    "http://mcp.example/mcp",
                ],
                "--public-url",
            ),
            (
                vec![
                    issuer[0],
                    issuer[1],
                    "--public-url",
                    "https://mcp.example/mcp#x",
                ],
                "--public-url",
            ),
            (
                vec![
                    "--auth-issuer",
                    "https://id.example/?tenant=1",
                    public[0],
                    public[1],
                ],
                "--auth-issuer",
            ),
            (public.to_vec(), "has no effect"),
            (vec!["--service-scope", "procore.service"], "has no effect"),
            (
                [&both[..], &["--service-scope", "two words"]].concat(),
                "--service-scope",
            ),
            (vec!["--auth-scope", "tokens"], "has no effect"),
            (
                [&both[..], &["--auth-scope", "a\"b"]].concat(),
                "--auth-scope",
            ),
        ] {
            let message = http(&refused).map(|_| ()).unwrap_err().to_string();
            assert!(message.contains(why), "{refused:?}: {message}");
        }
        let stdio = Config::resolve(&args(&both), env(&[]));
        assert!(matches!(stdio, Err(ConfigError::IssuerWithoutHttp)));
        // Loopback issuers and public URLs may be plain http (for tests).
        assert!(
            http(&[
                "--auth-issuer",
                "http://127.0.0.1:9/",
                "--public-url",
                "http://127.0.0.1:8722/mcp"
            ])
            .is_ok()
        );
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

//! The `token` and `login` commands: the token store's sign-in and its working access
//! token, for a terminal and for scripts, with the server's own flags and environment.
//!
//! They share the server's store, lease and single flight (an agent's server and a script
//! never refresh the same pair twice). No token ever goes to stderr, and `token` writes the
//! access token alone on stdout.

pub mod login;
pub mod token;

use std::{process::ExitCode, sync::Arc};

use crate::{
    config::{Config, ServeArgs, StoreLocation, TransportKind},
    exchange::{Outcome, StoreSettings, TokenExchange},
    procore::{ClientCredentials, ProcoreClient},
    store::{FileStore, RedisSettings, RedisStore, StoreError, TokenStore},
};

/// Exit status: a sign-in is needed (`token`), or a sign-in failed in a way a new one can
/// mend (`login`).
pub const EXIT_SIGN_IN: u8 = 2;
/// Exit status of every other failure.
pub const EXIT_FAILED: u8 = 1;
/// Exit status after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command cannot start. Messages name flags and variables, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "no client credentials: set PROCORE_CLIENT_ID and PROCORE_CLIENT_SECRET (the app's, \
         as for the server) in the environment"
    )]
    NoCredentials,
    #[error(
        "no token store: pass --token-store PATH or set PROCORE_TOKEN_STORE (the server's \
         store, so agents and scripts share the sign-in)"
    )]
    NoStore,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The token store `config` names (a file, or Redis), opened and checked, with the reuse
/// window: what the server and the commands share. `None` without `--token-store`.
pub async fn open_store(config: &Config) -> Result<Option<StoreSettings>, StoreError> {
    let store: Arc<dyn TokenStore> = match &config.token_store {
        Some(StoreLocation::File(path)) => {
            Arc::new(FileStore::open(path, config.store_keys.clone())?)
        }
        Some(StoreLocation::Redis(url)) => {
            let settings = RedisSettings {
                lease: config.timeout + STORE_LEASE_MARGIN,
                durability: config.store_durability,
                keys: config.store_keys.clone(),
            };
            Arc::new(RedisStore::open(url, &settings).await?)
        }
        None => return Ok(None),
    };
    Ok(Some(StoreSettings {
        store,
        reuse_window: config.reuse_window,
    }))
}

/// A shared store's lease outlasts one upstream request by this much.
const STORE_LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// What a command works with: the checked configuration, the held credentials and the
/// exchange over the opened store.
pub struct Setup {
    pub config: Config,
    pub held: ClientCredentials,
    pub exchange: TokenExchange,
}

impl Setup {
    /// Resolve `serve` (the transport flags are ignored: a command serves nothing) with
    /// `env`, and open the store.
    pub async fn open(
        serve: &ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let mut serve = serve.clone();
        serve.transport = TransportKind::Stdio;
        let config = Config::resolve(&serve, env)?;
        let held = config.held.clone().ok_or(SetupError::NoCredentials)?;
        let settings = open_store(&config).await?.ok_or(SetupError::NoStore)?;
        let procore = ProcoreClient::new(config.login.clone(), config.timeout)
            .with_max_response_bytes(config.max_response_bytes)
            .with_request_encoding(config.request_encoding);
        let exchange = TokenExchange::new(procore, Some(settings));
        Ok(Self {
            config,
            held,
            exchange,
        })
    }
}

/// Run `work` to its end, unless SIGINT or SIGTERM comes first; then wait (at most the
/// exchange's drain limit) for a token request already in flight, so that a pair Procore
/// rotated is stored rather than lost with the process, and return `None`. The signals are
/// caught from the first call on, for the rest of the process.
async fn unless_interrupted<T>(
    exchange: &TokenExchange,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        () = interrupted() => {
            eprintln!("interrupted: finishing the token request already sent, if any");
            if !exchange.drain(exchange.drain_limit()).await {
                eprintln!("a token request was still in flight at exit");
            }
            None
        }
    }
}

/// Wait for SIGINT or SIGTERM (forever, when they cannot be caught).
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Print `message` on stderr as the command's, and return `code`.
fn fail(command: &str, code: u8, message: &str) -> ExitCode {
    eprintln!("procore-token-mcp {command}: {message}");
    ExitCode::from(code)
}

/// How an exchange that brought no pair ended, in one paragraph with no secret in it.
fn ended(exchange: &TokenExchange, outcome: &Outcome) -> String {
    let host = exchange.login_host();
    match outcome {
        Outcome::Answered { response, sent, .. } => format!(
            "{host} answered HTTP {}: {}",
            response.status.as_u16(),
            sent.scrub(String::from_utf8_lossy(&response.body).trim())
        ),
        Outcome::Failed(error) if error.may_have_reached_upstream() => format!(
            "the request failed: {error}. It may have reached Procore; if the next attempt \
             answers invalid_grant, sign in again"
        ),
        Outcome::Failed(error) => {
            format!("the request failed: {error}. Nothing reached Procore; it is safe to try again")
        }
        Outcome::StoreUnavailable(error) => {
            format!("nothing was sent: the token store could not be used: {error}")
        }
        Outcome::Internal(error) => format!("this program failed: {error}"),
        Outcome::Replayed { .. } => {
            "the store answered with a pair that is not a token response".to_owned()
        }
    }
}

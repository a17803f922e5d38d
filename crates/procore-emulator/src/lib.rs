//! procore-emulator: a local stand-in for Procore's four OAuth 2.0 Authentication
//! endpoints, for tests, CI and the demo: `GET /oauth/authorize`, `POST /oauth/token`,
//! `GET /oauth/token/info` and `POST /oauth/revoke`, with Procore's documented rules (codes
//! single-use for 10 minutes, refresh tokens single-use with rotation, RFC 6749 §5.2 errors),
//! plus injectable faults and a loopback-only control endpoint (`/_emulator/faults`,
//! `/_emulator/stats`).
//!
//! It is not Procore, and never the default upstream of the real server: the server talks to
//! it only when pointed at it (`--login-url`, or its `demo` subcommand). State lives in
//! memory; logs never contain a code, token or secret. It has its own types (grant types,
//! the out-of-band redirect URI, a redacting [`Secret`]) and does not depend on the server,
//! so it checks the client instead of agreeing with it.
//!
//! In-process use (tests, `demo`):
//!
//! ```no_run
//! # async fn example() -> Result<(), procore_emulator::EmulatorError> {
//! use procore_emulator::{DropAfterRefreshFault, Emulator, EmulatorConfig, Fault, GrantType};
//!
//! let emulator = Emulator::start(EmulatorConfig::generated()).await?;
//! println!("login host: {}", emulator.base_url());
//! emulator.arm(Fault::DropAfterRefresh(DropAfterRefreshFault { times: Some(1) }))?;
//! // … drive a client against emulator.base_url() …
//! assert_eq!(emulator.stats().token_requests.of(GrantType::RefreshToken), 1);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Over HTTP, from loopback peers only: `GET /_emulator/stats` returns [`EmulatorStats`] as
//! JSON (`DELETE` resets it); `GET /_emulator/faults` shows the armed [`Faults`], `POST`
//! takes a [`FaultUpdate`] (e.g. `{"drop_after_refresh": {"times": 1}}`, `null` clears one
//! kind) and `DELETE` clears them all.

mod application;
mod authorize;
mod connection;
mod control;
mod faults;
mod grant_type;
mod multipart;
mod oauth_error;
mod request_body;
mod request_log;
mod revoke;
mod secret;
pub mod settings;
mod stats;
mod store;
mod token;
mod token_info;

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Router, middleware,
    routing::{get, post},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use faults::{
    DelayFault, DropAfterRefreshFault, Fault, FaultError, FaultUpdate, Faults, StatusFault,
};
pub use grant_type::GrantType;
pub use secret::{REDACTED, Secret};
pub use stats::{EmulatorStats, FaultCounts, TokenRequestCounts};
pub use store::EMULATED_USER_ID;

use self::{
    application::Application,
    connection::{ConnectionInfo, DroppableListener},
    store::Store,
};

/// Procore's documented lifetime of an authorization code.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(600);
/// Procore's documented lifetime of an access token (`expires_in`).
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(5400);
/// The out-of-band redirect URI Procore documents for installed and headless applications:
/// the authorize page shows the code instead of redirecting to it. Always accepted.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";
/// Path prefix of the control endpoint.
pub const CONTROL_PREFIX: &str = "/_emulator";

/// How long [`RunningEmulator::shutdown`] lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free one (see [`RunningEmulator::base_url`]).
    pub listen: SocketAddr,
    /// The registered application's client id.
    pub client_id: String,
    /// The registered application's client secret.
    pub client_secret: Secret,
    /// The registered redirect URI; `urn:ietf:wg:oauth:2.0:oob` is accepted in any case.
    pub redirect_uri: String,
    /// How long an authorization code can be exchanged.
    pub code_ttl: Duration,
    /// How long an access token lives (`expires_in`).
    pub access_ttl: Duration,
    /// Faults armed from the start.
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self::generated()
    }
}

impl EmulatorConfig {
    /// A freshly generated demo application (random client id and secret, the out-of-band
    /// redirect URI) on `127.0.0.1:0`, with Procore's documented lifetimes and no faults.
    pub fn generated() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            client_id: format!("demo-{}", uuid::Uuid::new_v4().simple()),
            client_secret: store::random_value(),
            redirect_uri: OOB_REDIRECT_URI.to_owned(),
            code_ttl: DEFAULT_CODE_TTL,
            access_ttl: DEFAULT_ACCESS_TTL,
            faults: Faults::default(),
        }
    }

    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    pub fn with_client(mut self, client_id: impl Into<String>, client_secret: Secret) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret;
        self
    }

    pub fn with_redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = redirect_uri.into();
        self
    }

    pub fn with_code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    pub fn with_access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Arm `fault` from the start (replacing one of its kind).
    pub fn with_fault(mut self, fault: Fault) -> Result<Self, FaultError> {
        self.faults.arm(fault)?;
        Ok(self)
    }

    /// Check what `start` relies on.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let bad = |what: &str| Err(EmulatorError::Config(what.to_owned()));
        if self.client_id.trim().is_empty() || self.client_id.chars().any(char::is_whitespace) {
            return bad("the client id must be non-empty and without spaces");
        }
        if self.client_secret.expose().is_empty() {
            return bad("the client secret must not be empty");
        }
        if self.redirect_uri != OOB_REDIRECT_URI {
            match url::Url::parse(&self.redirect_uri) {
                Ok(url) if url.fragment().is_none() && !url.cannot_be_a_base() => {}
                _ => {
                    return bad(
                        "the redirect URI must be an absolute URL without fragment, or \
                         urn:ietf:wg:oauth:2.0:oob",
                    );
                }
            }
        }
        if self.code_ttl.is_zero() || self.access_ttl.is_zero() {
            return bad("code and access token lifetimes must be positive");
        }
        for fault in self.faults.list() {
            fault.validate()?;
        }
        Ok(())
    }
}

/// Why the emulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The OS error is part of the message, not a `source`: a report that prints the
    /// chain (`{:#}`) would otherwise say it twice.
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    #[error("invalid fault: {0}")]
    Fault(#[from] FaultError),
}

/// The state every handler shares.
struct Shared {
    app: Application,
    code_ttl: Duration,
    access_ttl: Duration,
    store: Mutex<Store>,
}

impl Shared {
    /// The store, locked. A handler never awaits while holding it, so a poisoned lock only
    /// means a panic elsewhere; the data stays usable.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type AppState = Arc<Shared>;

/// Starts emulators.
pub struct Emulator;

impl Emulator {
    /// Bind `config.listen` and serve until [`RunningEmulator::shutdown`] (or drop).
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|error| EmulatorError::Bind {
                    addr: config.listen,
                    error,
                })?;
        let local_addr = listener.local_addr().map_err(|error| EmulatorError::Bind {
            addr: config.listen,
            error,
        })?;
        let shared = Arc::new(Shared {
            app: Application {
                client_id: config.client_id,
                client_secret: config.client_secret,
                redirect_uri: config.redirect_uri,
            },
            code_ttl: config.code_ttl,
            access_ttl: config.access_ttl,
            store: Mutex::new(Store::new(config.faults)),
        });
        let app = router(shared.clone()).into_make_service_with_connect_info::<ConnectionInfo>();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let serving = axum::serve(DroppableListener::new(listener), app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = serving.await {
                tracing::warn!(%error, "emulator stopped serving");
            }
        });
        let base_url = format!("http://{}", reachable(local_addr));
        tracing::info!(
            base_url,
            client_id = %shared.app.client_id,
            "local OAuth emulator listening (not Procore)"
        );
        Ok(RunningEmulator {
            shared,
            base_url,
            local_addr,
            shutdown,
            task: Some(task),
        })
    }
}

/// The address a local client uses: an unspecified bind address becomes loopback.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, address.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, address.port()))
        }
        _ => address,
    }
}

fn router(shared: AppState) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/authorize/{code}", get(authorize::show_code))
        .route("/oauth/token", post(token::token))
        .route("/oauth/token/info", get(token_info::token_info))
        .route("/oauth/revoke", post(revoke::revoke))
        .merge(control::routes())
        .fallback(authorize::not_found)
        .layer(middleware::from_fn(request_log::log_request))
        .with_state(shared)
}

/// A serving emulator. Dropping it stops the server too (without waiting).
pub struct RunningEmulator {
    shared: AppState,
    base_url: String,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("base_url", &self.base_url)
            .field("client_id", &self.shared.app.client_id)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `http://IP:PORT`, the login URL to give a client (`--login-url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the listener is bound to (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn client_id(&self) -> &str {
        &self.shared.app.client_id
    }

    pub fn client_secret(&self) -> &Secret {
        &self.shared.app.client_secret
    }

    /// The registered redirect URI (the out-of-band URI unless configured otherwise).
    pub fn redirect_uri(&self) -> &str {
        &self.shared.app.redirect_uri
    }

    /// The URL a user opens to approve the application and get a code.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish();
        format!("{}/oauth/authorize?{query}", self.base_url)
    }

    /// The counters, as now.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.store().stats.clone()
    }

    /// Token requests received that named `grant`.
    pub fn token_requests(&self, grant: GrantType) -> u64 {
        self.shared.store().stats.token_requests.of(grant)
    }

    /// Refresh grants that rotated the tokens.
    pub fn successful_refreshes(&self) -> u64 {
        self.shared.store().stats.successful_refreshes
    }

    /// Set every counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.store().stats = EmulatorStats::default();
    }

    /// Arm `fault`, replacing the armed fault of its kind.
    pub fn arm(&self, fault: Fault) -> Result<(), FaultError> {
        self.shared.store().faults.arm(fault)
    }

    /// Change the armed faults as `POST /_emulator/faults` does; returns them.
    pub fn update_faults(&self, update: FaultUpdate) -> Result<Faults, FaultError> {
        let mut store = self.shared.store();
        store.faults.apply(update)?;
        Ok(store.faults.clone())
    }

    /// The faults armed now (counted ones show what is left).
    pub fn faults(&self) -> Faults {
        self.shared.store().faults.clone()
    }

    pub fn clear_faults(&self) {
        self.shared.store().faults = Faults::default();
    }

    /// Stop accepting, let open requests finish for a few seconds, then stop.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

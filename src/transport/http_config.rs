//! The HTTP listener's settings and their defaults.

use std::{net::SocketAddr, time::Duration};

use crate::{resource_server::ResourceServerConfig, secret::Secret};

/// The address the HTTP transport listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8722";
/// The request body limit of the HTTP transport unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Seconds a client gets for a request's headers, and again for its body (hyper's default).
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;
/// Live sessions of each HTTP transport unless told otherwise.
pub const DEFAULT_MAX_SESSIONS: u64 = 256;
/// Open HTTP connections unless told otherwise: room for a full set of sessions of both
/// transports (each old-SSE session and each streamable HTTP GET stream holds one) and
/// their POSTs, yet a bound on what a connection flood can make the server hold.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
/// Idle seconds before a session closes: rmcp's own session keep-alive default.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 300;

/// Host names every HTTP listener accepts: the loopback names.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Settings of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Host names (or host:port) accepted in `Host` and `Origin`; loopback names included.
    pub allowed_hosts: Vec<String>,
    /// The bearer token every request must carry; `None` serves without authentication.
    pub auth_token: Option<Secret>,
    /// The OAuth resource server settings (`--auth-issuer`): access tokens instead of the
    /// one shared token.
    pub resource_server: Option<Box<ResourceServerConfig>>,
    /// Serving without a token was asked for explicitly (`--allow-unauthenticated`).
    pub allow_unauthenticated: bool,
    pub max_request_bytes: usize,
    /// Time a client gets for a request's headers, and again for its body.
    pub read_timeout: Duration,
    /// Most live sessions of each HTTP transport.
    pub max_sessions: usize,
    /// Most HTTP connections open at once.
    pub max_connections: usize,
    /// A session without traffic for this long is closed.
    pub session_idle: Duration,
}

impl HttpConfig {
    /// Loopback-only settings with the defaults, for a listener on `listen`.
    pub fn loopback(listen: SocketAddr) -> Self {
        Self {
            listen,
            allowed_hosts: LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            auth_token: None,
            resource_server: None,
            allow_unauthenticated: false,
            max_request_bytes: saturating_usize(DEFAULT_MAX_REQUEST_BYTES),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
            max_sessions: saturating_usize(DEFAULT_MAX_SESSIONS),
            max_connections: saturating_usize(DEFAULT_MAX_CONNECTIONS),
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_SECS),
        }
    }
}

/// A count from the command line as a `usize`, saturating on a 32-bit target.
pub fn saturating_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

//! DNS-rebinding protection for every HTTP endpoint: the `Host` header, and the `Origin`
//! header when a browser sends one, must name an allowed host; anything else gets 403.
//!
//! Entries are host names or IP addresses (any port) or `host:port` (that port only).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The hosts an HTTP listener accepts.
#[derive(Debug, Clone)]
pub struct HostGuard {
    allowed: Arc<[Allowed]>,
}

#[derive(Debug)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

impl HostGuard {
    pub fn new(entries: &[String]) -> Self {
        let allowed = entries
            .iter()
            .filter_map(|entry| split_authority(entry))
            .map(|(host, port)| Allowed { host, port })
            .collect();
        Self { allowed }
    }

    /// Whether a `Host` header value (an authority: `host[:port]`) is allowed.
    pub fn host_allowed(&self, authority: &str) -> bool {
        split_authority(authority).is_some_and(|(host, port)| self.matches(&host, port))
    }

    /// Whether an `Origin` header value (`scheme://host[:port]`) is allowed. `null` is not.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.matches(&host.to_ascii_lowercase(), url.port_or_known_default())
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.allowed
            .iter()
            .any(|allowed| allowed.host == host && (allowed.port.is_none() || allowed.port == port))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address → (lowercase host, port).
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    if authority.matches(':').count() > 1 {
        // A bare IPv6 address: no port possible without brackets.
        return Some((authority, None));
    }
    match authority.split_once(':') {
        Some((host, port)) => Some((host.to_owned(), Some(port.parse().ok()?))),
        None if authority.is_empty() => None,
        None => Some((authority, None)),
    }
}

/// Axum middleware: refuse a foreign `Host` or `Origin` with 403 before any handler runs.
pub async fn check(State(guard): State<HostGuard>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.get_all(header::HOST).iter().nth(1).is_some()
        || headers.get_all(header::ORIGIN).iter().nth(1).is_some()
    {
        tracing::warn!("refused request: more than one Host or Origin header");
        return refuse(
            StatusCode::BAD_REQUEST,
            "Bad Request: more than one Host or Origin header",
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    let host_ok = host.as_deref().is_some_and(|host| guard.host_allowed(host));
    if !host_ok {
        tracing::warn!(
            host = host.as_deref().unwrap_or("(none)"),
            "refused request: Host not allowed"
        );
        return forbidden(
            "Host not allowed: this server only answers to its configured host names (see --allowed-host)",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin_ok = origin
            .to_str()
            .is_ok_and(|origin| guard.origin_allowed(origin));
        if !origin_ok {
            tracing::warn!(origin = ?origin, "refused request: Origin not allowed");
            return forbidden(
                "Origin not allowed: browsers may reach this server only from an allowed host",
            );
        }
    }
    let mut response = next.run(request).await;
    // Token responses and secrets pass through here; nothing may be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn forbidden(message: &'static str) -> Response {
    refuse(StatusCode::FORBIDDEN, message)
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> HostGuard {
        HostGuard::new(&[
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "mcp.example.com:8443".into(),
        ])
    }

    #[test]
    fn hosts() {
        let guard = guard();
        for ok in [
            "localhost",
            "localhost:8722",
            "127.0.0.1:1",
            "[::1]:8722",
            "[::1]",
            "MCP.example.com:8443",
        ] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:8722",
            "mcp.example.com",
            "mcp.example.com:443",
            "localhost.evil.com",
            "",
            "127.0.0.1:x",
        ] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let guard = guard();
        for ok in [
            "http://localhost:6274",
            "http://127.0.0.1",
            "http://[::1]:3000",
            "https://mcp.example.com:8443",
        ] {
            assert!(guard.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.com",
            "https://mcp.example.com",
            "file:///x",
            "localhost",
        ] {
            assert!(!guard.origin_allowed(bad), "{bad}");
        }
    }
}

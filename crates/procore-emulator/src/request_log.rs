//! One `info` line per emulator request: method, route, status, outcome, latency and peer.
//!
//! Paths are logged as route names, never as sent (`/oauth/authorize/<CODE>` carries a
//! code), and no query string, header or body is ever logged.

use std::time::Instant;

use axum::{
    extract::{ConnectInfo, Request},
    middleware::Next,
    response::Response,
};

use super::connection::ConnectionInfo;

/// What a handler adds to the log line (an error code, a grant, a fault); never a secret.
#[derive(Debug, Clone)]
pub struct LogNote(pub String);

/// The route a path belongs to, safe to log.
pub fn route_name(path: &str) -> &'static str {
    match path {
        "/oauth/authorize" => "/oauth/authorize",
        "/oauth/token" => "/oauth/token",
        "/oauth/token/info" => "/oauth/token/info",
        "/oauth/revoke" => "/oauth/revoke",
        "/_emulator/faults" => "/_emulator/faults",
        "/_emulator/stats" => "/_emulator/stats",
        _ if path.starts_with("/oauth/authorize/") => "/oauth/authorize/{code}",
        _ => "(other path)",
    }
}

/// The logging middleware.
pub async fn log_request(
    ConnectInfo(connection): ConnectInfo<ConnectionInfo>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_name(request.uri().path());
    let response = next.run(request).await;
    let note = response
        .extensions()
        .get::<LogNote>()
        .map(|note| note.0.as_str())
        .unwrap_or("-");
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        outcome = note,
        latency_ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        peer = %connection.peer,
        "emulator request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_paths_are_never_logged_as_sent() {
        assert_eq!(
            route_name("/oauth/authorize/0123456789abcdef"),
            "/oauth/authorize/{code}"
        );
        assert_eq!(route_name("/oauth/token"), "/oauth/token");
        assert_eq!(route_name("/some-token-in-a-path"), "(other path)");
    }
}

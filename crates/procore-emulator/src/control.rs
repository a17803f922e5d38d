//! The control endpoint, for tests and scripts on this machine: `GET|POST|DELETE
//! /_emulator/faults` shows, changes or clears the armed faults; `GET|DELETE
//! /_emulator/stats` shows or resets the counters.
//!
//! It answers loopback peers only (403 for anyone else), whatever address the emulator
//! listens on. It never shows a code, token or secret.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::{AppState, EmulatorStats, connection::ConnectionInfo, faults::FaultUpdate};

/// The control routes, behind the loopback check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/_emulator/faults",
            get(show_faults).post(update_faults).delete(clear_faults),
        )
        .route("/_emulator/stats", get(show_stats).delete(reset_stats))
        .route_layer(middleware::from_fn(loopback_only))
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The refusal for a peer that is not on this machine; `None` for a loopback peer.
fn refusal_for(connection: &ConnectionInfo) -> Option<Response> {
    (!connection.peer_is_loopback()).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the emulator's control endpoint answers loopback peers only",
        )
    })
}

async fn loopback_only(
    ConnectInfo(connection): ConnectInfo<ConnectionInfo>,
    request: Request,
    next: Next,
) -> Response {
    match refusal_for(&connection) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

fn faults_json(shared: &AppState) -> Response {
    let faults = shared.store().faults.clone();
    Json(faults).into_response()
}

async fn show_faults(State(shared): State<AppState>) -> Response {
    faults_json(&shared)
}

async fn update_faults(State(shared): State<AppState>, body: Bytes) -> Response {
    let update: FaultUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("not a fault update: {error}"),
            );
        }
    };
    if let Err(error) = shared.store().faults.apply(update) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &error.to_string(),
        );
    }
    tracing::info!("emulator faults changed through the control endpoint");
    faults_json(&shared)
}

async fn clear_faults(State(shared): State<AppState>) -> Response {
    shared.store().faults = Default::default();
    faults_json(&shared)
}

async fn show_stats(State(shared): State<AppState>) -> Response {
    let stats = shared.store().stats.clone();
    Json(stats).into_response()
}

async fn reset_stats(State(shared): State<AppState>) -> Response {
    shared.store().stats = EmulatorStats::default();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str) -> ConnectionInfo {
        ConnectionInfo::for_peer(peer)
    }

    #[test]
    fn refuses_peers_off_this_machine() {
        let refusal = refusal_for(&from("192.0.2.10:40000")).unwrap();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        assert!(refusal_for(&from("[2001:db8::5]:40000")).is_some());
        assert!(refusal_for(&from("127.0.0.1:40000")).is_none());
        assert!(refusal_for(&from("[::1]:40000")).is_none());
    }
}

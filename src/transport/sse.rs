//! The HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships.
//!
//! `GET /sse` opens an event stream whose first event, `endpoint`, names the URL to POST
//! messages to (`/message?sessionId=…`); each POST answers 202 and its reply arrives on the
//! stream. Each stream is one rmcp session fed through a pair of channels. Closing the
//! stream ends the session.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt, channel::mpsc, stream};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::tools::ProcoreTokenServer;

/// Path of the event stream.
pub const SSE_PATH: &str = "/sse";
/// Path clients POST their messages to.
pub const MESSAGE_PATH: &str = "/message";

const CHANNEL_CAPACITY: usize = 32;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The live old-SSE sessions, by id.
#[derive(Clone)]
pub struct SseSessions {
    server: ProcoreTokenServer,
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    shutdown: CancellationToken,
}

impl SseSessions {
    pub fn new(server: ProcoreTokenServer, shutdown: CancellationToken) -> Self {
        Self {
            server,
            sessions: Arc::default(),
            shutdown,
        }
    }

    fn sender(&self, id: &str) -> Option<mpsc::Sender<ClientJsonRpcMessage>> {
        self.sessions
            .lock()
            .ok()
            .and_then(|sessions| sessions.get(id).cloned())
    }

    fn insert(&self, id: String, sender: mpsc::Sender<ClientJsonRpcMessage>) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(id, sender);
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }
}

/// Removes its session when the event stream is dropped (the client went away).
struct SessionGuard {
    id: String,
    sessions: SseSessions,
    _stop: tokio_util::sync::DropGuard,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
        tracing::debug!(session = %self.id, "old-SSE session closed");
    }
}

/// `GET /sse`: open a session and stream its messages.
pub async fn open(
    State(sessions): State<SseSessions>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    sessions.insert(id.clone(), to_server);

    let session_stop = sessions.shutdown.child_token();
    let server = sessions.server.clone();
    let run_stop = session_stop.clone();
    tokio::spawn(async move {
        if let Ok(running) = server
            .serve_with_ct((to_client, from_client), run_stop)
            .await
        {
            let _ = running.waiting().await;
        }
    });
    tracing::debug!(session = %id, "old-SSE session opened");

    let guard = SessionGuard {
        id: id.clone(),
        sessions: sessions.clone(),
        _stop: session_stop.clone().drop_guard(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("{MESSAGE_PATH}?sessionId={id}"));
    let messages = from_server.filter_map(|message| async move {
        Event::default().event("message").json_data(&message).ok()
    });
    let events = stream::once(async { endpoint })
        .chain(messages)
        .take_until(session_stop.cancelled_owned())
        .map(move |event| {
            let _ = &guard;
            Ok(event)
        });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[derive(Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /message?sessionId=…`: hand one JSON-RPC message to its session; 202 when taken.
pub async fn message(
    State(sessions): State<SseSessions>,
    Query(query): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let Some(mut sender) = sessions.sender(&query.session_id) else {
        return (
            StatusCode::NOT_FOUND,
            "unknown or expired sessionId; open a new stream at /sse",
        )
            .into_response();
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            let code = if error.is_syntax() || error.is_eof() {
                -32700
            } else {
                -32600
            };
            let text = if code == -32700 {
                "Parse error: the body is not JSON"
            } else {
                "Invalid Request: not a JSON-RPC 2.0 message"
            };
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": {"code": code, "message": text}
                })),
            )
                .into_response();
        }
    };
    use futures::SinkExt;
    match sender.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            "session closed; open a new stream at /sse",
        )
            .into_response(),
    }
}

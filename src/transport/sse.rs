//! The HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships.
//!
//! `GET /sse` opens an event stream whose first event, `endpoint`, names the URL to POST
//! messages to (`/message?sessionId=…`); each POST answers 202 and its reply arrives on the
//! stream. Each stream is one rmcp session fed through a pair of channels. Closing the
//! stream ends the session; so does a session without traffic for the idle time. At most
//! `max` sessions live at once (503 beyond); an unknown or expired id gets 404. Behind
//! access tokens, a session belongs to the user who opened it: another user's POST to it
//! gets 404 too, and each message carries its sender's principal to the tools.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, channel::mpsc, stream};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::jsonrpc_gate;
use crate::{
    exchange::Principal,
    tools::{Caller, ProcoreTokenServer},
};

/// Path of the event stream.
pub const SSE_PATH: &str = "/sse";
/// Path clients POST their messages to.
pub const MESSAGE_PATH: &str = "/message";

const CHANNEL_CAPACITY: usize = 32;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many old-SSE sessions may live, and how long one may sit idle.
#[derive(Debug, Clone, Copy)]
pub struct SseLimits {
    pub max_sessions: usize,
    pub idle: Duration,
}

/// The live old-SSE sessions, by id.
#[derive(Clone)]
pub struct SseSessions {
    server: ProcoreTokenServer,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    limits: SseLimits,
    shutdown: CancellationToken,
}

/// One live session: where its client messages go, and when it last saw traffic.
#[derive(Clone)]
struct Session {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    activity: Activity,
    /// The user who opened it (behind access tokens); `None` otherwise.
    owner: Option<Principal>,
}

/// The time of the last message in either direction.
#[derive(Clone)]
struct Activity(Arc<Mutex<Instant>>);

impl Activity {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    fn touch(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = Instant::now();
        }
    }

    fn last(&self) -> Instant {
        self.0.lock().map_or_else(|_| Instant::now(), |last| *last)
    }
}

impl SseSessions {
    pub fn new(server: ProcoreTokenServer, limits: SseLimits, shutdown: CancellationToken) -> Self {
        Self {
            server,
            sessions: Arc::default(),
            limits,
            shutdown,
        }
    }

    /// Live sessions now.
    pub fn len(&self) -> usize {
        self.sessions.lock().map_or(0, |sessions| sessions.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn session(&self, id: &str) -> Option<Session> {
        self.sessions
            .lock()
            .ok()
            .and_then(|sessions| sessions.get(id).cloned())
    }

    /// Add a session unless the cap is reached.
    fn try_insert(&self, id: String, session: Session) -> bool {
        let Ok(mut sessions) = self.sessions.lock() else {
            return false;
        };
        if sessions.len() >= self.limits.max_sessions {
            return false;
        }
        sessions.insert(id, session);
        true
    }

    fn remove(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// Close the session `id` once it has been idle for the limit, unless it ends first.
    async fn expire_when_idle(self, id: String, activity: Activity, stop: CancellationToken) {
        let idle = self.limits.idle;
        loop {
            let deadline = activity.last() + idle;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {}
            }
            if activity.last() + idle <= Instant::now() {
                self.remove(&id);
                stop.cancel();
                tracing::debug!(session = %id, "old-SSE session expired after {idle:?} idle");
                return;
            }
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

/// `GET /sse`: open a session and stream its messages; 503 when the sessions are full.
pub async fn open(
    State(sessions): State<SseSessions>,
    owner: Option<Extension<Caller>>,
) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    let activity = Activity::new();
    let session = Session {
        to_server,
        activity: activity.clone(),
        owner: owner.map(|Extension(owner)| owner.principal),
    };
    if !sessions.try_insert(id.clone(), session) {
        tracing::warn!(
            max = sessions.limits.max_sessions,
            "refused a new old-SSE session: the server holds its maximum"
        );
        return jsonrpc_gate::too_many_sessions(sessions.limits.max_sessions);
    }

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
    tokio::spawn(sessions.clone().expire_when_idle(
        id.clone(),
        activity.clone(),
        session_stop.clone(),
    ));
    tracing::debug!(session = %id, "old-SSE session opened");

    let guard = SessionGuard {
        id: id.clone(),
        sessions: sessions.clone(),
        _stop: session_stop.clone().drop_guard(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("{MESSAGE_PATH}?sessionId={id}"));
    let messages = from_server.filter_map(move |message| {
        activity.touch();
        async move { Event::default().event("message").json_data(&message).ok() }
    });
    let events = stream::once(async { endpoint })
        .chain(messages)
        .take_until(session_stop.cancelled_owned())
        .map(move |event| {
            let _ = &guard;
            Ok::<_, Infallible>(event)
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
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
    sender: Option<Extension<Caller>>,
    body: Bytes,
) -> Response {
    let sender = sender.map(|Extension(sender)| sender);
    let session = sessions
        .session(&query.session_id)
        .filter(|session| session.owner == sender.as_ref().map(|s| s.principal.clone()));
    let Some(session) = session else {
        return (
            StatusCode::NOT_FOUND,
            "unknown or expired sessionId; open a new stream at /sse",
        )
            .into_response();
    };
    let mut message = match jsonrpc_gate::parse(&body) {
        Ok(message) => message,
        Err(rejection) => return rejection.into_response(),
    };
    if let (Some(sender), ClientJsonRpcMessage::Request(request)) = (sender, &mut message) {
        request.request.extensions_mut().insert(sender);
    }
    session.activity.touch();
    let mut sender = session.to_server;
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

//! The sessions of streamable HTTP (`/mcp`, protocol ≤ 2025-11-25): rmcp's
//! `LocalSessionManager` with a cap on how many live at once. Idle expiry is rmcp's own
//! session keep-alive, set from `--session-idle-secs`; an expired or unknown id gets 404.
//!
//! Never holds more than the cap: creating one more fails, and the caller answers 503.
//!
//! On a Redis token store the sessions are shared ([`SharedSessions`]): the cap and the
//! idle expiry count every replica's sessions, a request to a session this process does not
//! hold is served after rmcp replays its `initialize` from Redis, and a session's owner is
//! kept there too. Redis decides: a session it no longer has (expired, or deleted through
//! another replica) is closed here as well, and gets 404.
//!
//! Behind access tokens, a session belongs to the user who opened it: another user's request
//! naming it is answered as for an unknown session.
//!
//! Never orphans a POST: rmcp routes a request's answer by its JSON-RPC id, so a second
//! request with the id of one still in flight would take the first one's answer and leave
//! the first POST open for ever. Such a duplicate is answered at once with -32600 and never
//! reaches the session.

use std::{
    cell::Cell,
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::{Stream, StreamExt, future::Either, stream};
use rmcp::{
    model::{ClientJsonRpcMessage, ErrorData, RequestId, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::session::{
            EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager, SessionState,
            SessionStore, SessionStoreError,
            local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
        },
    },
};

use crate::exchange::{Principal, SharedSessions, SharedSessionsError};

/// rmcp's in-memory sessions, at most `max` of them.
#[derive(Debug)]
pub struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    /// Serializes "count, then create" so the cap holds under concurrent handshakes.
    creating: tokio::sync::Mutex<()>,
    in_flight: InFlight,
    /// Who opened each session, by id (behind access tokens only).
    owners: Mutex<HashMap<String, Principal>>,
    /// The sessions of every replica, when the token store is Redis.
    shared: Option<SharedSessions>,
}

/// The (session, request id) pairs whose answer has not been sent yet.
type InFlight = Arc<Mutex<HashSet<(SessionId, RequestId)>>>;

/// One entry of [`InFlight`], removed when the answer passes or the POST's stream is dropped
/// (client gone, session closed), whichever comes first.
struct Pending {
    in_flight: InFlight,
    key: (SessionId, RequestId),
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Whether `message` is the answer (result or error) to the request `id`.
fn answers(message: &ServerSseMessage, id: &RequestId) -> bool {
    match message.message.as_deref() {
        Some(ServerJsonRpcMessage::Response(response)) => response.id == *id,
        Some(ServerJsonRpcMessage::Error(error)) => error.id.as_ref() == Some(id),
        _ => false,
    }
}

/// The immediate answer to a request whose id is already in flight in its session.
fn duplicate_id(id: RequestId) -> ServerSseMessage {
    let error = ErrorData::invalid_request(
        "Invalid Request: a request with this id is still in flight in this session; give \
         each request its own id",
        None,
    );
    ServerSseMessage::from_message(ServerJsonRpcMessage::error(error, Some(id)))
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedSessionsError {
    #[error("the server already holds its maximum of {0} sessions")]
    Full(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    #[error(transparent)]
    Shared(#[from] SharedSessionsError),
}

/// Why the session layer could not serve the request at hand. rmcp answers every error of
/// a session manager or session store with 500 and the error's text; the HTTP door turns
/// these into 503 with `Retry-After` and its own words (see [`noting_refusals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No place for a new session under the cap (also for each `initialize` that lost a
    /// race for the last one).
    Full,
    /// The shared session store (Redis) did not answer.
    StoreDown,
}

tokio::task_local! {
    /// The refusal noted while serving one HTTP request, when rmcp runs it on the request's
    /// own task (it does for everything that precedes the response's head).
    static REFUSAL: Cell<Option<Refusal>>;
}

/// Run `serve` (one request through rmcp) and say which refusal, if any, its session
/// operations met.
pub async fn noting_refusals<F: Future>(serve: F) -> (F::Output, Option<Refusal>) {
    REFUSAL
        .scope(Cell::new(None), async move {
            let output = serve.await;
            (output, REFUSAL.with(Cell::take))
        })
        .await
}

fn note(refusal: Refusal) {
    // Outside a request's scope (a session's worker, say) there is no one to tell.
    let _ = REFUSAL.try_with(|noted| noted.set(Some(refusal)));
}

/// Note the refusal `error` stands for, if it is one, and pass it on.
fn noted(error: BoundedSessionsError) -> BoundedSessionsError {
    match &error {
        BoundedSessionsError::Full(_) => note(Refusal::Full),
        BoundedSessionsError::Shared(_) => note(Refusal::StoreDown),
        BoundedSessionsError::Local(_) => {}
    }
    error
}

/// The shared sessions as rmcp's session store, noting a store that does not answer.
#[derive(Debug)]
pub struct NotingStore(pub SharedSessions);

#[async_trait::async_trait]
impl SessionStore for NotingStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        self.0
            .load(session_id)
            .await
            .inspect_err(|_| note(Refusal::StoreDown))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        self.0
            .store(session_id, state)
            .await
            .inspect_err(|_| note(Refusal::StoreDown))
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.0
            .delete(session_id)
            .await
            .inspect_err(|_| note(Refusal::StoreDown))
    }
}

impl BoundedSessions {
    /// At most `max` sessions, each closed after `idle` unused; with `shared`, counted and
    /// kept for every replica on that Redis.
    pub fn new(max: usize, idle: Duration, shared: Option<SharedSessions>) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(idle);
        Self {
            inner,
            max,
            creating: tokio::sync::Mutex::new(()),
            in_flight: InFlight::default(),
            owners: Mutex::default(),
            shared,
        }
    }

    /// Where the sessions are shared with other replicas, if they are.
    pub fn shared(&self) -> Option<&SharedSessions> {
        self.shared.as_ref()
    }

    /// Whether `caller` may use the session `id`: it opened it, or no one is recorded (an
    /// unknown session, answered 404 further on). A shared session that exists with no
    /// owner recorded is refused: its opener's record was lost, and it may be anyone's.
    pub async fn may_use(
        &self,
        id: &str,
        caller: &Principal,
    ) -> Result<bool, BoundedSessionsError> {
        let known = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(|owner| owner == caller);
        if let Some(known) = known {
            return Ok(known);
        }
        let Some(shared) = &self.shared else {
            return Ok(true);
        };
        match shared.owner(id).await? {
            None => Ok(true),
            Some(None) => Ok(false),
            Some(Some(owner)) => {
                let allowed = owner == *caller;
                self.owners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.to_owned(), owner);
                Ok(allowed)
            }
        }
    }

    /// Record that `owner` opened the session `id`, forgetting the owners of sessions that
    /// have ended once as many are recorded as may live.
    pub async fn record_owner(&self, id: String, owner: Principal) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.record_owner(&id, &owner).await
        {
            // Fails closed: another replica finds no owner and refuses the session.
            tracing::warn!(%error, "a session's owner could not be kept for the other replicas");
        }
        let recorded = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let live: Option<HashSet<String>> = if recorded >= self.max {
            let sessions = self.inner.sessions.read().await;
            Some(sessions.keys().map(|id| id.to_string()).collect())
        } else {
            None
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = live {
            owners.retain(|id, _| live.contains(id));
        }
        owners.insert(id, owner);
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Live sessions now: of every replica when they are shared.
    pub async fn len(&self) -> Result<usize, BoundedSessionsError> {
        match &self.shared {
            Some(shared) => Ok(shared.count().await?),
            None => Ok(self.inner.sessions.read().await.len()),
        }
    }

    pub async fn is_empty(&self) -> Result<bool, BoundedSessionsError> {
        Ok(self.len().await? == 0)
    }

    /// Whether a new session would be refused.
    pub async fn is_full(&self) -> Result<bool, BoundedSessionsError> {
        Ok(self.len().await? >= self.max)
    }

    /// A new session, within the cap.
    async fn create(
        &self,
    ) -> Result<(SessionId, WorkerTransport<LocalSessionWorker>), BoundedSessionsError> {
        let _creating = self.creating.lock().await;
        let Some(shared) = &self.shared else {
            if self.is_full().await? {
                return Err(BoundedSessionsError::Full(self.max));
            }
            return Ok(self.inner.create_session().await?);
        };
        let (id, transport) = self.inner.create_session().await?;
        // The count and the reservation are one step in Redis, so the cap holds across
        // replicas opening sessions at the same moment.
        let reserved = shared.reserve(&id, self.max).await;
        if !matches!(reserved, Ok(true)) {
            self.inner.close_session(&id).await?;
        }
        match reserved {
            Ok(true) => Ok((id, transport)),
            Ok(false) => Err(BoundedSessionsError::Full(self.max)),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether this process holds the live session `id` (with shared sessions: and Redis
    /// still has it).
    async fn holds(&self, id: &SessionId) -> Result<bool, BoundedSessionsError> {
        let here = self.inner.has_session(id).await?;
        let Some(shared) = &self.shared else {
            return Ok(here);
        };
        // Not held here: rmcp asks the session store next (and restores it from there).
        if !here {
            return Ok(false);
        }
        if shared.touch(id).await? {
            return Ok(true);
        }
        // Expired or deleted for every replica: gone here too.
        self.inner.close_session(id).await?;
        Ok(false)
    }
}

impl SessionManager for BoundedSessions {
    type Error = BoundedSessionsError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.create().await.map_err(noted)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.holds(id).await.map_err(noted)
    }

    /// Closes the session in this process only: rmcp also calls this when a session's
    /// worker ends here (idle, or this process stopping), which must not end it for the
    /// other replicas. A client's DELETE removes it from the shared store as well (rmcp
    /// calls the store's `delete` after this).
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let ClientJsonRpcMessage::Request(request) = &message else {
            return Ok(Either::Left(Either::Left(
                self.inner.create_stream(id, message).await?,
            )));
        };
        let key = (id.clone(), request.id.clone());
        let fresh = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        if !fresh {
            return Ok(Either::Right(stream::iter([duplicate_id(key.1)])));
        }
        let mut pending = Some(Pending {
            in_flight: self.in_flight.clone(),
            key,
        });
        // On an error `pending` drops here and frees the id.
        let answer = self.inner.create_stream(id, message).await?;
        Ok(Either::Left(Either::Right(answer.map(move |message| {
            if pending
                .as_ref()
                .is_some_and(|pending| answers(&message, &pending.key.1))
            {
                // Freed before the client can read the answer, so it may reuse the id.
                pending = None;
            }
            message
        }))))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        if self.shared.is_none() {
            // No external session store: an unknown id is unknown (404), never re-created.
            return Ok(RestoreOutcome::NotSupported);
        }
        // Already counted in Redis by the replica that opened it.
        Ok(self.inner.restore_session(id).await?)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

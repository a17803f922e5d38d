//! One token exchange with Procore (a grant traded for tokens), made safe for single-use
//! codes and refresh tokens.
//!
//! - Identical concurrent requests become one upstream request (single flight); every
//!   caller gets that one answer.
//! - The request runs to completion in its own task, even when every caller goes away, so
//!   an answer Procore sends is never dropped by a cancelled call.
//! - With a token store, the exchange runs under the store's cross-process lock; every
//!   successful answer is written durably before any caller sees it; and a refresh with a
//!   token this store rotated within the reuse window gets the stored successor pair
//!   instead of a request Procore would refuse.
//! - Nothing is ever retried.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, future::Shared};
use tokio_util::task::TaskTracker;

use crate::{
    clock::{Clock, SystemClock},
    oauth::{AccessToken, ClientId, ClientSecret, RefreshToken, RevocableToken},
    procore::{GrantType, ProcoreClient, TokenRequest, UpstreamError, UpstreamResponse},
    secret::{Secret, SentSecrets},
    store::{
        PairKey, Rotation, Sending, StoreError, StoredPair, TokenStore, credentials_sha256,
        sha256_hex, within,
    },
};

/// Whose pairs a call reads and writes: the exchange's callers name one with every call.
pub use crate::store::{Principal, SharedSessions, SharedSessionsError};

/// The token store and how long a consumed refresh token may be answered from it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub store: Arc<dyn TokenStore>,
    pub reuse_window: Duration,
}

/// Why the token store could not serve a call. Nothing was sent to Procore.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the pair stored for {0} was removed while this call waited for the store's lock")]
    PairRemoved(PairKey),
    #[error("the pair stored for {0} holds no refresh token")]
    NoRefreshToken(PairKey),
}

/// Procore's answer to a revocation and, after a 2xx, whether the stored pair was forgotten
/// (`Ok(false)`: the store held another pair, or there is no store).
#[derive(Debug)]
pub struct Revoked {
    pub response: UpstreamResponse,
    pub forgotten: Option<Result<bool, StoreFailure>>,
}

/// A failure inside this server, not of Procore or of the store.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// A panic while the flight table was held; nothing was sent.
    #[error("the flight table is poisoned")]
    FlightTable,
    /// The flight's task ended without an outcome; its request may or may not have been
    /// sent.
    #[error("the token request task failed: {0}")]
    Task(String),
}

/// How one exchange ended. Shared by every caller of the same flight.
#[derive(Debug)]
pub enum Outcome {
    /// Procore answered (any status). `store_error` is set when a successful answer could
    /// not be written to the store; `sent` holds the secrets of the request as sent (the
    /// refresh token may be the one read under the lock, not the caller's).
    Answered {
        response: UpstreamResponse,
        store_error: Option<StoreError>,
        sent: SentSecrets,
    },
    /// The refresh token was rotated by this store `rotated_secs_ago`; here is the stored
    /// successor pair, exactly as Procore sent it. Nothing was sent.
    Replayed { body: Secret, rotated_secs_ago: u64 },
    /// No complete answer came back.
    Failed(UpstreamError),
    /// The store could not be locked or read, so nothing was sent.
    StoreUnavailable(StoreFailure),
    /// This server failed itself.
    Internal(InternalError),
}

type SharedFlight = Shared<futures::future::BoxFuture<'static, Arc<Outcome>>>;

/// The gate every token request passes through.
pub struct TokenExchange {
    procore: Arc<ProcoreClient>,
    store: Option<StoreSettings>,
    flights: Arc<Mutex<HashMap<String, (u64, SharedFlight)>>>,
    next_flight: std::sync::atomic::AtomicU64,
    /// Every flight's task, so shutdown can wait for answers still on their way.
    tasks: TaskTracker,
    clock: Arc<dyn Clock>,
}

impl TokenExchange {
    pub fn new(procore: ProcoreClient, store: Option<StoreSettings>) -> Self {
        Self {
            procore: Arc::new(procore),
            store,
            flights: Arc::default(),
            next_flight: std::sync::atomic::AtomicU64::new(0),
            tasks: TaskTracker::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same exchange, telling time by `clock` (the reuse window, rotation ages).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Before the process exits: wait (at most `limit`) for exchanges still in flight, so an
    /// answer already on its way is received and stored rather than lost. Whether all
    /// finished.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.tasks.close();
        if self.tasks.is_empty() {
            return true;
        }
        tracing::info!(
            in_flight = self.tasks.len(),
            "waiting for token requests still in flight"
        );
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }

    /// The longest a drain may need: one whole exchange, lock wait included.
    pub fn drain_limit(&self) -> Duration {
        self.procore.timeout() + Duration::from_secs(1)
    }

    /// Now, in Unix milliseconds, by the clock this exchange was given.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn procore(&self) -> &ProcoreClient {
        &self.procore
    }

    pub fn store(&self) -> Option<&StoreSettings> {
        self.store.as_ref()
    }

    /// Where the token store keeps legacy MCP sessions for every process sharing it (a
    /// Redis store), each expiring after `idle` unused; `None`: each process its own.
    pub fn shared_sessions(&self, idle: Duration) -> Option<SharedSessions> {
        self.store.as_ref()?.store.shared_sessions(idle)
    }

    /// Whether the token store (if any) answers now.
    pub async fn store_ready(&self) -> Result<(), StoreFailure> {
        match &self.store {
            Some(settings) => Ok(settings.store.ready().await?),
            None => Ok(()),
        }
    }

    /// The login host's origin: the first half of a store key.
    pub fn login_host(&self) -> String {
        self.procore.base().origin()
    }

    /// The key of `principal`'s pair of `client_id` at this login host.
    fn key(&self, principal: &Principal, client_id: &ClientId) -> PairKey {
        PairKey {
            principal: principal.clone(),
            login_host: self.login_host(),
            client_id: client_id.as_str().to_owned(),
        }
    }

    /// `principal`'s stored pair of `client_id` (or its only pair at this login host when
    /// `client_id` is `None`). `Ok(None)` without a store or without a pair. Another
    /// principal's pairs are never looked at.
    pub async fn stored_pair(
        &self,
        principal: &Principal,
        client_id: Option<&ClientId>,
    ) -> Result<Option<StoredPair>, StoreError> {
        let Some(settings) = &self.store else {
            return Ok(None);
        };
        match client_id {
            Some(client_id) => settings.store.load(&self.key(principal, client_id)).await,
            None => {
                let host = self.login_host();
                settings.store.only_pair_of(principal, &host).await
            }
        }
    }

    /// `principal`'s stored refresh token of `client_id`, for a refresh that omitted it.
    pub async fn stored_refresh_token(
        &self,
        principal: &Principal,
        client_id: &ClientId,
    ) -> Result<Option<RefreshToken>, StoreFailure> {
        let pair = self.stored_pair(principal, Some(client_id)).await?;
        Ok(pair.and_then(|pair| pair.refresh_token().cloned()))
    }

    /// `principal`'s stored access token of `client_id` (or of its only pair at this login
    /// host), for a tool whose token argument was omitted.
    pub async fn stored_access_token(
        &self,
        principal: &Principal,
        client_id: Option<&ClientId>,
    ) -> Result<Option<AccessToken>, StoreFailure> {
        let pair = self.stored_pair(principal, client_id).await?;
        Ok(pair.and_then(|pair| pair.access_token().cloned()))
    }

    /// Ask Procore about `access_token` (`GET /oauth/token/info`). Nothing is stored.
    pub async fn token_info(
        &self,
        access_token: &AccessToken,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.procore.token_info(access_token).await
    }

    /// Revoke `token` with Procore (`POST /oauth/revoke`); on success, forget `principal`'s
    /// stored pair if `token` is its access or refresh token.
    pub async fn revoke(
        &self,
        principal: &Principal,
        token: &RevocableToken,
        client_id: &ClientId,
        client_secret: &ClientSecret,
    ) -> Result<Revoked, UpstreamError> {
        let response = self.procore.revoke(token, client_id, client_secret).await?;
        let forgotten = if response.status.is_success() {
            Some(self.forget(principal, client_id, token).await)
        } else {
            None
        };
        Ok(Revoked {
            response,
            forgotten,
        })
    }

    /// After a revocation: remove the stored pair of `client_id` if `token` is its access or
    /// refresh token. Whether a pair was removed; `Ok(false)` without a store.
    async fn forget(
        &self,
        principal: &Principal,
        client_id: &ClientId,
        token: &RevocableToken,
    ) -> Result<bool, StoreFailure> {
        let Some(settings) = &self.store else {
            return Ok(false);
        };
        let key = self.key(principal, client_id);
        let lease = settings.store.lease(&key, self.lock_patience()).await?;
        let matches = settings.store.load(&key).await?.is_some_and(|pair| {
            pair.access_token()
                .is_some_and(|t| token.is_access_token(t))
                || pair
                    .refresh_token()
                    .is_some_and(|t| token.is_refresh_token(t))
        });
        if matches {
            settings.store.remove(&lease).await?;
        }
        Ok(matches)
    }

    /// Long enough to wait out another process's whole exchange, short enough not to hang.
    fn lock_patience(&self) -> Duration {
        lock_patience(&self.procore)
    }

    /// Exchange `request` for tokens on behalf of `principal` (whose pair the answer
    /// becomes): join an identical flight of the same principal in progress, or start one.
    pub async fn exchange(&self, principal: &Principal, request: TokenRequest) -> Arc<Outcome> {
        self.exchange_as(principal, request, Grant::AsGiven).await
    }

    /// Refresh "the stored pair", for a caller that omitted `refresh_token`: `request`
    /// carries the refresh token the store held when the call arrived. Under the lock, if
    /// the stored pair is no longer the one that token belongs to (another caller, maybe in
    /// another process, refreshed it while this one waited), or was rotated less than
    /// [`FRESH_PAIR`] ago, that pair is the answer and nothing is sent: one logical refresh,
    /// one rotation. Otherwise the refresh token read under the lock is the one sent.
    pub async fn refresh_stored(
        &self,
        principal: &Principal,
        request: TokenRequest,
    ) -> Arc<Outcome> {
        self.exchange_as(principal, request, Grant::StoredPair)
            .await
    }

    async fn exchange_as(
        &self,
        principal: &Principal,
        request: TokenRequest,
        grant: Grant,
    ) -> Arc<Outcome> {
        // Two principals never share a flight: its answer is stored as one principal's pair.
        let mut key = match principal {
            Principal::Local => "local\n".to_owned(),
            Principal::User(subject) => format!("user {}\n{subject}\n", subject.len()),
        };
        if grant == Grant::StoredPair {
            key.push_str("stored pair\n");
        }
        key.push_str(&String::from_utf8_lossy(&request.to_json()));
        let key = sha256_hex(&key);
        let flight = {
            let Ok(mut flights) = self.flights.lock() else {
                return Arc::new(Outcome::Internal(InternalError::FlightTable));
            };
            match flights.get(&key) {
                Some((_, flight)) => flight.clone(),
                None => {
                    let id = self
                        .next_flight
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let flight = self.launch(key.clone(), id, principal.clone(), request, grant);
                    flights.insert(key, (id, flight.clone()));
                    flight
                }
            }
        };
        flight.await
    }

    /// Spawn the flight's task; it removes itself from the table when it lands.
    fn launch(
        &self,
        key: String,
        id: u64,
        principal: Principal,
        request: TokenRequest,
        grant: Grant,
    ) -> SharedFlight {
        let procore = self.procore.clone();
        let store = self.store.clone();
        let clock = self.clock.clone();
        let flights = self.flights.clone();
        let task = self.tasks.spawn(async move {
            let flight = Flight {
                procore: &procore,
                settings: store.as_ref(),
                clock: clock.as_ref(),
                principal: &principal,
            };
            // Boxed, so the task (which tokio moves into place) stays small.
            let outcome = Arc::new(Box::pin(flight.fly(request, grant)).await);
            if let Ok(mut flights) = flights.lock()
                && flights.get(&key).is_some_and(|(current, _)| *current == id)
            {
                flights.remove(&key);
            }
            outcome
        });
        async move {
            task.await.unwrap_or_else(|error| {
                Arc::new(Outcome::Internal(InternalError::Task(error.to_string())))
            })
        }
        .boxed()
        .shared()
    }
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// Exactly the request given.
    AsGiven,
    /// A refresh of whatever pair the store holds (the caller omitted `refresh_token`).
    StoredPair,
}

/// A pair this store rotated less than this long ago is the answer to a refresh of "the
/// stored pair": a storm of callers (agents, processes) asking at once is one logical
/// refresh, even for those that arrive just after the rotation landed. Far below an access
/// token's lifetime; a caller that really wants another rotation passes `refresh_token`.
pub const FRESH_PAIR: Duration = Duration::from_secs(2);

fn lock_patience(procore: &ProcoreClient) -> Duration {
    procore.timeout() * 2 + Duration::from_secs(5)
}

/// What one exchange works with.
struct Flight<'a> {
    procore: &'a ProcoreClient,
    settings: Option<&'a StoreSettings>,
    clock: &'a dyn Clock,
    /// Whose pair the answer becomes.
    principal: &'a Principal,
}

impl Flight<'_> {
    /// One exchange from start to end.
    async fn fly(&self, request: TokenRequest, grant: Grant) -> Outcome {
        let Some(settings) = self.settings else {
            return match self.procore.request_token(&request).await {
                Ok(response) => Outcome::Answered {
                    response,
                    store_error: None,
                    sent: request.secrets(),
                },
                Err(error) => Outcome::Failed(error),
            };
        };
        match self.fly_stored(settings, request, grant).await {
            Ok(outcome) => outcome,
            Err(failure) => Outcome::StoreUnavailable(failure),
        }
    }

    /// The exchange under the store's lease on the pair: decide from the stored pair, send
    /// if need be, store the answer before anyone sees it.
    async fn fly_stored(
        &self,
        settings: &StoreSettings,
        mut request: TokenRequest,
        grant: Grant,
    ) -> Result<Outcome, StoreFailure> {
        let store = &settings.store;
        let key = PairKey {
            principal: self.principal.clone(),
            login_host: self.procore.base().origin(),
            client_id: request.client_id.as_str().to_owned(),
        };
        let lease = store.lease(&key, lock_patience(self.procore)).await?;
        let mut stored = store.load(&key).await?;
        let mut now = StoreTime::read(store.as_ref(), self.clock).await?;
        let credentials = credentials_sha256(&request.client_id, &request.client_secret);
        if grant == Grant::StoredPair {
            let Some(pair) = &stored else {
                return Err(StoreFailure::PairRemoved(key));
            };
            if let Some(replayed) = settled_meanwhile(
                pair,
                &credentials,
                request.refresh_token.as_ref(),
                now.ms(self.clock),
            ) {
                return Ok(replayed);
            }
            // The stored token, as read under the lease, is the one to send.
            let Some(current) = pair.refresh_token() else {
                return Err(StoreFailure::NoRefreshToken(key));
            };
            request.refresh_token = Some(current.clone());
        }
        let request = &request;
        let window = settings.reuse_window;
        let from_store = |stored: Option<&StoredPair>, now_ms: u64| {
            let settled = match (grant, stored) {
                (Grant::StoredPair, Some(pair)) => {
                    settled_meanwhile(pair, &credentials, request.refresh_token.as_ref(), now_ms)
                }
                _ => None,
            };
            settled.or_else(|| replay(stored, &credentials, request, window, now_ms))
        };
        if let Some(replayed) = replay(
            stored.as_ref(),
            &credentials,
            request,
            window,
            now.ms(self.clock),
        ) {
            return Ok(replayed);
        }
        // A single-use grant: the store records the intent to spend it, after waiting out
        // another holder's unfinished one (which may yet store the pair it was given).
        let mut contested = false;
        if let Some(spent) = single_use_grant(request) {
            match store.before_send(&lease, &spent).await? {
                Sending::Proceed { contested: waited } => contested = waited,
                Sending::Settled => {
                    stored = store.load(&key).await?;
                    now = StoreTime::read(store.as_ref(), self.clock).await?;
                    if let Some(replayed) = from_store(stored.as_ref(), now.ms(self.clock)) {
                        return Ok(replayed);
                    }
                }
            }
        }
        let response = match self.procore.request_token(request).await {
            Ok(response) => response,
            Err(error) => return Ok(Outcome::Failed(error)),
        };
        // Refused a grant another holder was spending: that holder may have been given the
        // pair and may still store it; wait one upstream timeout for it.
        if contested
            && response.is_invalid_grant()
            && store.await_change(&lease, self.procore.timeout()).await?
        {
            stored = store.load(&key).await?;
            now = StoreTime::read(store.as_ref(), self.clock).await?;
            if let Some(replayed) = from_store(stored.as_ref(), now.ms(self.clock)) {
                return Ok(replayed);
            }
        }
        let now_ms = now.ms(self.clock);
        let sent = request.secrets();
        if !response.is_token_response() {
            return Ok(Outcome::Answered {
                response,
                store_error: None,
                sent,
            });
        }
        let rotated_from = lineage(stored.as_ref(), &credentials, request, window, now_ms);
        let body = Secret::new(String::from_utf8_lossy(&response.body).into_owned());
        let store_error =
            match StoredPair::new(key.clone(), body, now_ms / 1000, credentials, rotated_from) {
                Some(pair) => store.save(&lease, pair).await.err(),
                None => Some(StoreError::NotAnObject {
                    location: store.location(),
                    key,
                }),
            };
        drop(lease);
        if let Some(error) = &store_error {
            tracing::error!(%error, "a new token pair could not be stored; it is returned to the caller");
        }
        Ok(Outcome::Answered {
            response,
            store_error,
            sent,
        })
    }
}

/// The hash of the single-use grant `request` spends (its refresh token or its
/// authorization code); `None` for a grant that can be sent again (client credentials).
fn single_use_grant(request: &TokenRequest) -> Option<String> {
    match request.grant_type {
        GrantType::RefreshToken => request
            .refresh_token
            .as_ref()
            .map(|t| sha256_hex(t.expose())),
        GrantType::AuthorizationCode => request.code.as_ref().map(|c| sha256_hex(c.expose())),
        _ => None,
    }
}

/// The time rotations are measured by: the store's own clock when it has one that every
/// process sharing it reads (Redis's `TIME`: skew between servers cannot bend the reuse
/// window), read once under the lease and advanced by this process's clock; else this
/// process's clock.
struct StoreTime {
    /// The store's time and this process's, read together.
    read: Option<(u64, u64)>,
}

impl StoreTime {
    async fn read(store: &dyn TokenStore, clock: &dyn Clock) -> Result<Self, StoreError> {
        let store_ms = store.now_ms().await?;
        Ok(Self {
            read: store_ms.map(|store_ms| (store_ms, clock.now_ms())),
        })
    }

    fn ms(&self, clock: &dyn Clock) -> u64 {
        match self.read {
            Some((store_ms, local_ms)) => {
                store_ms.saturating_add(clock.now_ms().saturating_sub(local_ms))
            }
            None => clock.now_ms(),
        }
    }
}

/// For a refresh of "the stored pair" (`sent` is the refresh token the store held when the
/// call arrived): the stored pair itself, if another caller rotated it while this one
/// waited, or rotated it less than [`FRESH_PAIR`] ago, with the same client credentials.
fn settled_meanwhile(
    pair: &StoredPair,
    credentials: &str,
    sent: Option<&RefreshToken>,
    now_ms: u64,
) -> Option<Outcome> {
    // A pair that never rotated (fresh from a code) has only whole seconds; rounding down
    // makes it look older, which errs towards sending.
    let rotation_ms = pair.rotated_from.first().map(|rotation| rotation.at_ms);
    let stored_ms = rotation_ms.unwrap_or(pair.stored_at.saturating_mul(1000));
    let age_ms = now_ms.saturating_sub(stored_ms);
    let rotated_meanwhile = pair.refresh_token() != sent;
    let just_rotated = rotation_ms.is_some() && u128::from(age_ms) < FRESH_PAIR.as_millis();
    ((rotated_meanwhile || just_rotated) && pair.credentials_sha256 == credentials).then(|| {
        Outcome::Replayed {
            body: pair.response().clone(),
            rotated_secs_ago: age_ms / 1000,
        }
    })
}

/// The stored successor, when `request` refreshes a token this store rotated within
/// `window` with the same client credentials.
fn replay(
    stored: Option<&StoredPair>,
    credentials: &str,
    request: &TokenRequest,
    window: Duration,
    now_ms: u64,
) -> Option<Outcome> {
    let refresh_token = request.refresh_token.as_ref()?;
    if request.grant_type != GrantType::RefreshToken || window.is_zero() {
        return None;
    }
    let pair = stored?;
    if pair.credentials_sha256 != credentials {
        return None;
    }
    let at_ms = pair.rotated_within(refresh_token, window, now_ms)?;
    Some(Outcome::Replayed {
        body: pair.response().clone(),
        rotated_secs_ago: now_ms.saturating_sub(at_ms) / 1000,
    })
}

/// The consumed refresh tokens the new pair answers for: the one just used, and, when it was
/// the stored pair's own refresh token, that pair's predecessors still within `window`.
fn lineage(
    stored: Option<&StoredPair>,
    credentials: &str,
    request: &TokenRequest,
    window: Duration,
    now_ms: u64,
) -> Vec<Rotation> {
    let (GrantType::RefreshToken, Some(used)) = (request.grant_type, &request.refresh_token) else {
        return Vec::new();
    };
    let mut rotations = vec![Rotation {
        refresh_token_sha256: sha256_hex(used.expose()),
        at_ms: now_ms,
    }];
    if let Some(previous) = stored
        && previous.credentials_sha256 == credentials
        && previous.refresh_token() == Some(used)
    {
        rotations.extend(
            previous
                .rotated_from
                .iter()
                .filter(|rotation| within(rotation.at_ms, window, now_ms))
                .cloned(),
        );
    }
    rotations
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::{Router, routing::post};

    use super::*;
    use crate::{clock::ManualClock, procore::LoginBase, store::MemoryStore};

    /// A loopback login host that answers every token request with a new pair
    /// (`at-N`/`rt-N`), counting them.
    async fn login_host() -> (String, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let app = Router::new().route(
            "/oauth/token",
            post(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    format!(
                        r#"{{"access_token":"at-{n}","token_type":"bearer","expires_in":5400,"refresh_token":"rt-{n}","created_at":1}}"#
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, count)
    }

    struct Setup {
        exchange: TokenExchange,
        clock: Arc<ManualClock>,
        sent: Arc<AtomicU64>,
    }

    async fn setup(reuse_window: Duration) -> Setup {
        let (url, sent) = login_host().await;
        let procore = ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(5));
        let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
        let settings = StoreSettings {
            store: Arc::new(MemoryStore::new()),
            reuse_window,
        };
        let exchange = TokenExchange::new(procore, Some(settings)).with_clock(clock.clone());
        Setup {
            exchange,
            clock,
            sent,
        }
    }

    fn request(grant_type: GrantType, secret: &str, refresh_token: Option<&str>) -> TokenRequest {
        TokenRequest {
            grant_type,
            client_id: "cid".into(),
            client_secret: secret.into(),
            code: (grant_type == GrantType::AuthorizationCode).then(|| "code-1".into()),
            redirect_uri: None,
            refresh_token: refresh_token.map(RefreshToken::new),
        }
    }

    fn refresh(token: &str) -> TokenRequest {
        request(GrantType::RefreshToken, "secret", Some(token))
    }

    /// The access token of a token answer, sent or replayed, and whether it was replayed.
    fn access_token(outcome: &Outcome) -> (String, bool) {
        let (body, replayed) = match outcome {
            Outcome::Answered { response, .. } => {
                (String::from_utf8_lossy(&response.body).into_owned(), false)
            }
            Outcome::Replayed { body, .. } => (body.expose().to_owned(), true),
            other => panic!("not a token answer: {other:?}"),
        };
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        (value["access_token"].as_str().unwrap().to_owned(), replayed)
    }

    #[tokio::test]
    async fn a_rotated_token_is_answered_from_the_store_until_the_window_closes() {
        let Setup {
            exchange,
            clock,
            sent,
        } = setup(Duration::from_secs(120)).await;
        let first = exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        assert_eq!(access_token(&first), ("at-1".into(), false));
        let second = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&second), ("at-2".into(), false));

        // The same consumed token, just before the window closes: the stored successor.
        clock.advance(Duration::from_secs(119));
        let retry = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&retry), ("at-2".into(), true));
        assert!(matches!(
            *retry,
            Outcome::Replayed {
                rotated_secs_ago: 119,
                ..
            }
        ));
        // Other client credentials never get it.
        let stranger = exchange
            .exchange(
                &Principal::Local,
                request(GrantType::RefreshToken, "other", Some("rt-1")),
            )
            .await;
        assert_eq!(access_token(&stranger), ("at-3".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 3);

        // Just after: forwarded, as Procore would have it.
        let setup2 = setup(Duration::from_secs(120)).await;
        let (exchange, clock, sent) = (setup2.exchange, setup2.clock, setup2.sent);
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        clock.advance(Duration::from_millis(120_001));
        let late = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&late), ("at-3".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_pair_answers_for_its_predecessors_still_within_the_window() {
        let Setup {
            exchange,
            clock,
            sent,
        } = setup(Duration::from_secs(120)).await;
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        clock.advance(Duration::from_secs(100));
        let third = exchange.exchange(&Principal::Local, refresh("rt-2")).await;
        assert_eq!(access_token(&third), ("at-3".into(), false));
        // rt-1 was consumed 100 s ago, two rotations back: the current pair answers for it.
        let retry = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&retry), ("at-3".into(), true));
        // 30 s on, rt-1 is out of the window, rt-2 still in it.
        clock.advance(Duration::from_secs(30));
        let retry = exchange.exchange(&Principal::Local, refresh("rt-2")).await;
        assert_eq!(access_token(&retry), ("at-3".into(), true));
        let late = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&late), ("at-4".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn without_a_window_every_refresh_is_sent() {
        let Setup { exchange, sent, .. } = setup(Duration::ZERO).await;
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        let retry = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&retry), ("at-3".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refresh_of_the_stored_pair_just_rotated_is_that_pair() {
        let Setup {
            exchange,
            clock,
            sent,
        } = setup(Duration::ZERO).await;
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        // Fresh from a code: the stored pair is refreshed.
        let rotated = exchange
            .refresh_stored(&Principal::Local, refresh("rt-1"))
            .await;
        assert_eq!(access_token(&rotated), ("at-2".into(), false));
        // Called again within FRESH_PAIR of that rotation: the pair, nothing sent.
        clock.advance(FRESH_PAIR - Duration::from_millis(1));
        let again = exchange
            .refresh_stored(&Principal::Local, refresh("rt-2"))
            .await;
        assert_eq!(access_token(&again), ("at-2".into(), true));
        // A caller that read rt-1 before it waited gets the pair rotated meanwhile.
        clock.advance(Duration::from_secs(10));
        let stale = exchange
            .refresh_stored(&Principal::Local, refresh("rt-1"))
            .await;
        assert_eq!(access_token(&stale), ("at-2".into(), true));
        // After FRESH_PAIR, the stored refresh token is sent.
        let later = exchange
            .refresh_stored(&Principal::Local, refresh("rt-2"))
            .await;
        assert_eq!(access_token(&later), ("at-3".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_revoked_pair_is_forgotten_only_when_the_token_is_its_own() {
        let Setup { exchange, .. } = setup(Duration::from_secs(120)).await;
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        let cid = ClientId::new("cid");
        assert!(
            !exchange
                .forget(&Principal::Local, &cid, &"at-9".into())
                .await
                .unwrap()
        );
        assert!(
            exchange
                .stored_refresh_token(&Principal::Local, &cid)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            exchange
                .forget(&Principal::Local, &cid, &"rt-1".into())
                .await
                .unwrap()
        );
        assert!(
            exchange
                .stored_access_token(&Principal::Local, None)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn one_principals_pair_is_invisible_to_another() {
        let Setup { exchange, sent, .. } = setup(Duration::from_secs(120)).await;
        let (alice, bob) = (Principal::user("iss#alice"), Principal::user("iss#bob"));
        let code = || request(GrantType::AuthorizationCode, "secret", None);
        exchange.exchange(&alice, code()).await;
        let cid = ClientId::new("cid");
        for other in [&bob, &Principal::Local] {
            assert!(
                exchange
                    .stored_refresh_token(other, &cid)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                exchange
                    .stored_access_token(other, None)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                exchange
                    .stored_access_token(other, Some(&cid))
                    .await
                    .unwrap()
                    .is_none()
            );
            // Alice's rotated token, replayed by someone else, is not answered from the store.
            assert!(!exchange.forget(other, &cid, &"rt-1".into()).await.unwrap());
        }
        assert!(
            exchange
                .stored_refresh_token(&alice, &cid)
                .await
                .unwrap()
                .is_some()
        );
        exchange.exchange(&alice, refresh("rt-1")).await;
        let replayed = exchange.exchange(&alice, refresh("rt-1")).await;
        assert!(
            access_token(&replayed).1,
            "the same principal gets the replay"
        );
        let bobs = exchange.exchange(&bob, refresh("rt-1")).await;
        assert!(!access_token(&bobs).1, "another principal's retry is sent");
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    /// A memory store that tells time by its own clock, as the Redis store does.
    #[derive(Debug)]
    struct ClockedStore {
        pairs: MemoryStore,
        clock: Arc<ManualClock>,
    }

    impl TokenStore for ClockedStore {
        fn location(&self) -> String {
            self.pairs.location()
        }
        fn lease<'a>(
            &'a self,
            key: &'a PairKey,
            patience: Duration,
        ) -> crate::store::StoreFuture<'a, crate::store::Lease> {
            self.pairs.lease(key, patience)
        }
        fn load<'a>(
            &'a self,
            key: &'a PairKey,
        ) -> crate::store::StoreFuture<'a, Option<StoredPair>> {
            self.pairs.load(key)
        }
        fn save<'a>(
            &'a self,
            lease: &'a crate::store::Lease,
            pair: StoredPair,
        ) -> crate::store::StoreFuture<'a, ()> {
            self.pairs.save(lease, pair)
        }
        fn remove<'a>(
            &'a self,
            lease: &'a crate::store::Lease,
        ) -> crate::store::StoreFuture<'a, bool> {
            self.pairs.remove(lease)
        }
        fn now_ms(&self) -> crate::store::StoreFuture<'_, Option<u64>> {
            let now = self.clock.now_ms();
            async move { Ok(Some(now)) }.boxed()
        }
        fn ready(&self) -> crate::store::StoreFuture<'_, ()> {
            self.pairs.ready()
        }
        fn only_pair_of<'a>(
            &'a self,
            principal: &'a Principal,
            login_host: &'a str,
        ) -> crate::store::StoreFuture<'a, Option<StoredPair>> {
            self.pairs.only_pair_of(principal, login_host)
        }
    }

    #[tokio::test]
    async fn a_store_with_its_own_clock_decides_the_window_whatever_this_process_clock_says() {
        let (url, sent) = login_host().await;
        let procore = ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(5));
        let process_clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
        let store_clock = Arc::new(ManualClock::at_ms(1_700_000_000_000));
        let settings = StoreSettings {
            store: Arc::new(ClockedStore {
                pairs: MemoryStore::new(),
                clock: store_clock.clone(),
            }),
            reuse_window: Duration::from_secs(120),
        };
        let exchange =
            TokenExchange::new(procore, Some(settings)).with_clock(process_clock.clone());
        exchange
            .exchange(
                &Principal::Local,
                request(GrantType::AuthorizationCode, "secret", None),
            )
            .await;
        exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        // This process's clock jumps ten minutes (another server's skew); the store's moves
        // 100 s: still within the window.
        process_clock.advance(Duration::from_secs(600));
        store_clock.advance(Duration::from_secs(100));
        let retry = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&retry), ("at-2".into(), true));
        assert!(matches!(
            *retry,
            Outcome::Replayed {
                rotated_secs_ago: 100,
                ..
            }
        ));
        // The store's clock past the window: forwarded, whatever this process's says.
        store_clock.advance(Duration::from_secs(21));
        process_clock.advance(Duration::from_secs(1));
        let late = exchange.exchange(&Principal::Local, refresh("rt-1")).await;
        assert_eq!(access_token(&late), ("at-3".into(), false));
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn lineage_carries_only_the_stored_pairs_own_predecessors() {
        let key = PairKey::local("https://login.procore.com", "cid");
        let credentials = credentials_sha256(&"cid".into(), &"secret".into());
        let old = |token: &str, at_ms| Rotation {
            refresh_token_sha256: sha256_hex(token),
            at_ms,
        };
        let stored = StoredPair::new(
            key,
            Secret::new(r#"{"access_token":"at-2","refresh_token":"rt-2"}"#),
            100,
            credentials.clone(),
            vec![old("rt-1", 100_000), old("rt-0", 10_000)],
        )
        .unwrap();
        let window = Duration::from_secs(120);
        let rotations = lineage(
            Some(&stored),
            &credentials,
            &refresh("rt-2"),
            window,
            200_000,
        );
        assert_eq!(
            rotations,
            vec![old("rt-2", 200_000), old("rt-1", 100_000)],
            "rt-0 fell out of the window"
        );
        // A token that is not the stored pair's starts a line of its own.
        let rotations = lineage(
            Some(&stored),
            &credentials,
            &refresh("rt-x"),
            window,
            200_000,
        );
        assert_eq!(rotations, vec![old("rt-x", 200_000)]);
        // Other credentials too; and a grant that consumes no refresh token has no line.
        let other = credentials_sha256(&"cid".into(), &"other".into());
        assert_eq!(
            lineage(Some(&stored), &other, &refresh("rt-2"), window, 200_000).len(),
            1
        );
        let code = request(GrantType::AuthorizationCode, "secret", None);
        assert!(lineage(Some(&stored), &credentials, &code, window, 200_000).is_empty());
    }
}

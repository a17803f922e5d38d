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
    procore::{GrantType, ProcoreClient, TokenRequest, UpstreamError, UpstreamResponse},
    secret::{Secret, SentSecrets},
    store::{
        Rotation, StoreContents, StoreError, StoredPair, TokenStore, credentials_sha256,
        sha256_hex, unix_now_ms, within,
    },
};

/// The token store and how long a consumed refresh token may be answered from it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub store: TokenStore,
    pub reuse_window: Duration,
}

/// How one exchange ended. Shared by every caller of the same flight.
#[derive(Debug)]
pub enum Outcome {
    /// Procore answered (any status). `store_error` is set when a successful answer could
    /// not be written to the store; `sent` holds the secrets of the request as sent (the
    /// refresh token may be the one read under the lock, not the caller's).
    Answered {
        response: UpstreamResponse,
        store_error: Option<String>,
        sent: SentSecrets,
    },
    /// The refresh token was rotated by this store `rotated_secs_ago`; here is the stored
    /// successor pair, exactly as Procore sent it. Nothing was sent.
    Replayed { body: Secret, rotated_secs_ago: u64 },
    /// No complete answer came back.
    Failed(UpstreamError),
    /// The store could not be locked or read, so nothing was sent.
    StoreUnavailable(String),
}

type Flight = Shared<futures::future::BoxFuture<'static, Arc<Outcome>>>;

/// The gate every token request passes through.
pub struct TokenExchange {
    procore: Arc<ProcoreClient>,
    store: Option<StoreSettings>,
    flights: Arc<Mutex<HashMap<String, (u64, Flight)>>>,
    next_flight: std::sync::atomic::AtomicU64,
    /// Every flight's task, so shutdown can wait for answers still on their way.
    tasks: TaskTracker,
}

impl TokenExchange {
    pub fn new(procore: ProcoreClient, store: Option<StoreSettings>) -> Self {
        Self {
            procore: Arc::new(procore),
            store,
            flights: Arc::default(),
            next_flight: std::sync::atomic::AtomicU64::new(0),
            tasks: TaskTracker::new(),
        }
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

    pub fn procore(&self) -> &ProcoreClient {
        &self.procore
    }

    pub fn store(&self) -> Option<&StoreSettings> {
        self.store.as_ref()
    }

    /// The login host's origin: the first half of a store key.
    pub fn login_host(&self) -> String {
        self.procore.base().origin()
    }

    /// The stored pair of `client_id` (or the only pair of this login host when `client_id`
    /// is `None`). `Ok(None)` without a store or without a pair.
    pub fn stored_pair(&self, client_id: Option<&str>) -> Result<Option<StoredPair>, StoreError> {
        let Some(settings) = &self.store else {
            return Ok(None);
        };
        let contents = settings.store.read()?;
        let host = self.login_host();
        Ok(match client_id {
            Some(client_id) => contents.find(&host, client_id).cloned(),
            None => contents.only_pair_of(&host).cloned(),
        })
    }

    /// After a revocation: remove the stored pair of `client_id` if `token` is its access or
    /// refresh token. Whether a pair was removed; `Ok(false)` without a store.
    pub async fn forget(&self, client_id: &str, token: &Secret) -> Result<bool, StoreError> {
        let Some(settings) = &self.store else {
            return Ok(false);
        };
        let lock = settings.store.lock(self.lock_patience()).await?;
        let mut contents = settings.store.read_locked(&lock).await?;
        let host = self.login_host();
        let matches = contents.find(&host, client_id).is_some_and(|pair| {
            pair.token("access_token").as_ref() == Some(token)
                || pair.token("refresh_token").as_ref() == Some(token)
        });
        if matches {
            contents.remove(&host, client_id);
            settings.store.write(&contents, &lock).await?;
        }
        Ok(matches)
    }

    /// Long enough to wait out another process's whole exchange, short enough not to hang.
    fn lock_patience(&self) -> Duration {
        lock_patience(&self.procore)
    }

    /// Exchange `request` for tokens: join an identical flight in progress, or start one.
    pub async fn exchange(&self, request: TokenRequest) -> Arc<Outcome> {
        self.exchange_as(request, Grant::AsGiven).await
    }

    /// Refresh "the stored pair", for a caller that omitted `refresh_token`: `request`
    /// carries the refresh token the store held when the call arrived. Under the lock, if
    /// the stored pair is no longer the one that token belongs to (another caller, maybe in
    /// another process, refreshed it while this one waited), or was rotated less than
    /// [`FRESH_PAIR`] ago, that pair is the answer and nothing is sent: one logical refresh,
    /// one rotation. Otherwise the refresh token read under the lock is the one sent.
    pub async fn refresh_stored(&self, request: TokenRequest) -> Arc<Outcome> {
        self.exchange_as(request, Grant::StoredPair).await
    }

    async fn exchange_as(&self, request: TokenRequest, grant: Grant) -> Arc<Outcome> {
        let mut key = match grant {
            Grant::AsGiven => String::new(),
            Grant::StoredPair => "stored pair\n".to_owned(),
        };
        key.push_str(&String::from_utf8_lossy(&request.to_json()));
        let key = sha256_hex(&key);
        let flight = {
            let Ok(mut flights) = self.flights.lock() else {
                return Arc::new(Outcome::StoreUnavailable(
                    "internal error: the flight table is poisoned".into(),
                ));
            };
            match flights.get(&key) {
                Some((_, flight)) => flight.clone(),
                None => {
                    let id = self
                        .next_flight
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let flight = self.launch(key.clone(), id, request, grant);
                    flights.insert(key, (id, flight.clone()));
                    flight
                }
            }
        };
        flight.await
    }

    /// Spawn the flight's task; it removes itself from the table when it lands.
    fn launch(&self, key: String, id: u64, request: TokenRequest, grant: Grant) -> Flight {
        let procore = self.procore.clone();
        let store = self.store.clone();
        let flights = self.flights.clone();
        let task = self.tasks.spawn(async move {
            let outcome = Arc::new(fly(&procore, store.as_ref(), request, grant).await);
            if let Ok(mut flights) = flights.lock()
                && flights.get(&key).is_some_and(|(current, _)| *current == id)
            {
                flights.remove(&key);
            }
            outcome
        });
        async move {
            task.await.unwrap_or_else(|_| {
                Arc::new(Outcome::StoreUnavailable(
                    "internal error: the token request task failed".into(),
                ))
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

/// One exchange from start to end.
async fn fly(
    procore: &ProcoreClient,
    settings: Option<&StoreSettings>,
    mut request: TokenRequest,
    grant: Grant,
) -> Outcome {
    let Some(settings) = settings else {
        return match procore.request_token(&request).await {
            Ok(response) => Outcome::Answered {
                response,
                store_error: None,
                sent: request.secrets(),
            },
            Err(error) => Outcome::Failed(error),
        };
    };
    let lock = match settings.store.lock(lock_patience(procore)).await {
        Ok(lock) => lock,
        Err(error) => return Outcome::StoreUnavailable(error.to_string()),
    };
    let mut contents = match settings.store.read_locked(&lock).await {
        Ok(contents) => contents,
        Err(error) => return Outcome::StoreUnavailable(error.to_string()),
    };
    let host = procore.base().origin();
    let credentials = credentials_sha256(&request.client_id, &request.client_secret);
    if grant == Grant::StoredPair {
        let Some(pair) = contents.find(&host, &request.client_id) else {
            return Outcome::StoreUnavailable(format!(
                "the pair stored for client {} was removed while this call waited for the \
                 store's lock",
                request.client_id
            ));
        };
        let current = pair.token("refresh_token");
        let now_ms = unix_now_ms();
        // A pair that never rotated (fresh from a code) has only whole seconds; rounding
        // down makes it look older, which errs towards sending.
        let rotation_ms = pair.rotated_from.first().map(|rotation| rotation.at_ms);
        let stored_ms = rotation_ms.unwrap_or(pair.stored_at.saturating_mul(1000));
        let age_ms = now_ms.saturating_sub(stored_ms);
        let rotated_meanwhile = current != request.refresh_token;
        let just_rotated = rotation_ms.is_some() && age_ms < FRESH_PAIR.as_millis() as u64;
        if (rotated_meanwhile || just_rotated) && pair.credentials_sha256 == credentials {
            return Outcome::Replayed {
                body: pair.response.clone(),
                rotated_secs_ago: age_ms / 1000,
            };
        }
        // The stored token, as read under the lock, is the one to send.
        match current {
            Some(current) => request.refresh_token = Some(current),
            None => {
                return Outcome::StoreUnavailable(format!(
                    "the pair stored for client {} holds no refresh token",
                    request.client_id
                ));
            }
        }
    }
    let request = &request;
    if let Some(replayed) = replay(
        &contents,
        &host,
        &credentials,
        request,
        settings,
        unix_now_ms(),
    ) {
        return replayed;
    }
    let response = match procore.request_token(request).await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(error),
    };
    let now_ms = unix_now_ms();
    if !response.is_token_response() {
        return Outcome::Answered {
            response,
            store_error: None,
            sent: request.secrets(),
        };
    }
    let rotated_from = lineage(&contents, &host, &credentials, request, settings, now_ms);
    let body = String::from_utf8_lossy(&response.body).into_owned();
    contents.upsert(StoredPair {
        login_host: host,
        client_id: request.client_id.clone(),
        response: Secret::new(body),
        stored_at: now_ms / 1000,
        credentials_sha256: credentials,
        rotated_from,
    });
    let store_error = settings
        .store
        .write(&contents, &lock)
        .await
        .err()
        .map(|error| error.to_string());
    if let Some(error) = &store_error {
        tracing::error!(%error, "a new token pair could not be stored; it is returned to the caller");
    }
    Outcome::Answered {
        response,
        store_error,
        sent: request.secrets(),
    }
}

/// The stored successor, when `request` refreshes a token this store rotated recently with
/// the same client credentials.
fn replay(
    contents: &StoreContents,
    host: &str,
    credentials: &str,
    request: &TokenRequest,
    settings: &StoreSettings,
    now_ms: u64,
) -> Option<Outcome> {
    let refresh_token = request.refresh_token.as_ref()?;
    if request.grant_type != GrantType::RefreshToken || settings.reuse_window.is_zero() {
        return None;
    }
    let pair = contents.find(host, &request.client_id)?;
    if pair.credentials_sha256 != credentials {
        return None;
    }
    let at_ms = pair.rotated_within(refresh_token, settings.reuse_window, now_ms)?;
    Some(Outcome::Replayed {
        body: pair.response.clone(),
        rotated_secs_ago: now_ms.saturating_sub(at_ms) / 1000,
    })
}

/// The consumed refresh tokens the new pair answers for: the one just used, and, when it was
/// the stored pair's own refresh token, that pair's recent predecessors.
fn lineage(
    contents: &StoreContents,
    host: &str,
    credentials: &str,
    request: &TokenRequest,
    settings: &StoreSettings,
    now_ms: u64,
) -> Vec<Rotation> {
    let (GrantType::RefreshToken, Some(used)) = (request.grant_type, &request.refresh_token) else {
        return Vec::new();
    };
    let mut rotations = vec![Rotation {
        refresh_token_sha256: sha256_hex(used.expose()),
        at_ms: now_ms,
    }];
    if let Some(previous) = contents.find(host, &request.client_id)
        && previous.credentials_sha256 == credentials
        && previous.token("refresh_token").as_ref() == Some(used)
    {
        rotations.extend(
            previous
                .rotated_from
                .iter()
                .filter(|rotation| within(rotation.at_ms, settings.reuse_window, now_ms))
                .cloned(),
        );
    }
    rotations
}

//! The Redis store: every pair in one Redis, shared by any number of server processes on
//! any number of machines (`--token-store redis://…` or `rediss://…`).
//!
//! Keys follow `shared/docs/REPLICAS.md`: `ptm:1:{id}:pair` (hash), `:rot` (consumed refresh
//! tokens, scored by Redis time), `:lock`, `:fence` and `:intent`, one hash tag per pair. A
//! lease is the lock (`<fence>:<owner>` with an expiry, renewed while held, cleared by the
//! commit or else when dropped); the intent names the grant a holder is about to send, so
//! the next holder can wait out one that stalled with the request out (still connected to
//! Redis) rather than spend the grant again; a save is a Lua compare-and-set on the pair's version, timed by Redis's own
//! clock, idempotent so a commit whose reply was lost is retried safely. It never checks lock ownership: a holder
//! whose lease ran out still stores the only copy of the pair Procore gave it. The URL's
//! password never appears in [`TokenStore::location`], an error or a log line.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ::redis::{
    AsyncCommands, Client, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use futures::FutureExt;

use super::{
    Lease, PairKey, Principal, Rotation, STORE_KEY_VAR, Sending, StoreError, StoreFuture,
    StoreKeys, StoredPair, TokenStore, sha256_hex,
};
use crate::secret::Secret;

mod sessions;

pub use sessions::{SharedSessions, SharedSessionsError};

/// The key format this version writes and reads (`ptm:1:meta` holds it).
const FORMAT: u32 = 1;

/// Why the Redis store cannot be opened or used. Messages name the store (never its
/// password) and, for a refused setting, the setting.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    #[error("token store URL is not a redis:// or rediss:// URL with a host: {0}")]
    Url(String),
    #[error("token store {location} cannot be reached: {detail}")]
    Unreachable { location: String, detail: String },
    #[error(
        "token store {location} has {setting} {value}: {why}. Set `{setting} {wanted}` in \
         redis.conf (or CONFIG SET), or start with --store-durability relaxed \
         (PROCORE_STORE_DURABILITY=relaxed) to accept that risk"
    )]
    Durability {
        location: String,
        setting: &'static str,
        value: String,
        wanted: &'static str,
        why: &'static str,
    },
    #[error(
        "token store {location} was written by a newer version (format {found}); this \
         version reads format {FORMAT}"
    )]
    Format { location: String, found: String },
    #[error("token store {location}: a stored pair is unreadable ({detail})")]
    Corrupt { location: String, detail: String },
    #[error(
        "token store {location}: the pair of {key} was changed by another holder \
         (version {found}, this lease read {read})"
    )]
    Superseded {
        location: String,
        key: PairKey,
        found: u64,
        read: u64,
    },
}

/// How strictly the store's durability settings are checked at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Refuse a Redis that can lose an acknowledged pair (no AOF, fsync not on every
    /// write, an eviction policy).
    #[default]
    Strict,
    /// Warn about such a Redis and start.
    Relaxed,
}

/// What the Redis store is opened with.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// How long a lease lasts unless renewed: the upstream timeout and a margin.
    pub lease: Duration,
    pub durability: Durability,
    /// What the token responses are sealed with in Redis (nothing: plain text).
    pub keys: Arc<StoreKeys>,
}

/// A Redis holding the pairs.
#[derive(Clone)]
pub struct RedisStore {
    location: String,
    connection: ConnectionManager,
    /// Tells this opening's locks from every other holder's.
    owner: String,
    lease_ms: u64,
    keys: Arc<StoreKeys>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// What a Redis lease holds: whose lock it is, the version it read, and the renewer, which
/// releases the lock when this is dropped.
struct Held {
    location: String,
    /// The lock's value: `<fence>:<owner>`.
    token: String,
    /// Set once a commit cleared the lock: the renewer then has nothing left to do.
    released: Arc<AtomicBool>,
    /// The pair's version this lease last read or wrote: a save expects it.
    version: AtomicU64,
    _renewer: tokio::sync::oneshot::Sender<()>,
}

/// Whether `location` (as given to `--token-store`) names a Redis rather than a file.
pub fn is_redis_url(location: &str) -> bool {
    location.starts_with("redis://") || location.starts_with("rediss://")
}

/// `url` without its user name and password: `scheme://host:port/db`.
pub fn redacted_location(url: &str) -> Result<String, RedisStoreError> {
    let parsed = url::Url::parse(url).map_err(|_| RedisStoreError::Url(scheme_of(url)))?;
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| RedisStoreError::Url(scheme_of(url)))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(RedisStoreError::Url(scheme_of(url)));
    }
    let port = parsed.port().unwrap_or(6379);
    let db = parsed.path().trim_start_matches('/');
    let db = if db.is_empty() { "0" } else { db };
    Ok(format!("{}://{host}:{port}/{db}", parsed.scheme()))
}

/// The scheme of a URL that did not parse, for an error that must not echo a password.
fn scheme_of(url: &str) -> String {
    url.split_once("://").map_or_else(
        || "(no scheme)".to_owned(),
        |(scheme, _)| format!("{scheme}://…"),
    )
}

impl RedisStore {
    /// Connect and check the Redis at start-up: reachable, durable enough (see
    /// [`Durability`]), and holding no newer key format.
    pub async fn open(url: &Secret, settings: &RedisSettings) -> Result<Self, StoreError> {
        crate::tls::install_crypto_provider();
        let location = redacted_location(url.expose())?;
        let unreachable = |error: RedisError| RedisStoreError::Unreachable {
            location: location.clone(),
            detail: describe(&error),
        };
        let client = Client::open(url.expose()).map_err(unreachable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            Duration::from_secs(10),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| RedisStoreError::Unreachable {
            location: location.clone(),
            detail: "no answer within 10 s".to_owned(),
        })?
        .map_err(unreachable)?;
        let store = Self {
            location,
            connection,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            lease_ms: u64::try_from(settings.lease.as_millis()).unwrap_or(u64::MAX),
            keys: settings.keys.clone(),
        };
        store.check_durability(settings.durability).await?;
        store.check_format().await?;
        store.check_sealed().await?;
        if !store.keys.seals() {
            tracing::warn!(
                token_store = %store.location,
                "token responses, refresh tokens included (they do not expire), are kept in \
                 Redis in plain text: set {STORE_KEY_VAR} (base64 of 32 random bytes, e.g. \
                 from `openssl rand -base64 32`) in the environment to encrypt them, and \
                 restrict who can reach this Redis and read its files"
            );
        }
        Ok(store)
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    fn failed(&self, error: &RedisError) -> StoreError {
        RedisStoreError::Unreachable {
            location: self.location.clone(),
            detail: describe(error),
        }
        .into()
    }

    /// `appendonly yes`, `appendfsync always`, `maxmemory-policy noeviction`; a Redis that
    /// refuses CONFIG (managed services) is warned about and used.
    async fn check_durability(&self, durability: Durability) -> Result<(), StoreError> {
        let rules: [(&'static str, &'static str, &'static str); 3] = [
            (
                "appendonly",
                "yes",
                "without the append-only file a restart loses every pair written since the \
                 last snapshot, and Procore has already retired the refresh tokens they replaced",
            ),
            (
                "appendfsync",
                "always",
                "a pair acknowledged before it reached the disk can be lost in a crash",
            ),
            (
                "maxmemory-policy",
                "noeviction",
                "an eviction policy lets Redis drop a pair to free memory",
            ),
        ];
        for (setting, wanted, why) in rules {
            let answer: Result<Vec<String>, RedisError> = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg(setting)
                .query_async(&mut self.connection())
                .await;
            let value = match answer {
                Ok(values) => values.get(1).cloned().unwrap_or_default(),
                Err(error) if error.is_io_error() || error.is_timeout() => {
                    return Err(self.failed(&error));
                }
                Err(error) => {
                    tracing::warn!(
                        token_store = %self.location,
                        error = %describe(&error),
                        "this Redis refuses CONFIG GET, so its durability settings \
                         (appendonly yes, appendfsync always, maxmemory-policy noeviction) \
                         cannot be checked; make sure they hold"
                    );
                    return Ok(());
                }
            };
            if value == wanted {
                continue;
            }
            let refused = RedisStoreError::Durability {
                location: self.location.clone(),
                setting,
                value,
                wanted,
                why,
            };
            match durability {
                Durability::Strict => return Err(refused.into()),
                Durability::Relaxed => {
                    tracing::warn!("{refused} (started anyway: --store-durability relaxed)")
                }
            }
        }
        Ok(())
    }

    /// Mark the key format, or refuse a newer one.
    async fn check_format(&self) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let found: Result<String, RedisError> = async {
            let _: bool = connection.hset_nx(META_KEY, "format", FORMAT).await?;
            connection.hget(META_KEY, "format").await
        }
        .await;
        let found = found.map_err(|error| self.failed(&error))?;
        if found.parse::<u32>().is_ok_and(|format| format <= FORMAT) {
            Ok(())
        } else {
            Err(RedisStoreError::Format {
                location: self.location.clone(),
                found,
            }
            .into())
        }
    }

    /// Every stored pair must open with the keys given: a wrong or missing key stops the
    /// start, rather than showing an empty store later. Plain pairs are counted (each is
    /// sealed at its next save when a key is set).
    async fn check_sealed(&self) -> Result<(), StoreError> {
        let mut plain = 0usize;
        for key in self.stored_keys().await? {
            if self.read(&Keys::of(&key), &key).await?.is_some()
                && self.key_id_of(&key).await?.is_none()
            {
                plain += 1;
            }
        }
        if plain > 0 && self.keys.seals() {
            tracing::info!(
                token_store = %self.location,
                pairs = plain,
                "stored token responses in plain text are encrypted at their next save"
            );
        }
        Ok(())
    }

    /// The key id stored beside the pair's response (`None`: plain text).
    async fn key_id_of(&self, key: &PairKey) -> Result<Option<String>, StoreError> {
        let kid: Option<String> = self
            .connection()
            .hget(&Keys::of(key).pair, "kid")
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(kid.filter(|kid| !kid.is_empty()))
    }

    /// The key of every stored pair (with a response), as its hash records it.
    async fn stored_keys(&self) -> Result<Vec<PairKey>, StoreError> {
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut found: Vec<PairKey> = Vec::new();
        loop {
            let (next, names): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("ptm:1:{*}:pair")
                .arg("COUNT")
                .arg(200)
                .query_async(&mut connection)
                .await
                .map_err(|error| self.failed(&error))?;
            for name in names {
                let fields: Vec<Option<String>> = ::redis::cmd("HMGET")
                    .arg(&name)
                    .arg(&["principal", "host", "cid", "resp"])
                    .query_async(&mut connection)
                    .await
                    .map_err(|error| self.failed(&error))?;
                if let [Some(principal), Some(host), Some(client_id), Some(_)] = fields.as_slice() {
                    found.push(PairKey {
                        principal: parse_principal(principal),
                        login_host: host.clone(),
                        client_id: client_id.clone(),
                    });
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    fn check<'a>(&self, lease: &'a Lease) -> Result<&'a Held, StoreError> {
        match lease.held::<Held>() {
            Some(held) if held.location == self.location => Ok(held),
            _ => Err(StoreError::LeaseLost {
                location: self.location.clone(),
                key: lease.key().clone(),
            }),
        }
    }

    /// One try at the lock: the lease, or how long the holder's lock still runs (`None`:
    /// unknown, or a lock without expiry that someone set by hand).
    async fn try_lock(
        &self,
        keys: &Keys,
        key: &PairKey,
    ) -> Result<Result<Lease, Option<u64>>, StoreError> {
        let answer: Vec<String> = LOCK
            .key(&keys.lock)
            .key(&keys.fence)
            .key(&keys.pair)
            .arg(&self.owner)
            .arg(self.lease_ms)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|error| self.failed(&error))?;
        match answer.as_slice() {
            [taken, token, version] if taken == "1" => {
                let version = version.parse().unwrap_or(0);
                Ok(Ok(self.leased(keys, key, token.clone(), version)))
            }
            [_, pttl] => Ok(Err(pttl.parse::<u64>().ok().filter(|ms| *ms > 0))),
            _ => Err(self.corrupt("the lock script answered in an unexpected shape")),
        }
    }

    /// The lease on `key` whose lock is `token`, renewed in the background until dropped.
    fn leased(&self, keys: &Keys, key: &PairKey, token: String, version: u64) -> Lease {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(AtomicBool::new(false));
        let renewer = Renewer {
            connection: self.connection(),
            lock: keys.lock.clone(),
            intent: keys.intent.clone(),
            token: token.clone(),
            lease_ms: self.lease_ms,
            released: released.clone(),
        };
        tokio::spawn(renewer.run(stopped));
        Lease::new(
            key.clone(),
            Held {
                location: self.location.clone(),
                token,
                released,
                version: AtomicU64::new(version),
                _renewer: stop,
            },
        )
    }

    /// This process's Redis connection id (`CLIENT ID`), written in its intents so another
    /// holder can tell a stalled process (still connected) from a dead one; empty where
    /// `CLIENT` is refused.
    async fn client_id(&self) -> String {
        let id: Result<i64, RedisError> = ::redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut self.connection())
            .await;
        id.map(|id| id.to_string()).unwrap_or_default()
    }

    /// Whether the connection `id` is still open (`CLIENT LIST ID`); `false` when unknown.
    async fn client_connected(&self, id: &str) -> bool {
        if id.is_empty() {
            return false;
        }
        let listed: Result<String, RedisError> = ::redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query_async(&mut self.connection())
            .await;
        listed.is_ok_and(|line| !line.trim().is_empty())
    }

    fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        RedisStoreError::Corrupt {
            location: self.location.clone(),
            detail: detail.into(),
        }
        .into()
    }

    /// The pair of `keys`, read atomically with its rotations.
    async fn read(&self, keys: &Keys, key: &PairKey) -> Result<Option<StoredPair>, StoreError> {
        let (fields, rotations): (
            std::collections::HashMap<String, String>,
            Vec<(String, f64)>,
        ) = ::redis::pipe()
            .atomic()
            .hgetall(&keys.pair)
            .zrevrange_withscores(&keys.rot, 0, -1)
            .query_async(&mut self.connection())
            .await
            .map_err(|error| self.failed(&error))?;
        let Some(response) = fields.get("resp") else {
            return Ok(None);
        };
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let response = self
            .keys
            .open(key, fields.get("kid").map(String::as_str), response)
            .map_err(|source| StoreError::AtRest {
                location: self.location.clone(),
                source,
            })?;
        let stored_ms: u64 = field("stored_ms").parse().unwrap_or(0);
        let rotated_from = rotations
            .into_iter()
            .map(|(hash, at_ms)| Rotation {
                refresh_token_sha256: hash,
                at_ms: score_ms(at_ms),
            })
            .collect();
        StoredPair::new(
            key.clone(),
            response,
            stored_ms / 1000,
            field("cred"),
            rotated_from,
        )
        .map(Some)
        .ok_or_else(|| StoreError::NotAnObject {
            location: self.location.clone(),
            key: key.clone(),
        })
    }

    /// Run the commit script for `pair` expecting `version`, retrying through a lost reply
    /// or an outage (the script is idempotent) for as long as a lease lasts.
    async fn commit(
        &self,
        keys: &Keys,
        pair: &StoredPair,
        version: u64,
        lock_token: &str,
    ) -> Result<u64, StoreError> {
        let refresh_hash = pair
            .refresh_token()
            .map(|token| sha256_hex(token.expose()))
            .unwrap_or_default();
        let sealed = self
            .keys
            .seal(&pair.key, pair.response())
            .map_err(|source| StoreError::AtRest {
                location: self.location.clone(),
                source,
            })?;
        let mut script = COMMIT.prepare_invoke();
        script
            .key(&keys.pair)
            .key(&keys.rot)
            .key(&keys.lock)
            .key(&keys.intent)
            .arg(version)
            .arg(&refresh_hash)
            .arg(&sealed.value)
            .arg(&pair.credentials_sha256)
            .arg(principal_field(&pair.key.principal))
            .arg(&pair.key.login_host)
            .arg(&pair.key.client_id)
            .arg(lock_token)
            .arg(sealed.key_id.as_deref().unwrap_or(""))
            .arg(pair.rotated_from.len());
        for rotation in &pair.rotated_from {
            script.arg(&rotation.refresh_token_sha256);
        }
        let patience = Duration::from_millis(self.lease_ms);
        let started = Instant::now();
        let mut nap = Duration::from_millis(50);
        let answer: Vec<String> = loop {
            match script.invoke_async(&mut self.connection()).await {
                Ok(answer) => break answer,
                Err(error)
                    if (error.is_io_error() || error.is_timeout())
                        && started.elapsed() + nap < patience =>
                {
                    tracing::warn!(
                        token_store = %self.location,
                        error = %describe(&error),
                        "a pair could not be committed yet; retrying"
                    );
                    tokio::time::sleep(nap).await;
                    nap = (nap * 2).min(Duration::from_millis(1000));
                }
                Err(error) => return Err(self.failed(&error)),
            }
        };
        match answer.as_slice() {
            [outcome, stored] if outcome == "committed" || outcome == "stored" => {
                Ok(stored.parse().unwrap_or(version))
            }
            [outcome, found] if outcome == "superseded" => Err(RedisStoreError::Superseded {
                location: self.location.clone(),
                key: pair.key.clone(),
                found: found.parse().unwrap_or(0),
                read: version,
            }
            .into()),
            _ => Err(self.corrupt("the commit script answered in an unexpected shape")),
        }
    }
}

/// Keeps a lease's lock alive until told to stop (or dropped), then releases it if still
/// its own. A process that stops (killed, stalled) stops renewing, and the lock runs out.
struct Renewer {
    connection: ConnectionManager,
    lock: String,
    intent: String,
    token: String,
    lease_ms: u64,
    released: Arc<AtomicBool>,
}

impl Renewer {
    async fn run(mut self, mut stopped: tokio::sync::oneshot::Receiver<()>) {
        let every = Duration::from_millis((self.lease_ms / 3).max(10));
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(every) => {
                    if self.released.load(Ordering::SeqCst) {
                        return;
                    }
                    let renewed: Result<i64, RedisError> = RENEW
                        .key(&self.lock)
                        .arg(&self.token)
                        .arg(self.lease_ms)
                        .invoke_async(&mut self.connection)
                        .await;
                    if let Ok(0) = renewed && !self.released.load(Ordering::SeqCst) {
                        tracing::warn!("a token store lease ran out while held; a commit still stores its pair unless a newer one exists");
                        return;
                    }
                }
            }
        }
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let released: Result<i64, RedisError> = RELEASE
            .key(&self.lock)
            .key(&self.intent)
            .arg(&self.token)
            .invoke_async(&mut self.connection)
            .await;
        if let Err(error) = released {
            tracing::debug!(error = %describe(&error), "a token store lock was not released; it runs out by itself");
        }
    }
}

impl TokenStore for RedisStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn lease<'a>(&'a self, key: &'a PairKey, patience: Duration) -> StoreFuture<'a, Lease> {
        async move {
            let keys = Keys::of(key);
            let started = Instant::now();
            let mut nap = Duration::from_millis(25);
            loop {
                let holder_ms = match self.try_lock(&keys, key).await? {
                    Ok(lease) => return Ok(lease),
                    Err(holder_ms) => holder_ms,
                };
                let waited = started.elapsed();
                if waited >= patience {
                    return Err(StoreError::LockTimeout {
                        location: self.location.clone(),
                        waited,
                    });
                }
                // Never longer than the holder's lock still runs, nor than patience lasts.
                let holder = holder_ms.map_or(nap, Duration::from_millis);
                let left = patience.saturating_sub(waited);
                tokio::time::sleep(nap.min(holder).min(left)).await;
                nap = (nap * 2).min(Duration::from_millis(250));
            }
        }
        .boxed()
    }

    fn load<'a>(&'a self, key: &'a PairKey) -> StoreFuture<'a, Option<StoredPair>> {
        async move { self.read(&Keys::of(key), key).await }.boxed()
    }

    fn save<'a>(&'a self, lease: &'a Lease, pair: StoredPair) -> StoreFuture<'a, ()> {
        async move {
            let held = self.check(lease)?;
            if &pair.key != lease.key() {
                return Err(StoreError::LeaseLost {
                    location: self.location.clone(),
                    key: pair.key,
                });
            }
            let version = held.version.load(Ordering::SeqCst);
            let stored = self
                .commit(&Keys::of(&pair.key), &pair, version, &held.token)
                .await?;
            held.version.store(stored, Ordering::SeqCst);
            held.released.store(true, Ordering::SeqCst);
            Ok(())
        }
        .boxed()
    }

    fn remove<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        async move {
            let held = self.check(lease)?;
            let keys = Keys::of(lease.key());
            let version = held.version.load(Ordering::SeqCst);
            let answer: Vec<String> = REMOVE
                .key(&keys.pair)
                .key(&keys.rot)
                .key(&keys.lock)
                .arg(version)
                .arg(&held.token)
                .invoke_async(&mut self.connection())
                .await
                .map_err(|error| self.failed(&error))?;
            match answer.as_slice() {
                [outcome, now] if outcome == "removed" || outcome == "absent" => {
                    held.version
                        .store(now.parse().unwrap_or(version), Ordering::SeqCst);
                    held.released.store(true, Ordering::SeqCst);
                    Ok(outcome == "removed")
                }
                [_, found] => Err(RedisStoreError::Superseded {
                    location: self.location.clone(),
                    key: lease.key().clone(),
                    found: found.parse().unwrap_or(0),
                    read: version,
                }
                .into()),
                _ => Err(self.corrupt("the remove script answered in an unexpected shape")),
            }
        }
        .boxed()
    }

    fn before_send<'a>(
        &'a self,
        lease: &'a Lease,
        grant_sha256: &'a str,
    ) -> StoreFuture<'a, Sending> {
        async move {
            let held = self.check(lease)?;
            let keys = Keys::of(lease.key());
            let client = self.client_id().await;
            let (mut waited, mut force) = (false, false);
            loop {
                let answer: Vec<String> = INTENT
                    .key(&keys.lock)
                    .key(&keys.intent)
                    .key(&keys.pair)
                    .arg(&held.token)
                    .arg(self.lease_ms)
                    .arg(grant_sha256)
                    .arg(&client)
                    .arg(held.version.load(Ordering::SeqCst))
                    .arg(if force { "1" } else { "0" })
                    .invoke_async(&mut self.connection())
                    .await
                    .map_err(|error| self.failed(&error))?;
                match answer.as_slice() {
                    [go, _] if go == "go" => return Ok(Sending::Proceed { contested: waited }),
                    [changed] if changed == "changed" => return Ok(Sending::Settled),
                    [lost] if lost == "lost" => {
                        return Err(StoreError::LeaseLost {
                            location: self.location.clone(),
                            key: lease.key().clone(),
                        });
                    }
                    [wait, at_ms, other, now_ms] if wait == "wait" => {
                        let (at_ms, now_ms) = (number(at_ms), number(now_ms));
                        // A holder still connected to Redis is stalled, not dead: it may yet
                        // read Procore's answer and store the pair, so it gets one lease more.
                        let alive = *other != client && self.client_connected(other).await;
                        let deadline_ms = at_ms + self.lease_ms * if alive { 2 } else { 1 };
                        if now_ms >= deadline_ms {
                            force = true;
                            continue;
                        }
                        if !waited {
                            tracing::warn!(
                                token_store = %self.location,
                                sent_ms_ago = now_ms.saturating_sub(at_ms),
                                holder_connected = alive,
                                waiting_ms = deadline_ms - now_ms,
                                "waiting for another server's unfinished refresh of this pair: \
                                 it sent the same grant and has not stored an answer yet"
                            );
                        }
                        waited = true;
                        let nap = Duration::from_millis((deadline_ms - now_ms).min(100));
                        tokio::time::sleep(nap).await;
                    }
                    _ => {
                        return Err(
                            self.corrupt("the intent script answered in an unexpected shape")
                        );
                    }
                }
            }
        }
        .boxed()
    }

    fn await_change<'a>(&'a self, lease: &'a Lease, patience: Duration) -> StoreFuture<'a, bool> {
        async move {
            let held = self.check(lease)?;
            let keys = Keys::of(lease.key());
            let read = held.version.load(Ordering::SeqCst);
            let started = Instant::now();
            loop {
                let version: Option<String> = self
                    .connection()
                    .hget(&keys.pair, "ver")
                    .await
                    .map_err(|error| self.failed(&error))?;
                if version.as_deref().map_or(0, number) > read {
                    return Ok(true);
                }
                if started.elapsed() >= patience {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        .boxed()
    }

    fn now_ms(&self) -> StoreFuture<'_, Option<u64>> {
        async move {
            let (secs, micros): (u64, u64) = ::redis::cmd("TIME")
                .query_async(&mut self.connection())
                .await
                .map_err(|error| self.failed(&error))?;
            Ok(Some(
                secs.saturating_mul(1000).saturating_add(micros / 1000),
            ))
        }
        .boxed()
    }

    fn shared_sessions(&self, idle: Duration) -> Option<SharedSessions> {
        Some(SharedSessions::new(
            self.location.clone(),
            self.connection(),
            idle,
        ))
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        async move {
            let answer: Result<String, RedisError> = ::redis::cmd("PING")
                .query_async(&mut self.connection())
                .await;
            answer.map(drop).map_err(|error| self.failed(&error))
        }
        .boxed()
    }

    fn only_pair_of<'a>(
        &'a self,
        principal: &'a Principal,
        login_host: &'a str,
    ) -> StoreFuture<'a, Option<StoredPair>> {
        async move {
            let wanted = (principal, login_host);
            let found: Vec<PairKey> = self
                .stored_keys()
                .await?
                .into_iter()
                .filter(|key| (&key.principal, key.login_host.as_str()) == wanted)
                .collect();
            match found.as_slice() {
                [only] => self.load(only).await,
                _ => Ok(None),
            }
        }
        .boxed()
    }
}

/// The keys of one pair, all with one hash tag.
struct Keys {
    pair: String,
    rot: String,
    lock: String,
    fence: String,
    intent: String,
}

const META_KEY: &str = "ptm:1:meta";

impl Keys {
    fn of(key: &PairKey) -> Self {
        let id = pair_id(key);
        Self {
            pair: format!("ptm:1:{{{id}}}:pair"),
            rot: format!("ptm:1:{{{id}}}:rot"),
            lock: format!("ptm:1:{{{id}}}:lock"),
            fence: format!("ptm:1:{{{id}}}:fence"),
            intent: format!("ptm:1:{{{id}}}:intent"),
        }
    }
}

/// A pair's hash tag: the first 32 hex digits of SHA-256(login host, client id, principal).
fn pair_id(key: &PairKey) -> String {
    let mut id = sha256_hex(&format!(
        "{}\n{}\n{}",
        key.login_host,
        key.client_id,
        principal_field(&key.principal)
    ));
    id.truncate(32);
    id
}

/// The principal as stored: `-` for the local one, `user:<subject>` for a user.
fn principal_field(principal: &Principal) -> String {
    match principal {
        Principal::Local => "-".to_owned(),
        Principal::User(subject) => format!("user:{subject}"),
    }
}

fn parse_principal(field: &str) -> Principal {
    field
        .strip_prefix("user:")
        .map_or(Principal::Local, Principal::user)
}

/// A number a script answered (Unix ms, a version); 0 for anything else.
fn number(text: &str) -> u64 {
    text.parse().unwrap_or(0)
}

/// A sorted-set score (Unix ms, exact in an f64) as an integer.
fn score_ms(score: f64) -> u64 {
    if score.is_finite() && score >= 0.0 {
        // Scores are whole milliseconds, exact in an f64 far beyond any date.
        score as u64
    } else {
        0
    }
}

/// A Redis error in words, without the URL it was reached by.
fn describe(error: &RedisError) -> String {
    error.to_string()
}

/// Take the lock if free: `[1, token, version]`; else `[0, its PTTL]`.
static LOCK: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'0', tostring(redis.call('PTTL', KEYS[1]))}
end
local fence = redis.call('INCR', KEYS[2])
local token = tostring(fence) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
local version = redis.call('HGET', KEYS[3], 'ver') or '0'
return {'1', token, version}
",
    )
});

/// Extend the lock if still ours: 1, or 0.
static RENEW: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Delete the lock (KEYS[1]) and the intent (KEYS[2]) where still ours: a holder that
/// finished knows what became of its grant, so nobody need wait for it.
static RELEASE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[2], 'holder') == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Just before a grant is sent. KEYS lock, intent, pair; ARGV the lock's value, the lease
/// (ms), the grant's hash, this connection's client id, the version the lease read, and
/// `force` (1: write the intent whatever another holder left). Answers `lost` (the lock is
/// not ours: send nothing), `changed` (a newer pair was stored), `wait` with another
/// holder's intent for the same grant (its time, its client id, Redis's time now), or `go`
/// once the lease is renewed and this holder's intent written (Redis's time), kept for three
/// leases.
static INTENT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'lost'}
end
if tonumber(redis.call('HGET', KEYS[3], 'ver') or '0') > tonumber(ARGV[5]) then
  return {'changed'}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local other = redis.call('HMGET', KEYS[2], 'holder', 'grant', 'at_ms', 'client')
if ARGV[6] ~= '1' and other[1] and other[1] ~= ARGV[1] and other[2] == ARGV[3] then
  return {'wait', other[3] or '0', other[4] or '', string.format('%.0f', now)}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'holder', ARGV[1], 'grant', ARGV[3],
  'at_ms', string.format('%.0f', now), 'client', ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 3)
return {'go', string.format('%.0f', now)}
",
    )
});

/// The commit: KEYS pair, rot, lock, intent; ARGV version read, refresh-token hash, response,
/// credentials hash, principal, login host, client id, the lock's value, the response's key
/// id (empty: plain text), the number of rotations and their hashes (newest first). `stored` when the pair already holds this
/// refresh token (a retried commit), `superseded` when a newer version exists, else written
/// with version + 1. A rotation already in `rot` keeps its time; a new one is timed now, by
/// Redis's clock. The lock is cleared if still this holder's, in the same step, so a crash
/// right after a commit leaves no lock to wait out, and so is the intent when it is this
/// holder's or names the grant just consumed. Lock ownership decides nothing else.
static COMMIT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local version = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local function release()
  if redis.call('GET', KEYS[3]) == ARGV[8] then
    redis.call('DEL', KEYS[3])
  end
  local holder = redis.call('HGET', KEYS[4], 'holder')
  if holder == ARGV[8] or (ARGV[2] ~= '' and holder
      and redis.call('HGET', KEYS[4], 'grant') == ARGV[11]) then
    redis.call('DEL', KEYS[4])
  end
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'resp')
   and redis.call('HGET', KEYS[1], 'rt') == ARGV[2] then
  release()
  return {'stored', string.format('%d', version)}
end
if version > tonumber(ARGV[1]) then
  return {'superseded', string.format('%d', version)}
end
local count = tonumber(ARGV[10])
local scores = {}
for i = 1, count do
  scores[i] = redis.call('ZSCORE', KEYS[2], ARGV[10 + i]) or string.format('%.0f', now)
end
redis.call('DEL', KEYS[2])
for i = 1, count do
  redis.call('ZADD', KEYS[2], scores[i], ARGV[10 + i])
end
redis.call('HSET', KEYS[1], 'ver', string.format('%d', version + 1), 'resp', ARGV[3],
  'rt', ARGV[2], 'cred', ARGV[4], 'principal', ARGV[5], 'host', ARGV[6], 'cid', ARGV[7],
  'stored_ms', string.format('%.0f', now), 'kid', ARGV[9])
release()
return {'committed', string.format('%d', version + 1)}
",
    )
});

/// Forget the pair (its version stays, so versions never repeat): `removed` or `absent`
/// with the version now, clearing the lock if still this holder's (ARGV[2]), or
/// `superseded` with the newer version found.
static REMOVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local version = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if version > tonumber(ARGV[1]) then
  return {'superseded', string.format('%d', version)}
end
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
if not redis.call('HGET', KEYS[1], 'resp') then
  return {'absent', string.format('%d', version)}
end
redis.call('HDEL', KEYS[1], 'resp', 'kid', 'rt', 'cred', 'principal', 'host', 'cid',
  'stored_ms')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'ver', string.format('%d', version + 1))
return {'removed', string.format('%d', version + 1)}
",
    )
});

/// The tests' real redis-server, shared with the front-door tests (which use more of it).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

#[cfg(test)]
mod tests {
    use super::{redis_server::RedisServer, *};
    use crate::store::{MemoryStore, tests::pair};

    fn settings(lease_ms: u64) -> RedisSettings {
        RedisSettings {
            lease: Duration::from_millis(lease_ms),
            durability: Durability::Strict,
            keys: Arc::new(StoreKeys::plain()),
        }
    }

    async fn open(redis: &RedisServer, lease_ms: u64) -> RedisStore {
        RedisStore::open(&Secret::new(redis.url()), &settings(lease_ms))
            .await
            .unwrap()
    }

    fn now_ms() -> u64 {
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    }

    #[test]
    fn the_location_never_carries_the_password() {
        assert_eq!(
            redacted_location("redis://user:hunter2@cache.internal:6380/3").unwrap(),
            "redis://cache.internal:6380/3"
        );
        assert_eq!(
            redacted_location("rediss://:hunter2@cache.internal").unwrap(),
            "rediss://cache.internal:6379/0"
        );
        let error = redacted_location("redis://:hunter2@")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(is_redis_url("rediss://h") && !is_redis_url("/var/tokens.json"));
    }

    #[tokio::test]
    async fn a_lease_excludes_another_opening_until_dropped_and_outlives_its_expiry() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let (one, two) = (open(&redis, 300).await, open(&redis, 300).await);
        let a = PairKey::local("https://login.procore.com", "a");
        let b = PairKey::local("https://login.procore.com", "b");
        let held = one.lease(&a, Duration::from_secs(1)).await.unwrap();
        // Renewed while held: well past its 300 ms, the other opening still waits.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let waiting = two.lease(&a, Duration::from_millis(100)).await;
        assert!(matches!(waiting, Err(StoreError::LockTimeout { .. })));
        assert!(
            two.lease(&b, Duration::from_millis(100)).await.is_ok(),
            "another pair is not held up"
        );
        drop(held);
        assert!(two.lease(&a, Duration::from_secs(1)).await.is_ok());
    }

    /// A holder that took the lock on `key` for `lease_ms`, wrote its intent to send `grant`
    /// from the Redis connection `client`, and then went silent (died or stalled).
    async fn silent_holder(store: &RedisStore, key: &PairKey, grant: &str, client: &str) {
        let keys = Keys::of(key);
        let taken: Vec<String> = LOCK
            .key(&keys.lock)
            .key(&keys.fence)
            .key(&keys.pair)
            .arg("silent-holder")
            .arg(store.lease_ms)
            .invoke_async(&mut store.connection())
            .await
            .unwrap();
        let written: Vec<String> = INTENT
            .key(&keys.lock)
            .key(&keys.intent)
            .key(&keys.pair)
            .arg(&taken[1])
            .arg(store.lease_ms)
            .arg(grant)
            .arg(client)
            .arg(0)
            .arg("0")
            .invoke_async(&mut store.connection())
            .await
            .unwrap();
        assert_eq!(written[0], "go");
    }

    #[tokio::test]
    async fn an_intent_is_waited_out_a_lease_more_only_while_its_holder_is_connected() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let (store, stalled) = (open(&redis, 400).await, open(&redis, 400).await);
        let key = PairKey::local("https://login.procore.com", "a");
        let other = PairKey::local("https://login.procore.com", "b");

        // Died: its connection is gone, so once its lock ran out there is nothing to wait for.
        silent_holder(&store, &other, "grant-b", "999999999").await;
        let lease = store.lease(&other, Duration::from_secs(3)).await.unwrap();
        let started = Instant::now();
        let sending = store.before_send(&lease, "grant-b").await.unwrap();
        assert_eq!(sending, Sending::Proceed { contested: false });
        assert!(started.elapsed() < Duration::from_millis(300));
        drop(lease);

        // Stalled: still connected. The next holder waits, and answers from the store once
        // the stalled holder's pair lands.
        silent_holder(&store, &key, "grant-a", &stalled.client_id().await).await;
        let lease = store.lease(&key, Duration::from_secs(3)).await.unwrap();
        let started = Instant::now();
        let landing = {
            let mut connection = stalled.connection();
            let pair = Keys::of(&key).pair;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let _: () = connection.hset(pair, "ver", 1).await.unwrap();
            })
        };
        assert_eq!(
            store.before_send(&lease, "grant-a").await.unwrap(),
            Sending::Settled
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        landing.await.unwrap();
        drop(lease);

        // Stalled and never heard from again: a lease more, then send, knowing it contested.
        let key = PairKey::local("https://login.procore.com", "c");
        silent_holder(&store, &key, "grant-c", &stalled.client_id().await).await;
        let lease = store.lease(&key, Duration::from_secs(3)).await.unwrap();
        let started = Instant::now();
        assert_eq!(
            store.before_send(&lease, "grant-c").await.unwrap(),
            Sending::Proceed { contested: true }
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );
        // Another grant of the same pair is not held up by that intent.
        assert_eq!(
            store.before_send(&lease, "grant-other").await.unwrap(),
            Sending::Proceed { contested: false }
        );
        assert!(
            !store
                .await_change(&lease, Duration::from_millis(200))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_lock_whose_holder_died_runs_out_and_the_next_holder_proceeds() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let store = open(&redis, 300).await;
        let key = PairKey::local("https://login.procore.com", "a");
        // A holder that took the lock and died: nobody renews or releases it.
        let keys = Keys::of(&key);
        let _: Vec<String> = LOCK
            .key(&keys.lock)
            .key(&keys.fence)
            .key(&keys.pair)
            .arg("dead-holder")
            .arg(400)
            .invoke_async(&mut store.connection())
            .await
            .unwrap();
        let early = store.lease(&key, Duration::from_millis(100)).await;
        assert!(matches!(early, Err(StoreError::LockTimeout { .. })));
        let started = Instant::now();
        let lease = store.lease(&key, Duration::from_secs(3)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "after the lease, not the patience"
        );
        drop(lease);
    }

    #[tokio::test]
    async fn pairs_round_trip_and_a_retried_commit_is_already_stored_not_written_twice() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let store = open(&redis, 5000).await;
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        let key = stored.key.clone();
        assert!(store.load(&key).await.unwrap().is_none());
        let lease = store.lease(&key, Duration::from_secs(1)).await.unwrap();
        let before = now_ms();
        let redis_now = store.now_ms().await.unwrap().unwrap();
        assert!(redis_now.abs_diff(before) < 1000, "Redis's TIME, in ms");
        store.save(&lease, stored.clone()).await.unwrap();
        // The commit cleared the lock: nobody waits for this lease's drop.
        let other_opening = open(&redis, 5000).await;
        assert!(
            other_opening
                .lease(&key, Duration::from_millis(100))
                .await
                .is_ok()
        );
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.response(), stored.response());
        assert_eq!(loaded.credentials_sha256, stored.credentials_sha256);
        // The rotation is timed when the store learned of it, by Redis's clock.
        let rotation = loaded.rotated_from.first().unwrap();
        assert_eq!(rotation.refresh_token_sha256, sha256_hex("old"));
        assert!(rotation.at_ms >= before - 1000 && rotation.at_ms <= now_ms() + 1000);

        // The commit's reply was lost: the same commit again, at the version read before.
        let keys = Keys::of(&key);
        assert_eq!(
            store.commit(&keys, &stored, 0, "").await.unwrap(),
            1,
            "already stored"
        );
        // Another pair at that stale version: a newer one exists.
        let other = pair("a", r#"{"access_token":"x2","refresh_token":"y2"}"#);
        assert!(matches!(
            store.commit(&keys, &other, 0, "").await,
            Err(StoreError::Redis(RedisStoreError::Superseded {
                found: 1,
                read: 0,
                ..
            }))
        ));
        // Under the lease, which knows version 1, the next pair is written, keeping the
        // remembered rotation's time.
        store.save(&lease, other).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.refresh_token().unwrap().expose(), "y2");
        assert_eq!(loaded.rotated_from.first().unwrap().at_ms, rotation.at_ms);

        // A lease of another store, or of another key, changes nothing.
        let foreign = MemoryStore::new()
            .lease(&key, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(matches!(
            store.remove(&foreign).await,
            Err(StoreError::LeaseLost { .. })
        ));
        let b = pair("b", r#"{"access_token":"z"}"#);
        assert!(
            store.save(&lease, b.clone()).await.is_err(),
            "a lease is for its key"
        );

        let host = "https://login.procore.com";
        let only = store.only_pair_of(&Principal::local(), host).await.unwrap();
        assert_eq!(only.unwrap().key, key);
        let lease_b = store.lease(&b.key, Duration::from_secs(1)).await.unwrap();
        store.save(&lease_b, b).await.unwrap();
        let only = store.only_pair_of(&Principal::local(), host).await.unwrap();
        assert!(only.is_none(), "two pairs: none is the only one");

        assert!(store.remove(&lease).await.unwrap());
        assert!(!store.remove(&lease).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
        // Versions never repeat: a pair saved after the removal is version 4.
        store.save(&lease, stored).await.unwrap();
        let version: String = store.connection().hget(&keys.pair, "ver").await.unwrap();
        assert_eq!(version, "4");
    }

    #[tokio::test]
    async fn a_users_pair_is_not_the_local_ones() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let store = open(&redis, 5000).await;
        let mut theirs = pair("a", r#"{"access_token":"u"}"#);
        theirs.key.principal = Principal::user("-");
        let lease = store
            .lease(&theirs.key, Duration::from_secs(1))
            .await
            .unwrap();
        store.save(&lease, theirs.clone()).await.unwrap();
        let loaded = store.load(&theirs.key).await.unwrap().unwrap();
        assert_eq!(loaded.key.principal, Principal::user("-"));
        let local = PairKey::local("https://login.procore.com", "a");
        assert!(store.load(&local).await.unwrap().is_none());
        let host = "https://login.procore.com";
        assert!(
            store
                .only_pair_of(&Principal::local(), host)
                .await
                .unwrap()
                .is_none()
        );
        let only = store
            .only_pair_of(&Principal::user("-"), host)
            .await
            .unwrap();
        assert_eq!(only.unwrap().key, theirs.key);
    }

    #[tokio::test]
    async fn a_newer_key_format_is_refused_at_open() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let _: () = ::redis::cmd("HSET")
            .arg(META_KEY)
            .arg("format")
            .arg(2)
            .query(&mut redis.connection())
            .unwrap();
        let error = RedisStore::open(&Secret::new(redis.url()), &settings(5000))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("newer version") && error.contains(&redis.url()),
            "{error}"
        );
    }

    fn sealing(byte: u8) -> Arc<StoreKeys> {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let env = move |var: &str| (var == STORE_KEY_VAR).then(|| encoded.clone());
        Arc::new(StoreKeys::from_env(&env).unwrap())
    }

    #[tokio::test]
    async fn a_sealed_response_moved_to_another_pair_or_under_another_key_stops_the_start() {
        let Some(redis) = RedisServer::start(&[]) else {
            return;
        };
        let with_key = |keys: Arc<StoreKeys>| RedisSettings {
            keys,
            ..settings(5000)
        };
        let store = RedisStore::open(&Secret::new(redis.url()), &with_key(sealing(1)))
            .await
            .unwrap();
        let (a, b) = (
            pair("a", r#"{"access_token":"at-a","refresh_token":"rt-a"}"#),
            pair("b", r#"{"access_token":"at-b","refresh_token":"rt-b"}"#),
        );
        for stored in [&a, &b] {
            let lease = store
                .lease(&stored.key, Duration::from_secs(1))
                .await
                .unwrap();
            store.save(&lease, stored.clone()).await.unwrap();
        }
        let (keys_a, keys_b) = (Keys::of(&a.key), Keys::of(&b.key));
        let sealed: String = store.connection().hget(&keys_a.pair, "resp").await.unwrap();
        assert!(!sealed.contains("rt-a"), "{sealed}");
        assert_eq!(
            store.load(&a.key).await.unwrap().unwrap().response(),
            a.response()
        );

        // Another key: refused at open, naming the variable and the key id found.
        let error = RedisStore::open(&Secret::new(redis.url()), &with_key(sealing(2)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(STORE_KEY_VAR) && error.contains(sealing(1).current_id().unwrap()),
            "{error}"
        );

        // a's sealed response copied onto b: b no longer opens, at load or at open.
        let _: () = store
            .connection()
            .hset(&keys_b.pair, "resp", &sealed)
            .await
            .unwrap();
        assert!(matches!(
            store.load(&b.key).await,
            Err(StoreError::AtRest {
                source: crate::store::AtRestError::Undecryptable { .. },
                ..
            })
        ));
        let error = RedisStore::open(&Secret::new(redis.url()), &with_key(sealing(1)))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not decrypt"), "{error}");
    }
}

//! The token store (opt-in, `--token-store PATH` or `--token-store redis://…`): one current token pair per pair key
//! (principal, login host, client id), behind the [`TokenStore`] trait.
//!
//! The exchange changes a pair only under a [`Lease`] (the exclusive right to change that one
//! pair, held across the upstream call) and sees a pair saved only once it is durable. The
//! backends: [`FileStore`] (a JSON file several processes may share), [`RedisStore`] (one
//! Redis that processes on any number of machines share) and [`MemoryStore`] (this process
//! only). A backend's own refusals (file modes, a corrupt file) are raised when
//! it is opened; nothing in a store is ever silently discarded. Consumed refresh tokens are
//! remembered only as SHA-256 hashes, to recognise a retry within the reuse window. With
//! `PROCORE_STORE_KEY` every backend that writes outside this process seals the token
//! responses it stores ([`StoreKeys`]).

mod at_rest;
mod file;
mod memory;
mod redis;

use std::{any::Any, fmt, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use at_rest::{AtRestError, STORE_KEY_PREVIOUS_VAR, STORE_KEY_VAR, Sealed, StoreKeys};
pub use file::{FileError, FileStore};
pub use memory::MemoryStore;
pub use redis::{
    Durability, RedisSettings, RedisStore, RedisStoreError, SharedSessions, SharedSessionsError,
    is_redis_url, redacted_location,
};

use crate::{
    oauth::{AccessToken, ClientId, ClientSecret, RefreshToken},
    secret::Secret,
};

/// What a store operation returns: a boxed future, so `dyn TokenStore` works (a box is
/// nothing next to the network round trip every exchange makes).
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Where token pairs are kept. Every backend keeps the same promises: a lease excludes
/// every other holder of the same key (in any process that shares the store) until it is
/// dropped; `save` is durable before it returns; no pair is dropped except by `remove`.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Where the pairs live, for log lines (a path; never a password).
    fn location(&self) -> String;

    /// The exclusive right to change the pair of `key`, waiting at most `patience` for
    /// another holder to let go.
    fn lease<'a>(&'a self, key: &'a PairKey, patience: Duration) -> StoreFuture<'a, Lease>;

    /// The current pair of `key`. Under a lease on `key`, no one else can change it.
    fn load<'a>(&'a self, key: &'a PairKey) -> StoreFuture<'a, Option<StoredPair>>;

    /// Make `pair` the current pair of the lease's key, durably. Fails if the lease is not
    /// (or no longer) this store's lease on `pair.key`. The Redis store ends the lease's
    /// exclusion here (its commit clears the lock in the same step); a later save under the
    /// same lease is still refused if another holder stored a pair meanwhile.
    fn save<'a>(&'a self, lease: &'a Lease, pair: StoredPair) -> StoreFuture<'a, ()>;

    /// Forget the current pair of the lease's key; whether there was one. (The Redis store
    /// ends the lease's exclusion here too, as at a save.)
    fn remove<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool>;

    /// The store's own clock (Unix ms), for a store that processes on several machines
    /// share: rotations are timed and compared by it, so clock skew between them cannot
    /// bend the reuse window. `None` (the default): each process's own clock is used.
    fn now_ms(&self) -> StoreFuture<'_, Option<u64>> {
        async { Ok(None) }.boxed()
    }

    /// Called under `lease` just before a single-use grant (the hash of a refresh token or
    /// an authorization code) is sent upstream. A store shared by several machines renews
    /// the lease, records the intent to spend the grant, and first waits out another
    /// holder's unfinished intent for the same grant (a holder that died or stalled with
    /// the request out may still store the pair Procore gave it). The default: proceed.
    fn before_send<'a>(
        &'a self,
        _lease: &'a Lease,
        _grant_sha256: &'a str,
    ) -> StoreFuture<'a, Sending> {
        async { Ok(Sending::Proceed { contested: false }) }.boxed()
    }

    /// After Procore refused a grant another holder was spending (`contested`): wait up to
    /// `patience` for that holder to store the pair; whether the pair changed meanwhile.
    /// The default: no other holder can exist, so nothing changes.
    fn await_change<'a>(&'a self, _lease: &'a Lease, _patience: Duration) -> StoreFuture<'a, bool> {
        async { Ok(false) }.boxed()
    }

    /// Where every process sharing this store keeps the legacy MCP sessions, each expiring
    /// after `idle` unused. `None` (the default): each process keeps its own.
    fn shared_sessions(&self, _idle: Duration) -> Option<SharedSessions> {
        None
    }

    /// Whether the store answers now (a file that reads, a Redis that replies), for a
    /// readiness check.
    fn ready(&self) -> StoreFuture<'_, ()>;

    /// The pair of `principal` at `login_host` when it is the only one there.
    fn only_pair_of<'a>(
        &'a self,
        principal: &'a Principal,
        login_host: &'a str,
    ) -> StoreFuture<'a, Option<StoredPair>>;
}

/// What [`TokenStore::before_send`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// Send the grant. `contested`: another holder's unfinished intent for it was waited
    /// out first, so a refusal may mean that holder spent it (and may yet store the pair).
    Proceed { contested: bool },
    /// The pair changed while waiting (another holder stored it): decide again from the
    /// stored pair; nothing was sent.
    Settled,
}

/// Whose tokens: the identity a pair belongs to. Today every pair is the local one's (the
/// person who runs the server); a store partitioned per user keys pairs by its users.
/// The local principal is its own variant, so no user's subject (not even "local") can be
/// taken for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// The one principal of a server without per-user identity.
    Local,
    /// A user, by a stable subject (for a per-user store).
    User(String),
}

impl Principal {
    pub fn local() -> Self {
        Self::Local
    }

    /// The user whose stable subject is `id`.
    pub fn user(id: impl Into<String>) -> Self {
        Self::User(id.into())
    }

    /// The user's subject; `None` for the local principal.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Local => None,
            Self::User(id) => Some(id),
        }
    }
}

/// Which pair: whose, at which login host, for which client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    pub principal: Principal,
    pub login_host: String,
    pub client_id: String,
}

impl PairKey {
    /// The local principal's pair of `client_id` at `login_host`.
    pub fn local(login_host: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            principal: Principal::local(),
            login_host: login_host.into(),
            client_id: client_id.into(),
        }
    }
}

impl fmt::Display for PairKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} at {}", self.client_id, self.login_host)?;
        if let Some(subject) = self.principal.subject() {
            write!(f, " for {subject}")?;
        }
        Ok(())
    }
}

/// The exclusive right to change one pair, until dropped. What makes it exclusive is the
/// backend's (a file lock, a mutex guard), kept inside.
pub struct Lease {
    key: PairKey,
    held: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish()
    }
}

impl Lease {
    /// For a backend: the lease on `key`, exclusive for as long as `held` lives.
    pub fn new(key: PairKey, held: impl Any + Send + Sync) -> Self {
        Self {
            key,
            held: Box::new(held),
        }
    }

    pub fn key(&self) -> &PairKey {
        &self.key
    }

    /// For a backend: what it put in, if this lease is one of its kind.
    fn held<T: Any>(&self) -> Option<&T> {
        self.held.downcast_ref()
    }
}

/// Why the store cannot be used. Messages name the store; none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file backend's own failures (permissions, a corrupt file, I/O).
    #[error(transparent)]
    File(#[from] FileError),
    /// The Redis backend's own failures (unreachable, refused settings, a newer format).
    #[error(transparent)]
    Redis(#[from] RedisStoreError),
    /// A stored token response that cannot be opened with the keys given (or sealed).
    #[error("token store {location}: {source}")]
    AtRest {
        location: String,
        source: AtRestError,
    },
    #[error("token store {location} is locked by another process and stayed locked for {waited:?}")]
    LockTimeout { location: String, waited: Duration },
    #[error("token store {location}: the pair of {key} was changed without this call's lease")]
    LeaseLost { location: String, key: PairKey },
    #[error("token store {location}: a stored response for {key} is not a JSON object")]
    NotAnObject { location: String, key: PairKey },
}

/// The current token pair of one key.
#[derive(Debug, Clone)]
pub struct StoredPair {
    pub key: PairKey,
    /// The token response exactly as Procore sent it.
    response: Secret,
    /// Its tokens, parsed once.
    access_token: Option<AccessToken>,
    refresh_token: Option<RefreshToken>,
    /// Unix seconds when it was stored.
    pub stored_at: u64,
    /// Hash of the client credentials that obtained it (a replay must present the same).
    pub credentials_sha256: String,
    /// Refresh tokens this pair (or its predecessors) replaced, hashed, with when; the
    /// newest first.
    pub rotated_from: Vec<Rotation>,
}

/// One consumed refresh token, remembered as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub refresh_token_sha256: String,
    /// Unix milliseconds when the store learned of the rotation.
    pub at_ms: u64,
}

impl StoredPair {
    /// A pair whose `response` is a JSON object; `None` for anything else.
    pub fn new(
        key: PairKey,
        response: Secret,
        stored_at: u64,
        credentials_sha256: String,
        rotated_from: Vec<Rotation>,
    ) -> Option<Self> {
        let parsed = serde_json::from_str::<Value>(response.expose()).ok()?;
        let token = |field: &str| parsed.get(field)?.as_str().map(str::to_owned);
        let access_token = token("access_token").map(AccessToken::new);
        let refresh_token = token("refresh_token").map(RefreshToken::new);
        if !parsed.is_object() {
            return None;
        }
        Some(Self {
            key,
            response,
            access_token,
            refresh_token,
            stored_at,
            credentials_sha256,
            rotated_from,
        })
    }

    /// The token response exactly as Procore sent it.
    pub fn response(&self) -> &Secret {
        &self.response
    }

    pub fn access_token(&self) -> Option<&AccessToken> {
        self.access_token.as_ref()
    }

    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// When (Unix ms) `refresh_token` was consumed by this pair's line, if no longer ago
    /// than `window` before `now_ms`.
    pub fn rotated_within(
        &self,
        refresh_token: &RefreshToken,
        window: Duration,
        now_ms: u64,
    ) -> Option<u64> {
        let hash = sha256_hex(refresh_token.expose());
        self.rotated_from
            .iter()
            .find(|rotation| rotation.refresh_token_sha256 == hash)
            .map(|rotation| rotation.at_ms)
            .filter(|at_ms| within(*at_ms, window, now_ms))
    }

    /// Whether this pair's line consumed `refresh_token` (at any time it still remembers).
    pub fn succeeds(&self, refresh_token: &RefreshToken) -> bool {
        let hash = sha256_hex(refresh_token.expose());
        self.rotated_from
            .iter()
            .any(|rotation| rotation.refresh_token_sha256 == hash)
    }
}

/// Of `pairs`, the one of `principal` at `login_host`, when there is exactly one: what every
/// backend's [`TokenStore::only_pair_of`] answers.
fn the_only_pair_of<'a>(
    pairs: impl Iterator<Item = &'a StoredPair>,
    principal: &Principal,
    login_host: &str,
) -> Option<StoredPair> {
    let mut of_host =
        pairs.filter(|pair| &pair.key.principal == principal && pair.key.login_host == login_host);
    match (of_host.next(), of_host.next()) {
        (Some(pair), None) => Some(pair.clone()),
        _ => None,
    }
}

/// Whether `at_ms` lies no further than `window` before `now_ms`.
pub fn within(at_ms: u64, window: Duration, now_ms: u64) -> bool {
    u128::from(now_ms.saturating_sub(at_ms)) <= window.as_millis()
}

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    // A digit a nibble, into one string: a `format!` a byte cost more than the hashing.
    let mut hex = String::with_capacity(digest.as_ref().len() * 2);
    for nibble in digest
        .as_ref()
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
    {
        hex.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
    }
    hex
}

/// The hash that ties a stored pair to the client credentials that obtained it.
pub fn credentials_sha256(client_id: &ClientId, client_secret: &ClientSecret) -> String {
    sha256_hex(&format!("{client_id}\n{}", client_secret.expose()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_the_lowercase_hex_of_the_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// A pair of `client_id` at Procore's production host, stored at second 1, whose line
    /// consumed the refresh token "old" at 100 s.
    pub fn pair(client_id: &str, response: &str) -> StoredPair {
        StoredPair::new(
            PairKey::local("https://login.procore.com", client_id),
            Secret::new(response),
            1,
            "c".into(),
            vec![Rotation {
                refresh_token_sha256: sha256_hex("old"),
                at_ms: 100_000,
            }],
        )
        .unwrap()
    }

    #[test]
    fn a_pair_parses_its_tokens_once_and_refuses_a_non_object() {
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        assert_eq!(stored.access_token().unwrap().expose(), "x");
        assert_eq!(stored.refresh_token().unwrap().expose(), "y");
        assert!(
            pair("b", r#"{"access_token":"z"}"#)
                .refresh_token()
                .is_none()
        );
        let key = PairKey::local("h", "c");
        assert!(StoredPair::new(key.clone(), Secret::new("[1]"), 1, "c".into(), vec![]).is_none());
        assert!(StoredPair::new(key, Secret::new("{"), 1, "c".into(), vec![]).is_none());
    }

    #[test]
    fn rotations_are_recognised_within_the_window_only() {
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        let old = RefreshToken::new("old");
        assert_eq!(
            stored.rotated_within(&old, Duration::from_secs(120), 150_000),
            Some(100_000)
        );
        assert_eq!(
            stored.rotated_within(&old, Duration::from_secs(10), 150_000),
            None
        );
        assert!(stored.succeeds(&old));
        assert!(!stored.succeeds(&RefreshToken::new("y")));
    }

    #[test]
    fn a_key_names_its_principal_only_when_not_local() {
        let mut key = PairKey::local("https://login.procore.com", "cid");
        assert_eq!(key.to_string(), "client cid at https://login.procore.com");
        key.principal = Principal::user("user-7");
        assert_eq!(
            key.to_string(),
            "client cid at https://login.procore.com for user-7"
        );
    }
}

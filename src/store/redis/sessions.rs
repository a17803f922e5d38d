//! Legacy streamable-HTTP sessions (`/mcp`, protocol ≤ 2025-11-25) in the token store's
//! Redis, so any replica serves a session another one opened (rmcp's [`SessionStore`]:
//! a replica that does not hold a session replays its `initialize` from here).
//!
//! Keys, all under one hash tag: `ptm:1:{sessions}:live`, a sorted set of the live session
//! ids scored by when each expires (Unix ms by Redis's own clock), which is what the cap
//! counts cluster-wide; and `ptm:1:{sessions}:s:<id>`, a hash with the client's `initialize`
//! parameters (`state`) and, behind access tokens, who opened it (`owner`). Every request to
//! a session pushes both its score and its hash's expiry `--session-idle-secs` ahead; a
//! session not used for that long is gone for every replica at once.

use std::time::Duration;

use ::redis::{RedisError, Script, aio::ConnectionManager};
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use super::{describe, parse_principal, principal_field};
use crate::store::Principal;

const LIVE_KEY: &str = "ptm:1:{sessions}:live";

fn session_key(id: &str) -> String {
    format!("ptm:1:{{sessions}}:s:{id}")
}

/// Why the shared sessions could not be read or written: names the store, never its
/// password or a session's content.
#[derive(Debug, thiserror::Error)]
#[error("session store {location} cannot be used: {detail}")]
pub struct SharedSessionsError {
    location: String,
    detail: String,
}

/// The legacy sessions every process on one Redis shares.
#[derive(Clone)]
pub struct SharedSessions {
    location: String,
    connection: ConnectionManager,
    idle_ms: u64,
}

impl std::fmt::Debug for SharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSessions")
            .field("location", &self.location)
            .field("idle_ms", &self.idle_ms)
            .finish_non_exhaustive()
    }
}

impl SharedSessions {
    pub(super) fn new(location: String, connection: ConnectionManager, idle: Duration) -> Self {
        Self {
            location,
            connection,
            idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    fn failed(&self, error: &RedisError) -> SharedSessionsError {
        SharedSessionsError {
            location: self.location.clone(),
            detail: describe(error),
        }
    }

    /// Count `id` among the live sessions if fewer than `max` live: whether it was.
    pub async fn reserve(&self, id: &str, max: usize) -> Result<bool, SharedSessionsError> {
        let reserved: i64 = RESERVE
            .key(LIVE_KEY)
            .arg(id)
            .arg(max)
            .arg(self.idle_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(reserved == 1)
    }

    /// Sessions live now, on every replica.
    pub async fn count(&self) -> Result<usize, SharedSessionsError> {
        let count: usize = COUNT
            .key(LIVE_KEY)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(count)
    }

    /// Whether `id` is live; if so, it stays live `--session-idle-secs` from now.
    pub async fn touch(&self, id: &str) -> Result<bool, SharedSessionsError> {
        let live: i64 = TOUCH
            .key(LIVE_KEY)
            .key(session_key(id))
            .arg(id)
            .arg(self.idle_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(live == 1)
    }

    /// Record who opened `id`.
    pub async fn record_owner(
        &self,
        id: &str,
        owner: &Principal,
    ) -> Result<(), SharedSessionsError> {
        let () = ::redis::pipe()
            .atomic()
            .hset(session_key(id), "owner", principal_field(owner))
            .ignore()
            .pexpire(session_key(id), self.idle_ms as i64)
            .ignore()
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(())
    }

    /// Who opened `id`: `Ok(None)` for a session this store does not know, `Some(None)` for
    /// one it knows with no owner recorded.
    pub async fn owner(&self, id: &str) -> Result<Option<Option<Principal>>, SharedSessionsError> {
        let (exists, owner): (bool, Option<String>) = ::redis::pipe()
            .exists(session_key(id))
            .hget(session_key(id), "owner")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(exists.then(|| owner.as_deref().map(parse_principal)))
    }

    /// Forget `id` for every replica.
    pub async fn forget(&self, id: &str) -> Result<(), SharedSessionsError> {
        let () = ::redis::pipe()
            .atomic()
            .zrem(LIVE_KEY, id)
            .ignore()
            .del(session_key(id))
            .ignore()
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for SharedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let state: Option<String> = LOAD
            .key(LIVE_KEY)
            .key(session_key(session_id))
            .arg(session_id)
            .arg(self.idle_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        let Some(state) = state else {
            return Ok(None);
        };
        match serde_json::from_str(&state) {
            Ok(state) => Ok(Some(state)),
            Err(error) => Err(Box::new(SharedSessionsError {
                location: self.location.clone(),
                detail: format!("a stored session is unreadable ({error})"),
            })),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let state = serde_json::to_string(state)?;
        let () = STORE
            .key(LIVE_KEY)
            .key(session_key(session_id))
            .arg(session_id)
            .arg(self.idle_ms)
            .arg(state)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| self.failed(&error))?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.forget(session_id).await?)
    }
}

/// `now` in Unix ms by Redis's clock, and the expired ids dropped from the live set.
const PRUNE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
";

/// Whether ARGV[1] is live (else its hash is dropped); if so pushed ARGV[2] ms ahead.
const ALIVE: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  redis.call('DEL', KEYS[2])
  return false
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
";

/// Add ARGV[1] to the live set unless ARGV[2] are live: 1, or 0.
static RESERVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        r"{PRUNE}
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"
    ))
});

/// How many are live.
static COUNT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!("{PRUNE}\nreturn redis.call('ZCARD', KEYS[1])\n"))
});

/// 1 if ARGV[1] is live (and now pushed ahead), else 0.
static TOUCH: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRUNE}\nlocal function alive(now)\n{ALIVE}\nreturn true\nend\n\
         if alive(now) then return 1 else return 0 end\n"
    ))
});

/// The state of ARGV[1] if live (and now pushed ahead), else nil.
static LOAD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        "{PRUNE}\nlocal function alive(now)\n{ALIVE}\nreturn true\nend\n\
         if not alive(now) then return false end\n\
         return redis.call('HGET', KEYS[2], 'state')\n"
    ))
});

/// Keep ARGV[3] as the state of ARGV[1], live ARGV[2] ms from now.
static STORE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(&format!(
        r"{PRUNE}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'state', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.status_reply('OK')
"
    ))
});

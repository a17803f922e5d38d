//! The emulator's memory: authorization codes, access tokens and refresh tokens, with the
//! rules that bind them (codes single-use and short-lived, refresh tokens single-use,
//! revocation of a pair), plus the counters and the armed faults.
//!
//! Values are random (two v4 UUIDs: 244 random bits) and held as [`Secret`]s; nothing here
//! is ever logged or written to disk.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{faults::Faults, stats::EmulatorStats};
use crate::Secret;

/// The emulated Procore user who approves every authorization request.
pub const EMULATED_USER_ID: u64 = 7_000_001;

/// How many issuing operations pass between two sweeps of expired entries.
const SWEEP_EVERY: u32 = 256;

/// A code or token used as a map key; hashed by value, printed never.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key(Secret);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.expose().hash(state);
    }
}

impl Key {
    fn of(value: &str) -> Self {
        Self(Secret::new(value))
    }
}

/// A fresh unguessable value: 64 lowercase hex digits from the OS random source.
pub fn random_value() -> Secret {
    Secret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    user_id: u64,
    expires: Instant,
}

struct AccessGrant {
    client_id: String,
    user_id: Option<u64>,
    created_at: u64,
    issued: Instant,
    ttl: Duration,
    refresh: Option<Key>,
}

struct RefreshGrant {
    client_id: String,
    user_id: Option<u64>,
    access: Key,
}

/// Why a code or refresh token was refused; for the log line, never shown with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    Unknown,
    Expired,
    OtherClient,
    RedirectMismatch,
}

impl GrantRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unknown => "unknown, used or revoked",
            Self::Expired => "expired",
            Self::OtherClient => "issued to another client",
            Self::RedirectMismatch => "redirect_uri differs from the authorize request",
        }
    }
}

/// A token response's values.
pub struct IssuedTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: u64,
    pub created_at: u64,
}

/// What token info reports about a live access token.
pub struct AccessInfo {
    pub client_id: String,
    pub user_id: Option<u64>,
    pub created_at: u64,
    pub expires_in_seconds: u64,
}

/// Who a refresh token was issued for.
pub struct RefreshedGrant {
    pub client_id: String,
    pub user_id: Option<u64>,
}

/// All state, behind one lock in the emulator.
#[derive(Default)]
pub struct Store {
    codes: HashMap<Key, CodeGrant>,
    access: HashMap<Key, AccessGrant>,
    refresh: HashMap<Key, RefreshGrant>,
    since_sweep: u32,
    pub stats: EmulatorStats,
    pub faults: Faults,
}

impl Store {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    /// A new one-use code for `client_id` and `redirect_uri`, valid for `ttl`.
    pub fn issue_code(&mut self, client_id: &str, redirect_uri: &str, ttl: Duration) -> Secret {
        self.sweep_now_and_then();
        let code = random_value();
        self.codes.insert(
            Key(code.clone()),
            CodeGrant {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                user_id: EMULATED_USER_ID,
                expires: Instant::now() + ttl,
            },
        );
        self.stats.codes_issued += 1;
        code
    }

    /// Whether `code` can still be exchanged (for the page that shows it).
    pub fn code_is_live(&self, code: &str) -> bool {
        self.codes
            .get(&Key::of(code))
            .is_some_and(|grant| grant.expires > Instant::now())
    }

    /// Exchange `code`: it must be live, issued to `client_id` for `redirect_uri`. A
    /// successful exchange (and expiry) removes it; a mismatch leaves it for the rightful
    /// request.
    pub fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<u64, GrantRefusal> {
        let key = Key::of(code);
        let grant = self.codes.get(&key).ok_or(GrantRefusal::Unknown)?;
        if grant.expires <= Instant::now() {
            self.codes.remove(&key);
            return Err(GrantRefusal::Expired);
        }
        if grant.client_id != client_id {
            return Err(GrantRefusal::OtherClient);
        }
        if grant.redirect_uri != redirect_uri {
            return Err(GrantRefusal::RedirectMismatch);
        }
        let user_id = grant.user_id;
        self.codes.remove(&key);
        Ok(user_id)
    }

    /// Remove `refresh_token` whatever happens next: any use invalidates it.
    pub fn take_refresh(&mut self, refresh_token: &str) -> Option<RefreshedGrant> {
        self.refresh
            .remove(&Key::of(refresh_token))
            .map(|grant| RefreshedGrant {
                client_id: grant.client_id,
                user_id: grant.user_id,
            })
    }

    /// Issue an access token (and, with `with_refresh`, its refresh token).
    pub fn issue_tokens(
        &mut self,
        client_id: &str,
        user_id: Option<u64>,
        with_refresh: bool,
        ttl: Duration,
    ) -> IssuedTokens {
        self.sweep_now_and_then();
        let access_token = random_value();
        let refresh_token = with_refresh.then(random_value);
        let created_at = unix_now();
        let access_key = Key(access_token.clone());
        if let Some(refresh_token) = &refresh_token {
            self.refresh.insert(
                Key(refresh_token.clone()),
                RefreshGrant {
                    client_id: client_id.to_owned(),
                    user_id,
                    access: access_key.clone(),
                },
            );
        }
        self.access.insert(
            access_key,
            AccessGrant {
                client_id: client_id.to_owned(),
                user_id,
                created_at,
                issued: Instant::now(),
                ttl,
                refresh: refresh_token.clone().map(Key),
            },
        );
        self.stats.access_tokens_issued += 1;
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ttl.as_secs(),
            created_at,
        }
    }

    /// A live access token's details; `None` when unknown, expired or revoked.
    pub fn access_info(&self, access_token: &str) -> Option<AccessInfo> {
        let grant = self.access.get(&Key::of(access_token))?;
        let left = grant.ttl.checked_sub(grant.issued.elapsed())?;
        if left.is_zero() {
            return None;
        }
        Some(AccessInfo {
            client_id: grant.client_id.clone(),
            user_id: grant.user_id,
            created_at: grant.created_at,
            expires_in_seconds: left.as_secs(),
        })
    }

    /// Revoke `token` (an access or a refresh token) together with its partner. Returns
    /// whether anything was revoked; unknown tokens are not an error (RFC 7009).
    pub fn revoke(&mut self, token: &str) -> bool {
        let key = Key::of(token);
        if let Some(access) = self.access.remove(&key) {
            if let Some(refresh) = access.refresh {
                self.refresh.remove(&refresh);
            }
            return true;
        }
        if let Some(refresh) = self.refresh.remove(&key) {
            self.access.remove(&refresh.access);
            return true;
        }
        false
    }

    /// Forget expired codes and access tokens every [`SWEEP_EVERY`] issues, so a long run
    /// does not grow without bound. Live refresh tokens stay until used or revoked.
    fn sweep_now_and_then(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        let now = Instant::now();
        self.codes.retain(|_, grant| grant.expires > now);
        self.access
            .retain(|_, grant| grant.issued.elapsed() < grant.ttl);
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        (self.codes.len(), self.access.len(), self.refresh.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn values_are_long_random_hex() {
        let a = random_value();
        let b = random_value();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(format!("{:?}", Key(a)), "Key([redacted])");
    }

    #[test]
    fn codes_are_single_use_and_bound() {
        let mut store = Store::default();
        let code = store.issue_code("app", "urn:ietf:wg:oauth:2.0:oob", TTL);
        let code = code.expose();
        assert_eq!(
            store.redeem_code(code, "other", "urn:ietf:wg:oauth:2.0:oob"),
            Err(GrantRefusal::OtherClient)
        );
        assert_eq!(
            store.redeem_code(code, "app", "https://x.example/cb"),
            Err(GrantRefusal::RedirectMismatch)
        );
        assert_eq!(
            store.redeem_code(code, "app", "urn:ietf:wg:oauth:2.0:oob"),
            Ok(EMULATED_USER_ID)
        );
        assert_eq!(
            store.redeem_code(code, "app", "urn:ietf:wg:oauth:2.0:oob"),
            Err(GrantRefusal::Unknown)
        );
    }

    #[test]
    fn revoking_either_token_ends_the_pair() {
        let mut store = Store::default();
        let pair = store.issue_tokens("app", Some(1), true, TTL);
        let refresh = pair.refresh_token.unwrap();
        assert!(store.revoke(pair.access_token.expose()));
        assert!(store.access_info(pair.access_token.expose()).is_none());
        assert!(store.take_refresh(refresh.expose()).is_none());

        let pair = store.issue_tokens("app", Some(1), true, TTL);
        let refresh = pair.refresh_token.unwrap();
        assert!(store.revoke(refresh.expose()));
        assert!(store.access_info(pair.access_token.expose()).is_none());
        assert!(!store.revoke("never-issued"));
    }

    #[test]
    fn sweeping_forgets_expired_entries_only() {
        let mut store = Store::default();
        for _ in 0..SWEEP_EVERY {
            store.issue_code("app", "urn:ietf:wg:oauth:2.0:oob", Duration::ZERO);
            store.issue_tokens("app", None, true, Duration::ZERO);
        }
        let live = store.issue_tokens("app", None, false, TTL);
        let (codes, access, refresh) = store.sizes();
        assert!(codes < SWEEP_EVERY as usize, "{codes}");
        assert!(access < SWEEP_EVERY as usize, "{access}");
        assert_eq!(refresh, SWEEP_EVERY as usize, "refresh tokens stay");
        assert!(store.access_info(live.access_token.expose()).is_some());
    }
}

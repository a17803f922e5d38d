//! Counters of what the emulator received and did, for tests that must assert "exactly one
//! upstream refresh" or "no retry". `GET /_emulator/stats` serves them as JSON.
//!
//! Counts only; never a code, token or secret.

use serde::{Deserialize, Serialize};

use crate::GrantType;

/// Everything the emulator counts, since start-up or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorStats {
    /// `POST /oauth/token` requests received, by the grant type they named (faulted and
    /// refused ones included).
    pub token_requests: TokenRequestCounts,
    /// Refresh grants that rotated the tokens (including those whose answer a fault dropped).
    pub successful_refreshes: u64,
    /// Refresh grants refused (unknown, used or revoked refresh token, bad client).
    pub failed_refreshes: u64,
    /// Authorization codes handed out by `GET /oauth/authorize`.
    pub codes_issued: u64,
    /// Access tokens issued by any grant.
    pub access_tokens_issued: u64,
    /// `GET /oauth/token/info` requests.
    pub token_info_requests: u64,
    /// `POST /oauth/revoke` requests.
    pub revoke_requests: u64,
    /// How often each fault was applied.
    pub faults_applied: FaultCounts,
}

/// Token requests by `grant_type`; `other` holds missing, unknown and unreadable ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequestCounts {
    pub authorization_code: u64,
    pub refresh_token: u64,
    pub client_credentials: u64,
    pub other: u64,
    pub total: u64,
}

/// Applications of each fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    pub delay: u64,
    pub status: u64,
    pub drop_after_refresh: u64,
}

impl TokenRequestCounts {
    /// Requests that named `grant`.
    pub fn of(&self, grant: GrantType) -> u64 {
        match grant {
            GrantType::AuthorizationCode => self.authorization_code,
            GrantType::RefreshToken => self.refresh_token,
            GrantType::ClientCredentials => self.client_credentials,
        }
    }

    pub(super) fn count(&mut self, grant: Option<GrantType>) {
        let slot = match grant {
            Some(GrantType::AuthorizationCode) => &mut self.authorization_code,
            Some(GrantType::RefreshToken) => &mut self.refresh_token,
            Some(GrantType::ClientCredentials) => &mut self.client_credentials,
            None => &mut self.other,
        };
        *slot += 1;
        self.total += 1;
    }
}

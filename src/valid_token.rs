//! A working access token from the token store: the stored one while it has long enough
//! left (nothing is sent), else one refresh of the stored pair through the exchange, under
//! the store's lease and single flight, stored before it is handed out. What the
//! `get_access_token` tool and the `token` command share.
//!
//! Never hands out a refresh token, and never refreshes by any path but
//! [`TokenExchange::refresh_stored`].

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    exchange::{Outcome, Principal, StoreFailure, TokenExchange},
    oauth::{AccessToken, ClientId},
    procore::{ClientCredentials, GrantType, TokenRequest},
    store::StoredPair,
};

/// The default of `min_valid_secs` / `--min-valid-secs`.
pub const DEFAULT_MIN_VALID: Duration = Duration::from_secs(300);

/// An access token with at least the asked-for time left (or as much as a fresh one has).
#[derive(Debug)]
pub struct ValidToken {
    pub client_id: ClientId,
    pub access_token: AccessToken,
    pub token_type: String,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
    /// Seconds it has left.
    pub expires_in: u64,
    /// This call renewed the pair, or joined a renewal that did.
    pub refreshed: bool,
    /// Why the renewed pair could not be written to the store (its refresh token is then
    /// lost: the next renewal needs a sign-in).
    pub unstored: Option<String>,
}

/// Why a sign-in is needed before there can be a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInNeeded {
    /// The store holds no pair for this client (or no single pair, when none was named).
    NoPair {
        client_id: Option<ClientId>,
        login_host: String,
    },
    /// Procore refused the stored refresh token (`invalid_grant`): the sign-in has ended.
    RefreshRefused {
        client_id: ClientId,
        login_host: String,
    },
    /// The stored pair has no refresh token (a service-account token) and has run out.
    NoRefreshToken {
        client_id: ClientId,
        login_host: String,
    },
}

impl std::fmt::Display for SignInNeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoPair {
                client_id: Some(client_id),
                login_host,
            } => write!(
                f,
                "the token store holds no token pair for client {client_id} at {login_host}"
            ),
            Self::NoPair {
                client_id: None,
                login_host,
            } => write!(
                f,
                "the token store holds no single token pair for {login_host} (none, or one \
                 per client: name the client)"
            ),
            Self::RefreshRefused {
                client_id,
                login_host,
            } => write!(
                f,
                "{login_host} refused the stored refresh token of client {client_id} \
                 (invalid_grant): the sign-in has ended (revoked, used elsewhere, or a \
                 sandbox reset)"
            ),
            Self::NoRefreshToken {
                client_id,
                login_host,
            } => write!(
                f,
                "the stored access token of client {client_id} at {login_host} has run out \
                 and its pair holds no refresh token to renew it"
            ),
        }
    }
}

/// Why there is no token to hand out.
#[derive(Debug, thiserror::Error)]
pub enum NoValidToken {
    /// A person has to sign in (again).
    #[error("{0}")]
    SignIn(SignInNeeded),
    /// There is no token store to read.
    #[error("no token store is configured (--token-store PATH or PROCORE_TOKEN_STORE)")]
    NoStore,
    /// The stored token needs renewing and this server holds no credentials for its client.
    #[error(
        "the stored access token of client {client_id} needs renewing, and {}",
        match held {
            Some(held) => format!(
                "the credentials held (PROCORE_CLIENT_ID) are client {held}'s, not its"
            ),
            None => "no client credentials are held (PROCORE_CLIENT_ID and \
                     PROCORE_CLIENT_SECRET) to renew it with"
                .to_owned(),
        }
    )]
    CannotRefresh {
        client_id: ClientId,
        held: Option<ClientId>,
    },
    /// The store could not be read or locked; nothing was sent.
    #[error("the token store could not be used: {0}")]
    Store(#[from] StoreFailure),
    /// The refresh was sent (or tried) and brought no pair: how it ended.
    #[error("the refresh did not bring a new token pair")]
    Refresh(Arc<Outcome>),
    /// A 2xx answer (or a stored pair) that is not a usable token response.
    #[error("{0}")]
    NotATokenResponse(String),
}

/// `principal`'s valid access token of `client_id` (or of the only pair stored for this login host):
/// the stored one if it has at least `min_valid` left, else the stored pair refreshed once
/// with the `held` credentials.
pub async fn valid_token(
    exchange: &TokenExchange,
    principal: &Principal,
    held: Option<&ClientCredentials>,
    client_id: Option<&ClientId>,
    min_valid: Duration,
) -> Result<ValidToken, NoValidToken> {
    if exchange.store().is_none() {
        return Err(NoValidToken::NoStore);
    }
    let client_id = client_id.or(held.map(|held| &held.client_id));
    let login_host = exchange.login_host();
    let Some(pair) = exchange
        .stored_pair(principal, client_id)
        .await
        .map_err(StoreFailure::from)?
    else {
        return Err(NoValidToken::SignIn(SignInNeeded::NoPair {
            client_id: client_id.cloned(),
            login_host,
        }));
    };
    let client_id = ClientId::new(pair.key.client_id.clone());
    let now = exchange.now_ms() / 1000;
    if let Some(stored) = Terms::of_stored(&pair)
        && stored.expires_in(now) >= min_valid.as_secs()
    {
        return Ok(stored.into_token(client_id, now, false, None));
    }
    let Some(refresh_token) = pair.refresh_token().cloned() else {
        return Err(NoValidToken::SignIn(SignInNeeded::NoRefreshToken {
            client_id,
            login_host,
        }));
    };
    let Some(held) = held.filter(|held| held.client_id == client_id) else {
        return Err(NoValidToken::CannotRefresh {
            client_id,
            held: held.map(|held| held.client_id.clone()),
        });
    };
    let request = TokenRequest {
        grant_type: GrantType::RefreshToken,
        client_id: client_id.clone(),
        client_secret: held.client_secret.clone(),
        code: None,
        redirect_uri: None,
        refresh_token: Some(refresh_token),
    };
    // The refresh token read here only names the pair: under the lease, a pair another
    // caller renewed meanwhile is the answer and nothing is sent.
    let outcome = exchange.refresh_stored(principal, request).await;
    let (body, unstored) = match outcome.as_ref() {
        Outcome::Answered {
            response,
            store_error,
            ..
        } if response.is_token_response() => (
            String::from_utf8_lossy(&response.body).into_owned(),
            store_error.as_ref().map(ToString::to_string),
        ),
        Outcome::Answered { response, .. } if response.is_invalid_grant() => {
            return Err(NoValidToken::SignIn(SignInNeeded::RefreshRefused {
                client_id,
                login_host,
            }));
        }
        Outcome::Answered { response, .. } if response.status.is_success() => {
            return Err(NoValidToken::NotATokenResponse(format!(
                "{login_host} answered HTTP {} to the refresh, but the body is not a token \
                 response (a JSON object with access_token)",
                response.status.as_u16()
            )));
        }
        Outcome::Replayed { body, .. } => (body.expose().to_owned(), None),
        Outcome::StoreUnavailable(StoreFailure::PairRemoved(_)) => {
            return Err(NoValidToken::SignIn(SignInNeeded::NoPair {
                client_id: Some(client_id),
                login_host,
            }));
        }
        _ => return Err(NoValidToken::Refresh(outcome.clone())),
    };
    let now = exchange.now_ms() / 1000;
    let terms = Terms::of_response(&body, now).ok_or_else(|| {
        NoValidToken::NotATokenResponse(format!(
            "the renewed pair of client {client_id} at {login_host} is not a token response"
        ))
    })?;
    Ok(terms.into_token(client_id, now, true, unstored))
}

/// What a token response says about its access token.
struct Terms {
    access_token: AccessToken,
    token_type: String,
    expires_at: u64,
}

impl Terms {
    /// From a token response body; `created_at` defaults to `issued`, and a response
    /// without `expires_in` counts as already expired.
    fn of_response(body: &str, issued: u64) -> Option<Self> {
        let value: Value = serde_json::from_str(body).ok()?;
        let access_token = AccessToken::new(value.get("access_token")?.as_str()?);
        let token_type = value
            .get("token_type")
            .and_then(Value::as_str)
            .unwrap_or("bearer")
            .to_owned();
        let created_at = value
            .get("created_at")
            .and_then(Value::as_u64)
            .unwrap_or(issued);
        let expires_in = value.get("expires_in").and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            access_token,
            token_type,
            expires_at: created_at.saturating_add(expires_in),
        })
    }

    /// From a stored pair, whose `created_at` defaults to when it was stored.
    fn of_stored(pair: &StoredPair) -> Option<Self> {
        Self::of_response(pair.response().expose(), pair.stored_at)
    }

    fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    fn into_token(
        self,
        client_id: ClientId,
        now: u64,
        refreshed: bool,
        unstored: Option<String>,
    ) -> ValidToken {
        ValidToken {
            client_id,
            expires_in: self.expires_in(now),
            access_token: self.access_token,
            token_type: self.token_type,
            expires_at: self.expires_at,
            refreshed,
            unstored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_count_from_created_at_and_a_missing_lifetime_is_expired() {
        let terms = Terms::of_response(
            r#"{"access_token":"a","token_type":"bearer","expires_in":5400,"created_at":1000}"#,
            7,
        )
        .unwrap();
        assert_eq!(terms.expires_at, 6400);
        assert_eq!(terms.expires_in(6000), 400);
        assert_eq!(terms.expires_in(7000), 0);
        let bare = Terms::of_response(r#"{"access_token":"a"}"#, 50).unwrap();
        assert_eq!((bare.expires_at, bare.token_type.as_str()), (50, "bearer"));
        assert!(Terms::of_response(r#"{"token_type":"bearer"}"#, 1).is_none());
        assert!(Terms::of_response("[1]", 1).is_none());
    }
}

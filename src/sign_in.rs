//! A person's sign-in with an authorization code, as the `login` command and the `sign_in`
//! tool both run it: the link with a fresh `state`, the code read from what the user pasted
//! (refused when its `state` is not this sign-in's), and the code's one exchange through
//! [`TokenExchange::exchange`], which stores the pair before anyone hears of it.
//!
//! Never sends a code whose `state` does not match, and never hands the pair out: what it
//! returns are the facts a person may see (who, which client, when the token expires).

use std::sync::Arc;

use serde_json::Value;

use crate::{
    exchange::{Outcome, Principal, TokenExchange},
    oauth::{AccessToken, AuthorizationCode, ClientId, RedirectUri},
    procore::{ClientCredentials, GrantType, TokenRequest, authorize_url},
};

/// The sign-in link of one attempt and the `state` its answer must carry.
#[derive(Debug, Clone)]
pub struct SignInLink {
    pub state: String,
    pub url: url::Url,
}

impl SignInLink {
    /// A link for `client_id` to `redirect_uri` on the exchange's login host, with a random
    /// `state`.
    pub fn new(exchange: &TokenExchange, client_id: &ClientId, redirect_uri: &RedirectUri) -> Self {
        let state = uuid::Uuid::new_v4().simple().to_string();
        let url = authorize_url(
            exchange.procore().base(),
            client_id,
            redirect_uri.as_str(),
            &state,
        );
        Self { state, url }
    }
}

/// Why a pasted answer cannot be used. Nothing is sent for any of them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error("nothing was pasted")]
    Empty,
    #[error(
        "the address's state is not this sign-in's: it belongs to another sign-in, or was \
         tampered with"
    )]
    ForeignState,
    #[error("the address carries no state to check against this sign-in's")]
    NoState,
    #[error("the sign-in was not approved: {0}")]
    Declined(String),
    #[error("the address holds no code")]
    NoCode,
}

/// The code in what the user pasted: a bare code (as Procore's out-of-band page shows
/// it), the address of that page (`…/oauth/authorize/<CODE>`), or the address a web
/// redirect URI received (`…?code=…&state=…`, whose `state` must be `expected`).
pub fn pasted_code(pasted: &str, expected: &str) -> Result<AuthorizationCode, PasteError> {
    let pasted = pasted.trim();
    if pasted.is_empty() {
        return Err(PasteError::Empty);
    }
    let query = match url::Url::parse(pasted) {
        Ok(url) if url.has_host() => {
            if let Some(code) = url
                .path()
                .rsplit_once("/oauth/authorize/")
                .map(|(_, code)| code)
                .filter(|code| !code.is_empty() && !code.contains('/'))
                && url.query().is_none()
            {
                return Ok(AuthorizationCode::new(code));
            }
            url.query().unwrap_or_default().to_owned()
        }
        _ if pasted.contains('=') => pasted
            .split_once('?')
            .map_or(pasted, |(_, query)| query)
            .to_owned(),
        _ => return Ok(AuthorizationCode::new(pasted)),
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if let Some(error) = get("error") {
        // Procore's error code only: a description is free text.
        let shown: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(PasteError::Declined(shown));
    }
    let code = get("code")
        .filter(|code| !code.trim().is_empty())
        .ok_or(PasteError::NoCode)?;
    match get("state") {
        Some(state) if state == expected => Ok(AuthorizationCode::new(code)),
        Some(_) => Err(PasteError::ForeignState),
        None => Err(PasteError::NoState),
    }
}

/// A finished sign-in: the pair is in the store.
#[derive(Debug)]
pub struct SignedIn {
    pub client_id: ClientId,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
    /// Unix seconds when the pair was issued (or received).
    pub now: u64,
    /// Kept only to ask Procore who signed in; never shown.
    access_token: Option<AccessToken>,
}

impl SignedIn {
    /// Who the token acts for (`resource_owner_id` of the token info), if Procore says.
    pub async fn resource_owner(&self, exchange: &TokenExchange) -> Option<String> {
        let response = exchange
            .token_info(self.access_token.as_ref()?)
            .await
            .ok()?;
        if !response.status.is_success() {
            return None;
        }
        let info: Value = serde_json::from_slice(&response.body).ok()?;
        match info.get("resource_owner_id")? {
            Value::Number(id) => Some(id.to_string()),
            Value::String(id) if !id.is_empty() => Some(id.chars().take(64).collect()),
            _ => None,
        }
    }
}

/// Why a code brought no stored pair.
#[derive(Debug)]
pub enum NotSignedIn {
    /// Procore issued a pair, but the store could not keep it (the pair is lost).
    Unstored(String),
    /// The exchange brought no pair: how it ended (a refused code is a client error).
    Ended(Arc<Outcome>),
}

/// Exchange `code` (of a link to `redirect_uri`) once with the `held` credentials; the pair
/// is stored under `principal` before this returns.
pub async fn redeem(
    exchange: &TokenExchange,
    principal: &Principal,
    held: &ClientCredentials,
    code: AuthorizationCode,
    redirect_uri: RedirectUri,
) -> Result<SignedIn, NotSignedIn> {
    let request = TokenRequest {
        grant_type: GrantType::AuthorizationCode,
        client_id: held.client_id.clone(),
        client_secret: held.client_secret.clone(),
        code: Some(code),
        redirect_uri: Some(redirect_uri),
        refresh_token: None,
    };
    let outcome = exchange.exchange(principal, request).await;
    let body = match outcome.as_ref() {
        Outcome::Answered {
            response,
            store_error,
            ..
        } if response.is_token_response() => {
            if let Some(error) = store_error {
                return Err(NotSignedIn::Unstored(error.to_string()));
            }
            serde_json::from_slice::<Value>(&response.body).unwrap_or_default()
        }
        _ => return Err(NotSignedIn::Ended(outcome)),
    };
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .map(AccessToken::new);
    let now = exchange.now_ms() / 1000;
    let expires_at = body
        .get("created_at")
        .and_then(Value::as_u64)
        .unwrap_or(now)
        .saturating_add(body.get("expires_in").and_then(Value::as_u64).unwrap_or(0));
    Ok(SignedIn {
        client_id: held.client_id.clone(),
        expires_at,
        now,
        access_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_code_or_the_out_of_band_page_is_taken_as_is() {
        for pasted in [
            "  4f9a0c3e7b21d8a6 \n",
            "https://login.procore.com/oauth/authorize/4f9a0c3e7b21d8a6",
        ] {
            assert_eq!(
                pasted_code(pasted, "s1").unwrap().expose(),
                "4f9a0c3e7b21d8a6",
                "{pasted}"
            );
        }
    }

    #[test]
    fn a_redirected_address_needs_this_sign_ins_state() {
        let good = "http://localhost/cb?code=c-1&state=s1";
        assert_eq!(pasted_code(good, "s1").unwrap().expose(), "c-1");
        assert_eq!(
            pasted_code("?code=c-1&state=s1", "s1").unwrap().expose(),
            "c-1"
        );
        assert_eq!(
            pasted_code("http://localhost/cb?code=c-1&state=s2", "s1").unwrap_err(),
            PasteError::ForeignState
        );
        assert_eq!(
            pasted_code("http://localhost/cb?code=c-1", "s1").unwrap_err(),
            PasteError::NoState
        );
        assert_eq!(
            pasted_code("http://localhost/cb?state=s1", "s1").unwrap_err(),
            PasteError::NoCode
        );
        assert_eq!(
            pasted_code(
                "http://localhost/cb?error=access_denied&error_description=<b>x</b>&state=s1",
                "s1"
            )
            .unwrap_err(),
            PasteError::Declined("access_denied".into())
        );
        assert_eq!(pasted_code(" \n", "s1").unwrap_err(), PasteError::Empty);
    }
}

//! `GET /oauth/token/info`, Procore's "Get Token Info": the details of the access token sent
//! as `Authorization: Bearer`, or 401 `invalid_token` when it is unknown, expired or revoked.
//!
//! Never echoes the token.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    AppState,
    oauth_error::{OAuthError, no_store_json_text},
    request_log::LogNote,
};

/// The answer, in the documented field order.
#[derive(Serialize)]
struct TokenInfoBody<'a> {
    /// The approving user; `null` for client-credentials tokens.
    resource_owner_id: Option<u64>,
    scopes: [&'static str; 0],
    expires_in_seconds: u64,
    application: ApplicationBody<'a>,
    created_at: u64,
}

#[derive(Serialize)]
struct ApplicationBody<'a> {
    uid: &'a str,
}

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub async fn token_info(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    let mut store = shared.store();
    store.stats.token_info_requests += 1;
    let Some(token) = bearer(&headers) else {
        return OAuthError::InvalidToken("missing (send Authorization: Bearer <access_token>)")
            .into_response();
    };
    let Some(info) = store.access_info(token) else {
        return OAuthError::InvalidToken("unknown, expired or revoked").into_response();
    };
    drop(store);
    let body = TokenInfoBody {
        resource_owner_id: info.user_id,
        scopes: [],
        expires_in_seconds: info.expires_in_seconds,
        application: ApplicationBody {
            uid: &info.client_id,
        },
        created_at: info.created_at,
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = no_store_json_text(StatusCode::OK, text);
    response
        .extensions_mut()
        .insert(LogNote("token is live".to_owned()));
    response
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  "));
        assert_eq!(bearer(&headers), None);
    }
}

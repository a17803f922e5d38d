//! `POST /oauth/revoke`, Procore's "Revoke Token" (RFC 7009): the client names a token (access
//! or refresh) and the pair it belongs to is revoked together. Unknown tokens also get 200.
//!
//! Takes the same body encodings and client authentication as the token endpoint.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    AppState,
    oauth_error::{OAuthError, no_store_json},
    request_body,
    request_log::LogNote,
};

pub async fn revoke(State(shared): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    shared.store().stats.revoke_requests += 1;
    let params = match request_body::parse(&headers, &body) {
        Err(_unreadable_basic) => {
            return OAuthError::InvalidClient { via_basic: true }.into_response();
        }
        Ok(Err(error)) => return OAuthError::InvalidRequest(error.to_string()).into_response(),
        Ok(Ok(params)) => params,
    };
    match params.client() {
        Err(error) => return OAuthError::InvalidRequest(error.to_string()).into_response(),
        Ok(Some(client)) if shared.app.authenticates(&client) => {}
        Ok(_) => {
            return OAuthError::InvalidClient {
                via_basic: params.used_basic(),
            }
            .into_response();
        }
    }
    let Some(token) = params.get("token") else {
        return OAuthError::InvalidRequest("missing required parameter token".into())
            .into_response();
    };
    let revoked = shared.store().revoke(token.expose());
    let mut response = no_store_json(StatusCode::OK, &json!({}));
    let note = if revoked {
        "revoked the token pair"
    } else {
        "unknown token (nothing to revoke)"
    };
    response.extensions_mut().insert(LogNote(note.to_owned()));
    response
}

//! The emulator's JSON answers: RFC 6749 §5.2 error bodies (`invalid_client` as 401, the
//! rest as 400, `invalid_token` as 401 with `WWW-Authenticate`) and the `no-store` headers
//! every token response carries.
//!
//! Descriptions follow the wording of Doorkeeper, the OAuth server Procore's messages match;
//! they never contain a value from the request.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::request_log::LogNote;

pub const INVALID_GRANT: &str = "The provided authorization grant is invalid, expired, revoked, \
    does not match the redirection URI used in the authorization request, or was issued to \
    another client.";
const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client \
    authentication included, or unsupported authentication method.";
const UNSUPPORTED_GRANT_TYPE: &str =
    "The authorization grant type is not supported by the authorization server.";

/// An OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// 400: a parameter is missing, repeated or malformed; the text says which.
    InvalidRequest(String),
    /// 401: no, unknown or wrong client credentials.
    InvalidClient { via_basic: bool },
    /// 400: the code or refresh token is not usable.
    InvalidGrant,
    /// 400: `grant_type` names no grant this server has.
    UnsupportedGrantType,
    /// 401 on token info: the access token is unknown, expired or revoked.
    InvalidToken(&'static str),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidToken(_) => "invalid_token",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidRequest(detail) => format!(
                "The request is missing a required parameter, includes an unsupported \
                 parameter value, or is otherwise malformed: {detail}"
            ),
            Self::InvalidClient { .. } => INVALID_CLIENT.to_owned(),
            Self::InvalidGrant => INVALID_GRANT.to_owned(),
            Self::UnsupportedGrantType => UNSUPPORTED_GRANT_TYPE.to_owned(),
            Self::InvalidToken(why) => format!("The access token is invalid: it is {why}."),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let description = self.description();
        let body = json!({"error": self.code(), "error_description": description});
        let mut response = no_store_json(self.status(), &body);
        let challenge = match &self {
            Self::InvalidClient { via_basic: true } => {
                Some("Basic realm=\"OAuth emulator\"".to_owned())
            }
            Self::InvalidToken(_) => Some(format!(
                "Bearer realm=\"OAuth emulator\", error=\"invalid_token\", \
                 error_description=\"{description}\""
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|text| HeaderValue::from_str(&text).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
            .extensions_mut()
            .insert(LogNote(self.code().to_owned()));
        response
    }
}

/// A JSON answer that no cache may keep (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: &Value) -> Response {
    no_store_json_text(status, body.to_string())
}

/// [`no_store_json`] for a body already serialized (keeping its field order).
pub fn no_store_json_text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

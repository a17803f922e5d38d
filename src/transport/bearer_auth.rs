//! Bearer-token access control for every HTTP endpoint: with `--auth-token` set, a request
//! without `Authorization: Bearer <token>` gets 401 and `WWW-Authenticate: Bearer`.
//!
//! Tokens are compared in constant time (as SHA-256 digests, so not even the length leaks).
//! Neither the expected nor a presented token is ever logged or echoed.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

const REALM: &str = "procore-token-mcp";

/// Who may call: anyone (no token configured) or holders of the token.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Option<Arc<[u8]>>,
}

/// What a request's `Authorization` header amounts to.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Valid,
    Missing,
    Invalid,
}

impl BearerAuth {
    /// `None` lets every request through.
    pub fn new(token: Option<&Secret>) -> Self {
        Self {
            expected: token.map(|token| fingerprint(token.expose().as_bytes())),
        }
    }

    pub fn enabled(&self) -> bool {
        self.expected.is_some()
    }

    fn judge(&self, authorization: Option<&HeaderValue>) -> Presented {
        let Some(expected) = &self.expected else {
            return Presented::Valid;
        };
        let Some(value) = authorization else {
            return Presented::Missing;
        };
        let Some(token) = bearer_token(value.as_bytes()) else {
            return Presented::Invalid;
        };
        let presented = fingerprint(token);
        if bool::from(presented.ct_eq(expected)) {
            Presented::Valid
        } else {
            Presented::Invalid
        }
    }
}

fn fingerprint(token: &[u8]) -> Arc<[u8]> {
    Arc::from(digest(&SHA256, token).as_ref())
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 6750 §2.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Axum middleware: 401 unless the request carries the configured bearer token.
pub async fn check(State(auth): State<BearerAuth>, request: Request, next: Next) -> Response {
    let mut credentials = request.headers().get_all(header::AUTHORIZATION).iter();
    let presented = match (credentials.next(), credentials.next()) {
        // Two credentials are one too many: which one would a proxy have checked?
        (Some(_), Some(_)) if auth.enabled() => Presented::Invalid,
        (first, _) => auth.judge(first),
    };
    match presented {
        Presented::Valid => next.run(request).await,
        Presented::Missing => {
            tracing::warn!(
                path = request.uri().path(),
                "refused request: no bearer token"
            );
            unauthorized(
                format!("Bearer realm=\"{REALM}\""),
                "Unauthorized: send Authorization: Bearer <token>, the token this server was \
                 started with (MCP_AUTH_TOKEN)",
            )
        }
        Presented::Invalid => {
            tracing::warn!(
                path = request.uri().path(),
                "refused request: wrong bearer token"
            );
            unauthorized(
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", \
                     error_description=\"the token does not match\""
                ),
                "Unauthorized: the bearer token does not match the one this server was \
                 started with (MCP_AUTH_TOKEN)",
            )
        }
    }
}

fn unauthorized(challenge: String, message: &'static str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, message).into_response();
    if let Ok(value) = HeaderValue::try_from(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn only_the_exact_token_passes() {
        let auth = BearerAuth::new(Some(&Secret::new("s3cret-token-0123456789")));
        assert!(auth.enabled());
        let judge = |value: Option<&str>| auth.judge(value.map(header).as_ref());
        assert_eq!(
            judge(Some("Bearer s3cret-token-0123456789")),
            Presented::Valid
        );
        assert_eq!(
            judge(Some("bearer s3cret-token-0123456789")),
            Presented::Valid
        );
        assert_eq!(judge(None), Presented::Missing);
        for wrong in [
            "Bearer s3cret-token-012345678",
            "Bearer s3cret-token-0123456789x",
            "Bearer S3cret-token-0123456789",
            "Basic s3cret-token-0123456789",
            "Bearers3cret-token-0123456789",
            "Bearer ",
            "s3cret-token-0123456789",
            "",
        ] {
            assert_eq!(judge(Some(wrong)), Presented::Invalid, "{wrong:?}");
        }
    }

    #[test]
    fn without_a_token_everyone_passes() {
        let auth = BearerAuth::new(None);
        assert!(!auth.enabled());
        assert_eq!(auth.judge(None), Presented::Valid);
    }
}

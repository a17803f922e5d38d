//! Access-token control for every MCP endpoint when the server is an OAuth resource server
//! (`--auth-issuer`): `Authorization: Bearer <JWT>` judged by the
//! [`ResourceServer`], the caller's principal attached to the request, and the RFC 6750 /
//! RFC 9728 challenges (401 with `resource_metadata`, 403 `insufficient_scope`).
//!
//! Also the `/.well-known/` answers: the protected resource metadata with an issuer, 404 for
//! every other well-known path (and for all of them without one), so a client probing for
//! OAuth learns where it stands. A token is never logged, echoed or accepted from a URL.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    exchange::Principal,
    resource_server::{Judgement, ResourceServer},
    tools::Caller,
};

/// The path of the protected resource metadata at the root.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Axum middleware: the request goes on, carrying its [`Caller`] (principal `iss#sub`, and
/// whether it may mint service-account tokens), only with a valid access token that has
/// every required scope.
pub async fn check(
    State(resource): State<Arc<ResourceServer>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if token_in_query(request.uri().query()) {
        tracing::warn!(
            path,
            "refused request: an access token in the URL (send it in Authorization)"
        );
        return challenge(
            &resource,
            StatusCode::BAD_REQUEST,
            Some((
                "invalid_request",
                "send the access token in the Authorization header, never in the URL",
            )),
        );
    }
    let mut credentials = request.headers().get_all(header::AUTHORIZATION).iter();
    let token = match (credentials.next(), credentials.next()) {
        (None, _) => {
            tracing::warn!(path, "refused request: no access token");
            return challenge(&resource, StatusCode::UNAUTHORIZED, None);
        }
        (Some(_), Some(_)) => None,
        (Some(value), None) => bearer_token(value),
    };
    let Some(token) = token else {
        tracing::warn!(
            path,
            "refused request: the credential is not one bearer token"
        );
        return invalid(&resource, "send one Authorization: Bearer <access token>");
    };
    match resource.judge(token).await {
        Judgement::Valid(claims) => {
            let service_accounts = resource
                .config()
                .service_scope
                .as_ref()
                .is_none_or(|scope| claims.scopes.contains(scope));
            request.extensions_mut().insert(Caller {
                principal: Principal::user(claims.principal_id()),
                service_accounts,
            });
            next.run(request).await
        }
        Judgement::Invalid(rejection) => {
            tracing::warn!(path, reason = %rejection, "refused request: invalid access token");
            invalid(&resource, &rejection.to_string())
        }
        Judgement::MissingScopes(missing) => {
            tracing::warn!(
                path,
                missing = missing.join(" "),
                "refused request: the access token lacks a required scope"
            );
            challenge(
                &resource,
                StatusCode::FORBIDDEN,
                Some((
                    "insufficient_scope",
                    "the access token lacks a scope this server requires",
                )),
            )
        }
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 6750 §2.1).
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.strip_prefix(' ')?.trim();
    (!token.is_empty()).then_some(token)
}

/// Whether the query string carries an `access_token` parameter (RFC 6750 §2.3, refused).
fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, _)| name.eq_ignore_ascii_case("access_token"))
    })
}

fn invalid(resource: &ResourceServer, description: &str) -> Response {
    challenge(
        resource,
        StatusCode::UNAUTHORIZED,
        Some(("invalid_token", description)),
    )
}

/// A refusal with its `WWW-Authenticate` challenge: where the metadata is, which scopes are
/// needed, and the error code (none when no token was sent, RFC 6750 §3.1).
fn challenge(
    resource: &ResourceServer,
    status: StatusCode,
    error: Option<(&str, &str)>,
) -> Response {
    let config = resource.config();
    let mut parameters = Vec::new();
    if let Some((code, description)) = error {
        parameters.push(format!("error=\"{code}\""));
        parameters.push(format!("error_description=\"{description}\""));
    }
    if !config.scopes.is_empty() {
        parameters.push(format!("scope=\"{}\"", config.scopes.join(" ")));
    }
    parameters.push(format!("resource_metadata=\"{}\"", config.metadata_url()));
    let body = match error {
        Some((code, description)) => format!("{code}: {description}\n"),
        None => format!(
            "Unauthorized: send Authorization: Bearer <access token> from {}; the resource \
             metadata is at {}\n",
            config.issuer,
            config.metadata_url()
        ),
    };
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", parameters.join(", "))) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The `/.well-known/` paths, outside every authentication layer: the protected resource
/// metadata (at the root and path-aware) when there is a resource server; 404 for every
/// other well-known path, and for all of them when there is none.
pub fn well_known(resource: Option<Arc<ResourceServer>>) -> Router {
    let not_found = || async {
        (
            StatusCode::NOT_FOUND,
            "Not Found: this server does not use OAuth discovery at this path\n",
        )
    };
    let mut router = Router::new().route("/.well-known/{*rest}", get(not_found));
    if let Some(resource) = resource {
        let document = resource.config().metadata();
        let metadata = move || {
            let document = document.clone();
            async move { Json(document) }
        };
        let mut paths = std::collections::BTreeSet::from([
            METADATA_PATH.to_owned(),
            format!("{METADATA_PATH}{}", crate::transport::http::MCP_PATH),
        ]);
        // Behind a proxy the public URL's path may differ from /mcp.
        if let Some((_, path)) = resource.config().metadata_url().split_once(METADATA_PATH) {
            paths.insert(format!("{METADATA_PATH}{path}"));
        }
        for path in paths {
            router = router.route(&path, get(metadata.clone()));
        }
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_from_the_header_only() {
        let header = |value: &str| HeaderValue::from_str(value).unwrap();
        assert_eq!(bearer_token(&header("Bearer a.b.c")), Some("a.b.c"));
        assert_eq!(bearer_token(&header("bearer  a.b.c ")), Some("a.b.c"));
        for refused in ["Basic a.b.c", "Bearer", "Bearer ", "Bearera.b.c", "a.b.c"] {
            assert_eq!(bearer_token(&header(refused)), None, "{refused}");
        }
        assert!(token_in_query(Some("sessionId=1&access_token=x")));
        assert!(token_in_query(Some("ACCESS_TOKEN=x")));
        assert!(!token_in_query(Some("sessionId=1")));
        assert!(!token_in_query(None));
    }
}

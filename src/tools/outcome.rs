//! Procore's answers → tool results: the body verbatim on success; on failure an error
//! result naming the status, quoting the body as received and adding one hint.
//!
//! Never rebuilds the JSON the user receives, and never calls a body that breaks the tool's
//! `outputSchema` a success. Error texts carry no secret of the request: quoted bodies are
//! scrubbed of what the request sent.

use std::fmt;

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::OutputShape;
use crate::{
    exchange::InternalError,
    exchange::Outcome,
    procore::{GrantType, ProcoreClient, UpstreamError, UpstreamResponse},
    secret::{Secret, SentSecrets},
};

/// The `_meta` key marking a result answered from the token store.
pub const REPLAYED_META: &str = "io.github.procore-token-mcp/replayed-from-store";

/// Which request to the login host an answer belongs to; hints depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Token(GrantType),
    TokenInfo,
    Revoke,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(grant) => write!(f, "{grant} token request"),
            Self::TokenInfo => f.write_str("token info request"),
            Self::Revoke => f.write_str("revoke request"),
        }
    }
}

/// A 2xx JSON answer that fits `shape` becomes the result (verbatim text, parsed
/// structured content); anything else becomes an error result, its body quoted with the
/// request's `sent` secrets scrubbed out.
pub fn json_response(
    procore: &ProcoreClient,
    request: Request,
    response: &UpstreamResponse,
    shape: &OutputShape,
    sent: &SentSecrets,
) -> CallToolResult {
    if !response.status.is_success() {
        return upstream_status_error(procore, request, response, sent);
    }
    let origin = procore.base().origin();
    let host = procore.host_name();
    let status = response.status;
    let Ok(text) = std::str::from_utf8(&response.body) else {
        return error_text(format!(
            "{host} ({origin}) answered HTTP {status} to the {request}, but the \
             body is not valid UTF-8 text ({} bytes).{}",
            response.body.len(),
            consumed_note(request)
        ));
    };
    let why = match verbatim(text, shape) {
        Ok(result) => return result,
        Err(why) => why,
    };
    let expected = match request {
        Request::Token(_) => "a token response (a JSON object with access_token and token_type)",
        _ => "the JSON object this tool's output schema describes",
    };
    let keep = match request {
        Request::Token(_) => {
            " If the body holds a refresh_token, it may be the only one still valid: keep it."
        }
        _ => "",
    };
    error_text(format!(
        "{host} ({origin}) answered HTTP {status} to the {request}, but the body \
         is not {expected} ({why}). Body as received:\n{}\n\nHint: check that the login URL \
         points at a Procore login host.{keep}{}",
        sent.scrub(text),
        consumed_note(request)
    ))
}

/// The text verbatim and the parsed object as structured content, if it fits `shape`;
/// otherwise why not.
fn verbatim(text: &str, shape: &OutputShape) -> Result<CallToolResult, String> {
    let value = serde_json::from_str::<Value>(text).map_err(|_| "not JSON".to_owned())?;
    if let Some(violation) = shape.violation(&value) {
        return Err(violation);
    }
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

/// An exchange of `request` that brought the caller no token, as an error result and its
/// log labels (the grant, the outcome), the way every tool reports each way it can end.
/// `replayed` says why an answer from the store is no answer here.
pub fn failed_exchange(
    procore: &ProcoreClient,
    request: Request,
    ended: &Outcome,
    replayed: &str,
) -> (CallToolResult, &'static str, String) {
    let grant = match request {
        Request::Token(grant) => grant.as_str(),
        Request::TokenInfo | Request::Revoke => "-",
    };
    match ended {
        Outcome::Answered { response, sent, .. } => (
            upstream_status_error(procore, request, response, sent),
            grant,
            response.status.as_u16().to_string(),
        ),
        Outcome::Failed(error) => (
            request_failure(request, error),
            grant,
            error.kind().to_owned(),
        ),
        Outcome::StoreUnavailable(error) => (
            refused(&format!("the token store could not be used: {error}")),
            "-",
            "store_unavailable".to_owned(),
        ),
        Outcome::Internal(error) => (
            internal_failure(request, error),
            grant,
            "internal_error".to_owned(),
        ),
        Outcome::Replayed { .. } => (
            error_text(replayed.to_owned()),
            "-",
            "internal_error".to_owned(),
        ),
    }
}

/// A result of this server's own making: the JSON as text and as structured content.
pub fn summary(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

/// The stored successor of a refresh token this store rotated moments ago.
pub fn replayed(body: &Secret, rotated_secs_ago: u64, shape: &OutputShape) -> CallToolResult {
    match verbatim(body.expose(), shape) {
        Ok(mut result) => {
            let mut meta = rmcp::model::MetaObject::new();
            meta.0.insert(
                REPLAYED_META.into(),
                serde_json::json!({ "rotated_secs_ago": rotated_secs_ago }),
            );
            result.meta = Some(meta);
            result
        }
        // Quoted whole: it is the caller's own pair, and may hold the only live refresh token.
        Err(why) => error_text(format!(
            "Nothing was sent to Procore: the token store's pair for this refresh token \
             (rotated {rotated_secs_ago} s ago) is not a token response ({why}). Stored body:\n\
             {}\n\nHint: if it holds a refresh_token, that is the one to use next.",
            body.expose()
        )),
    }
}

/// Add to a successful result that the new pair could not be stored.
pub fn warn_unstored(result: &mut CallToolResult, error: &str) {
    result.content.push(ContentBlock::text(format!(
        "Warning: this token pair could not be written to the token store ({error}). The \
         refresh token above is now the only valid one: keep it, and pass it explicitly in the \
         next refresh."
    )));
}

/// A call refused before anything was sent.
pub fn refused(reason: &str) -> CallToolResult {
    error_text(format!("Nothing was sent to Procore: {reason}."))
}

/// Any non-2xx answer from the login host, its body quoted with `sent` scrubbed out.
pub fn upstream_status_error(
    procore: &ProcoreClient,
    request: Request,
    response: &UpstreamResponse,
    sent: &SentSecrets,
) -> CallToolResult {
    let origin = procore.base().origin();
    let host = procore.host_name();
    let status = response.status;
    let reason = status.canonical_reason().unwrap_or("");
    let body = String::from_utf8_lossy(&response.body);
    let body_shown = if body.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        sent.scrub(&body)
    };
    let hint = hint(procore, request, response);
    error_text(format!(
        "{host} ({origin}) answered HTTP {} {reason} to the {request}.\n\
         Response body as received:\n{body_shown}\n\nHint: {hint}",
        status.as_u16()
    ))
}

/// No complete answer: what failed, against which host, after how long, and what it means
/// for single-use codes and refresh tokens.
pub fn request_failure(request: Request, error: &UpstreamError) -> CallToolResult {
    let consequence = if error.may_have_reached_upstream() {
        match request {
            Request::Token(GrantType::RefreshToken) => {
                " The request may have reached Procore, so the old refresh token may already \
                 be consumed and its successor lost with the answer. Try the refresh once \
                 more with the same token; if Procore answers invalid_grant, the user must \
                 authorize the app again."
            }
            Request::Token(GrantType::AuthorizationCode) => {
                " The request may have reached Procore, so the authorization code may already \
                 be used up; if a retry answers invalid_grant, have the user authorize again \
                 for a new code."
            }
            Request::Token(GrantType::ClientCredentials) | Request::TokenInfo => {
                " It is safe to call again."
            }
            Request::Revoke => {
                " The token may or may not be revoked now; revoking again is safe (Procore \
                 answers 200 for a token it no longer knows)."
            }
        }
    } else {
        " Nothing reached Procore, so nothing was used or changed; it is safe to call again \
         once the host is reachable."
    };
    error_text(format!("The {request} failed: {error}.{consequence}"))
}

/// A failure inside this server: what it was, and whether the request may have gone out.
pub fn internal_failure(request: Request, error: &InternalError) -> CallToolResult {
    let consequence = match error {
        InternalError::FlightTable => " Nothing was sent to Procore; it is safe to call again.",
        InternalError::Task(_) => match request {
            Request::Token(GrantType::RefreshToken) => {
                " The request may have reached Procore: if the next refresh with this token \
                 answers invalid_grant, the user must authorize the app again."
            }
            _ => " The request may or may not have reached Procore.",
        },
    };
    error_text(format!(
        "The {request} failed inside this server: {error}.{consequence}"
    ))
}

fn hint(procore: &ProcoreClient, request: Request, response: &UpstreamResponse) -> String {
    let status = response.status;
    if status.is_redirection() {
        let target = response
            .location
            .as_deref()
            .unwrap_or("(no Location header)");
        return format!(
            "the login host redirected to {target}. Redirects are not followed, so no \
             secret is sent to another host; check --procore-env or --login-url."
        );
    }
    if status.as_u16() == 429 {
        let wait = match &response.retry_after {
            Some(value) => format!("Retry-After says {value}"),
            None => "no Retry-After was given; wait a minute".to_owned(),
        };
        return format!(
            "Procore is rate limiting this application ({wait}). Wait that long before the \
             next request, and send one refresh at a time."
        );
    }
    if status.is_server_error() {
        let mut text = format!(
            "{} had a problem; try again in a little while.",
            procore.host_name()
        );
        if let Some(value) = &response.retry_after {
            text.push_str(&format!(" Retry-After says {value}."));
        }
        text.push_str(consumed_note(request));
        return text;
    }
    let error_code = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned));
    let origin = procore.base().origin();
    match (error_code.as_deref(), request) {
        (Some("invalid_grant"), Request::Token(GrantType::AuthorizationCode)) => {
            "invalid_grant: the authorization code expired (codes last 10 minutes), was \
             already used, was issued to another client, or redirect_uri differs from the one \
             used when authorizing; credentials of another Procore environment cause it too. \
             Have the user authorize again for a fresh code (grant_app_authorization)."
                .to_owned()
        }
        (Some("invalid_grant"), Request::Token(GrantType::RefreshToken)) => {
            "invalid_grant: this refresh token was already used (each works once, and a \
             refresh consumes it even when its answer is lost), was revoked, or belongs to \
             another client or Procore environment; a monthly sandbox reset also ends every \
             refresh token. Use the newest refresh token you hold; if there is none, the user \
             must authorize the app again."
                .to_owned()
        }
        (Some("invalid_grant"), _) => "invalid_grant: the grant was refused; check that the \
            app is a Developer Managed Service Account installed in the company, in this \
            Procore environment."
            .to_owned(),
        (Some("invalid_client"), _) => format!(
            "invalid_client: the client_id/client_secret pair was not accepted by {origin}. \
             Check both values, and that they belong to this Procore environment (sandbox and \
             production credentials differ)."
        ),
        (Some("invalid_token"), _) | (None, Request::TokenInfo) if status.as_u16() == 401 => {
            "invalid_token: the access token is expired, revoked, or was issued by another \
             Procore environment. Get a new one with get_or_refresh_an_access_token \
             (grant_type=refresh_token)."
                .to_owned()
        }
        (Some("invalid_request"), _) => "invalid_request: a required parameter is missing or \
            malformed, e.g. redirect_uri with authorization_code, or a value with stray \
            spaces."
            .to_owned(),
        (Some("unsupported_grant_type"), _) => "unsupported_grant_type: the login host does \
            not accept this grant_type; use authorization_code, refresh_token or \
            client_credentials."
            .to_owned(),
        (Some("unauthorized_client"), _) => "unauthorized_client: this application may not \
            use this grant type (client_credentials needs a Developer Managed Service \
            Account)."
            .to_owned(),
        (Some("invalid_scope"), _) => {
            "invalid_scope: Procore does not take a scope parameter; leave it out.".to_owned()
        }
        _ if status.as_u16() == 401 => format!(
            "the login host refused the credentials; check them, and that they belong to the \
             environment of {origin}."
        ),
        _ if status.as_u16() == 404 || status.as_u16() == 405 => format!(
            "{origin} has no such endpoint; check that --procore-env or --login-url names a \
             Procore login host."
        ),
        _ => "the request was refused; the response body above says why.".to_owned(),
    }
}

fn consumed_note(request: Request) -> &'static str {
    match request {
        Request::Token(GrantType::RefreshToken) => {
            " The old refresh token may already be consumed: if the next refresh with it \
             answers invalid_grant, the user must authorize the app again."
        }
        Request::Token(GrantType::AuthorizationCode) => {
            " The authorization code may already be used up; if so, the user must authorize \
             again."
        }
        _ => "",
    }
}

/// An error result carrying `text` alone.
pub fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::{procore::LoginBase, tools::token};

    fn procore() -> ProcoreClient {
        ProcoreClient::new(
            LoginBase::parse("https://login.procore.com").unwrap(),
            Duration::from_secs(5),
        )
    }

    fn answer(status: u16, body: &str) -> UpstreamResponse {
        UpstreamResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            retry_after: None,
            location: None,
            elapsed: Duration::from_millis(3),
        }
    }

    fn token_shape() -> OutputShape {
        OutputShape::of(&token::definition(crate::tools::Capabilities::default())).unwrap()
    }

    fn text(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    const REFRESH: Request = Request::Token(GrantType::RefreshToken);
    const CODE: Request = Request::Token(GrantType::AuthorizationCode);

    #[test]
    fn a_token_response_passes_verbatim_with_structured_content() {
        let body =
            "{\"access_token\":\"at\", \"token_type\":\"bearer\",\n\"zz\":{\"b\":1,\"a\":2}}";
        let result = json_response(
            &procore(),
            REFRESH,
            &answer(200, body),
            &token_shape(),
            &SentSecrets::default(),
        );
        assert_eq!(result.is_error, Some(false));
        assert_eq!(text(&result), body, "the text is the body, byte for byte");
        assert_eq!(
            result.structured_content.unwrap(),
            serde_json::from_str::<Value>(body).unwrap()
        );
    }

    #[test]
    fn a_success_that_breaks_the_schema_is_an_error_naming_every_broken_rule() {
        let body = r#"{"access_token":7,"expires_in":"soon","refresh_token":"rt-next"}"#;
        let result = json_response(
            &procore(),
            REFRESH,
            &answer(200, body),
            &token_shape(),
            &SentSecrets::default(),
        );
        let message = text(&result);
        assert_eq!(result.is_error, Some(true));
        assert!(result.structured_content.is_none());
        for part in [
            "at /access_token",
            "at /expires_in",
            "\"token_type\" is a required property",
            body,
            "keep it",
            "may already be consumed",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        let not_json = json_response(
            &procore(),
            CODE,
            &answer(200, "<html>"),
            &token_shape(),
            &SentSecrets::default(),
        );
        assert!(
            text(&not_json).contains("(not JSON)"),
            "{}",
            text(&not_json)
        );
    }

    #[test]
    fn quoted_bodies_lose_the_requests_secrets_but_keep_the_rest() {
        let sent = SentSecrets::new([&Secret::new("cs-canary-1234"), &Secret::new("rt-old-5678")]);
        let body = r#"{"error":"invalid_grant","echo":"cs-canary-1234 rt-old-5678 rt-new-9999"}"#;
        let result = upstream_status_error(&procore(), REFRESH, &answer(400, body), &sent);
        let message = text(&result);
        assert!(!message.contains("cs-canary-1234") && !message.contains("rt-old-5678"));
        assert!(
            message.contains("[redacted] [redacted] rt-new-9999"),
            "{message}"
        );
        // The hint still reads the error code from the body as received.
        assert!(
            message.contains("Hint: invalid_grant: this refresh token"),
            "{message}"
        );
    }

    #[test]
    fn each_error_gets_the_hint_for_its_grant_and_status() {
        let cases: [(Request, u16, &str, &str); 9] = [
            (
                CODE,
                400,
                r#"{"error":"invalid_grant"}"#,
                "codes last 10 minutes",
            ),
            (
                REFRESH,
                400,
                r#"{"error":"invalid_grant"}"#,
                "each works once",
            ),
            (
                REFRESH,
                401,
                r#"{"error":"invalid_client"}"#,
                "sandbox and production",
            ),
            (
                Request::TokenInfo,
                401,
                "",
                "invalid_token: the access token",
            ),
            (
                REFRESH,
                400,
                r#"{"error":"invalid_scope"}"#,
                "does not take a scope",
            ),
            (REFRESH, 404, "nope", "has no such endpoint"),
            (REFRESH, 503, "", "may already be consumed"),
            (REFRESH, 429, "", "no Retry-After was given"),
            (REFRESH, 418, "", "the response body above says why"),
        ];
        for (request, status, body, hint) in cases {
            let result = upstream_status_error(
                &procore(),
                request,
                &answer(status, body),
                &SentSecrets::default(),
            );
            let message = text(&result);
            assert!(message.contains(&format!("HTTP {status}")), "{message}");
            assert!(
                message.contains(hint),
                "{status} {body}: {hint:?} in {message}"
            );
        }
        let mut moved = answer(302, "");
        moved.location = Some("https://elsewhere.example/oauth/token".into());
        let message = text(&upstream_status_error(
            &procore(),
            REFRESH,
            &moved,
            &SentSecrets::default(),
        ));
        assert!(message.contains("redirected to https://elsewhere.example/oauth/token"));
        assert!(message.contains("(empty body)"), "{message}");
    }

    #[test]
    fn the_login_host_is_named_as_configured() {
        let message = text(&upstream_status_error(
            &procore(),
            REFRESH,
            &answer(400, "{}"),
            &SentSecrets::default(),
        ));
        assert!(message.starts_with("Procore's login host (https://login.procore.com)"));
        let emulator = procore().with_host_name("the local emulator");
        let message = text(&upstream_status_error(
            &emulator,
            REFRESH,
            &answer(503, ""),
            &SentSecrets::default(),
        ));
        assert!(message.starts_with("the local emulator (https://login.procore.com)"));
        assert!(
            message.contains("Hint: the local emulator had a problem"),
            "{message}"
        );
    }

    #[test]
    fn a_failure_says_what_it_means_for_single_use_values() {
        let refused = UpstreamError::Connect {
            origin: "https://login.procore.com".into(),
            detail: "refused".into(),
            elapsed: Duration::from_millis(1),
        };
        let message = text(&request_failure(REFRESH, &refused));
        assert!(message.contains("Nothing reached Procore"), "{message}");
        let cut = UpstreamError::Transfer {
            origin: "https://login.procore.com".into(),
            detail: "reset".into(),
            elapsed: Duration::from_millis(1),
        };
        let message = text(&request_failure(REFRESH, &cut));
        assert!(message.contains("may already be consumed"), "{message}");
        let message = text(&request_failure(Request::Revoke, &cut));
        assert!(message.contains("revoking again is safe"), "{message}");
        let message = text(&internal_failure(REFRESH, &InternalError::FlightTable));
        assert!(message.contains("Nothing was sent"), "{message}");
    }

    #[test]
    fn a_replayed_pair_is_marked_and_a_broken_one_quoted_whole() {
        let body = Secret::new(r#"{"access_token":"at","token_type":"bearer"}"#);
        let result = replayed(&body, 4, &token_shape());
        assert_eq!(result.is_error, Some(false));
        assert_eq!(
            result.meta.unwrap().0[REPLAYED_META],
            json!({"rotated_secs_ago": 4})
        );
        let broken = Secret::new(r#"{"access_token":"at","refresh_token":"rt-live"}"#);
        let result = replayed(&broken, 4, &token_shape());
        assert_eq!(result.is_error, Some(true));
        assert!(text(&result).contains(broken.expose()), "{}", text(&result));
    }
}

//! Procore's answers → tool results: the body verbatim on success; on failure an error
//! result naming the status, quoting the body as received and adding one hint.
//!
//! Never rebuilds the JSON the user receives. Error texts carry no secret of the request.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use crate::{
    procore::{GrantType, ProcoreClient, UpstreamError, UpstreamResponse},
    secret::Secret,
};

/// The `_meta` key marking a result answered from the token store.
pub const REPLAYED_META: &str = "io.github.procore-token-mcp/replayed-from-store";

/// A 2xx token response becomes the result; anything else becomes an error result.
pub fn token_response(
    procore: &ProcoreClient,
    grant: GrantType,
    response: &UpstreamResponse,
) -> CallToolResult {
    if !response.status.is_success() {
        return upstream_status_error(procore, &format!("{grant} token request"), grant, response);
    }
    let origin = procore.base().origin();
    let status = response.status;
    let Ok(text) = std::str::from_utf8(&response.body) else {
        return error_text(format!(
            "Procore's login host ({origin}) answered HTTP {status} to the {grant} token \
             request, but the body is not valid UTF-8 text, so it is not a token response \
             ({} bytes).{}",
            response.body.len(),
            consumed_note(grant)
        ));
    };
    match verbatim_token(text) {
        Some(result) => result,
        None => error_text(format!(
            "Procore's login host ({origin}) answered HTTP {status} to the {grant} token \
             request, but the body is not a token response (a JSON object with \
             access_token). Body as received:\n{text}\n\nHint: check that the login URL \
             points at a Procore login host.{}",
            consumed_note(grant)
        )),
    }
}

/// A token response as the result: the text verbatim, the parsed object as structured
/// content; `None` unless it is a JSON object with a string `access_token`.
fn verbatim_token(text: &str) -> Option<CallToolResult> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) if value.get("access_token").is_some_and(Value::is_string) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            Some(result)
        }
        _ => None,
    }
}

/// The stored successor of a refresh token this store rotated moments ago.
pub fn replayed(body: &Secret, rotated_secs_ago: u64) -> CallToolResult {
    match verbatim_token(body.expose()) {
        Some(mut result) => {
            let mut meta = rmcp::model::MetaObject::new();
            meta.0.insert(
                REPLAYED_META.into(),
                serde_json::json!({ "rotated_secs_ago": rotated_secs_ago }),
            );
            result.meta = Some(meta);
            result
        }
        None => error_text(
            "the stored token pair could not be read back as a token response; nothing was \
             sent to Procore"
                .into(),
        ),
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

/// Any non-2xx answer from the login host, for the request described by `what`.
pub fn upstream_status_error(
    procore: &ProcoreClient,
    what: &str,
    grant: GrantType,
    response: &UpstreamResponse,
) -> CallToolResult {
    let origin = procore.base().origin();
    let status = response.status;
    let reason = status.canonical_reason().unwrap_or("");
    let body = String::from_utf8_lossy(&response.body);
    let body_shown = if body.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        body.into_owned()
    };
    let hint = hint(procore, grant, response);
    error_text(format!(
        "Procore's login host ({origin}) answered HTTP {} {reason} to the {what}.\n\
         Response body as received:\n{body_shown}\n\nHint: {hint}",
        status.as_u16()
    ))
}

/// No complete answer: what failed, against which host, after how long, and what it means
/// for single-use codes and refresh tokens.
pub fn token_failure(grant: GrantType, error: &UpstreamError) -> CallToolResult {
    let consequence = if error.may_have_reached_upstream() {
        match grant {
            GrantType::RefreshToken => {
                " The request may have reached Procore, so the old refresh token may already \
                 be consumed and its successor lost with the answer. Try the refresh once \
                 more with the same token; if Procore answers invalid_grant, the user must \
                 authorize the app again."
            }
            GrantType::AuthorizationCode => {
                " The request may have reached Procore, so the authorization code may already \
                 be used up; if a retry answers invalid_grant, have the user authorize again \
                 for a new code."
            }
            GrantType::ClientCredentials => {
                " Client credentials are not single-use: it is safe to call again."
            }
        }
    } else {
        " Nothing reached Procore, so no code or refresh token was used; it is safe to call \
         again once the host is reachable."
    };
    error_text(format!(
        "The {grant} token request failed: {error}.{consequence}"
    ))
}

fn hint(procore: &ProcoreClient, grant: GrantType, response: &UpstreamResponse) -> String {
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
        let mut text =
            "Procore's login host had a problem; try again in a little while.".to_owned();
        if let Some(value) = &response.retry_after {
            text.push_str(&format!(" Retry-After says {value}."));
        }
        text.push_str(consumed_note(grant));
        return text;
    }
    let error_code = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned));
    let origin = procore.base().origin();
    match error_code.as_deref() {
        Some("invalid_grant") => match grant {
            GrantType::AuthorizationCode => "invalid_grant: the authorization code expired \
                (codes last 10 minutes), was already used, was issued to another client, or \
                redirect_uri differs from the one used when authorizing; credentials of \
                another Procore environment cause it too. Have the user authorize again for \
                a fresh code."
                .to_owned(),
            GrantType::RefreshToken => "invalid_grant: this refresh token was already used \
                (each works once, and a refresh consumes it even when its answer is lost), \
                was revoked, or belongs to another client or Procore environment; a monthly \
                sandbox reset also ends every refresh token. Use the newest refresh token you \
                hold; if there is none, the user must authorize the app again."
                .to_owned(),
            GrantType::ClientCredentials => "invalid_grant: the service account's grant was \
                refused; check that the app is a Developer Managed Service Account installed \
                in the company, in this Procore environment."
                .to_owned(),
        },
        Some("invalid_client") => format!(
            "invalid_client: the client_id/client_secret pair was not accepted by {origin}. \
             Check both values, and that they belong to this Procore environment (sandbox and \
             production credentials differ)."
        ),
        Some("invalid_request") => "invalid_request: a required parameter is missing or \
            malformed, e.g. redirect_uri with authorization_code, or a value with stray \
            spaces."
            .to_owned(),
        Some("unsupported_grant_type") => "unsupported_grant_type: the login host does not \
            accept this grant_type; use authorization_code, refresh_token or \
            client_credentials."
            .to_owned(),
        Some("unauthorized_client") => "unauthorized_client: this application may not use \
            this grant type (client_credentials needs a Developer Managed Service Account)."
            .to_owned(),
        Some("invalid_scope") => "invalid_scope: Procore does not take a scope parameter; \
            leave it out."
            .to_owned(),
        _ if status.as_u16() == 401 => format!(
            "the login host refused the client credentials; check client_id and \
             client_secret, and that they belong to the environment of {origin}."
        ),
        _ if status.as_u16() == 404 || status.as_u16() == 405 => format!(
            "{origin} has no token endpoint here; check that --procore-env or --login-url \
             names a Procore login host."
        ),
        _ => "the request was refused; the response body above says why.".to_owned(),
    }
}

fn consumed_note(grant: GrantType) -> &'static str {
    match grant {
        GrantType::RefreshToken => {
            " The old refresh token may already be consumed: if the next refresh with it \
             answers invalid_grant, the user must authorize the app again."
        }
        GrantType::AuthorizationCode => {
            " The authorization code may already be used up; if so, the user must authorize \
             again."
        }
        GrantType::ClientCredentials => "",
    }
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

//! `GET /oauth/authorize`, Procore's "Grant App Authorization", without a login: the
//! emulated user approves at once. For the out-of-band redirect URI the browser is sent to
//! `/oauth/authorize/<CODE>`, a page showing the code to copy; for the registered URI it is
//! sent to `redirect_uri?code=…&state=…`. An unknown client or redirect URI gets an error
//! page and no code.
//!
//! Pages escape everything they show; they never reflect a request value unescaped.

use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use super::{AppState, request_log::LogNote};
use crate::OOB_REDIRECT_URI;

/// The `id` of the element that holds the code on the code page.
pub const CODE_ELEMENT_ID: &str = "authorization_code";

pub async fn authorize(State(shared): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let mut response_type = None;
    let mut client_id = None;
    let mut redirect_uri = None;
    let mut state = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "response_type" => &mut response_type,
            "client_id" => &mut client_id,
            "redirect_uri" => &mut redirect_uri,
            "state" => &mut state,
            _ => continue,
        };
        if slot.is_some() {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The parameter {name} is given more than once."),
            );
        }
        *slot = Some(value.into_owned());
    }
    let app = &shared.app;
    if !client_id.as_deref().is_some_and(|id| app.is(id)) {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed due to unknown client: the client_id is missing \
             or is not registered with this emulator.",
        );
    }
    let Some(redirect_uri) = redirect_uri.filter(|uri| !uri.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing the required parameter redirect_uri.",
        );
    };
    if !app.accepts_redirect(&redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "The requested redirect URI is malformed or doesn't match the registered \
             redirect URI of this client.",
        );
    }
    let oob = redirect_uri == OOB_REDIRECT_URI;
    if response_type.as_deref() != Some("code") {
        let description = "The authorization server does not support this response type; \
                           use response_type=code.";
        if oob {
            return error_page(
                StatusCode::BAD_REQUEST,
                "unsupported_response_type",
                description,
            );
        }
        let mut pairs = vec![
            ("error", "unsupported_response_type"),
            ("error_description", description),
        ];
        if let Some(state) = state.as_deref() {
            pairs.push(("state", state));
        }
        return redirect(
            &with_query(&redirect_uri, &pairs),
            "unsupported_response_type",
        );
    }
    let code = shared
        .store()
        .issue_code(&app.client_id, &redirect_uri, shared.code_ttl);
    if oob {
        return redirect(
            &format!("/oauth/authorize/{}", code.expose()),
            "approved; code shown on the out-of-band page",
        );
    }
    let mut pairs = vec![("code", code.expose())];
    if let Some(state) = state.as_deref() {
        pairs.push(("state", state));
    }
    redirect(
        &with_query(&redirect_uri, &pairs),
        "approved; redirected with the code",
    )
}

/// The out-of-band page showing a live code.
pub async fn show_code(State(shared): State<AppState>, Path(code): Path<String>) -> Response {
    if !shared.store().code_is_live(&code) {
        return error_page(
            StatusCode::NOT_FOUND,
            "invalid_grant",
            "This authorization code is unknown, already used or expired. Authorize again \
             for a new one.",
        );
    }
    let minutes = shared.code_ttl.as_secs().div_ceil(60);
    let body = format!(
        "<p>The application is authorized. Copy this code and paste it into the \
         application; it works once, within {minutes} minute(s).</p>\n\
         <p><code id=\"{CODE_ELEMENT_ID}\">{}</code></p>",
        escape(&code)
    );
    let mut response = (
        StatusCode::OK,
        no_store_headers(),
        Html(page("Authorization code", &body)),
    )
        .into_response();
    response
        .extensions_mut()
        .insert(LogNote("code page shown".to_owned()));
    response
}

/// Any path the emulator does not serve.
pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "not_found",
        "The local OAuth emulator serves /oauth/authorize, /oauth/token, /oauth/token/info \
         and /oauth/revoke.",
    )
}

fn no_store_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

fn redirect(location: &str, note: &str) -> Response {
    let mut response = match HeaderValue::from_str(location) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_redirect_uri",
                "The redirect URI cannot be used in a Location header.",
            );
        }
    };
    response.extensions_mut().insert(LogNote(note.to_owned()));
    response
}

/// `base` with `pairs` appended to its query (keeping what it already has).
fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => base.to_owned(),
    }
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    let body = format!(
        "<p>The authorization request was refused: <strong id=\"error\">{}</strong></p>\n\
         <p id=\"error_description\">{}</p>",
        escape(error),
        escape(description)
    );
    let mut response = (status, Html(page("Authorization error", &body))).into_response();
    response.extensions_mut().insert(LogNote(error.to_owned()));
    response
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>{title} · local OAuth emulator</title></head>\n<body>\n<h1>{title}</h1>\n\
         {body}\n<p><small>Served by procore-token-mcp's local OAuth emulator, for tests and \
         demos. This is not Procore.</small></p>\n</body>\n</html>\n"
    )
}

/// HTML text escaping.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn appends_to_existing_queries() {
        assert_eq!(
            with_query(
                "https://app.example/cb?x=1",
                &[("code", "c"), ("state", "a b")]
            ),
            "https://app.example/cb?x=1&code=c&state=a+b"
        );
    }
}

//! `POST /oauth/token`, Procore's "Get Or Refresh An Access Token": the
//! `authorization_code`, `refresh_token` and `client_credentials` grants, with the armed
//! faults applied around them.
//!
//! Rules: a code works once, only for its client and redirect URI, until it expires. A
//! refresh token works once: any request that names a live one consumes it, whatever the
//! outcome (even a wrong client secret), and a success returns a new pair; the old access
//! token lives on until it expires. Client credentials get an access token and no refresh
//! token. Every answer carries `Cache-Control: no-store`.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::json;

use super::{
    AppState,
    connection::ConnectionInfo,
    faults::StatusFault,
    oauth_error::{OAuthError, no_store_json, no_store_json_text},
    request_body::{self, ClientCredentials, Params},
    request_log::LogNote,
    store::{IssuedTokens, unix_now},
};
use crate::GrantType;

/// The success body, in Procore's field order.
#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    created_at: u64,
}

/// What processing a request produced.
struct Outcome {
    response: Response,
    /// Close the connection instead of answering (the lost-response fault).
    drop_connection: bool,
}

impl From<OAuthError> for Outcome {
    fn from(error: OAuthError) -> Self {
        Self {
            response: error.into_response(),
            drop_connection: false,
        }
    }
}

pub async fn token(
    State(shared): State<AppState>,
    ConnectInfo(connection): ConnectInfo<ConnectionInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = request_body::parse(&headers, &body);
    let grant_name = match &parsed {
        Ok(Ok(params)) => params.text("grant_type").map(str::to_owned),
        _ => None,
    };
    let grant = grant_name.as_deref().and_then(GrantType::parse);
    let (status_fault, delay) = {
        let mut store = shared.store();
        store.stats.token_requests.count(grant);
        let status_fault = store.faults.take_status(grant);
        let delay = store.faults.take_delay(grant);
        if status_fault.is_some() {
            store.stats.faults_applied.status += 1;
        }
        if delay.is_some() {
            store.stats.faults_applied.delay += 1;
        }
        (status_fault, delay)
    };
    let outcome = match status_fault {
        Some(fault) => Outcome {
            response: status_fault_response(&fault),
            drop_connection: false,
        },
        None => match parsed {
            Err(_unreadable_basic) => OAuthError::InvalidClient { via_basic: true }.into(),
            Ok(Err(body)) => OAuthError::InvalidRequest(body.to_string()).into(),
            Ok(Ok(params)) => process(&shared, &params, grant_name.as_deref()),
        },
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = outcome.response;
    let grant_label = grant.map_or("-", GrantType::as_str);
    let note = response
        .extensions()
        .get::<LogNote>()
        .map_or("ok", |note| note.0.as_str())
        .to_owned();
    let mut note = format!("grant_type={grant_label} {note}");
    if delay.is_some() {
        note.push_str(" (delayed by fault)");
    }
    if outcome.drop_connection {
        connection.switch.drop_connection();
        note.push_str(" (answer dropped by fault: connection closed)");
    }
    response.extensions_mut().insert(LogNote(note));
    response
}

fn process(shared: &AppState, params: &Params, grant_name: Option<&str>) -> Outcome {
    let Some(grant_name) = grant_name else {
        return OAuthError::InvalidRequest("missing required parameter grant_type".into()).into();
    };
    let Some(grant) = GrantType::parse(grant_name) else {
        return OAuthError::UnsupportedGrantType.into();
    };
    let client = params.client();
    if grant == GrantType::RefreshToken {
        return refresh(shared, params, client);
    }
    let client = match authenticated(shared, params, client) {
        Ok(client) => client,
        Err(error) => return error.into(),
    };
    if grant == GrantType::AuthorizationCode {
        return authorization_code(shared, params, &client);
    }
    let tokens = shared
        .store()
        .issue_tokens(&client.client_id, None, false, shared.access_ttl);
    success(&tokens)
}

/// The client's credentials, if they are the registered application's.
fn authenticated(
    shared: &AppState,
    params: &Params,
    client: Result<Option<ClientCredentials>, request_body::BodyError>,
) -> Result<ClientCredentials, OAuthError> {
    let via_basic = params.used_basic();
    match client {
        Err(error) => Err(OAuthError::InvalidRequest(error.to_string())),
        Ok(Some(client)) if shared.app.authenticates(&client) => Ok(client),
        Ok(_) => Err(OAuthError::InvalidClient { via_basic }),
    }
}

fn authorization_code(shared: &AppState, params: &Params, client: &ClientCredentials) -> Outcome {
    let Some(code) = params.get("code") else {
        return OAuthError::InvalidRequest("missing required parameter code".into()).into();
    };
    let Some(redirect_uri) = params.text("redirect_uri") else {
        return OAuthError::InvalidRequest("missing required parameter redirect_uri".into()).into();
    };
    let mut store = shared.store();
    match store.redeem_code(code.expose(), &client.client_id, redirect_uri) {
        Ok(user_id) => {
            let tokens =
                store.issue_tokens(&client.client_id, Some(user_id), true, shared.access_ttl);
            success(&tokens)
        }
        Err(refusal) => refused(OAuthError::InvalidGrant, refusal.reason()),
    }
}

fn refresh(
    shared: &AppState,
    params: &Params,
    client: Result<Option<ClientCredentials>, request_body::BodyError>,
) -> Outcome {
    let mut store = shared.store();
    // Any use consumes the refresh token, before anything else is judged.
    let taken = params
        .get("refresh_token")
        .and_then(|token| store.take_refresh(token.expose()));
    let client = match authenticated(shared, params, client) {
        Ok(client) => client,
        Err(error) => {
            store.stats.failed_refreshes += 1;
            let note = if taken.is_some() {
                "the refresh token was consumed anyway"
            } else {
                "-"
            };
            return refused(error, note);
        }
    };
    if params.get("refresh_token").is_none() {
        store.stats.failed_refreshes += 1;
        return OAuthError::InvalidRequest("missing required parameter refresh_token".into())
            .into();
    }
    let Some(grant) = taken else {
        store.stats.failed_refreshes += 1;
        return refused(OAuthError::InvalidGrant, "unknown, used or revoked");
    };
    if grant.client_id != client.client_id {
        store.stats.failed_refreshes += 1;
        return refused(OAuthError::InvalidGrant, "issued to another client");
    }
    let tokens = store.issue_tokens(&client.client_id, grant.user_id, true, shared.access_ttl);
    store.stats.successful_refreshes += 1;
    let drop_connection = store.faults.take_drop_after_refresh();
    if drop_connection {
        store.stats.faults_applied.drop_after_refresh += 1;
    }
    Outcome {
        drop_connection,
        ..success(&tokens)
    }
}

/// An OAuth error whose log line also says why (never with a value).
fn refused(error: OAuthError, why: &str) -> Outcome {
    let code = error.code();
    let mut response = error.into_response();
    response
        .extensions_mut()
        .insert(LogNote(format!("{code} ({why})")));
    Outcome {
        response,
        drop_connection: false,
    }
}

fn success(tokens: &IssuedTokens) -> Outcome {
    let body = TokenBody {
        access_token: tokens.access_token.expose(),
        token_type: "bearer",
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token.as_ref().map(|token| token.expose()),
        created_at: tokens.created_at,
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = no_store_json_text(StatusCode::OK, text);
    let note = if tokens.refresh_token.is_some() {
        "issued access and refresh token"
    } else {
        "issued access token"
    };
    response.extensions_mut().insert(LogNote(note.to_owned()));
    Outcome {
        response,
        drop_connection: false,
    }
}

/// The answer of an armed status fault: the request is not processed.
fn status_fault_response(fault: &StatusFault) -> Response {
    let status = StatusCode::from_u16(fault.code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (error, description) = if status == StatusCode::TOO_MANY_REQUESTS {
        ("rate_limited", "Too many requests (an emulator fault).")
    } else {
        (
            "temporarily_unavailable",
            "The server is unavailable (an emulator fault).",
        )
    };
    let mut response = no_store_json(
        status,
        &json!({"error": error, "error_description": description}),
    );
    let headers = response.headers_mut();
    if let Some(seconds) = fault.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert("x-rate-limit-limit", HeaderValue::from(3600u32));
            headers.insert("x-rate-limit-remaining", HeaderValue::from(0u32));
            headers.insert(
                "x-rate-limit-reset",
                HeaderValue::from(unix_now().saturating_add(seconds)),
            );
        }
    }
    response
        .extensions_mut()
        .insert(LogNote(format!("HTTP {} (status fault)", status.as_u16())));
    response
}

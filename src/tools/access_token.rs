//! `get_access_token`: a working access token from the token store, renewed once when it
//! has too little time left (see [`crate::valid_token`]). Listed only with a token store.
//! Its result never holds the refresh token.

use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities, OutputShape, Refusal,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, Request},
};
use crate::{
    exchange::{Principal, TokenExchange},
    procore::{ClientCredentials, GrantType},
    valid_token::{DEFAULT_MIN_VALID, NoValidToken, SignInNeeded, ValidToken, valid_token},
};

pub const NAME: &str = "get_access_token";
const TITLE: &str = "Get a working Procore access token";
const FIELDS: [&str; 2] = ["client_id", "min_valid_secs"];

/// The longest `min_valid_secs` accepted: a day, far beyond any access token's lifetime.
const MAX_MIN_VALID_SECS: u64 = 86_400;

const DESCRIPTION: &str = "\
Get a working Procore access token for an Authorization: Bearer header, from this server's \
token store: the stored one while it has at least min_valid_secs left (nothing is sent to \
Procore), else the stored pair renewed once and stored before it is returned; simultaneous \
calls, in every process sharing the store, share that one renewal. Prefer it to \
get_or_refresh_an_access_token once a user has signed in: it needs no token passed in and \
never returns the refresh token. api_base_url is the API host the \
token works on. When no one has signed in, or the sign-in has ended (invalid_grant), the \
error says how to sign in.";

const NO_CREDENTIALS_NOTE: &str = " This server holds no client credentials, so it cannot \
renew: once the stored token runs short, renew with get_or_refresh_an_access_token.";

/// How a person signs in, for an error that needs one (without `sign_in`, which needs held
/// credentials).
const SIGN_IN: &str = "To sign in, run `procore-token-mcp login` in a terminal with this \
server's settings, or call grant_app_authorization, have the user open the link and paste \
back the code, and pass it to get_or_refresh_an_access_token with \
grant_type=authorization_code; then call get_access_token again.";

/// The first way to sign in when this server offers `sign_in`.
const SIGN_IN_TOOL: &str = "Call sign_in: the client asks the user for the code, which never \
passes through the conversation. ";

/// The sign-in guidance for this server: `sign_in` first when it is offered.
fn sign_in_guidance(held: Option<&ClientCredentials>) -> String {
    if held.is_some() {
        format!("{SIGN_IN_TOOL}{SIGN_IN}")
    } else {
        SIGN_IN.to_owned()
    }
}

/// The tool as published in `tools/list` (only when a token store is configured).
pub fn definition(capabilities: Capabilities) -> Tool {
    let mut description = DESCRIPTION.to_owned();
    if !capabilities.credentials_held {
        description.push_str(NO_CREDENTIALS_NOTE);
    }
    define(
        NAME,
        TITLE,
        description,
        input_schema(),
        output_schema(),
        // It may renew and store a pair (not read-only), but it never spends a refresh
        // token a caller holds (not destructive), and calling again is always safe.
        Behaviour {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: true,
        },
    )
}

fn input_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "properties": {
            "client_id": {
                "type": "string",
                "description": "Whose stored pair: the app's Client ID. Defaults to the client \
                    this server holds, or the only pair stored for this login host. \
                    e.g. 8f2c9a1b4d7e6f03"
            },
            "min_valid_secs": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_MIN_VALID_SECS,
                "default": DEFAULT_MIN_VALID.as_secs(),
                "description": "Seconds the returned token must stay valid at least; a stored \
                    token with less left is renewed first. Default 300. e.g. 900"
            }
        },
        "required": [],
        "additionalProperties": false
    }))
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "description": "A working access token and where it works; never the refresh token.",
        "properties": {
            "access_token": {
                "type": "string",
                "description": "The bearer token for Procore API requests."
            },
            "token_type": {
                "type": "string",
                "description": "Always \"bearer\"."
            },
            "expires_at": {
                "type": "integer",
                "description": "When the access token expires, in Unix seconds."
            },
            "expires_in": {
                "type": "integer",
                "description": "Seconds it has left."
            },
            "refreshed": {
                "type": "boolean",
                "description": "True when this call renewed the stored pair (or joined a \
                    renewal in progress); false when the stored token was returned."
            },
            "api_base_url": {
                "type": "string",
                "description": "The API host the token works on, e.g. https://api.procore.com."
            }
        },
        "required": [
            "access_token",
            "token_type",
            "expires_at",
            "expires_in",
            "refreshed",
            "api_base_url"
        ],
        "additionalProperties": false
    }))
}

/// The checked arguments: whose pair, and how long the token must stay valid.
fn prepare(
    arguments: Option<&JsonObject>,
) -> Result<(Option<crate::oauth::ClientId>, Duration), ArgumentError> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let client_id = args.string("client_id")?.map(crate::oauth::ClientId::from);
    let min_valid = match args.integer("min_valid_secs")? {
        None => DEFAULT_MIN_VALID,
        Some(secs) if secs <= MAX_MIN_VALID_SECS => Duration::from_secs(secs),
        Some(_) => {
            return Err(ArgumentError::Invalid(format!(
                "min_valid_secs must be at most {MAX_MIN_VALID_SECS} (a day)"
            )));
        }
    };
    Ok((client_id, min_valid))
}

/// A working token, or why not; the result, the grant label and the outcome label for the
/// log line.
pub async fn call(
    exchange: &TokenExchange,
    principal: &Principal,
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
    shape: &OutputShape,
) -> Result<(CallToolResult, &'static str, String), Refusal> {
    let (client_id, min_valid) = prepare(arguments)?;
    Ok(
        match valid_token(exchange, principal, held, client_id.as_ref(), min_valid).await {
            Ok(token) => {
                let grant = if token.refreshed {
                    "refresh_token"
                } else {
                    "-"
                };
                let label = if token.refreshed {
                    "refreshed"
                } else {
                    "valid_in_store"
                };
                (success(exchange, &token, shape), grant, label.to_owned())
            }
            Err(error) => failure(exchange, held, error),
        },
    )
}

fn success(exchange: &TokenExchange, token: &ValidToken, shape: &OutputShape) -> CallToolResult {
    let value = json!({
        "access_token": token.access_token.expose(),
        "token_type": token.token_type,
        "expires_at": token.expires_at,
        "expires_in": token.expires_in,
        "refreshed": token.refreshed,
        "api_base_url": exchange.procore().base().api_base_url(),
    });
    if let Some(violation) = shape.violation(&value) {
        return outcome::error_text(format!(
            "This server built a result that breaks its own output schema ({violation}); \
             the token store is unchanged by it. Call get_access_token again."
        ));
    }
    let mut result = outcome::summary(value);
    if let Some(error) = &token.unstored {
        result.content.push(ContentBlock::text(format!(
            "Warning: the renewed pair could not be written to the token store ({error}). \
             This access token works until expires_at, but its refresh token is lost, so the \
             next renewal will need a new sign-in."
        )));
    }
    result
}

/// Why there is no token, as an error result and its log labels.
fn failure(
    exchange: &TokenExchange,
    held: Option<&ClientCredentials>,
    error: NoValidToken,
) -> (CallToolResult, &'static str, String) {
    let procore = exchange.procore();
    let guidance = sign_in_guidance(held);
    let refresh = Request::Token(GrantType::RefreshToken);
    let (result, grant, label) = match error {
        NoValidToken::SignIn(reason @ SignInNeeded::RefreshRefused { .. }) => (
            outcome::error_text(format!("A sign-in is needed: {reason}. {guidance}")),
            "refresh_token",
            "sign_in_needed".to_owned(),
        ),
        NoValidToken::SignIn(reason) => (
            outcome::error_text(format!(
                "A sign-in is needed, and nothing was sent to Procore: {reason}. {guidance}"
            )),
            "-",
            "sign_in_needed".to_owned(),
        ),
        NoValidToken::CannotRefresh { .. } => (
            outcome::refused(&format!(
                "{error}; renew with get_or_refresh_an_access_token (grant_type=refresh_token, \
                 with client_id and client_secret)"
            )),
            "-",
            "cannot_refresh".to_owned(),
        ),
        NoValidToken::NoStore | NoValidToken::Store(_) => (
            outcome::refused(&error.to_string()),
            "-",
            "store_unavailable".to_owned(),
        ),
        NoValidToken::NotATokenResponse(why) => (
            outcome::error_text(format!(
                "{why}. Hint: check that the login URL points at a Procore login host."
            )),
            "refresh_token",
            "not_a_token_response".to_owned(),
        ),
        NoValidToken::Refresh(ended) => outcome::failed_exchange(
            procore,
            refresh,
            &ended,
            "The stored pair could not be read back.",
        ),
    };
    (result, grant, label)
}

//! `get_or_refresh_an_access_token`: Procore's `POST /oauth/token`, as an MCP tool.
//!
//! The input schema mirrors Procore's documented input table; the handler enforces what
//! rmcp does not (required fields, types, grant rules) before anything is sent, then sends
//! exactly one request and hands back Procore's answer as received.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities, OutputShape,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, Request},
};
use crate::{
    exchange::{Outcome, Principal, TokenExchange},
    oauth::{AuthorizationCode, RedirectUri, RefreshToken},
    procore::ClientCredentials,
    procore::{GrantType, OOB_REDIRECT_URI, TokenRequest},
};

pub const NAME: &str = "get_or_refresh_an_access_token";
const TITLE: &str = "Get or refresh a Procore access token";
const FIELDS: [&str; 6] = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "refresh_token",
];

const DESCRIPTION: &str = "\
Get a Procore OAuth access token, or renew one, with one POST /oauth/token; returns \
Procore's token JSON as received. grant_type: authorization_code once a user approved the \
app (see grant_app_authorization), refresh_token when the access token expires, \
client_credentials for a service account. Codes and refresh tokens work once; each answer \
brings the next refresh token, so keep the newest. Nothing is retried; failures carry \
Procore's status, body and a hint (on 429, when to retry). Check a token with \
get_token_info; end one with revoke_token.";

const HELD_NOTE: &str = " This server holds client_id and client_secret: omit both, so the \
secret stays out of the conversation.";

const STORE_NOTE: &str = " This server stores each answer before returning it: omit \
refresh_token to renew the stored pair; simultaneous refreshes become one request, and a \
retry with a token just rotated gets the stored successor.";

/// The tool as published in `tools/list`.
pub fn definition(capabilities: Capabilities) -> Tool {
    let mut description = DESCRIPTION.to_owned();
    if capabilities.credentials_held {
        description.push_str(HELD_NOTE);
    }
    if capabilities.token_store {
        description.push_str(STORE_NOTE);
    }
    define(
        NAME,
        TITLE,
        description,
        input_schema(capabilities),
        output_schema(),
        Behaviour {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        },
    )
}

fn input_schema(capabilities: Capabilities) -> JsonObject {
    let refresh_token = if capabilities.token_store {
        "With grant_type=refresh_token: the refresh_token of the latest token response, or \
         omit it to renew the stored pair. It works once; the answer brings its successor, \
         which the store keeps. e.g. 1c0d6e8f2a9b4c7d"
    } else {
        "With grant_type=refresh_token: the refresh_token of the latest token response. It \
         works once; the answer brings its successor, which replaces it. \
         e.g. 1c0d6e8f2a9b4c7d"
    };
    let (client_id, client_secret, required) = if capabilities.credentials_held {
        (
            "Omit it: this server holds the app's Client ID. If given, it is sent instead, \
             and client_secret must belong to it. e.g. 8f2c9a1b4d7e6f03",
            "Omit it: this server holds the app's Client Secret, so it need not pass through \
             the conversation. If given, it is sent instead, with client_id. e.g. the \
             64-character value from the Developer Portal",
            json!(["grant_type"]),
        )
    } else {
        (
            "The app's Client ID from the Procore Developer Portal, paired with \
             client_secret; both must be of this login host's environment, or Procore \
             answers invalid_client. e.g. 8f2c9a1b4d7e6f03",
            "The app's Client Secret from the Procore Developer Portal, paired with \
             client_id. Treat it as a password: never show or store it. e.g. the 64-character \
             value beside the Client ID",
            json!(["grant_type", "client_id", "client_secret"]),
        )
    };
    json_object(json!({
        "type": "object",
        "properties": {
            "grant_type": {
                "type": "string",
                "enum": GrantType::ALL.map(GrantType::as_str),
                "description": "Which grant: authorization_code (send code and redirect_uri), \
                    refresh_token (send refresh_token) or client_credentials (nothing more). \
                    e.g. refresh_token"
            },
            "client_id": { "type": "string", "description": client_id },
            "client_secret": { "type": "string", "description": client_secret },
            "code": {
                "type": "string",
                "description": "With grant_type=authorization_code: the one-use code the user \
                    got after approving the link of grant_app_authorization (shown on the \
                    page, or ?code= on redirect_uri), valid 10 minutes. e.g. 4f9a0c3e7b21d8a6"
            },
            "redirect_uri": {
                "type": "string",
                "description": "With grant_type=authorization_code: the redirect_uri of the \
                    sign-in link, character for character; another one gives invalid_grant. \
                    e.g. urn:ietf:wg:oauth:2.0:oob"
            },
            "refresh_token": { "type": "string", "description": refresh_token }
        },
        "required": required,
        "additionalProperties": false
    }))
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "description": "Procore's token response, field for field as the login host sent it.",
        "properties": {
            "access_token": {
                "type": "string",
                "description": "The bearer token for Procore API requests."
            },
            "token_type": {
                "type": "string",
                "description": "Always \"bearer\"."
            },
            "expires_in": {
                "type": "integer",
                "description": "Seconds the access token stays valid, counted from created_at."
            },
            "refresh_token": {
                "type": "string",
                "description": "The successor refresh token: keep it, the one sent is now \
                    invalid. Absent for client_credentials."
            },
            "created_at": {
                "type": "integer",
                "description": "When the token was issued, in Unix seconds."
            }
        },
        "required": ["access_token", "token_type"],
        "additionalProperties": true
    }))
}

/// A checked call of this tool: the request to send.
///
/// With `token_store`, a refresh without `refresh_token` is accepted here; [`call`] fills
/// it from the store.
pub fn prepare(
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
    token_store: bool,
) -> Result<TokenRequest, ArgumentError> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let grant_type = match args.string("grant_type")? {
        None => {
            return Err(ArgumentError::Invalid(
                "grant_type is required: authorization_code, refresh_token or \
                 client_credentials"
                    .into(),
            ));
        }
        // The value is not quoted back: whatever was sent there might be a secret.
        Some(value) => GrantType::parse(&value).ok_or_else(|| {
            ArgumentError::Invalid(
                "unknown grant_type: use authorization_code, refresh_token or \
                 client_credentials (exactly, in lower case)"
                    .into(),
            )
        })?,
    };
    let (client_id, client_secret) = args.client_credentials(held)?;
    let code = args.secret::<AuthorizationCode>("code")?;
    let redirect_uri = args.string("redirect_uri")?;
    let refresh_token = args.secret::<RefreshToken>("refresh_token")?;
    match grant_type {
        GrantType::AuthorizationCode if code.is_none() => {
            return Err(ArgumentError::Invalid(
                "grant_type=authorization_code needs code: the authorization code the user got \
                 from Procore's /oauth/authorize page"
                    .into(),
            ));
        }
        GrantType::AuthorizationCode if redirect_uri.is_none() => {
            return Err(ArgumentError::Invalid(format!(
                "grant_type=authorization_code needs redirect_uri: the same URI used in the \
                 authorize request ({OOB_REDIRECT_URI} for headless apps)"
            )));
        }
        GrantType::RefreshToken if refresh_token.is_none() && !token_store => {
            return Err(ArgumentError::Invalid(
                "grant_type=refresh_token needs refresh_token: the refresh_token from the \
                 latest token response"
                    .into(),
            ));
        }
        _ => {}
    }
    let redirect_uri = redirect_uri
        .map(|uri| RedirectUri::parse(&uri))
        .transpose()
        .map_err(|error| ArgumentError::Invalid(error.to_string()))?;
    Ok(TokenRequest {
        grant_type,
        client_id,
        client_secret,
        code,
        redirect_uri,
        refresh_token,
    })
}

/// Send the request (once, through the exchange) and turn the outcome into the tool result
/// and a short label for the log line.
pub async fn call(
    exchange: &TokenExchange,
    principal: &Principal,
    mut request: TokenRequest,
    shape: &OutputShape,
) -> (CallToolResult, String) {
    let from_store =
        request.grant_type == GrantType::RefreshToken && request.refresh_token.is_none();
    if from_store {
        match exchange
            .stored_refresh_token(principal, &request.client_id)
            .await
        {
            Ok(Some(refresh_token)) => request.refresh_token = Some(refresh_token),
            Ok(None) => {
                return (
                    outcome::refused(&format!(
                        "grant_type=refresh_token without refresh_token, and the token store \
                         holds no refresh token for client {} at {}: pass refresh_token, or \
                         get a first pair with grant_type=authorization_code",
                        request.client_id,
                        exchange.login_host()
                    )),
                    "invalid_arguments".into(),
                );
            }
            Err(error) => {
                return (
                    outcome::refused(&format!("the token store could not be read: {error}")),
                    "store_unavailable".into(),
                );
            }
        }
    }
    let grant = request.grant_type;
    let procore = exchange.procore();
    // An omitted refresh token is settled again under the store's lock (see
    // `TokenExchange::refresh_stored`): the one read here only names the pair to refresh.
    let outcome = if from_store {
        exchange.refresh_stored(principal, request).await
    } else {
        exchange.exchange(principal, request).await
    };
    match outcome.as_ref() {
        Outcome::Answered {
            response,
            store_error,
            sent,
        } => {
            let mut result =
                outcome::json_response(procore, Request::Token(grant), response, shape, sent);
            if let Some(error) = store_error {
                outcome::warn_unstored(&mut result, &error.to_string());
            }
            (result, response.status.as_u16().to_string())
        }
        Outcome::Replayed {
            body,
            rotated_secs_ago,
        } => (
            outcome::replayed(body, *rotated_secs_ago, shape),
            "replayed_from_store".into(),
        ),
        Outcome::Failed(error) => (
            outcome::request_failure(Request::Token(grant), error),
            error.kind().into(),
        ),
        Outcome::StoreUnavailable(error) => (
            outcome::refused(&format!("the token store could not be used: {error}")),
            "store_unavailable".into(),
        ),
        Outcome::Internal(error) => (
            outcome::internal_failure(Request::Token(grant), error),
            "internal_error".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    fn held() -> ClientCredentials {
        ClientCredentials {
            client_id: "held-id".into(),
            client_secret: "held-secret".into(),
        }
    }

    #[test]
    fn required_list_depends_on_held_credentials() {
        let open = definition(Capabilities::default());
        assert_eq!(
            open.input_schema["required"],
            json!(["grant_type", "client_id", "client_secret"])
        );
        let closed = definition(Capabilities {
            credentials_held: true,
            token_store: false,
        });
        assert_eq!(closed.input_schema["required"], json!(["grant_type"]));
        assert!(
            closed
                .description
                .unwrap()
                .contains("holds client_id and client_secret: omit both")
        );
    }

    #[test]
    fn server_fills_only_what_the_caller_omits() {
        let held = held();
        let request = prepare(
            Some(&args(
                json!({"grant_type": "client_credentials", "client_id": "mine"}),
            )),
            Some(&held),
            false,
        )
        .unwrap();
        assert_eq!(request.client_id.as_str(), "mine");
        assert_eq!(request.client_secret.expose(), "held-secret");
    }

    #[test]
    fn grant_rules_are_checked_before_sending() {
        let cases = [
            (
                json!({"grant_type": "authorization_code", "client_id": "a", "client_secret": "b", "redirect_uri": "x"}),
                "needs code",
            ),
            (
                json!({"grant_type": "authorization_code", "client_id": "a", "client_secret": "b", "code": "c"}),
                "needs redirect_uri",
            ),
            (
                json!({"grant_type": "refresh_token", "client_id": "a", "client_secret": "b"}),
                "needs refresh_token",
            ),
            (
                json!({"grant_type": "authorization_code", "client_id": "a", "client_secret": "b", "code": "c", "redirect_uri": "callback"}),
                "redirect_uri must be an absolute URI",
            ),
            (
                json!({"grant_type": "password", "client_id": "a", "client_secret": "b"}),
                "unknown grant_type: use authorization_code",
            ),
            (
                json!({"grant_type": "client_credentials"}),
                "client_id and client_secret are required",
            ),
            (
                json!({"client_id": "a", "client_secret": "b"}),
                "grant_type is required",
            ),
            (
                json!({"grant_type": "client_credentials", "client_id": "a", "client_secret": "b", "scope": "x"}),
                "unknown argument `scope`",
            ),
            (
                json!({"grant_type": "client_credentials", "client_id": "a", "client_secret": 7}),
                "`client_secret` must be a string",
            ),
        ];
        for (input, expected) in cases {
            let error = prepare(Some(&args(input.clone())), None, false)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }
}

//! `get_or_refresh_an_access_token`: Procore's `POST /oauth/token`, as an MCP tool.
//!
//! The input schema mirrors Procore's documented input table; the handler enforces what
//! rmcp does not (required fields, types, grant rules) before anything is sent, then sends
//! exactly one request and hands back Procore's answer as received.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, OutputShape, Request},
};
use crate::{
    exchange::{Outcome, TokenExchange},
    oauth::{AuthorizationCode, RedirectUri, RefreshToken},
    procore::ClientCredentials,
    procore::{GrantType, OOB_REDIRECT_URI, TokenRequest},
};

pub const NAME: &str = "get_or_refresh_an_access_token";
const TITLE: &str = "Get Or Refresh An Access Token";
const FIELDS: [&str; 6] = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "refresh_token",
];

const DESCRIPTION: &str = "\
Obtain a Procore OAuth 2.0 access token, or renew one: sends one POST to the configured \
Procore login host's /oauth/token and returns Procore's token JSON exactly as received.

Pick grant_type:
- authorization_code: a user has just approved the app and you hold the code from \
Procore's /oauth/authorize page. Send code and the same redirect_uri used there.
- refresh_token: the access token has expired or is about to (created_at + expires_in). \
Send the refresh_token from the latest token response.
- client_credentials: a Developer Managed Service Account acting without a user; no code, \
and no refresh token comes back (ask again when the token expires).

Returns access_token, token_type (\"bearer\"), expires_in (seconds), refresh_token (absent \
for client_credentials), created_at (Unix seconds), plus any field Procore adds. Use the \
access token as `Authorization: Bearer <access_token>` on Procore's API host.

Destructive: an authorization code works once, and a refresh token works once. A refresh \
invalidates the old refresh token at once, even if its answer is lost, so keep the new \
refresh_token from the response and drop the old one. Never send the same refresh token \
twice, and never run two refreshes in parallel. Nothing is retried automatically. On \
failure the result is an error with Procore's HTTP status, its response body and a hint \
(for HTTP 429, the Retry-After to wait).

Not for checking whether a token still works (get_token_info does that and consumes \
nothing) or for starting a user's sign-in (grant_app_authorization builds the link that \
yields the code). To end a pair for good, use revoke_token.";

const HELD_NOTE: &str = "\n\nThis server holds the app's client_id and client_secret: \
omit both and it fills them in, so the secret never passes through the conversation.";

const STORE_NOTE: &str = "\n\nThis server keeps a token store: every token response is \
saved before it is returned. With grant_type=refresh_token you may omit refresh_token and \
the stored one is used, and a pair the store rotated under 2 seconds ago is returned as is. \
Concurrent refreshes of one token become a single request, and a retry with a refresh token the store rotated moments ago returns the stored new pair instead \
of failing.";

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
        "The refresh_token from the most recent token response. Needed with \
         grant_type=refresh_token, but optional here: when omitted, the refresh token held in \
         this server's token store is used. Single use: Procore invalidates it the moment it \
         receives it and returns its successor, which the store keeps. Sending an old one \
         gives invalid_grant, unless this store rotated it within the reuse window, in which \
         case the stored new pair is returned."
    } else {
        "The refresh_token from the most recent token response. Required with \
         grant_type=refresh_token. Single use: Procore invalidates it the moment it receives \
         it and returns its successor, which must replace it. Sending an old one, or the same \
         one from two refreshes at once, gives invalid_grant and the user must authorize \
         again."
    };
    let (client_id, client_secret, required) = if capabilities.credentials_held {
        (
            "Optional: this server holds the application's Client ID and uses it when this \
             field is omitted. If given, it is sent as given, and it must belong to the same \
             Procore environment as the login host, or Procore answers invalid_client.",
            "Optional, and best omitted: this server holds the Client Secret and fills it in, \
             so the secret never has to pass through the conversation. If given, it is sent \
             as given.",
            json!(["grant_type"]),
        )
    } else {
        (
            "The application's Client ID, from its page in the Procore Developer Portal. \
             Credentials belong to one environment: sandbox credentials fail against the \
             production login host and the reverse, with invalid_client.",
            "The application's Client Secret, paired with client_id, from the Procore \
             Developer Portal. Treat it as a password: never show it to the user, log it or \
             write it into files. A wrong secret, or one from another environment, gives \
             invalid_client.",
            json!(["grant_type", "client_id", "client_secret"]),
        )
    };
    json_object(json!({
        "type": "object",
        "properties": {
            "grant_type": {
                "type": "string",
                "enum": GrantType::ALL.map(GrantType::as_str),
                "description": "Which OAuth 2.0 grant to use. authorization_code: exchange a \
                    code the user obtained by approving the app (needs code and \
                    redirect_uri). refresh_token: renew an expired or expiring access token \
                    (needs refresh_token). client_credentials: get a token for a Developer \
                    Managed Service Account, without a user or code. Any other value is \
                    refused before anything is sent."
            },
            "client_id": { "type": "string", "description": client_id },
            "client_secret": { "type": "string", "description": client_secret },
            "code": {
                "type": "string",
                "description": "The authorization code from Procore's /oauth/authorize step: \
                    the code= value in the redirect to your redirect_uri, or, with \
                    redirect_uri urn:ietf:wg:oauth:2.0:oob, the code shown on the page at \
                    /oauth/authorize/<CODE> for the user to copy. Required with \
                    grant_type=authorization_code; not used by the other grants. It is valid \
                    for 10 minutes and for one exchange only: a late or second use gives \
                    invalid_grant, and the user must authorize again."
            },
            "redirect_uri": {
                "type": "string",
                "description": "The redirect URI registered for the application, character \
                    for character the one used in the authorize request. \
                    urn:ietf:wg:oauth:2.0:oob for installed, command-line and headless apps \
                    (Procore shows the code to the user instead of redirecting); the \
                    registered https:// address for web apps. Required with \
                    grant_type=authorization_code; Procore's examples also send it when \
                    refreshing. A mismatch gives invalid_grant."
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
    mut request: TokenRequest,
    shape: &OutputShape,
) -> (CallToolResult, String) {
    let from_store =
        request.grant_type == GrantType::RefreshToken && request.refresh_token.is_none();
    if from_store {
        match exchange.stored_refresh_token(&request.client_id).await {
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
        exchange.refresh_stored(request).await
    } else {
        exchange.exchange(request).await
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
                .contains("holds the app's client_id")
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

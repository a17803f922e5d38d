//! `get_or_refresh_an_access_token`: Procore's `POST /oauth/token`, as an MCP tool.
//!
//! The input schema mirrors Procore's documented input table; the handler enforces what
//! rmcp does not (required fields, types, grant rules) before anything is sent, then sends
//! exactly one request and hands back Procore's answer as received.

use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::{
    arguments::{ArgumentError, Arguments},
    outcome,
};
use crate::{
    config::HeldCredentials,
    procore::{GrantType, OOB_REDIRECT_URI, ProcoreClient, TokenRequest},
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
failure the result is an error with Procore's HTTP status, its response body and a hint.";

const HELD_NOTE: &str = "\n\nThis server holds the app's client_id and client_secret: \
omit both and it fills them in, so the secret never passes through the conversation.";

/// The tool as published in `tools/list`.
pub fn definition(held: Option<&HeldCredentials>) -> Tool {
    let description = match held {
        Some(_) => format!("{DESCRIPTION}{HELD_NOTE}"),
        None => DESCRIPTION.to_owned(),
    };
    Tool::new(NAME, description, input_schema(held.is_some()))
        .with_title(TITLE)
        .with_raw_output_schema(Arc::new(output_schema()))
        .with_annotations(
            ToolAnnotations::with_title(TITLE)
                .read_only(false)
                .destructive(true)
                .idempotent(false)
                .open_world(true),
        )
}

fn input_schema(credentials_held: bool) -> JsonObject {
    let (client_id, client_secret, required) = if credentials_held {
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
    let schema = json!({
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
            "refresh_token": {
                "type": "string",
                "description": "The refresh_token from the most recent token response. \
                    Required with grant_type=refresh_token. Single use: Procore invalidates \
                    it the moment it receives it and returns its successor, which must \
                    replace it. Sending an old one, or the same one from two refreshes at \
                    once, gives invalid_grant and the user must authorize again."
            }
        },
        "required": required,
        "additionalProperties": false
    });
    match schema {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

fn output_schema() -> JsonObject {
    let schema = json!({
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
    });
    match schema {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

/// A checked call of this tool: the request to send.
pub fn prepare(
    arguments: Option<&JsonObject>,
    held: Option<&HeldCredentials>,
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
    let client_id = args
        .string("client_id")?
        .or_else(|| held.map(|h| h.client_id.clone()));
    let client_secret = args
        .secret("client_secret")?
        .or_else(|| held.map(|h| h.client_secret.clone()));
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        return Err(ArgumentError::Invalid(
            "client_id and client_secret are required: this server holds no credentials \
             (set PROCORE_CLIENT_ID and PROCORE_CLIENT_SECRET in its environment to hold them)"
                .into(),
        ));
    };
    let request = TokenRequest {
        grant_type,
        client_id,
        client_secret,
        code: args.secret("code")?,
        redirect_uri: args.string("redirect_uri")?,
        refresh_token: args.secret("refresh_token")?,
    };
    match grant_type {
        GrantType::AuthorizationCode if request.code.is_none() => Err(ArgumentError::Invalid(
            "grant_type=authorization_code needs code: the authorization code the user got \
             from Procore's /oauth/authorize page"
                .into(),
        )),
        GrantType::AuthorizationCode if request.redirect_uri.is_none() => {
            Err(ArgumentError::Invalid(format!(
                "grant_type=authorization_code needs redirect_uri: the same URI used in the \
                 authorize request ({OOB_REDIRECT_URI} for headless apps)"
            )))
        }
        GrantType::RefreshToken if request.refresh_token.is_none() => Err(ArgumentError::Invalid(
            "grant_type=refresh_token needs refresh_token: the refresh_token from the \
                 latest token response"
                .into(),
        )),
        _ => Ok(request),
    }
}

/// Send the request once and turn the answer into the tool result.
pub async fn call(procore: &ProcoreClient, request: &TokenRequest) -> (CallToolResult, String) {
    match procore.request_token(request).await {
        Ok(response) => {
            let status = response.status.as_u16().to_string();
            (
                outcome::token_response(procore, request.grant_type, response),
                status,
            )
        }
        Err(error) => {
            let kind = error.kind().to_owned();
            (outcome::token_failure(request.grant_type, &error), kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::secret::Secret;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    fn held() -> HeldCredentials {
        HeldCredentials {
            client_id: "held-id".into(),
            client_secret: Secret::new("held-secret"),
        }
    }

    #[test]
    fn required_list_depends_on_held_credentials() {
        let open = definition(None);
        assert_eq!(
            open.input_schema["required"],
            json!(["grant_type", "client_id", "client_secret"])
        );
        let held = held();
        let closed = definition(Some(&held));
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
        )
        .unwrap();
        assert_eq!(request.client_id, "mine");
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
            let error = prepare(Some(&args(input.clone())), None)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }
}

//! `get_token_info`: Procore's `GET /oauth/token/info` for an access token (given, or the
//! stored one), answered verbatim. Read-only: it consumes and changes nothing.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities, OutputShape, Refusal,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, Request},
    stored_access_token,
};
use crate::{
    exchange::{Principal, TokenExchange},
    oauth::AccessToken,
    procore::ClientCredentials,
    secret::SentSecrets,
};

pub const NAME: &str = "get_token_info";
const TITLE: &str = "Check a Procore access token";

const DESCRIPTION: &str = "\
Check a Procore access token with GET /oauth/token/info and return Procore's answer as \
received: the user, scopes, seconds left and the app it was issued to. It consumes and \
changes nothing, so it is safe to call at any time. Use it to learn whether a token still \
works and how long it has left; it renews nothing (get_or_refresh_an_access_token does). An \
expired, revoked or foreign token comes back as an error (HTTP 401, invalid_token) with a \
hint.";

const STORE_NOTE: &str = " This server keeps a token store: omit access_token to check the \
stored one.";

/// The tool as published in `tools/list`.
pub fn definition(capabilities: Capabilities) -> Tool {
    let mut properties = json!({
        "access_token": {
            "type": "string",
            "description": if capabilities.token_store {
                "The access_token of a get_or_refresh_an_access_token answer; omit it to check \
                 the stored pair's (see client_id). e.g. 9e4b2f7c1a0d"
            } else {
                "The access_token of a get_or_refresh_an_access_token answer. \
                 e.g. 9e4b2f7c1a0d"
            }
        }
    });
    let mut description = DESCRIPTION.to_owned();
    let required = if capabilities.token_store {
        description.push_str(STORE_NOTE);
        if let Some(map) = properties.as_object_mut() {
            map.insert(
                "client_id".into(),
                json!({
                    "type": "string",
                    "description": "Whose stored access token to check when access_token is \
                        omitted: the app's Client ID. Defaults to the client this server \
                        holds, or the only pair stored for this login host. \
                        e.g. 8f2c9a1b4d7e6f03"
                }),
            );
        }
        json!([])
    } else {
        json!(["access_token"])
    };
    let schema = json_object(json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    }));
    define(
        NAME,
        TITLE,
        description,
        schema,
        output_schema(),
        Behaviour {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: true,
        },
    )
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "description": "Procore's token info, field for field as the login host sent it.",
        "properties": {
            "resource_owner_id": {
                "anyOf": [{ "type": "integer" }, { "type": "null" }],
                "description": "The Procore user the token acts for (null for a service account)."
            },
            "scopes": {
                "type": "array",
                "items": { "type": "string" },
                "description": "The scopes granted to the token."
            },
            "expires_in_seconds": {
                "type": "integer",
                "description": "Seconds until the access token expires."
            },
            "application": {
                "type": "object",
                "properties": { "uid": { "type": "string", "description": "The client ID." } },
                "description": "The application the token was issued to."
            },
            "created_at": {
                "type": "integer",
                "description": "When the token was issued, in Unix seconds."
            }
        },
        "additionalProperties": true
    }))
}

/// Check the token with Procore; the result and a short label for the log line.
pub async fn call(
    exchange: &TokenExchange,
    principal: &Principal,
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
    shape: &OutputShape,
) -> Result<(CallToolResult, String), Refusal> {
    let store = exchange.store().is_some();
    let accepted: &[&str] = if store {
        &["access_token", "client_id"]
    } else {
        &["access_token"]
    };
    let args = Arguments::check(arguments, accepted)?;
    let access_token: AccessToken = match args.secret("access_token")? {
        Some(token) => token,
        None if store => {
            stored_access_token(
                exchange,
                principal,
                args.client_id(held)?.as_ref(),
                "access_token",
            )
            .await?
        }
        None => {
            return Err(ArgumentError::Invalid(
                "access_token is required: the access token to check".into(),
            )
            .into());
        }
    };
    let procore = exchange.procore();
    Ok(match exchange.token_info(&access_token).await {
        Ok(response) => (
            outcome::json_response(
                procore,
                Request::TokenInfo,
                &response,
                shape,
                &SentSecrets::new([access_token.as_secret()]),
            ),
            response.status.as_u16().to_string(),
        ),
        Err(error) => (
            outcome::request_failure(Request::TokenInfo, &error),
            error.kind().into(),
        ),
    })
}

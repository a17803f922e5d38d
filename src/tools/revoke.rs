//! `revoke_token`: Procore's `POST /oauth/revoke`. Destructive: the access token and its
//! refresh token die together; the pair is removed from the token store.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities, Refusal,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, Request},
    stored_access_token,
};
use crate::{
    exchange::{Revoked, TokenExchange},
    oauth::RevocableToken,
    procore::ClientCredentials,
    secret::SentSecrets,
};

pub const NAME: &str = "revoke_token";
const TITLE: &str = "Revoke Token";
const FIELDS: [&str; 3] = ["token", "client_id", "client_secret"];

const DESCRIPTION: &str = "\
Revoke a Procore token: sends POST /oauth/revoke to the configured login host. The access \
token and its refresh token stop working together, at once and for good. Destructive and \
irreversible: to get tokens again the user must authorize the app again \
(grant_app_authorization, then get_or_refresh_an_access_token).

Use it when a user disconnects the app or a token may have leaked. Do not use it to end \
work you will resume, or to renew a token (get_or_refresh_an_access_token does that).

Procore answers 200 also for a token it does not know, so revoking twice is harmless. \
Returns revoked, removed_from_store (whether this server's token store dropped the pair) and \
Procore's response body as received.";

const STORE_NOTE: &str = "\n\nThis server keeps a token store: omit token to revoke the \
stored pair of client_id (or of the server-held client), which is then removed from the \
store.";

/// The tool as published in `tools/list`.
pub fn definition(capabilities: Capabilities) -> Tool {
    let mut description = DESCRIPTION.to_owned();
    if capabilities.token_store {
        description.push_str(STORE_NOTE);
    }
    let token = if capabilities.token_store {
        "The access token or refresh token to revoke (either kills both). Optional here: when \
         omitted, the stored pair's access token is revoked."
    } else {
        "The access token or refresh token to revoke; either kills both."
    };
    let (client_id, client_secret) = if capabilities.credentials_held {
        (
            "Optional: the application's Client ID; when omitted, the one this server holds is \
             used.",
            "Optional, and best omitted: this server holds the Client Secret and fills it in, \
             so it never passes through the conversation.",
        )
    } else {
        (
            "The Client ID of the application the token was issued to.",
            "The application's Client Secret, paired with client_id. Treat it as a password: \
             never show it to the user or write it into files.",
        )
    };
    let mut required = Vec::new();
    if !capabilities.token_store {
        required.push("token");
    }
    if !capabilities.credentials_held {
        required.extend(["client_id", "client_secret"]);
    }
    let schema = json_object(json!({
        "type": "object",
        "properties": {
            "token": { "type": "string", "description": token },
            "client_id": { "type": "string", "description": client_id },
            "client_secret": { "type": "string", "description": client_secret }
        },
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
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: true,
        },
    )
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "properties": {
            "revoked": {
                "type": "boolean",
                "description": "True when Procore accepted the revocation (HTTP 2xx)."
            },
            "removed_from_store": {
                "type": "boolean",
                "description": "True when this server's token store held the pair and dropped it."
            },
            "response": {
                "type": "string",
                "description": "Procore's response body, as received."
            }
        },
        "required": ["revoked", "removed_from_store", "response"]
    }))
}

/// Revoke with Procore, then forget the pair; the result and a label for the log line.
pub async fn call(
    exchange: &TokenExchange,
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
) -> Result<(CallToolResult, String), Refusal> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let (client_id, client_secret) = args.client_credentials(held)?;
    let token: RevocableToken = match args.secret("token")? {
        Some(token) => token,
        None if exchange.store().is_some() => {
            let access = stored_access_token(exchange, Some(&client_id), "token").await?;
            RevocableToken::new(access.expose())
        }
        None => {
            return Err(ArgumentError::Invalid(
                "token is required: the access or refresh token to revoke".into(),
            )
            .into());
        }
    };
    let procore = exchange.procore();
    let Revoked {
        response,
        forgotten,
    } = match exchange.revoke(&token, &client_id, &client_secret).await {
        Ok(revoked) => revoked,
        Err(error) => {
            return Ok((
                outcome::request_failure(Request::Revoke, &error),
                error.kind().into(),
            ));
        }
    };
    let status = response.status.as_u16().to_string();
    let sent = SentSecrets::new([token.as_secret(), client_secret.as_secret()]);
    let (removed, store_note) = match forgotten {
        None => {
            return Ok((
                outcome::upstream_status_error(procore, Request::Revoke, &response, &sent),
                status,
            ));
        }
        Some(Ok(removed)) => (removed, None),
        Some(Err(error)) => (false, Some(error)),
    };
    let mut result = outcome::summary(json!({
        "revoked": true,
        "removed_from_store": removed,
        "response": sent.scrub(&String::from_utf8_lossy(&response.body)),
    }));
    if let Some(error) = store_note {
        result.content.push(rmcp::model::ContentBlock::text(format!(
            "Warning: the token was revoked, but the token store could not be updated \
             ({error}); it still holds the dead pair."
        )));
    }
    Ok((result, status))
}

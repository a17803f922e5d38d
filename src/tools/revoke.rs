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
    exchange::{Principal, Revoked, TokenExchange},
    oauth::RevocableToken,
    procore::ClientCredentials,
    secret::SentSecrets,
};

pub const NAME: &str = "revoke_token";
const TITLE: &str = "Revoke a Procore token pair";
const FIELDS: [&str; 3] = ["token", "client_id", "client_secret"];

const DESCRIPTION: &str = "\
Revoke a Procore token with POST /oauth/revoke: the access token and its refresh token stop \
working together, at once and for good. Use it when a user disconnects the app or a token \
may have leaked; not to pause work you will resume, nor to renew a token \
(get_or_refresh_an_access_token does). To get tokens again, the user must authorize anew \
(grant_app_authorization). Procore answers 200 also for a token it does not know, so \
revoking twice is harmless.";

const STORE_NOTE: &str = " This server keeps a token store: omit token to revoke the stored \
pair of client_id; removed_from_store says whether the store dropped it.";

/// The tool as published in `tools/list`.
pub fn definition(capabilities: Capabilities) -> Tool {
    let mut description = DESCRIPTION.to_owned();
    if capabilities.token_store {
        description.push_str(STORE_NOTE);
    }
    let token = if capabilities.token_store {
        "The access or refresh token to revoke (either ends both); omit it to revoke the \
         stored pair of client_id. e.g. 9e4b2f7c1a0d"
    } else {
        "The access or refresh token to revoke (either ends both), from a \
         get_or_refresh_an_access_token answer. e.g. 9e4b2f7c1a0d"
    };
    let (client_id, client_secret) = if capabilities.credentials_held {
        (
            "Omit it: this server holds the app's Client ID. If given, it is sent instead, \
             and client_secret must belong to it. e.g. 8f2c9a1b4d7e6f03",
            "Omit it: this server holds the app's Client Secret, so it need not pass through \
             the conversation. If given, it is sent instead, with client_id. e.g. the \
             64-character value from the Developer Portal",
        )
    } else {
        (
            "The Client ID of the app the token was issued to, paired with client_secret. \
             e.g. 8f2c9a1b4d7e6f03",
            "The app's Client Secret, paired with client_id. Treat it as a password: never \
             show or store it. e.g. the 64-character value from the Developer Portal",
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
        output_schema(capabilities.token_store),
        Behaviour {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: true,
        },
    )
}

/// `removed_from_store` is there only when the server has a token store.
fn output_schema(token_store: bool) -> JsonObject {
    let mut properties = json!({
        "revoked": {
            "type": "boolean",
            "description": "True when Procore accepted the revocation (HTTP 2xx)."
        },
        "response": {
            "type": "string",
            "description": "Procore's response body, as received."
        }
    });
    let mut required = vec!["revoked", "response"];
    if token_store && let Some(map) = properties.as_object_mut() {
        map.insert(
            "removed_from_store".into(),
            json!({
                "type": "boolean",
                "description": "True when the token store held the pair and dropped it."
            }),
        );
        required.push("removed_from_store");
    }
    json_object(json!({
        "type": "object",
        "properties": properties,
        "required": required
    }))
}

/// Revoke with Procore, then forget the pair; the result and a label for the log line.
pub async fn call(
    exchange: &TokenExchange,
    principal: &Principal,
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
) -> Result<(CallToolResult, String), Refusal> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let (client_id, client_secret) = args.client_credentials(held)?;
    let token: RevocableToken = match args.secret("token")? {
        Some(token) => token,
        None if exchange.store().is_some() => RevocableToken::from(
            &stored_access_token(exchange, principal, Some(&client_id), "token").await?,
        ),
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
    } = match exchange
        .revoke(principal, &token, &client_id, &client_secret)
        .await
    {
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
    let mut summary = json!({
        "revoked": true,
        "response": sent.scrub(&String::from_utf8_lossy(&response.body)),
    });
    if exchange.store().is_some()
        && let Some(map) = summary.as_object_mut()
    {
        map.insert("removed_from_store".into(), removed.into());
    }
    let mut result = outcome::summary(summary);
    if let Some(error) = store_note {
        result.content.push(rmcp::model::ContentBlock::text(format!(
            "Warning: the token was revoked, but the token store could not be updated \
             ({error}); it still holds the dead pair."
        )));
    }
    Ok((result, status))
}

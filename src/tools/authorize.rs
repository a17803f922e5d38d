//! `grant_app_authorization`: composes the link to Procore's `GET /oauth/authorize` that a
//! user opens to approve the app and receive a one-use code.
//!
//! Read-only: it never contacts Procore; it only builds a URL and a random `state`.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::json;

use super::{
    Behaviour, Capabilities,
    arguments::{ArgumentError, Arguments},
    define, json_object, outcome,
};
use crate::{
    procore::ClientCredentials,
    procore::{LoginBase, OOB_REDIRECT_URI, authorize_url},
};

pub const NAME: &str = "grant_app_authorization";
const TITLE: &str = "Build Procore sign-in link";
const FIELDS: [&str; 3] = ["client_id", "redirect_uri", "state"];
/// How long Procore's authorization codes live.
const CODE_LIFETIME_SECS: u64 = 600;

const DESCRIPTION: &str = "\
Build the Procore sign-in link (GET /oauth/authorize) a user opens to approve this app; it \
contacts nothing. Use it when there is no token yet, or when a refresh answers \
invalid_grant; not to renew a token (get_or_refresh_an_access_token with \
grant_type=refresh_token) nor for a service account (grant_type=client_credentials needs no \
user). Give authorize_url to the user. With the default redirect_uri, Procore shows the code \
on its page for the user to paste back; with a web redirect_uri, it arrives as ?code= beside \
state, which must match. Exchange it once, within code_valid_for_seconds, with \
get_or_refresh_an_access_token: grant_type=authorization_code, the code and this \
redirect_uri.";

/// The tool as published in `tools/list`.
pub fn definition(capabilities: Capabilities) -> Tool {
    let (client_id, required) = if capabilities.credentials_held {
        (
            "Omit it: this server holds the app's Client ID. If given, it goes into the link \
             instead (no secret ever does). e.g. 8f2c9a1b4d7e6f03",
            json!([]),
        )
    } else {
        (
            "The app's Client ID from the Procore Developer Portal, of this login host's \
             environment (sandbox IDs fail in production). It goes into the link; no secret \
             does. e.g. 8f2c9a1b4d7e6f03",
            json!(["client_id"]),
        )
    };
    let schema = json_object(json!({
        "type": "object",
        "properties": {
            "client_id": { "type": "string", "description": client_id },
            "redirect_uri": {
                "type": "string",
                "description": "A redirect URI registered for the app, character for \
                    character; pass the same value with the code afterwards. Defaults to \
                    urn:ietf:wg:oauth:2.0:oob, for which Procore shows the code on its page. \
                    e.g. https://app.example.com/procore/callback"
            },
            "state": {
                "type": "string",
                "description": "A value Procore hands back unchanged beside the code, to tie \
                    the answer to this link (against cross-site request forgery); a random one \
                    is made when omitted. e.g. 7d1e0c2b9a"
            }
        },
        "required": required,
        "additionalProperties": false
    }));
    define(
        NAME,
        TITLE,
        DESCRIPTION,
        schema,
        output_schema(),
        Behaviour {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
    )
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "properties": {
            "authorize_url": {
                "type": "string",
                "description": "The link for the user to open in a browser."
            },
            "state": {
                "type": "string",
                "description": "The state in the link; a code delivered to a web redirect \
                    must come back with it."
            },
            "redirect_uri": {
                "type": "string",
                "description": "The redirect URI in the link; send the same value with the code."
            },
            "client_id": { "type": "string", "description": "The client ID in the link." },
            "code_valid_for_seconds": {
                "type": "integer",
                "description": "How long the code is valid once issued."
            }
        },
        "required": [
            "authorize_url",
            "state",
            "redirect_uri",
            "client_id",
            "code_valid_for_seconds"
        ]
    }))
}

/// Build the link; nothing is sent anywhere.
pub fn call(
    login: &LoginBase,
    arguments: Option<&JsonObject>,
    held: Option<&ClientCredentials>,
) -> Result<CallToolResult, ArgumentError> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let client_id = args.client_id(held)?.ok_or_else(|| {
        ArgumentError::Invalid(
            "client_id is required: this server holds no credentials (set PROCORE_CLIENT_ID \
             and PROCORE_CLIENT_SECRET in its environment to hold them)"
                .into(),
        )
    })?;
    let redirect_uri = args
        .string("redirect_uri")?
        .unwrap_or_else(|| OOB_REDIRECT_URI.to_owned());
    let state = args
        .string("state")?
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let url = authorize_url(login, &client_id, &redirect_uri, &state);
    Ok(outcome::summary(json!({
        "authorize_url": url.as_str(),
        "state": state,
        "redirect_uri": redirect_uri,
        "client_id": client_id.as_str(),
        "code_valid_for_seconds": CODE_LIFETIME_SECS,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_authorize_link_with_defaults() {
        let login = LoginBase::parse("https://login-sandbox.procore.com").unwrap();
        let arguments = json_object(json!({"client_id": "abc def"}));
        let result = call(&login, Some(&arguments), None).unwrap();
        let out = result.structured_content.unwrap();
        let url = url::Url::parse(out["authorize_url"].as_str().unwrap()).unwrap();
        assert_eq!(
            url.origin().ascii_serialization(),
            "https://login-sandbox.procore.com"
        );
        assert_eq!(url.path(), "/oauth/authorize");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let state = out["state"].as_str().unwrap();
        assert_eq!(state.len(), 32, "random state");
        assert_eq!(
            query,
            [
                ("response_type".into(), "code".into()),
                ("client_id".into(), "abc def".into()),
                ("redirect_uri".into(), OOB_REDIRECT_URI.into()),
                ("state".into(), state.to_owned()),
            ]
        );
        let again = call(&login, Some(&arguments), None).unwrap();
        assert_ne!(again.structured_content.unwrap()["state"], out["state"]);
    }

    #[test]
    fn needs_a_client_id_unless_held() {
        let login = LoginBase::parse("https://login.procore.com").unwrap();
        assert!(call(&login, None, None).is_err());
        let held = ClientCredentials {
            client_id: "held".into(),
            client_secret: "s".into(),
        };
        let result = call(&login, None, Some(&held)).unwrap();
        assert_eq!(result.structured_content.unwrap()["client_id"], "held");
    }
}

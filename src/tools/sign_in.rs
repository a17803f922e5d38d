//! `sign_in`: a person signs in through the MCP client, so the code never passes through the
//! model. The client shows the sign-in link (a URL-mode elicitation when it supports one,
//! else a form carrying the link), then asks the user, in a form, for the code or the
//! address the browser landed on; [`crate::sign_in`] checks `state`, exchanges the code once
//! and stores the pair. Listed only when the server holds client credentials and a store.
//!
//! Its result holds no code and no token; neither does any log line.

use std::time::Duration;

use rmcp::{
    Peer, RoleServer,
    model::{
        CallToolResult, ContentBlock, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationSchema, JsonObject, Tool,
    },
    service::ElicitationMode,
};
use serde_json::{Value, json};

use super::{
    Behaviour, Capabilities, OutputShape,
    arguments::{ArgumentError, Arguments},
    define, json_object,
    outcome::{self, Request},
};
use crate::{
    exchange::{Outcome, Principal, TokenExchange},
    oauth::RedirectUri,
    procore::{ClientCredentials, GrantType, OOB_REDIRECT_URI},
    sign_in::{NotSignedIn, SignInLink, SignedIn, pasted_code, redeem},
};

pub const NAME: &str = "sign_in";
const TITLE: &str = "Sign a user in to Procore";
const FIELDS: [&str; 1] = ["redirect_uri"];

/// How long the user has for each question: an authorization code lives 10 minutes.
const ASK_TIMEOUT: Duration = Duration::from_secs(600);

/// The form field the user enters the code (or the redirected address) in.
const CODE_FIELD: &str = "code";

const DESCRIPTION: &str = "\
Sign a user in to Procore through this MCP client, so the authorization code and the tokens \
never pass through the conversation: the client shows the user the sign-in link, then asks \
them for the code Procore shows (or the address their browser landed on); this server checks \
state, exchanges the code once and stores the pair. Afterwards get_access_token returns a \
working token. Use it when get_access_token says a sign-in is needed. It needs a client that \
supports elicitation; otherwise the error says the other way. The result holds no token: \
signed_in, client_id, expires_at and the environment, or that the user declined.";

/// How a person signs in when this client cannot ask them.
pub const WITHOUT_ELICITATION: &str = "call grant_app_authorization, have the user open the \
link and paste back the code, and pass it to get_or_refresh_an_access_token with \
grant_type=authorization_code (or run `procore-token-mcp login` in a terminal with this \
server's settings)";

/// The tool as published in `tools/list` (only with held credentials and a token store).
pub fn definition(_capabilities: Capabilities) -> Tool {
    define(
        NAME,
        TITLE,
        DESCRIPTION,
        input_schema(),
        output_schema(),
        // It spends a code and writes the store (not read-only); it replaces the stored pair
        // of this client with a new one, but ends no grant Procore holds (not destructive);
        // each call is a new sign-in (not idempotent).
        Behaviour {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: true,
        },
    )
}

fn input_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "properties": {
            "redirect_uri": {
                "type": "string",
                "description": "A redirect URI registered for the app. Defaults to \
                    urn:ietf:wg:oauth:2.0:oob, for which Procore shows the code on its page; \
                    with a web one the user pastes the whole address. \
                    e.g. https://app.example.com/procore/callback"
            }
        },
        "required": [],
        "additionalProperties": false
    }))
}

fn output_schema() -> JsonObject {
    json_object(json!({
        "type": "object",
        "description": "How the sign-in ended; never a code or a token.",
        "properties": {
            "signed_in": {
                "type": "boolean",
                "description": "True when the pair is stored and get_access_token works."
            },
            "status": {
                "type": "string",
                "description": "signed_in, declined or cancelled (by the user; nothing was \
                    sent to Procore)."
            },
            "client_id": {
                "type": "string",
                "description": "The app's Client ID the user signed in to."
            },
            "expires_at": {
                "type": "integer",
                "description": "When the new access token expires, in Unix seconds (only when \
                    signed in); get_access_token renews it."
            },
            "environment": {
                "type": "string",
                "description": "The Procore environment: production, sandbox, monthly-sandbox, or \
                    custom (a login URL was given)."
            },
            "login_host": {
                "type": "string",
                "description": "The login host that issued the tokens."
            },
            "api_base_url": {
                "type": "string",
                "description": "The API host the tokens work on, e.g. https://api.procore.com."
            }
        },
        "required": [
            "signed_in",
            "status",
            "client_id",
            "environment",
            "login_host",
            "api_base_url"
        ],
        "additionalProperties": false
    }))
}

/// The client of this call, when it can ask its user: the peer, and whether it takes
/// URL-mode elicitations.
pub struct UserChannel {
    pub peer: Peer<RoleServer>,
    pub url_mode: bool,
}

/// Why the user of a call's client cannot be asked anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error(
        "this MCP client did not declare the elicitation capability, so it cannot ask its \
         user for the code"
    )]
    NoElicitation,
    #[error(
        "this session speaks protocol 2026-07-28 or later, on which a server may send the \
         client no request, so the client cannot be asked for the code"
    )]
    NoRequestsToTheClient,
}

impl UserChannel {
    /// The channel to `peer`, if its protocol still allows requests to the client and it
    /// declared elicitation (form or URL mode).
    pub fn of(
        peer: &Peer<RoleServer>,
        protocol_allows_requests: bool,
    ) -> Result<Self, Unreachable> {
        if !protocol_allows_requests {
            return Err(Unreachable::NoRequestsToTheClient);
        }
        let modes = peer.supported_elicitation_modes();
        if modes.is_empty() {
            return Err(Unreachable::NoElicitation);
        }
        Ok(Self {
            peer: peer.clone(),
            url_mode: modes.contains(&ElicitationMode::Url),
        })
    }

    async fn ask(&self, params: ElicitRequestParams) -> Result<ElicitResult, String> {
        self.peer
            .create_elicitation_with_timeout(params, Some(ASK_TIMEOUT))
            .await
            .map_err(|error| error.to_string())
    }
}

/// What the tool was called in: the exchange, the held credentials, the Procore
/// environment's name, and its output schema.
pub struct Context<'a> {
    pub exchange: &'a TokenExchange,
    /// Whose sign-in: the pair is stored under this principal.
    pub principal: &'a Principal,
    pub held: Option<&'a ClientCredentials>,
    pub environment: &'static str,
    pub shape: &'a OutputShape,
}

/// Run a sign-in; the result, the grant label and the outcome label for the log line.
pub async fn call(
    context: &Context<'_>,
    arguments: Option<&JsonObject>,
    channel: Result<&UserChannel, Unreachable>,
) -> Result<(CallToolResult, &'static str, String), ArgumentError> {
    let args = Arguments::check(arguments, &FIELDS)?;
    let redirect_uri = args
        .string("redirect_uri")?
        .unwrap_or_else(|| OOB_REDIRECT_URI.to_owned());
    let redirect_uri = RedirectUri::parse(redirect_uri.trim())
        .map_err(|error| ArgumentError::Invalid(format!("redirect_uri: {error}")))?;
    let Some(held) = context.held else {
        return Ok(refusal(
            "this server holds no client credentials (PROCORE_CLIENT_ID and \
             PROCORE_CLIENT_SECRET) to sign in with"
                .to_owned(),
            "no_credentials",
        ));
    };
    if context.exchange.store().is_none() {
        return Ok(refusal(
            "no token store is configured (--token-store PATH or PROCORE_TOKEN_STORE) to keep \
             the sign-in in"
                .to_owned(),
            "store_unavailable",
        ));
    }
    let channel = match channel {
        Ok(channel) => channel,
        Err(why) => {
            return Ok(refusal(
                format!("{why}. To sign in without it, {WITHOUT_ELICITATION}"),
                "no_elicitation",
            ));
        }
    };

    let link = SignInLink::new(context.exchange, &held.client_id, &redirect_uri);
    let place = format!(
        "Procore ({}, {})",
        context.environment,
        context.exchange.login_host()
    );
    let shown = if channel.url_mode {
        ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: format!(
                "Sign in to {place} to let this app use your account: open the link and \
                 approve. You will then be asked for the code Procore shows."
            ),
            url: link.url.to_string(),
            elicitation_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    } else {
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: format!(
                "Sign in to {place} to let this app use your account: open\n\n{}\n\nand \
                 approve, then accept here. You will then be asked for the code Procore shows.",
                link.url
            ),
            requested_schema: ElicitationSchema::builder().build_unchecked(),
        }
    };
    let answer = match channel.ask(shown).await {
        Ok(answer) => answer,
        Err(error) => return Ok(unasked(&error)),
    };
    if let Some(ended) = declined(context, held, answer.action) {
        return Ok(ended);
    }

    let paste = if redirect_uri.as_str() == OOB_REDIRECT_URI {
        "the code Procore's page shows"
    } else {
        "the whole address your browser landed on"
    };
    let schema = ElicitationSchema::builder()
        .required_string_property(CODE_FIELD, |field| {
            field.title("Code").description(format!(
                "Paste {paste}. It is sent to Procore once, never to the model."
            ))
        })
        .build_unchecked();
    let asked = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!("Paste {paste} after signing in to {place}."),
        requested_schema: schema,
    };
    let answer = match channel.ask(asked).await {
        Ok(answer) => answer,
        Err(error) => return Ok(unasked(&error)),
    };
    if let Some(ended) = declined(context, held, answer.action) {
        return Ok(ended);
    }
    let pasted = answer
        .content
        .as_ref()
        .and_then(|content| content.get(CODE_FIELD))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let code = match pasted_code(pasted, &link.state) {
        Ok(code) => code,
        Err(error) => {
            return Ok((
                outcome::error_text(format!(
                    "Nothing was sent to Procore: {error}. Call sign_in again for a new link."
                )),
                "-",
                "paste_refused".to_owned(),
            ));
        }
    };
    let grant = GrantType::AuthorizationCode.as_str();
    Ok(
        match redeem(
            context.exchange,
            context.principal,
            held,
            code,
            redirect_uri,
        )
        .await
        {
            Ok(signed_in) => (success(context, &signed_in), grant, "signed_in".to_owned()),
            Err(NotSignedIn::Unstored(error)) => (
                outcome::error_text(format!(
                    "Procore issued a token pair, but it could not be written to the token store \
                 ({error}), so the sign-in is lost. Fix the store and call sign_in again."
                )),
                grant,
                "store_write_failed".to_owned(),
            ),
            Err(NotSignedIn::Ended(ended)) => failure(context.exchange, &ended),
        },
    )
}

/// The facts every result carries.
fn facts(context: &Context<'_>, held: &ClientCredentials, status: &str) -> Value {
    let base = context.exchange.procore().base();
    json!({
        "signed_in": status == "signed_in",
        "status": status,
        "client_id": held.client_id.as_str(),
        "environment": context.environment,
        "login_host": base.origin(),
        "api_base_url": base.api_base_url(),
    })
}

fn success(context: &Context<'_>, signed_in: &SignedIn) -> CallToolResult {
    let base = context.exchange.procore().base();
    let value = json!({
        "signed_in": true,
        "status": "signed_in",
        "client_id": signed_in.client_id.as_str(),
        "expires_at": signed_in.expires_at,
        "environment": context.environment,
        "login_host": base.origin(),
        "api_base_url": base.api_base_url(),
    });
    if let Some(violation) = context.shape.violation(&value) {
        return outcome::error_text(format!(
            "The sign-in succeeded and its pair is stored, but this server built a result that \
             breaks its own output schema ({violation}). Call get_access_token."
        ));
    }
    outcome::summary(value)
}

/// The user said no (or dismissed the question): a result saying so, nothing sent.
fn declined(
    context: &Context<'_>,
    held: &ClientCredentials,
    action: ElicitationAction,
) -> Option<(CallToolResult, &'static str, String)> {
    let status = match action {
        ElicitationAction::Accept => return None,
        ElicitationAction::Decline => "declined",
        // Cancel, and any action a later protocol adds: the user did not go on.
        _ => "cancelled",
    };
    let value = facts(context, held, status);
    if let Some(violation) = context.shape.violation(&value) {
        return Some((
            outcome::error_text(format!(
                "The user {status} the sign-in; nothing was sent to Procore (and this result \
                 breaks the tool's own output schema: {violation})."
            )),
            "-",
            status.to_owned(),
        ));
    }
    let mut result = outcome::summary(value);
    result.content.push(ContentBlock::text(format!(
        "The user {status} the sign-in; nothing was sent to Procore. Call sign_in again when \
         they want to sign in."
    )));
    Some((result, "-", status.to_owned()))
}

/// The client could not put the question to its user.
fn unasked(error: &str) -> (CallToolResult, &'static str, String) {
    let shown: String = error.chars().take(300).collect();
    (
        outcome::error_text(format!(
            "Nothing was sent to Procore: the client did not answer the question to its user \
             ({shown}). To sign in without it, {WITHOUT_ELICITATION}."
        )),
        "-",
        "elicitation_failed".to_owned(),
    )
}

fn refusal(reason: String, label: &str) -> (CallToolResult, &'static str, String) {
    (outcome::refused(&reason), "-", label.to_owned())
}

/// A code exchange that brought no pair, as an error result and its log labels.
fn failure(exchange: &TokenExchange, ended: &Outcome) -> (CallToolResult, &'static str, String) {
    let request = Request::Token(GrantType::AuthorizationCode);
    let grant = GrantType::AuthorizationCode.as_str();
    match ended {
        Outcome::Answered { response, .. } if response.status.is_success() => (
            outcome::error_text(format!(
                "{} answered HTTP {} to the code, but the body is not a token response (a JSON \
                 object with access_token); nothing was stored. Hint: check that the login URL \
                 points at a Procore login host.",
                exchange.login_host(),
                response.status.as_u16()
            )),
            grant,
            "not_a_token_response".to_owned(),
        ),
        _ => outcome::failed_exchange(
            exchange.procore(),
            request,
            ended,
            "The store answered a code with a stored pair.",
        ),
    }
}

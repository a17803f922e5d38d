//! The MCP face of the server: its identity, its tool list, and one dispatch per call.
//!
//! Knows nothing of HTTP framing or stdio; every transport serves the same
//! [`ProcoreTokenServer`]. Tool failures are tool results (`isError`); protocol errors are
//! kept for requests that cannot be routed (an unknown tool).

pub mod access_token;
mod arguments;
pub mod authorize;
mod outcome;
mod output_shape;
pub mod revoke;
pub mod sign_in;
pub mod token;
pub mod token_info;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, ErrorCode, Implementation, JsonObject, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};

use self::arguments::ArgumentError;
pub use self::output_shape::{OutputShape, ShapeError};
use crate::{
    exchange::{Principal, StoreFailure, TokenExchange},
    oauth::{AccessToken, ClientId},
    procore::{ClientCredentials, GrantType},
};

const INSTRUCTIONS: &str = "\
This server obtains Procore OAuth 2.0 access tokens. For a user's first sign-in, call \
grant_app_authorization and have the user open the link and paste back the code, then call \
get_or_refresh_an_access_token with grant_type=authorization_code. Renew with \
grant_type=refresh_token; a service account uses grant_type=client_credentials. Every token \
response carries a new refresh_token that replaces the old one, which stops working at once: \
keep the newest, send it once, and never refresh twice in parallel. get_token_info checks a \
token; revoke_token ends a pair for good. Failures come back as tool errors with Procore's \
answer and a hint.";

const STORE_INSTRUCTIONS: &str = " This server keeps a token store: once a user has signed \
in, get_access_token returns a working access token (renewed when it runs short) without \
passing any token, and is the simplest way to get one.";

const SIGN_IN_INSTRUCTIONS: &str = " To sign a user in, prefer sign_in: the client asks the \
user for the code, so neither it nor any token passes through the conversation.";

/// What this server was started with, as far as tool definitions care.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    /// `PROCORE_CLIENT_ID` and `PROCORE_CLIENT_SECRET` are held by the server.
    pub credentials_held: bool,
    /// A token store is configured.
    pub token_store: bool,
}

/// Who makes a tool call, as the HTTP transport established it from an access token (the
/// transport attaches it to the request); stdio and the static token are [`Caller::local`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// Whether it may obtain service-account tokens (`client_credentials`): false when
    /// `--service-scope` is set and its access token lacks that scope.
    pub service_accounts: bool,
}

impl Caller {
    /// The one principal of stdio and of the static bearer token, with every grant.
    pub fn local() -> Self {
        Self {
            principal: Principal::Local,
            service_accounts: true,
        }
    }
}

impl Capabilities {
    /// Whether `sign_in` is offered: it needs the app's credentials and a store to keep the
    /// sign-in in.
    pub fn signs_in(self) -> bool {
        self.credentials_held && self.token_store
    }
}

/// The server handler shared by every session and transport.
#[derive(Clone)]
pub struct ProcoreTokenServer {
    inner: Arc<ServerState>,
}

struct ServerState {
    exchange: TokenExchange,
    held: Option<ClientCredentials>,
    capabilities: Capabilities,
    tools: Vec<Tool>,
    shapes: Shapes,
    /// Every tool call must come from an authenticated user (the HTTP transport validates
    /// access tokens); a call without one is refused rather than served as the local one.
    users_only: AtomicBool,
    /// The Procore environment's name, for results that say where a user signed in.
    environment: &'static str,
}

/// The output schemas of the tools that pass Procore's answers through, compiled once.
struct Shapes {
    token: OutputShape,
    token_info: OutputShape,
    access_token: OutputShape,
    sign_in: OutputShape,
}

impl ProcoreTokenServer {
    /// `Err` only if a tool's own output schema does not compile (a defect of this server).
    pub fn new(
        exchange: TokenExchange,
        held: Option<ClientCredentials>,
    ) -> Result<Self, ShapeError> {
        let capabilities = Capabilities {
            credentials_held: held.is_some(),
            token_store: exchange.store().is_some(),
        };
        let token = token::definition(capabilities);
        let token_info = token_info::definition(capabilities);
        let access_token = access_token::definition(capabilities);
        let sign_in = sign_in::definition(capabilities);
        let shapes = Shapes {
            token: OutputShape::of(&token)?,
            token_info: OutputShape::of(&token_info)?,
            access_token: OutputShape::of(&access_token)?,
            sign_in: OutputShape::of(&sign_in)?,
        };
        let mut tools = vec![
            authorize::definition(capabilities),
            token,
            token_info,
            revoke::definition(capabilities),
        ];
        if capabilities.token_store {
            tools.push(access_token);
        }
        if capabilities.signs_in() {
            tools.push(sign_in);
        }
        Ok(Self {
            inner: Arc::new(ServerState {
                exchange,
                held,
                capabilities,
                tools,
                shapes,
                users_only: AtomicBool::new(false),
                environment: "custom",
            }),
        })
    }

    /// Name the Procore environment (`production`, `sandbox`, …) the login host is; call
    /// it before the server is cloned (a clone keeps the name it had).
    #[must_use]
    pub fn with_environment(mut self, environment: &'static str) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.inner) {
            state.environment = environment;
        }
        self
    }

    /// Wait for token requests still in flight before the process exits (see
    /// [`TokenExchange::drain`]).
    pub async fn drain(&self) {
        let exchange = &self.inner.exchange;
        if !exchange.drain(exchange.drain_limit()).await {
            tracing::warn!("exiting with token requests still in flight");
        }
    }

    /// From now on, refuse every tool call that does not carry a user principal (set by
    /// the HTTP transport from a validated access token): no call is ever served as the
    /// local principal's by mistake.
    pub fn require_users(&self) {
        self.inner.users_only.store(true, Ordering::Release);
    }

    /// Whether this server can serve token calls now: its token store (if any) answers.
    pub async fn ready(&self) -> Result<(), StoreFailure> {
        self.inner.exchange.store_ready().await
    }

    /// Where the token store keeps legacy MCP sessions for every process sharing it (a
    /// Redis store), each expiring after `idle` unused; `None`: this process keeps its own.
    pub fn shared_sessions(&self, idle: Duration) -> Option<crate::exchange::SharedSessions> {
        self.inner.exchange.shared_sessions(idle)
    }

    /// The tools this server publishes, as `tools/list` returns them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    /// Run one tool call as the local principal (stdio, the static bearer token), from a
    /// client that cannot be asked anything. `Err` only for a tool this server does not have.
    pub async fn call(&self, params: &CallToolRequestParams) -> Result<CallToolResult, ErrorData> {
        self.call_as(
            &Caller::local(),
            params,
            Err(sign_in::Unreachable::NoElicitation),
        )
        .await
    }

    /// Run one tool call on behalf of `caller`: only its principal's stored pairs are read,
    /// refreshed, replayed or forgotten; `channel` reaches the client's user, or says why it
    /// cannot. `Err` only for a tool this server does not have.
    async fn call_as(
        &self,
        caller: &Caller,
        params: &CallToolRequestParams,
        channel: Result<&sign_in::UserChannel, sign_in::Unreachable>,
    ) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let principal = &caller.principal;
        let state = &self.inner;
        let tool = params.name.as_ref();
        let arguments = params.arguments.as_ref();
        let held = state.held.as_ref();
        let (result, grant, outcome) = match tool {
            token::NAME => match token::prepare(arguments, held, state.capabilities.token_store) {
                Ok(request)
                    if request.grant_type == GrantType::ClientCredentials
                        && !caller.service_accounts =>
                {
                    let (result, _, outcome) = invalid(Refusal::NotPermitted(
                        "service-account tokens (grant_type=client_credentials) are only for \
                         callers whose access token carries the scope this server requires \
                         for them (--service-scope); ask your administrator for it"
                            .into(),
                    ));
                    (result, request.grant_type.as_str(), outcome)
                }
                Ok(request) => {
                    let grant = request.grant_type.as_str();
                    let (result, outcome) =
                        token::call(&state.exchange, principal, request, &state.shapes.token).await;
                    (result, grant, outcome)
                }
                Err(error) => invalid(error),
            },
            authorize::NAME => {
                match authorize::call(state.exchange.procore().base(), arguments, held) {
                    Ok(result) => (result, "-", "link_built".to_owned()),
                    Err(error) => invalid(error),
                }
            }
            token_info::NAME => {
                match token_info::call(
                    &state.exchange,
                    principal,
                    arguments,
                    held,
                    &state.shapes.token_info,
                )
                .await
                {
                    Ok((result, outcome)) => (result, "-", outcome),
                    Err(error) => invalid(error),
                }
            }
            revoke::NAME => match revoke::call(&state.exchange, principal, arguments, held).await {
                Ok((result, outcome)) => (result, "-", outcome),
                Err(error) => invalid(error),
            },
            access_token::NAME if state.capabilities.token_store => {
                match access_token::call(
                    &state.exchange,
                    principal,
                    arguments,
                    held,
                    &state.shapes.access_token,
                )
                .await
                {
                    Ok(called) => called,
                    Err(error) => invalid(error),
                }
            }
            sign_in::NAME if state.capabilities.signs_in() => {
                let context = sign_in::Context {
                    exchange: &state.exchange,
                    principal,
                    held,
                    environment: state.environment,
                    shape: &state.shapes.sign_in,
                };
                match sign_in::call(&context, arguments, channel).await {
                    Ok(called) => called,
                    Err(error) => invalid(error),
                }
            }
            _ => {
                let shown: String = tool.chars().take(64).collect();
                // The name is the caller's text, which may be anything (a secret pasted in
                // the wrong field): the log says how long it was, never what it said.
                tracing::info!(
                    name_chars = tool.chars().count(),
                    "tool call refused: unknown tool"
                );
                let names: Vec<&str> = state.tools.iter().map(|t| t.name.as_ref()).collect();
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool {shown:?}; this server has: {}",
                        names.join(", ")
                    ),
                    None,
                ));
            }
        };
        tracing::info!(
            tool,
            grant_type = grant,
            upstream = %outcome,
            is_error = result.is_error.unwrap_or(false),
            latency_ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
            "tool call"
        );
        Ok(result)
    }
}

/// Why a call was refused before anything was sent to Procore.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("Invalid arguments, nothing was sent to Procore: {0}")]
    Arguments(#[from] ArgumentError),
    #[error("Nothing was sent to Procore: the token store could not be read: {0}")]
    Store(#[from] StoreFailure),
    #[error("Refused, nothing was sent to Procore: {0}")]
    NotPermitted(String),
}

/// A refused call as its result, grant label and outcome label.
fn invalid(refusal: impl Into<Refusal>) -> (CallToolResult, &'static str, String) {
    let refusal = refusal.into();
    let outcome = match refusal {
        Refusal::Arguments(_) => "invalid_arguments",
        Refusal::Store(_) => "store_unavailable",
        Refusal::NotPermitted(_) => "not_permitted",
    };
    (
        CallToolResult::error(vec![ContentBlock::text(refusal.to_string())]),
        "-",
        outcome.to_owned(),
    )
}

/// The stored pair's access token, for a tool whose `argument` was omitted: of `client_id`,
/// or of the only pair stored for this login host.
async fn stored_access_token(
    exchange: &TokenExchange,
    principal: &Principal,
    client_id: Option<&ClientId>,
    argument: &str,
) -> Result<AccessToken, Refusal> {
    let token = exchange.stored_access_token(principal, client_id).await?;
    Ok(token.ok_or_else(|| {
        ArgumentError::Invalid(format!(
            "{argument} is missing and the token store holds no access token for {} at {}; \
             pass {argument}, or obtain tokens first",
            client_id.map_or_else(|| "a single client".to_owned(), |id| format!("client {id}")),
            exchange.login_host()
        ))
    })?)
}

/// The principal the transport attached to a request: on the message itself (the old SSE
/// transport), or on the HTTP request rmcp hands over with it (streamable HTTP).
fn caller(extensions: &rmcp::model::Extensions) -> Option<Caller> {
    extensions.get::<Caller>().cloned().or_else(|| {
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>().cloned())
    })
}

/// What a tool's annotations declare about its effect on the world.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
}

/// A tool definition: name, title (also as the annotation title), description, schemas and
/// the annotations of `behaviour`.
fn define(
    name: &'static str,
    title: &str,
    description: impl Into<std::borrow::Cow<'static, str>>,
    input_schema: JsonObject,
    output_schema: JsonObject,
    behaviour: Behaviour,
) -> Tool {
    Tool::new(name, description, input_schema)
        .with_title(title)
        .with_raw_output_schema(Arc::new(output_schema))
        .with_annotations(
            rmcp::model::ToolAnnotations::with_title(title)
                .read_only(behaviour.read_only)
                .destructive(behaviour.destructive)
                .idempotent(behaviour.idempotent)
                .open_world(behaviour.open_world),
        )
}

/// A `json!` object literal as a schema object.
fn json_object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

impl ServerHandler for ProcoreTokenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("Procore Token MCP")
                    .with_description("Obtains and renews Procore OAuth 2.0 access tokens"),
            )
            .with_instructions({
                let capabilities = self.inner.capabilities;
                let mut instructions = INSTRUCTIONS.to_owned();
                if capabilities.token_store {
                    instructions.push_str(STORE_INSTRUCTIONS);
                }
                if capabilities.signs_in() {
                    instructions.push_str(SIGN_IN_INSTRUCTIONS);
                }
                instructions
            })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner
            .tools
            .iter()
            .find(|tool| tool.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = match caller(&context.extensions) {
            Some(caller) => caller,
            None if self.inner.users_only.load(Ordering::Acquire) => {
                tracing::warn!("tool call refused: it carries no authenticated user");
                return Ok(CallToolResponse::from(CallToolResult::error(vec![
                    ContentBlock::text(
                        "Refused, nothing was sent to Procore: this call carries no \
                         authenticated user. Call through the HTTP endpoint with an access \
                         token.",
                    ),
                ])));
            }
            None => Caller::local(),
        };
        // Only sign_in asks the user anything; from protocol 2026-07-28 on a server may
        // send the client no request at all.
        let channel = if request.name == sign_in::NAME {
            let requests_allowed = context
                .protocol_version()
                .is_none_or(|version| version < ProtocolVersion::V_2026_07_28);
            sign_in::UserChannel::of(&context.peer, requests_allowed)
        } else {
            Err(sign_in::Unreachable::NoElicitation)
        };
        // Boxed: the future of every tool's call is large, and rmcp moves the handler's
        // future several times before and while it runs it; a box is moved instead.
        Box::pin(self.call_as(&caller, &request, channel.as_ref().map_err(|why| *why)))
            .await
            .map(CallToolResponse::from)
    }

    /// rmcp hands over any request it cannot type: an unknown method, or a known method
    /// whose params have the wrong shape. Tell the two apart, without echoing the params.
    /// In protocol 2026-07-28 and later, `initialize` and `ping` no longer exist.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method: String = request.method.chars().take(64).collect();
        let stateless = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        let served: &[&str] = if stateless {
            &METHODS_SERVED_STATELESS
        } else {
            &METHODS_SERVED
        };
        if served.contains(&method.as_str()) {
            Err(ErrorData::invalid_params(
                format!("the params of {method} do not have the shape this method takes"),
                None,
            ))
        } else {
            Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("method not found: {method}"),
                None,
            ))
        }
    }
}

/// The request methods of protocol 2026-07-28 and later this server answers.
const METHODS_SERVED_STATELESS: [&str; 3] = ["server/discover", "tools/list", "tools/call"];

/// The request methods this server answers (others are "method not found").
const METHODS_SERVED: [&str; 5] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
];

#[cfg(test)]
mod definition_length {
    use super::*;

    /// Every description an agent reads, in every configuration, stays short: a tool's at
    /// most 130 words, a parameter's at most 45, and each parameter shows an example value.
    #[test]
    fn descriptions_are_short_and_parameters_show_an_example() {
        for credentials_held in [false, true] {
            for token_store in [false, true] {
                let capabilities = Capabilities {
                    credentials_held,
                    token_store,
                };
                for tool in [
                    authorize::definition(capabilities),
                    token::definition(capabilities),
                    token_info::definition(capabilities),
                    revoke::definition(capabilities),
                    access_token::definition(capabilities),
                    sign_in::definition(capabilities),
                ] {
                    let words = tool
                        .description
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .count();
                    assert!(
                        words <= 130,
                        "{} ({capabilities:?}): {words} words",
                        tool.name
                    );
                    let properties = tool.input_schema["properties"].as_object().unwrap();
                    for (name, property) in properties {
                        let text = property["description"].as_str().unwrap();
                        let words = text.split_whitespace().count();
                        assert!(words <= 45, "{}.{name}: {words} words", tool.name);
                        assert!(
                            text.contains("e.g. "),
                            "{}.{name} shows an example",
                            tool.name
                        );
                    }
                }
            }
        }
    }
}

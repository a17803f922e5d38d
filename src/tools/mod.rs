//! The MCP face of the server: its identity, its tool list, and one dispatch per call.
//!
//! Knows nothing of HTTP framing or stdio; every transport serves the same
//! [`ProcoreTokenServer`]. Tool failures are tool results (`isError`); protocol errors are
//! kept for requests that cannot be routed (an unknown tool).

mod arguments;
mod outcome;
pub mod token;

use std::{sync::Arc, time::Instant};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, ErrorCode, Implementation, ListToolsResult, PaginatedRequestParams,
        ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};

use crate::{config::HeldCredentials, procore::ProcoreClient};

const INSTRUCTIONS: &str = "\
This server obtains Procore OAuth 2.0 access tokens with the tool \
get_or_refresh_an_access_token. Use grant_type=authorization_code with the code a user got \
from Procore's authorize page, refresh_token to renew an expired access token, or \
client_credentials for a service account. Every token response carries a new refresh_token \
that replaces the old one, which stops working at once: keep the newest, send it once, and \
never refresh twice in parallel. Failures come back as tool errors with Procore's answer and \
a hint.";

/// The server handler shared by every session and transport.
#[derive(Clone)]
pub struct ProcoreTokenServer {
    inner: Arc<ServerState>,
}

struct ServerState {
    procore: ProcoreClient,
    held: Option<HeldCredentials>,
    tools: Vec<Tool>,
}

impl ProcoreTokenServer {
    pub fn new(procore: ProcoreClient, held: Option<HeldCredentials>) -> Self {
        let tools = vec![token::definition(held.as_ref())];
        Self {
            inner: Arc::new(ServerState {
                procore,
                held,
                tools,
            }),
        }
    }

    /// The tools this server publishes, as `tools/list` returns them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    /// Run one tool call. `Err` only for a tool this server does not have.
    pub async fn call(&self, params: &CallToolRequestParams) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let state = &self.inner;
        let tool = params.name.as_ref();
        let (result, grant, outcome) = match tool {
            token::NAME => match token::prepare(params.arguments.as_ref(), state.held.as_ref()) {
                Ok(request) => {
                    let grant = request.grant_type.as_str();
                    let (result, outcome) = token::call(&state.procore, &request).await;
                    (result, grant, outcome)
                }
                Err(error) => (
                    CallToolResult::error(vec![ContentBlock::text(format!(
                        "Invalid arguments, nothing was sent to Procore: {error}"
                    ))]),
                    "-",
                    "invalid_arguments".to_owned(),
                ),
            },
            _ => {
                let shown: String = tool.chars().take(64).collect();
                tracing::info!(tool = %shown, "tool call refused: unknown tool");
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {shown:?}; this server has: {}", token::NAME),
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

impl ServerHandler for ProcoreTokenServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("Procore Token MCP")
                    .with_description("Obtains and renews Procore OAuth 2.0 access tokens"),
            )
            .with_instructions(INSTRUCTIONS)
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
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(&request).await.map(CallToolResponse::from)
    }

    /// rmcp hands over any request it cannot type: an unknown method, or a known method
    /// whose params have the wrong shape. Tell the two apart, without echoing the params.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method: String = request.method.chars().take(64).collect();
        if METHODS_SERVED.contains(&method.as_str()) {
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

/// The request methods this server answers (others are "method not found").
const METHODS_SERVED: [&str; 5] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
];

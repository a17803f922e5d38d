//! Support for the front-door tests (`tests/front_door/`): a recording upstream on
//! 127.0.0.1, the real binary spawned over stdio or HTTP with its stderr captured, and rmcp
//! clients for every transport (including a small client for the old HTTP+SSE transport,
//! which rmcp no longer ships). `fixtures.rs` and `sse_events.rs` also serve `tests/fuzz.rs`,
//! which includes only those two.

pub mod authed_clients;
pub mod emulator_flow;
pub mod faulty_upstream;
pub mod fixtures;
pub mod holding_proxy;
pub mod nginx;
pub mod raw_mcp;
pub mod redis_server;
pub mod sse_client;
pub mod sse_events;
pub mod test_issuer;

use std::{
    collections::VecDeque,
    os::unix::fs::PermissionsExt,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ProtocolVersion},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::{io::AsyncBufReadExt, process::Command};

pub use fixtures::{TOKEN_BODY, TOOL};

pub type Client = RunningService<RoleClient, ()>;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_procore-token-mcp");

pub fn init() {
    procore_token_mcp::tls::install_crypto_provider();
}

/// Wait (up to 30 s, looking every 10 ms) until `condition` holds; panic with `what` (and
/// what it says then) if it never does.
pub async fn wait_until(condition: impl Fn() -> bool, what: impl Fn() -> String) {
    for _ in 0..3000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting: {}", what());
}

// ───────────────────────────── the upstream ─────────────────────────────

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn token() -> Self {
        Self::new(200, TOKEN_BODY)
    }
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct UpstreamState {
    requests: Mutex<Vec<Recorded>>,
    /// Replies handed back so far (a delayed one counts once its delay is over).
    replied: Mutex<usize>,
    queue: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from a script
/// (queued replies first, then the fallback, which is a token response by default).
pub struct Upstream {
    pub url: String,
    state: Arc<UpstreamState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Self {
        let state = Arc::new(UpstreamState::default());
        *state.fallback.lock().unwrap() = Some(Reply::token());
        let app = axum::Router::new()
            .fallback(record_and_reply)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    /// Answer the next request with `reply` (queued replies are used in order).
    pub fn push(&self, reply: Reply) {
        self.state.queue.lock().unwrap().push_back(reply);
    }

    /// Answer every request without a queued reply with `reply`.
    pub fn always(&self, reply: Reply) {
        *self.state.fallback.lock().unwrap() = Some(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Wait until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        wait_until(
            || self.count() >= n,
            || format!("the upstream saw {} requests, not {n}", self.count()),
        )
        .await;
    }

    /// Wait until `n` replies have been handed back (delayed ones once their delay is over).
    pub async fn wait_for_replies(&self, n: usize) {
        let replied = || *self.state.replied.lock().unwrap();
        wait_until(
            || replied() >= n,
            || format!("the upstream gave {} replies, not {n}", replied()),
        )
        .await;
    }
}

async fn record_and_reply(State(state): State<Arc<UpstreamState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    state.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    });
    let reply = state
        .queue
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.fallback.lock().unwrap().clone())
        .unwrap_or_else(|| Reply::new(500, "no reply scripted"));
    tokio::time::sleep(reply.delay).await;
    *state.replied.lock().unwrap() += 1;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(name).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// A private temporary directory (0700), removed on drop: a token store's home.
pub struct StoreDir(pub std::path::PathBuf);

impl StoreDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ptm-token-store-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(dir)
    }
    pub fn file(&self) -> std::path::PathBuf {
        self.0.join("tokens.json")
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ───────────────────────────── the server under test ─────────────────────────────

/// A process's output (its stderr, or stdout), collected line by line as it is written.
#[derive(Clone, Default)]
pub struct Logs {
    text: Arc<Mutex<String>>,
    /// The stream has ended: the process closed it or exited.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Logs {
    pub fn follow(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Self {
        let logs = Self::default();
        let (sink, closed) = (logs.text.clone(), logs.closed.clone());
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
            closed.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        logs
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Wait until a line containing `needle` has been written; that line.
    pub async fn wait_for(&self, needle: &str) -> String {
        let line = || {
            self.text()
                .lines()
                .find(|line| line.contains(needle))
                .map(str::to_owned)
        };
        wait_until(
            || line().is_some(),
            || format!("no line with {needle:?} in:\n{}", self.text()),
        )
        .await;
        line().unwrap()
    }

    /// Wait until the stream has ended (so every line is in); everything written.
    pub async fn until_closed(&self) -> String {
        wait_until(
            || self.closed.load(std::sync::atomic::Ordering::SeqCst),
            || format!("the stream is still open after:\n{}", self.text()),
        )
        .await;
        self.text()
    }
}

/// Send SIGTERM to `child` and wait (up to 20 s) for its exit status.
pub async fn terminate(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap()
}

/// How to start the binary: arguments and environment on top of a clean environment.
#[derive(Clone, Default)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// Point the server at `upstream`.
    pub fn against(upstream_url: &str) -> Self {
        Self::default().arg("--login-url").arg(upstream_url)
    }
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        for name in [
            "PROCORE_CLIENT_ID",
            "PROCORE_CLIENT_SECRET",
            "PROCORE_ENV",
            "PROCORE_LOGIN_URL",
            "PROCORE_TIMEOUT_SECS",
            "PROCORE_MAX_RESPONSE_BYTES",
            "PROCORE_TOKEN_STORE",
            "PROCORE_STORE_DURABILITY",
            "PROCORE_STORE_KEY",
            "PROCORE_STORE_KEY_PREVIOUS",
            "MCP_TRANSPORT",
            "MCP_LISTEN",
            "MCP_ALLOWED_HOSTS",
            "MCP_AUTH_TOKEN",
            "MCP_AUTH_ISSUER",
            "MCP_PUBLIC_URL",
            "MCP_AUTH_AUDIENCE",
            "MCP_AUTH_SCOPES",
            "MCP_ALLOW_UNAUTHENTICATED",
            "MCP_MAX_REQUEST_BYTES",
            "MCP_READ_TIMEOUT_SECS",
            "MCP_MAX_SESSIONS",
            "MCP_MAX_CONNECTIONS",
            "MCP_SESSION_IDLE_SECS",
            "RUST_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(name);
        }
        command.args(&self.args);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.kill_on_drop(true);
        command
    }
}

/// The binary over stdio, driven by rmcp's child-process client.
pub async fn stdio_client(launch: &Launch) -> (Client, Logs) {
    stdio_client_with(launch, ()).await
}

/// The binary over stdio, driven by rmcp's child-process client with `handler` answering
/// what the server asks the client (and declaring the client's capabilities).
pub async fn stdio_client_with<H: rmcp::ClientHandler>(
    launch: &Launch,
    handler: H,
) -> (RunningService<RoleClient, H>, Logs) {
    let (transport, stderr) = TokioChildProcess::builder(launch.command())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let logs = Logs::follow(stderr.expect("piped stderr"));
    let client = handler
        .serve(transport)
        .await
        .expect("initialize over stdio");
    (client, logs)
}

/// The binary serving HTTP on an ephemeral loopback port.
pub struct HttpServer {
    pub child: tokio::process::Child,
    pub base: String,
    pub logs: Logs,
}

impl HttpServer {
    pub async fn start(launch: &Launch) -> Self {
        Self::start_on(launch, "127.0.0.1:0").await
    }

    /// [`Self::start`] listening on `listen` (to start again where a stopped one was).
    pub async fn start_on(launch: &Launch, listen: &str) -> Self {
        let mut command = launch
            .clone()
            .arg("--transport")
            .arg("http")
            .arg("--listen")
            .arg(listen)
            .command();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn the server");
        let logs = Logs::follow(child.stderr.take().expect("stderr"));
        let line = logs.wait_for("listening: streamable HTTP at ").await;
        let url = line
            .split("streamable HTTP at ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("url in the listening line")
            .trim_end_matches(',');
        let base = url.trim_end_matches("/mcp").to_owned();
        Self { child, base, logs }
    }

    /// Stop the server with SIGTERM; everything it logged, once its stderr has closed.
    pub async fn stop(mut self) -> String {
        terminate(&mut self.child).await;
        self.logs.until_closed().await
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn sse_url(&self) -> String {
        format!("{}/sse", self.base)
    }

    /// rmcp's streamable HTTP client, `initialize` handshake (protocol ≤ 2025-11-25).
    pub async fn legacy_client(&self) -> Client {
        self.legacy_client_with(()).await
    }

    /// [`Self::legacy_client`] with `handler` answering what the server asks the client.
    pub async fn legacy_client_with<H: rmcp::ClientHandler>(
        &self,
        handler: H,
    ) -> RunningService<RoleClient, H> {
        legacy_client_at_with(&self.mcp_url(), handler).await
    }

    /// rmcp's streamable HTTP client, stateless 2026-07-28 requests after `server/discover`.
    pub async fn modern_client(&self) -> Client {
        self.modern_client_with(()).await
    }

    /// [`Self::modern_client`] with `handler` declaring the client's capabilities.
    pub async fn modern_client_with<H: rmcp::ClientHandler>(
        &self,
        handler: H,
    ) -> RunningService<RoleClient, H> {
        modern_client_at_with(&self.mcp_url(), handler).await
    }

    /// rmcp's client over the old HTTP+SSE endpoints.
    pub async fn sse_client(&self) -> Client {
        sse_client_at(&self.sse_url()).await
    }
}

/// [`HttpServer::legacy_client`] of the `/mcp` at `url` (a load balancer, say).
pub async fn legacy_client_at(url: &str) -> Client {
    legacy_client_at_with(url, ()).await
}

/// [`legacy_client_at`] with `handler` answering what the server asks the client.
pub async fn legacy_client_at_with<H: rmcp::ClientHandler>(
    url: &str,
    handler: H,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    handler
        .serve(transport)
        .await
        .expect("initialize over streamable HTTP")
}

/// [`HttpServer::modern_client`] of the `/mcp` at `url`.
pub async fn modern_client_at(url: &str) -> Client {
    modern_client_at_with(url, ()).await
}

/// [`modern_client_at`] with `handler` declaring the client's capabilities.
pub async fn modern_client_at_with<H: rmcp::ClientHandler>(
    url: &str,
    handler: H,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    handler
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover over streamable HTTP")
}

/// [`HttpServer::sse_client`] of the `/sse` at `url`.
pub async fn sse_client_at(url: &str) -> Client {
    let transport = sse_client::connect(url).await;
    ().serve(transport).await.expect("initialize over HTTP+SSE")
}

// ───────────────────────────── calls ─────────────────────────────

pub fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("object")
}

/// Call the token tool with `arguments`.
pub async fn call_token(client: &Client, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(TOOL).with_arguments(args(arguments)))
        .await
        .expect("tools/call answered")
}

/// Assert that a `tools/list` answer matches `tests/snapshots/{name}.snap`. The files keep
/// the names they had when each module was its own test binary (`tool_list__tools_open`).
pub fn assert_tool_list_snapshot(name: &str, tools: &Value) {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_json_snapshot!(name, tools);
    });
}

/// The tool called `name` in a `tools/list` answer.
pub fn find_tool<'a>(tools: &'a [rmcp::model::Tool], name: &str) -> &'a rmcp::model::Tool {
    tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("tool {name} is listed"))
}

/// The text of the first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|block| block.as_text())
        .map(|text| text.text.clone())
        .expect("a text content block")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// Standard arguments for each grant, with canary secrets.
pub fn client_credentials() -> Value {
    json!({"grant_type": "client_credentials", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d"})
}

pub fn refresh(token: &str) -> Value {
    json!({"grant_type": "refresh_token", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d", "refresh_token": token})
}

pub fn authorization_code(code: &str) -> Value {
    json!({"grant_type": "authorization_code", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d", "code": code, "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})
}

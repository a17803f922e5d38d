//! The performance harness: cold start, added latency, throughput, memory and binary size
//! of the release binary, printed as a table of medians (with min and max) and same-run
//! ratios. Nothing here is asserted against a target: the figures are for people to read.
//!
//! `cargo bench --bench harness` runs the full harness (cargo passes `--bench`); under
//! `cargo test` the same code runs in a small size only to prove that it works.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// The test suite's nginx (tests/common/nginx.rs), for the figures through a load balancer;
/// it takes its ports from `redis_server::free_port`, here the harness's own.
#[allow(
    dead_code,
    reason = "the suite's access log and affinity listener are not used here"
)]
#[path = "../tests/common/nginx.rs"]
mod nginx;
mod redis_server {
    pub(crate) use super::free_port;
}

/// The binary measured: this build's, unless `HARNESS_BIN` names another (to compare two
/// builds on the same machine, one run after the other).
fn bin() -> String {
    std::env::var("HARNESS_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_procore-token-mcp").to_owned())
}
const TOOL: &str = "get_or_refresh_an_access_token";

/// How much of everything to run.
#[derive(Clone, Copy)]
struct Size {
    cold_runs: usize,
    latency_calls: usize,
    throughput_clients: usize,
    throughput_secs: u64,
    memory_calls: usize,
}

const FULL: Size = Size {
    cold_runs: 50,
    latency_calls: 2000,
    throughput_clients: 64,
    throughput_secs: 10,
    memory_calls: 10_000,
};

const SMOKE: Size = Size {
    cold_runs: 3,
    latency_calls: 20,
    throughput_clients: 4,
    throughput_secs: 1,
    memory_calls: 200,
};

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let size = if full { FULL } else { SMOKE };
    procore_token_mcp::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // HARNESS_ONLY=load,peers (say) runs only those parts, for an A/B of one figure: cold,
    // latency, memory, store, load, peers (peers needs load and cold for its ratios),
    // replicas.
    let only = std::env::var("HARNESS_ONLY").ok();
    let runs = |part: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|p| p.trim() == part))
    };
    let mut report = Report::default();
    report.header(full);
    let cold = if runs("cold") || runs("peers") {
        cold_start(&mut report, size.cold_runs, "", &|| {
            let mut command = Command::new(bin());
            command.env("RUST_LOG", "info");
            command
        })
    } else {
        (f64::NAN, f64::NAN)
    };
    let upstream = Upstream::start();
    runtime.block_on(async {
        if runs("latency") {
            added_latency(&mut report, size, &upstream).await;
        }
        if runs("memory") {
            memory(&mut report, size, &upstream).await;
        }
        if runs("store") {
            store_cost(&mut report, size, &upstream).await;
        }
        if runs("replicas") {
            replicas(&mut report, size, &upstream).await;
        }
        if runs("load") || runs("peers") {
            let ours = throughput(&mut report, size, &upstream).await;
            if runs("peers") {
                peers::python(&mut report, size, &upstream, &ours, &cold).await;
            }
        }
    });
    binary_size(&mut report);
    report.print();
}

// ───────────────────────────── statistics and the table ─────────────────────────────

struct Stats {
    sorted: Vec<f64>,
}

impl Stats {
    fn new(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self { sorted: samples }
    }
    fn quantile(&self, q: f64) -> f64 {
        let index = ((self.sorted.len() - 1) as f64 * q).round() as usize;
        self.sorted[index]
    }
    fn median(&self) -> f64 {
        self.quantile(0.5)
    }
    fn min(&self) -> f64 {
        self.sorted[0]
    }
    fn max(&self) -> f64 {
        self.sorted[self.sorted.len() - 1]
    }
}

#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn header(&mut self, full: bool) {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let mode = if full {
            "full"
        } else {
            "smoke (test-suite size; figures not meaningful)"
        };
        self.lines.push(format!(
            "procore-token-mcp {} performance harness — {mode} run, {cores} cores, binary {}",
            env!("CARGO_PKG_VERSION"),
            bin()
        ));
        self.lines.push(String::new());
        self.lines.push(format!(
            "| {:<68} | {:>10} | {:>10} | {:>10} | {:>5} |",
            "figure", "median", "min", "max", "n"
        ));
        self.lines.push(format!(
            "|{:-<70}|{:->12}|{:->12}|{:->12}|{:->7}|",
            "", "", "", "", ""
        ));
    }

    fn stats(&mut self, figure: &str, unit: &str, stats: &Stats) {
        self.lines.push(format!(
            "| {:<68} | {:>10} | {:>10} | {:>10} | {:>5} |",
            figure,
            format!("{:.3} {unit}", stats.median()),
            format!("{:.3} {unit}", stats.min()),
            format!("{:.3} {unit}", stats.max()),
            stats.sorted.len()
        ));
    }

    fn value(&mut self, figure: &str, value: String) {
        self.lines.push(format!(
            "| {:<68} | {:>10} | {:>10} | {:>10} | {:>5} |",
            figure, value, "", "", ""
        ));
    }

    fn print(&self) {
        println!();
        for line in &self.lines {
            println!("{line}");
        }
        println!();
    }
}

// ───────────────────────────── 1. cold start over stdio ─────────────────────────────

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"harness","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

/// Spawn → `initialize` answered and spawn → `tools/list` answered over stdio, `runs`
/// times; reports both (figures prefixed by `who`) and returns the medians in ms.
fn cold_start(
    report: &mut Report,
    runs: usize,
    who: &str,
    command: &dyn Fn() -> Command,
) -> (f64, f64) {
    let mut to_initialize = Vec::new();
    let mut to_list = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        writeln!(stdin, "{INITIALIZE}").unwrap();
        stdout.read_line(&mut line).unwrap();
        to_initialize.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(line.contains("\"protocolVersion\""), "{line}");
        writeln!(stdin, "{INITIALIZED}\n{TOOLS_LIST}").unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        to_list.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(line.contains(TOOL), "{line}");
        drop(stdin);
        child.wait().unwrap();
    }
    let (to_initialize, to_list) = (Stats::new(to_initialize), Stats::new(to_list));
    report.stats(
        &format!("{who}cold start: spawn → initialize answered (stdio)"),
        "ms",
        &to_initialize,
    );
    report.stats(
        &format!("{who}cold start: spawn → tools/list answered (stdio)"),
        "ms",
        &to_list,
    );
    (to_initialize.median(), to_list.median())
}

// ───────────────────────────── the upstream ─────────────────────────────

/// The login host for every figure: a stateless upstream on its own thread of this
/// process, which answers each token POST at once with a response of Procore's shape,
/// keeps nothing and counts the POSTs. (The emulator keeps every token it issues and checks
/// every grant, so under load it measures itself; it is the upstream of the test suite.)
/// It still refuses a body that is neither a client-credentials request with a client id
/// nor a refresh with a refresh token (answered with a new pair), so a call the server
/// mangled shows up as an error.
struct Upstream {
    url: String,
    posts: Arc<AtomicU64>,
}

impl Upstream {
    fn start() -> Self {
        let posts = Arc::new(AtomicU64::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let counter = posts.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new()
                    .route("/oauth/token", axum::routing::post(token))
                    .with_state(counter);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, posts }
    }

    fn posts(&self) -> u64 {
        self.posts.load(Ordering::Relaxed)
    }
}

async fn token(
    axum::extract::State(posts): axum::extract::State<Arc<AtomicU64>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let n = posts.fetch_add(1, Ordering::Relaxed);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if request["grant_type"] == "refresh_token"
        && request["client_id"].is_string()
        && request["refresh_token"].is_string()
    {
        // A rotation: a new pair, as Procore answers a refresh.
        let body = format!(
            r#"{{"access_token":"{n:064x}","token_type":"bearer","expires_in":5400,"refresh_token":"r{n:063x}","created_at":{created_at}}}"#
        );
        return (
            [
                ("content-type", "application/json; charset=utf-8"),
                ("cache-control", "no-store"),
            ],
            body,
        )
            .into_response();
    }
    if request["grant_type"] != "client_credentials" || !request["client_id"].is_string() {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"error":"invalid_request"}"#,
        )
            .into_response();
    }
    let body = format!(
        r#"{{"access_token":"{n:064x}","token_type":"bearer","expires_in":5400,"created_at":{created_at}}}"#
    );
    (
        [
            ("content-type", "application/json; charset=utf-8"),
            ("cache-control", "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The arguments of call `n` of load client `client`: a request of its own (a client id no
/// other call uses), so single flight merges none of them.
fn distinct_arguments(client: usize, n: u64) -> Value {
    json!({
        "grant_type": "client_credentials",
        "client_id": format!("load-{client}-{n}"),
        "client_secret": "harness-secret",
    })
}

/// The same request for every call: concurrent ones are merged by single flight.
fn same_arguments(_client: usize, _n: u64) -> Value {
    json!({
        "grant_type": "client_credentials",
        "client_id": "harness-client",
        "client_secret": "harness-secret",
    })
}

// ───────────────────────────── clients of the server ─────────────────────────────

/// The server over stdio, spoken to line by line.
struct StdioServer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl StdioServer {
    async fn start(upstream: &Upstream) -> Self {
        Self::start_with(upstream, &[], &[]).await
    }

    /// The server with more arguments and environment variables.
    async fn start_with(upstream: &Upstream, more: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = tokio::process::Command::new(bin())
            .args(["--login-url", &upstream.url])
            .args(more)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().unwrap(),
        ));
        let mut server = Self {
            child,
            stdin,
            stdout,
            next_id: 10,
        };
        server.send(INITIALIZE).await;
        server.receive().await;
        server.send(INITIALIZED).await;
        server
    }

    async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }

    async fn receive(&mut self) -> String {
        self.stdout.next_line().await.unwrap().expect("an answer")
    }

    async fn call(&mut self, arguments: &Value) -> Value {
        self.next_id += 1;
        let request = json!({
            "jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": TOOL, "arguments": arguments}
        });
        self.send(&request.to_string()).await;
        serde_json::from_str(&self.receive().await).unwrap()
    }

    /// A `ping` round trip: the transport and the protocol machinery, no upstream.
    async fn ping(&mut self) {
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "ping"});
        self.send(&request.to_string()).await;
        assert!(self.receive().await.contains("\"result\""));
    }
}

/// One streamable HTTP session (protocol 2025-06-18), spoken to with plain POSTs.
struct HttpSession {
    http: reqwest::Client,
    url: String,
    session: String,
    /// Stateless 2026-07-28 requests instead of a session (`session` is then empty).
    modern: bool,
    next_id: AtomicU64,
}

impl HttpSession {
    /// No session: stateless 2026-07-28 requests, each carrying its protocol version.
    fn stateless(http: reqwest::Client, url: String) -> Self {
        Self {
            http,
            url,
            session: String::new(),
            modern: true,
            next_id: AtomicU64::new(10),
        }
    }

    async fn open(http: reqwest::Client, url: String) -> Self {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INITIALIZE)
            .send()
            .await
            .unwrap();
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_owned();
        response.text().await.unwrap();
        let this = Self {
            http,
            url,
            session,
            modern: false,
            next_id: AtomicU64::new(10),
        };
        this.post(INITIALIZED.to_owned()).await;
        this
    }

    /// End the session (`DELETE`), as a well-behaved client does.
    async fn close(&self) {
        if self.modern {
            return;
        }
        let _ = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await;
    }

    async fn post(&self, body: String) -> String {
        let request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let request = if self.modern {
            request
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", TOOL)
        } else {
            request
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", "2025-06-18")
        };
        let response = request.body(body).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// A `ping` round trip: the transport and the protocol machinery, no upstream.
    async fn ping(&self) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string())
            .await;
        assert!(body.contains("\"result\""), "{body}");
    }

    async fn call(&self, arguments: &Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut request = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": TOOL, "arguments": arguments}
        });
        if self.modern {
            request["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "harness", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            });
        }
        let body = self.post(request.to_string()).await;
        // An SSE-framed or plain JSON answer: take the JSON-RPC response in it.
        let json = body
            .lines()
            .filter_map(|line| line.strip_prefix("data:").map(str::trim))
            .find(|data| data.contains("\"id\""))
            .unwrap_or(body.trim());
        serde_json::from_str(json).unwrap_or_else(|_| panic!("a JSON-RPC answer: {body}"))
    }
}

/// The server serving HTTP on an ephemeral loopback port.
struct HttpServer {
    child: Child,
    url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpServer {
    fn start(upstream: &Upstream) -> Self {
        Self::start_with(upstream, &[])
    }

    /// The server with more arguments (`--worker-threads 2`, say).
    fn start_with(upstream: &Upstream, more: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args([
                "--transport",
                "http",
                "--listen",
                "127.0.0.1:0",
                "--login-url",
                &upstream.url,
            ])
            .args(more)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let url = loop {
            let line = lines.next().expect("the server logs its address").unwrap();
            if let Some(rest) = line.split("streamable HTTP at ").nth(1) {
                break rest.split([',', ' ']).next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }

    fn rss_kib(&self) -> (u64, u64) {
        rss_kib(self.child.id())
    }
}

/// Resident memory of `pid`, in KiB: all of it, and the anonymous part (heap and stacks;
/// the rest is the executable's own pages, mapped from the file and shared).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn assert_token(answer: &Value) {
    let result = &answer["result"];
    assert_eq!(
        result["isError"],
        json!(false),
        "a successful call: {answer}"
    );
    assert!(
        result["structuredContent"]["access_token"].is_string(),
        "{answer}"
    );
}

// ───────────────────────────── 2. added latency ─────────────────────────────

async fn added_latency(report: &mut Report, size: Size, upstream: &Upstream) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap();
    let token_url = format!("{}/oauth/token", upstream.url);
    let mut stdio = StdioServer::start(upstream).await;
    let server = HttpServer::start(upstream);
    let session = HttpSession::open(http.clone(), server.url.clone()).await;

    // Warm every path (connection pools, lazily built HTTP client) before measuring.
    for n in 0..20 {
        let arguments = distinct_arguments(0, n);
        direct_call(&http, &token_url, &arguments.to_string()).await;
        assert_token(&stdio.call(&arguments).await);
        assert_token(&session.call(&arguments).await);
    }
    let (mut direct, mut via_stdio, mut via_http) = (Vec::new(), Vec::new(), Vec::new());
    let (mut added_stdio, mut added_http) = (Vec::new(), Vec::new());
    let (mut ratio_stdio, mut ratio_http) = (Vec::new(), Vec::new());
    let (mut ping_stdio, mut ping_http) = (Vec::new(), Vec::new());
    for n in 0..size.latency_calls as u64 {
        // One request of its own for each of the three paths.
        let (direct_arguments, arguments) = (distinct_arguments(1, n), distinct_arguments(2, n));
        let body = direct_arguments.to_string();
        let started = Instant::now();
        direct_call(&http, &token_url, &body).await;
        let d = started.elapsed().as_secs_f64() * 1e3;

        let started = Instant::now();
        let answer = stdio.call(&arguments).await;
        let s = started.elapsed().as_secs_f64() * 1e3;
        assert_token(&answer);

        let arguments = distinct_arguments(3, n);
        let started = Instant::now();
        let answer = session.call(&arguments).await;
        let h = started.elapsed().as_secs_f64() * 1e3;
        assert_token(&answer);

        direct.push(d);
        via_stdio.push(s);
        via_http.push(h);
        added_stdio.push(s - d);
        added_http.push(h - d);
        ratio_stdio.push(s / d);
        ratio_http.push(h / d);

        let started = Instant::now();
        stdio.ping().await;
        ping_stdio.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        session.ping().await;
        ping_http.push(started.elapsed().as_secs_f64() * 1e3);
    }
    report.stats(
        "token POST sent directly to the upstream",
        "ms",
        &Stats::new(direct),
    );
    report.stats(
        "token call through the server, stdio",
        "ms",
        &Stats::new(via_stdio),
    );
    report.stats(
        "token call through the server, streamable HTTP",
        "ms",
        &Stats::new(via_http),
    );
    report.stats(
        "added latency, stdio (pairwise: through − direct)",
        "ms",
        &Stats::new(added_stdio),
    );
    report.stats(
        "added latency, HTTP (pairwise: through − direct)",
        "ms",
        &Stats::new(added_http),
    );
    report.stats(
        "MCP ping round trip (transport only, no upstream), stdio",
        "ms",
        &Stats::new(ping_stdio),
    );
    report.stats(
        "MCP ping round trip (transport only, no upstream), HTTP",
        "ms",
        &Stats::new(ping_http),
    );
    report.stats(
        "ratio through ÷ direct, stdio (pairwise)",
        "×",
        &Stats::new(ratio_stdio),
    );
    report.stats(
        "ratio through ÷ direct, HTTP (pairwise)",
        "×",
        &Stats::new(ratio_http),
    );
    let _ = stdio.child.kill().await;
}

async fn direct_call(http: &reqwest::Client, url: &str, body: &str) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let text = response.bytes().await.unwrap();
    assert!(!text.is_empty());
}

// ───────────────────────────── 3. memory, 4. load ─────────────────────────────

fn mib((all, anon): (u64, u64)) -> String {
    format!(
        "{:.1} MiB ({:.1} anon)",
        all as f64 / 1024.0,
        anon as f64 / 1024.0
    )
}

async fn memory(report: &mut Report, size: Size, upstream: &Upstream) {
    // Over stdio: idle, then after N calls.
    let mut stdio = StdioServer::start(upstream).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stdio_pid = stdio.child.id().unwrap_or(0);
    let stdio_idle = rss_kib(stdio_pid);
    for n in 0..size.memory_calls as u64 {
        assert_token(&stdio.call(&distinct_arguments(0, n)).await);
    }
    let stdio_after = rss_kib(stdio_pid);
    let _ = stdio.child.kill().await;
    report.value(
        "resident memory, stdio server idle after start",
        mib(stdio_idle),
    );
    report.value(
        &format!("resident memory, stdio, after {} calls", size.memory_calls),
        mib(stdio_after),
    );

    // Over streamable HTTP: idle, then after N calls on one session, twice.
    let server = HttpServer::start(upstream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.value(
        "resident memory, HTTP server idle after start",
        mib(server.rss_kib()),
    );
    let session = HttpSession::open(reqwest::Client::new(), server.url.clone()).await;
    for round in 1..=2u64 {
        for n in 0..size.memory_calls as u64 {
            let n = round * 1_000_000 + n;
            assert_token(&session.call(&distinct_arguments(0, n)).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        report.value(
            &format!(
                "resident memory, HTTP, after {} calls",
                round as usize * size.memory_calls
            ),
            mib(server.rss_kib()),
        );
    }
    session.close().await;
}

/// What /proc says of a process: CPU time (user + system, every thread) and context
/// switches (voluntary and involuntary, summed over its threads).
#[derive(Clone, Copy)]
struct ProcessCounters {
    cpu_secs: f64,
    switches: u64,
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

fn process_counters(pid: u32) -> ProcessCounters {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    ProcessCounters {
        cpu_secs: ticks / clock_ticks_per_sec(),
        switches,
    }
}

/// [`process_counters`] summed over `pids` (the replicas of one setup).
fn summed_counters(pids: &[u32]) -> ProcessCounters {
    pids.iter().map(|pid| process_counters(*pid)).fold(
        ProcessCounters {
            cpu_secs: 0.0,
            switches: 0,
        },
        |sum, one| ProcessCounters {
            cpu_secs: sum.cpu_secs + one.cpu_secs,
            switches: sum.switches + one.switches,
        },
    )
}

/// One load run: `clients` sessions calling back to back for `secs` seconds.
struct LoadRun {
    calls: u64,
    secs: f64,
    latencies: Stats,
    errors: u64,
    posts: u64,
    cpu_secs: f64,
    switches: u64,
    /// CPU time of each of the other processes watched, in their order.
    others_cpu_secs: Vec<f64>,
}

impl LoadRun {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.secs
    }
    fn cpu_per_call_us(&self) -> f64 {
        self.cpu_secs * 1e6 / self.calls as f64
    }
    fn others_cpu_per_call_us(&self, other: usize) -> f64 {
        self.others_cpu_secs[other] * 1e6 / self.calls as f64
    }
}

/// Whether `answer` is a successful token call: this server's structured result, or a
/// peer's text content holding the token JSON.
fn is_token(answer: &Value) -> bool {
    let result = &answer["result"];
    result["isError"] == json!(false)
        && (result["structuredContent"]["access_token"].is_string()
            || result["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.contains("\"access_token\"")))
}

/// How load clients speak to the server.
#[derive(Clone, Copy, PartialEq)]
enum Era {
    /// A 2025-06-18 session each.
    Sessions,
    /// Stateless 2026-07-28 requests.
    Stateless,
}

/// The arguments of call `n` of load client `client`, given the answer to its previous call
/// (`Null` before its first).
type Arguments = fn(usize, u64, &Value) -> Value;

/// `clients` concurrent clients of `url` calling back to back for `secs` seconds. The CPU
/// counted: the `servers`' (summed), and each of the `others`' on its own (nginx, say).
async fn load(
    url: &str,
    (servers, others): (&[u32], &[u32]),
    upstream: &Upstream,
    (clients, secs): (usize, u64),
    era: Era,
    arguments: Arguments,
) -> LoadRun {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let mut sessions = Vec::new();
    for client in 0..clients {
        let session = match era {
            Era::Sessions => HttpSession::open(http.clone(), url.to_owned()).await,
            Era::Stateless => HttpSession::stateless(http.clone(), url.to_owned()),
        };
        // Warm the session and the server's upstream connections.
        let answer = session
            .call(&arguments(client, u64::MAX, &Value::Null))
            .await;
        assert!(is_token(&answer), "{answer}");
        sessions.push((session, answer));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let counters = || {
        let others: Vec<f64> = others
            .iter()
            .map(|pid| process_counters(*pid).cpu_secs)
            .collect();
        (summed_counters(servers), others)
    };
    let (posts_before, (before, others_before)) = (upstream.posts(), counters());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, (session, mut answer)) in sessions.into_iter().enumerate() {
        let (stop, errors) = (stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let call_arguments = arguments(client, n, &answer);
                let call_started = Instant::now();
                answer = session.call(&call_arguments).await;
                latencies.push(call_started.elapsed().as_secs_f64() * 1e3);
                if !is_token(&answer) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            (latencies, session)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut sessions = Vec::new();
    for task in tasks {
        let (task_latencies, session) = task.await.unwrap();
        latencies.extend(task_latencies);
        sessions.push(session);
    }
    let secs = started.elapsed().as_secs_f64();
    let (posts_after, (after, others_after)) = (upstream.posts(), counters());
    for session in sessions {
        session.close().await;
    }
    LoadRun {
        calls: latencies.len() as u64,
        secs,
        latencies: Stats::new(latencies),
        errors: errors.load(Ordering::Relaxed),
        posts: posts_after - posts_before,
        cpu_secs: after.cpu_secs - before.cpu_secs,
        switches: after.switches - before.switches,
        others_cpu_secs: others_after
            .iter()
            .zip(others_before)
            .map(|(after, before)| after - before)
            .collect(),
    }
}

fn report_load(report: &mut Report, label: &str, run: &LoadRun) {
    report_load_of(report, label, run, "server");
}

/// [`report_load`] naming the servers whose CPU was counted (`replicas` when summed).
fn report_load_of(report: &mut Report, label: &str, run: &LoadRun, servers: &str) {
    report.value(label, format!("{:.0}/s", run.rate()));
    report.value(
        "  upstream POSTs per call",
        format!("{:.3}", run.posts as f64 / run.calls as f64),
    );
    report.value(
        &format!("  {servers} CPU per call (user + system, /proc)"),
        format!("{:.1} µs", run.cpu_per_call_us()),
    );
    report.value(
        &format!("  {servers} context switches per call"),
        format!("{:.2}", run.switches as f64 / run.calls as f64),
    );
    report.value(
        "  latency under that load, p50",
        format!("{:.3} ms", run.latencies.median()),
    );
    report.value(
        "  latency under that load, p99",
        format!("{:.3} ms", run.latencies.quantile(0.99)),
    );
    report.value("  errors", run.errors.to_string());
}

async fn throughput(report: &mut Report, size: Size, upstream: &Upstream) -> LoadRun {
    let (clients, secs) = (size.throughput_clients, size.throughput_secs);
    let server = HttpServer::start(upstream);
    let pid = server.child.id();
    let distinct = load(
        &server.url,
        (&[pid], &[]),
        upstream,
        (clients, secs),
        Era::Sessions,
        |client, n, _| distinct_arguments(client, n),
    )
    .await;
    report_load(
        report,
        &format!("throughput, distinct requests, {clients} clients × {secs} s, HTTP"),
        &distinct,
    );
    let stateless = load(
        &server.url,
        (&[pid], &[]),
        upstream,
        (clients, secs),
        Era::Stateless,
        |client, n, _| distinct_arguments(client, n),
    )
    .await;
    report_load(
        report,
        &format!("throughput, distinct requests, {clients} clients, stateless 2026-07-28"),
        &stateless,
    );
    let merged = load(
        &server.url,
        (&[pid], &[]),
        upstream,
        (clients, secs),
        Era::Sessions,
        |client, n, _| same_arguments(client, n),
    )
    .await;
    report_load(
        report,
        &format!("throughput, one request for all (single flight merges), {clients} clients"),
        &merged,
    );
    report.value(
        "resident memory, HTTP, after the load runs",
        mib(server.rss_kib()),
    );
    wrk_load(report, size, upstream, &server, &distinct).await;
    drop(server);

    // The same distinct load on a multi-threaded runtime (--worker-threads 2).
    let server = HttpServer::start_with(upstream, &["--worker-threads", "2"]);
    let two = load(
        &server.url,
        (&[server.child.id()], &[]),
        upstream,
        (clients, secs),
        Era::Sessions,
        |client, n, _| distinct_arguments(client, n),
    )
    .await;
    report_load(
        report,
        &format!("throughput, distinct requests, {clients} clients, --worker-threads 2"),
        &two,
    );
    report.value(
        "  ratio 2 worker threads ÷ 1 (throughput, same run)",
        format!("{:.2} ×", two.rate() / distinct.rate()),
    );
    distinct
}

/// The same distinct load from wrk (Debian's package) with benches/wrk/token_call.lua, for
/// a figure anyone can reproduce with a standard tool; printed beside the harness's own.
async fn wrk_load(
    report: &mut Report,
    size: Size,
    upstream: &Upstream,
    server: &HttpServer,
    ours: &LoadRun,
) {
    if Command::new("wrk").arg("-v").output().is_err() {
        required_missing("wrk", "the wrk load figure");
        report.value("wrk load figure", "skipped: no wrk".to_owned());
        return;
    }
    let http = reqwest::Client::new();
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(HttpSession::open(http.clone(), server.url.clone()).await);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/token_call.lua");
    let (posts_before, before) = (upstream.posts(), process_counters(server.child.id()));
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", &format!("-c{}", size.throughput_clients)])
        .arg(format!("-d{}s", size.throughput_secs))
        .args(["-s", script, &server.url, "--"])
        .args(sessions.iter().map(|session| session.session.clone()))
        .output()
        .await
        .unwrap();
    let (posts_after, after) = (upstream.posts(), process_counters(server.child.id()));
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with("wrk: "))
        .unwrap_or_else(|| panic!("wrk printed its summary: {text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let calls: f64 = words[1].parse().unwrap();
    let failed: u64 = words[3].parse().unwrap();
    let rate: f64 = words[5].parse().unwrap();
    for session in sessions {
        session.close().await;
    }
    report.value(
        &format!(
            "wrk: distinct requests, {} connections, 2 threads",
            size.throughput_clients
        ),
        format!("{rate:.0}/s"),
    );
    report.value(
        "  upstream POSTs per call",
        format!("{:.3}", (posts_after - posts_before) as f64 / calls),
    );
    report.value(
        "  server CPU per call (user + system, /proc)",
        format!("{:.1} µs", (after.cpu_secs - before.cpu_secs) * 1e6 / calls),
    );
    report.value("  errors", failed.to_string());
    report.value(
        "  ratio wrk ÷ harness (same load, same run)",
        format!("{:.2} ×", rate / ours.rate()),
    );
}

/// A tool the full harness needs is missing: a notice, or a failure under CI (which
/// installs everything first).
fn required_missing(what: &str, figure: &str) {
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("CI=true but {what} is missing: {figure} cannot be measured");
    }
    eprintln!("harness: {what} is not installed; {figure} is skipped");
}

// ───────────────────────────── the token store's cost ─────────────────────────────

/// A loopback port free a moment ago, for a child process to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server for the store figure, on loopback, durable as the server requires; killed
/// on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redis {
    fn start() -> Option<Self> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ptm-harness-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server listens within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port, dir })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A new directory only this user can enter, for a file store.
fn private_dir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ptm-harness-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Sequential refreshes through the server over stdio, `calls` of them, each with the
/// refresh token the previous answer brought (a real rotation every time: with a store the
/// pair is leased, renewed and saved durably before the answer): the median latency and
/// the upstream POSTs per call.
async fn refreshes(upstream: &Upstream, calls: usize, more: &[&str]) -> (Stats, f64) {
    let env = [
        ("PROCORE_CLIENT_ID", "harness-client"),
        ("PROCORE_CLIENT_SECRET", "harness-secret"),
    ];
    let mut server = StdioServer::start_with(upstream, more, &env).await;
    let refresh = |token: &str| json!({"grant_type": "refresh_token", "refresh_token": token});
    let first = server.call(&refresh("harness-refresh-0")).await;
    assert_token(&first);
    let mut token = first["result"]["structuredContent"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let posts = upstream.posts();
    let mut latencies = Vec::new();
    for _ in 0..calls {
        let arguments = refresh(&token);
        let started = Instant::now();
        let answer = server.call(&arguments).await;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        assert_token(&answer);
        let next = answer["result"]["structuredContent"]["refresh_token"]
            .as_str()
            .unwrap();
        assert_ne!(next, token, "a new pair each time");
        token = next.to_owned();
    }
    let per_call = (upstream.posts() - posts) as f64 / calls as f64;
    let _ = server.child.kill().await;
    (Stats::new(latencies), per_call)
}

/// What the token store adds to a refresh: the same sequential refreshes with no store,
/// with the file store and with the Redis store (a real redis-server, appendfsync always).
async fn store_cost(report: &mut Report, size: Size, upstream: &Upstream) {
    let calls = (size.latency_calls / 4).max(5);
    let (none, none_posts) = refreshes(upstream, calls, &[]).await;
    report.stats("refresh through the server, no store (stdio)", "ms", &none);
    let dir = private_dir("store");
    let file = dir.join("tokens.json");
    let file_arg = file.to_str().unwrap().to_owned();
    let no_window = ["--reuse-window-secs", "0"];
    let (on_file, file_posts) = refreshes(
        upstream,
        calls,
        &["--token-store", &file_arg, no_window[0], no_window[1]],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    report.stats(
        "refresh through the server, file store (fsync)",
        "ms",
        &on_file,
    );
    report.value(
        "  store cost per refresh, file (median − no store)",
        format!("{:.3} ms", on_file.median() - none.median()),
    );
    let Some(redis) = Redis::start() else {
        required_missing(
            "redis-server (Debian: redis-server)",
            "the Redis store figure",
        );
        report.value(
            "refresh of the stored pair, Redis store",
            "skipped".to_owned(),
        );
        return;
    };
    let url = redis.url();
    let (on_redis, redis_posts) = refreshes(
        upstream,
        calls,
        &["--token-store", &url, no_window[0], no_window[1]],
    )
    .await;
    drop(redis);
    report.stats(
        "refresh through the server, Redis store (AOF, fsync always)",
        "ms",
        &on_redis,
    );
    report.value(
        "  store cost per refresh, Redis (median − no store)",
        format!("{:.3} ms", on_redis.median() - none.median()),
    );
    report.value(
        "  upstream POSTs per refresh: none / file / Redis",
        format!("{none_posts:.2} / {file_posts:.2} / {redis_posts:.2}"),
    );
}

// ───────────────────────────── replicas behind nginx ─────────────────────────────

/// Call `n` of rotating load client `client`: a refresh under a client id of its own with
/// the refresh token its previous answer brought, so every call is a real rotation of that
/// client's pair (leased, sent, committed durably before the answer) and the reuse window
/// never answers. A chain starts (and, after a failed answer, starts again) with a made-up
/// token no other call of this run sends.
fn rotating_arguments(client: usize, _n: u64, previous: &Value) -> Value {
    static CHAINS: AtomicU64 = AtomicU64::new(0);
    let token = previous["result"]["structuredContent"]["refresh_token"]
        .as_str()
        .map_or_else(
            || {
                let chain = CHAINS.fetch_add(1, Ordering::Relaxed);
                format!("harness-rot-{client}-chain-{chain}")
            },
            str::to_owned,
        );
    json!({
        "grant_type": "refresh_token",
        "client_id": format!("harness-rot-{client}"),
        "client_secret": "harness-secret",
        "refresh_token": token,
    })
}

/// The rotating refresh load on four setups, one after the other: one replica on the file
/// store, one on a Redis store, two on that Redis behind nginx (round-robin, 2025-06-18
/// sessions, which any replica restores from Redis), and the same with stateless
/// 2026-07-28 requests; with the CPU per call of nginx and redis-server beside the
/// replicas', and the ratios to the one replica on the file store. All of it twice: with
/// the default reuse window, under which a pair keeps the hashes of its predecessors of the
/// window (rewritten at every commit, and this load rotates each pair many times a second),
/// and with `--reuse-window-secs 0`, under which it keeps the one it replaced.
async fn replicas(report: &mut Report, size: Size, upstream: &Upstream) {
    let (clients, secs) = (size.throughput_clients, size.throughput_secs);
    let redis = Redis::start();
    if redis.is_none() {
        required_missing(
            "redis-server (Debian: redis-server)",
            "the replicas figures on Redis",
        );
    }
    let nginx_installed = nginx::nginx_installed();
    if !nginx_installed {
        required_missing(
            "nginx (Debian: nginx)",
            "the replicas figures through nginx",
        );
    }
    for (window, named) in [
        (&[][..], "default window"),
        (&["--reuse-window-secs", "0"][..], "window 0"),
    ] {
        report.value(
            &format!("rotating refreshes, {clients} clients × {secs} s, reuse {named}:"),
            String::new(),
        );
        let dir = private_dir("replicas");
        let file = dir.join("tokens.json").to_str().unwrap().to_owned();
        let on_file_args = [&["--token-store", &file][..], window].concat();
        let on_file = on_one_replica(upstream, size, &on_file_args, &[]).await;
        let _ = std::fs::remove_dir_all(&dir);
        report_load(report, &format!("1 replica, file store, {named}"), &on_file);
        let Some(redis) = &redis else {
            report.value("the setups on Redis", "skipped".to_owned());
            continue;
        };
        let url = redis.url();
        let args = [&["--token-store", &url][..], window].concat();
        let on_redis = on_one_replica(upstream, size, &args, &[redis.child.id()]).await;
        report_load(
            report,
            &format!("1 replica, Redis store, {named}"),
            &on_redis,
        );
        report_others(report, &on_redis, &["redis-server"]);
        if !nginx_installed {
            report.value("the setups through nginx", "skipped".to_owned());
            continue;
        }
        let through = through_nginx(upstream, size, &args, redis).await;
        for (run, what) in through.iter().zip(["sessions", "stateless"]) {
            report_load_of(
                report,
                &format!("nginx + 2 replicas + Redis, {what}, {named}"),
                run,
                "2 replicas' (summed)",
            );
            report_others(report, run, &["nginx", "redis-server"]);
        }
        let sessions = &through[0];
        report.value(
            "  ratio nginx + 2 replicas + Redis ÷ 1 replica + file (throughput)",
            format!("{:.2} ×", sessions.rate() / on_file.rate()),
        );
        report.value(
            "  ratio nginx + 2 replicas + Redis ÷ 1 replica + file (p50)",
            format!(
                "{:.2} ×",
                sessions.latencies.median() / on_file.latencies.median()
            ),
        );
    }
}

/// The rotating load over 2025-06-18 sessions straight to one replica started with `args`,
/// with the CPU of the `others` counted too.
async fn on_one_replica(upstream: &Upstream, size: Size, args: &[&str], others: &[u32]) -> LoadRun {
    let server = HttpServer::start_with(upstream, args);
    load(
        &server.url,
        (&[server.child.id()], others),
        upstream,
        (size.throughput_clients, size.throughput_secs),
        Era::Sessions,
        rotating_arguments,
    )
    .await
}

/// The rotating load through nginx (round-robin) over two replicas started with `args` (on
/// `redis`): over 2025-06-18 sessions, then stateless 2026-07-28 requests.
async fn through_nginx(
    upstream: &Upstream,
    size: Size,
    args: &[&str],
    redis: &Redis,
) -> Vec<LoadRun> {
    let servers = [
        HttpServer::start_with(upstream, args),
        HttpServer::start_with(upstream, args),
    ];
    let upstreams: Vec<String> = servers
        .iter()
        .map(|server| {
            let authority = server.url.trim_start_matches("http://");
            authority.trim_end_matches("/mcp").to_owned()
        })
        .collect();
    // Idle connections to the replicas kept for reuse, as many as there are clients.
    let nginx = nginx::Nginx::start_with(&upstreams, Some(size.throughput_clients)).unwrap();
    let mcp = format!("{}/mcp", nginx.round_robin);
    let pids = [servers[0].child.id(), servers[1].child.id()];
    let others = [nginx.pid(), redis.child.id()];
    let mut runs = Vec::new();
    for era in [Era::Sessions, Era::Stateless] {
        let run = load(
            &mcp,
            (&pids, &others),
            upstream,
            (size.throughput_clients, size.throughput_secs),
            era,
            rotating_arguments,
        )
        .await;
        runs.push(run);
    }
    runs
}

/// The CPU per call of the other processes a load run watched, named in their order.
fn report_others(report: &mut Report, run: &LoadRun, names: &[&str]) {
    for (other, name) in names.iter().enumerate() {
        report.value(
            &format!("  {name} CPU per call (user + system, /proc)"),
            format!("{:.1} µs", run.others_cpu_per_call_us(other)),
        );
    }
}

// ───────────────────────────── 5. a peer, in the same run ─────────────────────────────

mod peers {
    use super::*;

    const SCRIPT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peers/python_sdk_server.py"
    );

    /// The Python with the official MCP SDK: `HARNESS_PYTHON`, else the interop suite's
    /// venv (target/interop-tools/venv, mcp==2.3.0), when it imports the SDK.
    fn find_python() -> Option<String> {
        let python = std::env::var("HARNESS_PYTHON").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/interop-tools/venv/bin/python"
            )
            .to_owned()
        });
        let imports = Command::new(&python)
            .args(["-c", "import mcp.server.mcpserver, httpx2"])
            .output()
            .is_ok_and(|out| out.status.success());
        imports.then_some(python)
    }

    /// The same token tool on the official Python SDK (benches/peers/python_sdk_server.py),
    /// against the same upstream, under the same load, with ratios to this server's
    /// figures of this run.
    pub async fn python(
        report: &mut Report,
        size: Size,
        upstream: &Upstream,
        ours: &LoadRun,
        our_cold: &(f64, f64),
    ) {
        let Some(python) = find_python() else {
            required_missing(
                "the MCP Python SDK (pip install mcp==2.3.0; bash tests/interop/run.sh installs it)",
                "the Python SDK peer",
            );
            report.value("Python SDK peer", "skipped".to_owned());
            return;
        };
        let login_url = upstream.url.clone();
        let runs = size.cold_runs.min(10);
        let cold = cold_start(report, runs, "Python SDK peer: ", &|| {
            let mut command = Command::new(&python);
            command.args([SCRIPT, &login_url, "stdio"]);
            command
        });
        report.value(
            "  ratio peer ÷ this server, cold start to initialize",
            format!("{:.0} ×", cold.0 / our_cold.0),
        );

        let port = free_port();
        let mut child = Command::new(&python)
            .args([SCRIPT, &login_url, "http", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/mcp");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the Python peer listens within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = child.id();
        report.value(
            "Python SDK peer: resident memory, HTTP, idle",
            mib(rss_kib(pid)),
        );
        let (clients, secs) = (size.throughput_clients, size.throughput_secs);
        let run = load(
            &url,
            (&[pid], &[]),
            upstream,
            (clients, secs),
            Era::Sessions,
            |client, n, _| distinct_arguments(client, n),
        )
        .await;
        report_load(
            report,
            &format!("Python SDK peer: throughput, distinct requests, {clients} clients, HTTP"),
            &run,
        );
        report.value(
            "  ratio this server ÷ peer, throughput",
            format!("{:.1} ×", ours.rate() / run.rate()),
        );
        report.value(
            "  ratio peer ÷ this server, CPU per call",
            format!("{:.1} ×", run.cpu_per_call_us() / ours.cpu_per_call_us()),
        );
        report.value(
            "Python SDK peer: resident memory, HTTP, after the load",
            mib(rss_kib(pid)),
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

// ───────────────────────────── 5. binary size ─────────────────────────────

fn binary_size(report: &mut Report) {
    let bytes = std::fs::metadata(bin()).map(|m| m.len()).unwrap_or(0);
    report.value(
        "binary size (release profile strips it)",
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0)),
    );
}

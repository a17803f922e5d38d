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

    let mut report = Report::default();
    report.header(full);
    cold_start(&mut report, size);
    let upstream = Emulator::start();
    runtime.block_on(async {
        added_latency(&mut report, size, &upstream).await;
        throughput_and_memory(&mut report, size, &upstream).await;
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
            "| {:<58} | {:>10} | {:>10} | {:>10} | {:>5} |",
            "figure", "median", "min", "max", "n"
        ));
        self.lines.push(format!(
            "|{:-<60}|{:->12}|{:->12}|{:->12}|{:->7}|",
            "", "", "", "", ""
        ));
    }

    fn stats(&mut self, figure: &str, unit: &str, stats: &Stats) {
        self.lines.push(format!(
            "| {:<58} | {:>10} | {:>10} | {:>10} | {:>5} |",
            figure,
            format!("{:.3} {unit}", stats.median()),
            format!("{:.3} {unit}", stats.min()),
            format!("{:.3} {unit}", stats.max()),
            stats.sorted.len()
        ));
    }

    fn value(&mut self, figure: &str, value: String) {
        self.lines.push(format!(
            "| {:<58} | {:>10} | {:>10} | {:>10} | {:>5} |",
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

fn cold_start(report: &mut Report, size: Size) {
    let mut to_initialize = Vec::new();
    let mut to_list = Vec::new();
    for _ in 0..size.cold_runs {
        let started = Instant::now();
        let mut child = Command::new(bin())
            .env("RUST_LOG", "info")
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
    report.stats(
        "cold start: spawn → initialize answered (stdio)",
        "ms",
        &Stats::new(to_initialize),
    );
    report.stats(
        "cold start: spawn → tools/list answered (stdio)",
        "ms",
        &Stats::new(to_list),
    );
}

// ───────────────────────────── the upstream: the emulator ─────────────────────────────

/// `procore-token-mcp emulator` in its own process, on an ephemeral loopback port.
struct Emulator {
    child: Child,
    url: String,
    client_id: String,
    client_secret: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    fn start() -> Self {
        let client_id = "bench-client".to_owned();
        let client_secret = "bench-secret".to_owned();
        let mut child = Command::new(bin())
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                "--client-id",
                &client_id,
            ])
            .args(["--client-secret", &client_secret])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("emulator listening on ").nth(1) {
                url = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        let url = url.expect("the emulator printed its URL");
        Self {
            child,
            url,
            client_id,
            client_secret,
        }
    }

    fn arguments(&self) -> Value {
        json!({
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        })
    }
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
    async fn start(upstream: &Emulator) -> Self {
        let mut child = tokio::process::Command::new(bin())
            .args(["--login-url", &upstream.url])
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
    next_id: AtomicU64,
}

impl HttpSession {
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
            next_id: AtomicU64::new(10),
        };
        this.post(INITIALIZED.to_owned()).await;
        this
    }

    /// End the session (`DELETE`), as a well-behaved client does.
    async fn close(&self) {
        let _ = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await;
    }

    async fn post(&self, body: String) -> String {
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body)
            .send()
            .await
            .unwrap();
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
        let request = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": TOOL, "arguments": arguments}
        });
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
    fn start(upstream: &Emulator) -> Self {
        let mut child = Command::new(bin())
            .args([
                "--transport",
                "http",
                "--listen",
                "127.0.0.1:0",
                "--login-url",
                &upstream.url,
            ])
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

async fn added_latency(report: &mut Report, size: Size, upstream: &Emulator) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap();
    let token_url = format!("{}/oauth/token", upstream.url);
    let arguments = upstream.arguments();
    let body = arguments.to_string();
    let mut stdio = StdioServer::start(upstream).await;
    let server = HttpServer::start(upstream);
    let session = HttpSession::open(http.clone(), server.url.clone()).await;

    // Warm every path (connection pools, lazily built HTTP client) before measuring.
    for _ in 0..20 {
        direct_call(&http, &token_url, &body).await;
        assert_token(&stdio.call(&arguments).await);
        assert_token(&session.call(&arguments).await);
    }
    let (mut direct, mut via_stdio, mut via_http) = (Vec::new(), Vec::new(), Vec::new());
    let (mut added_stdio, mut added_http) = (Vec::new(), Vec::new());
    let (mut ratio_stdio, mut ratio_http) = (Vec::new(), Vec::new());
    let (mut ping_stdio, mut ping_http) = (Vec::new(), Vec::new());
    for _ in 0..size.latency_calls {
        let started = Instant::now();
        direct_call(&http, &token_url, &body).await;
        let d = started.elapsed().as_secs_f64() * 1e3;

        let started = Instant::now();
        let answer = stdio.call(&arguments).await;
        let s = started.elapsed().as_secs_f64() * 1e3;
        assert_token(&answer);

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

// ───────────────────────────── 3. throughput, 4. memory ─────────────────────────────

async fn throughput_and_memory(report: &mut Report, size: Size, upstream: &Emulator) {
    let mib = |(all, anon): (u64, u64)| {
        format!(
            "{:.1} MiB ({:.1} anon)",
            all as f64 / 1024.0,
            anon as f64 / 1024.0
        )
    };
    let arguments = Arc::new(upstream.arguments());

    // Memory over stdio: idle, then after N calls.
    let mut stdio = StdioServer::start(upstream).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stdio_pid = stdio.child.id().unwrap_or(0);
    let stdio_idle = rss_kib(stdio_pid);
    for _ in 0..size.memory_calls {
        assert_token(&stdio.call(&arguments).await);
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

    // Memory over streamable HTTP: idle, then after N calls on one session, twice.
    let server = HttpServer::start(upstream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.value(
        "resident memory, HTTP server idle after start",
        mib(server.rss_kib()),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(size.throughput_clients)
        .build()
        .unwrap();
    let session = HttpSession::open(http.clone(), server.url.clone()).await;
    for round in 1..=2 {
        for _ in 0..size.memory_calls {
            assert_token(&session.call(&arguments).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        report.value(
            &format!(
                "resident memory, HTTP, after {} calls",
                round * size.memory_calls
            ),
            mib(server.rss_kib()),
        );
    }
    session.close().await;

    // Throughput: every client its own session, calling back to back for a fixed time.
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..size.throughput_clients {
        let session = HttpSession::open(http.clone(), server.url.clone()).await;
        let (stop, errors, arguments) = (stop.clone(), errors.clone(), arguments.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = session.call(&arguments).await;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                if answer["result"]["isError"] != json!(false) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, session)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(size.throughput_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut sessions = Vec::new();
    for task in tasks {
        let (task_latencies, session) = task.await.unwrap();
        latencies.extend(task_latencies);
        sessions.push(session);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls = latencies.len();
    let stats = Stats::new(latencies);
    report.value(
        &format!(
            "throughput, {} clients × {} s, streamable HTTP, vs emulator",
            size.throughput_clients, size.throughput_secs
        ),
        format!("{:.0}/s", calls as f64 / elapsed),
    );
    report.value(
        "  latency under that load, p50",
        format!("{:.3} ms", stats.median()),
    );
    report.value(
        "  latency under that load, p99",
        format!("{:.3} ms", stats.quantile(0.99)),
    );
    report.value("  errors", errors.load(Ordering::Relaxed).to_string());
    report.value(
        &format!(
            "resident memory, HTTP, {} sessions open after the run",
            sessions.len()
        ),
        mib(server.rss_kib()),
    );
    for session in sessions {
        session.close().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.value(
        "resident memory, HTTP, after those sessions closed",
        mib(server.rss_kib()),
    );
}

// ───────────────────────────── 5. binary size ─────────────────────────────

fn binary_size(report: &mut Report) {
    let bytes = std::fs::metadata(bin()).map(|m| m.len()).unwrap_or(0);
    report.value(
        "binary size (release profile strips it)",
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0)),
    );
}

//! Property tests (proptest) that feed random and mutated JSON-RPC messages and tool
//! arguments through the server in-process: through the stdio transport on a
//! `tokio::io::duplex` pipe, through the axum router of the HTTP transport via tower's
//! `oneshot` (streamable HTTP and old-SSE `/message`), and straight into the tool, with a
//! real login host on 127.0.0.1 behind. Each case asserts: no panic, every request answered
//! with a result or an error, and no secret in any answer (the token response itself, the
//! product, excepted).
//!
//! The normal run tries a few hundred cases. The long run (≥ 100,000 cases per test):
//!
//! ```sh
//! PROPTEST_CASES=100000 cargo test --release --test fuzz -- --ignored --nocapture
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/fixtures.rs"]
mod fixtures;
#[path = "common/sse_events.rs"]
mod sse_events;

use std::{
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, StatusCode},
    response::IntoResponse,
};
use fixtures::*;
use futures::StreamExt;
use http_body_util::BodyExt;
use procore_token_mcp::{
    procore::ClientCredentials,
    procore::{LoginBase, ProcoreClient},
    secret::Secret,
    tools::ProcoreTokenServer,
    transport,
    transport::http_config::HttpConfig,
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{Map, Value, json};
use sse_events::SseParser;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf},
    sync::{Mutex, mpsc},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

// ───────────────────────────── secrets ─────────────────────────────

const AUTH_TOKEN: &str = "auth-canary-77e2c1d0b9";
const CANARIES: [&str; 7] = [
    CLIENT_SECRET,
    HELD_SECRET,
    CODE,
    REFRESH_IN,
    ACCESS_OUT,
    REFRESH_OUT,
    AUTH_TOKEN,
];

/// Canaries an answer may quote because the input put them where names are echoed by
/// design (an object key, the method, the id, the tool name), not in a secret field.
fn echoable_canaries(input: &[u8]) -> Vec<&'static str> {
    fn walk(value: &Value, found: &mut String) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    found.push_str(key);
                    found.push(' ');
                    if matches!(key.as_str(), "method" | "id" | "name") {
                        found.push_str(&inner.to_string());
                    }
                    walk(inner, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, found)),
            _ => {}
        }
    }
    let mut found = String::new();
    if let Ok(value) = serde_json::from_slice::<Value>(input) {
        walk(&value, &mut found);
    }
    CANARIES
        .into_iter()
        .filter(|canary| found.contains(canary))
        .collect()
}

/// An answer is clean if it quotes no canary, unless it is a successful token result (the
/// product) or quotes one the input put in an echoed position.
fn assert_clean(answer: &str, input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = serde_json::from_str::<Value>(answer)
        && message["result"]["isError"] != true
        && message["result"]["content"][0]["text"] == TOKEN_BODY
    {
        return Ok(());
    }
    let allowed = echoable_canaries(input);
    for canary in CANARIES {
        prop_assert!(
            allowed.contains(&canary) || !answer.contains(canary),
            "secret {} in an answer: {}\ninput: {}",
            canary,
            answer,
            String::from_utf8_lossy(input)
        );
    }
    Ok(())
}

// ───────────────────────────── inputs ─────────────────────────────

fn short_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_/]{0,12}",
        "\\PC{0,8}",
        Just("get_or_refresh_an_access_token".to_owned()),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        short_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value for a secret field: usually the canary, sometimes wrapped or of another type.
fn secret(canary: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => Just(json!(canary)),
        1 => Just(json!([canary])),
        1 => Just(json!({"value": canary})),
        1 => Just(json!(format!("  {canary}  "))),
        1 => Just(Value::Null),
        1 => Just(json!("")),
        1 => any_json(),
    ]
}

/// Tool arguments: every documented field, each present or not, right or wrong.
fn tool_arguments() -> impl Strategy<Value = Value> {
    let grant_type = prop_oneof![
        6 => prop::sample::select(vec!["authorization_code", "refresh_token", "client_credentials"])
            .prop_map(Value::from),
        1 => Just(json!("password")),
        1 => any_json(),
    ];
    // client_id steers the login host: see `login_host_reply`.
    let client_id = prop_oneof![
        6 => prop::sample::select(vec!["ok", "bad", "boom", "moved", "html", "binary"])
            .prop_map(Value::from),
        1 => any_json(),
    ];
    let redirect_uri = prop_oneof![
        4 => Just(json!("urn:ietf:wg:oauth:2.0:oob")),
        1 => any_json(),
    ];
    let extra = prop::collection::btree_map("[a-z_]{1,10}", any_json(), 0..3);
    (
        prop::option::weighted(0.95, grant_type),
        prop::option::weighted(0.8, client_id),
        prop::option::weighted(0.8, secret(CLIENT_SECRET)),
        prop::option::weighted(0.5, secret(CODE)),
        prop::option::weighted(0.5, redirect_uri),
        prop::option::weighted(0.5, secret(REFRESH_IN)),
        prop::option::weighted(0.15, extra),
        prop::bool::weighted(0.01),
    )
        .prop_map(
            |(grant, id, secret, code, redirect, refresh, extra, ten_thousand)| {
                let mut object = Map::new();
                for (name, value) in [
                    ("grant_type", grant),
                    ("client_id", id),
                    ("client_secret", secret),
                    ("code", code),
                    ("redirect_uri", redirect),
                    ("refresh_token", refresh),
                ] {
                    if let Some(value) = value {
                        object.insert(name.to_owned(), value);
                    }
                }
                for (name, value) in extra.into_iter().flatten() {
                    object.insert(name, value);
                }
                if ten_thousand {
                    for index in 0..10_000 {
                        object.insert(format!("f{index}"), json!(index));
                    }
                }
                Value::Object(object)
            },
        )
}

fn request_id() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => (0i64..1_000_000).prop_map(|id| Some(json!(id))),
        2 => "[a-z0-9]{1,8}".prop_map(|id| Some(json!(id))),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
}

/// A JSON-RPC message from a client: mostly tool calls, also every other kind and shape.
fn message() -> impl Strategy<Value = Value> {
    let tool_call = tool_arguments().prop_map(|arguments| {
        json!({"method": "tools/call", "params": {"name": TOOL, "arguments": arguments}})
    });
    let body = prop_oneof![
        10 => tool_call,
        1 => (short_text(), any_json()).prop_map(|(name, arguments)| {
            json!({"method": "tools/call", "params": {"name": name, "arguments": arguments}})
        }),
        1 => any_json().prop_map(|params| json!({"method": "tools/call", "params": params})),
        1 => Just(json!({"method": "tools/list"})),
        1 => Just(json!({"method": "ping"})),
        1 => any_json().prop_map(|params| json!({"method": "ping", "params": params})),
        1 => Just(json!({"method": "initialize", "params": {"protocolVersion": "2025-06-18",
            "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}})),
        1 => any_json().prop_map(|params| json!({"method": "initialize", "params": params})),
        1 => (short_text(), any_json()).prop_map(|(method, params)| json!({"method": method, "params": params})),
        1 => any_json().prop_map(|params| json!({"method": "notifications/cancelled", "params": params})),
        1 => any_json().prop_map(|result| json!({"result": result})),
        1 => any_json().prop_map(|error| json!({"error": error})),
    ];
    let jsonrpc = prop_oneof![
        12 => Just(Some(json!("2.0"))),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ];
    let shapeless = any_json();
    prop_oneof![
        12 => (body, request_id(), jsonrpc).prop_map(|(mut body, id, jsonrpc)| {
            if let Value::Object(object) = &mut body {
                if let Some(id) = id {
                    object.insert("id".into(), id);
                }
                if let Some(jsonrpc) = jsonrpc {
                    object.insert("jsonrpc".into(), jsonrpc);
                }
            }
            body
        }),
        1 => shapeless,
    ]
}

/// Byte-level damage: flip, insert, delete, duplicate, truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"[".to_vec(),
                    b"\"".to_vec(),
                    b",".to_vec(),
                    b":".to_vec(),
                    b"null".to_vec(),
                    b"\\u0000".to_vec(),
                    "\u{FEFF}".as_bytes().to_vec(),
                ]),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Flip(at, byte) => {
                if let Some(slot) = bytes.get_mut(at % len) {
                    *slot ^= byte | 1;
                }
            }
            Mutation::Insert(at, inserted) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Delete(at, count) => {
                let at = at % len;
                let end = (at + count).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::Duplicate(at, count) => {
                let at = at % len;
                let end = (at + count).min(bytes.len());
                if at < end {
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(end..end, copy);
                }
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

/// One input: a generated message, sent whole (mostly) or damaged at the byte level.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => message().prop_map(|message| message.to_string().into_bytes()),
        1 => (message(), prop::collection::vec(mutation(), 1..4))
            .prop_map(|(message, mutations)| apply(message.to_string().into_bytes(), &mutations)),
        1 => (0usize..200_000).prop_map(|depth| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"grant_type":{}"x"{}}}}}}}"#,
                "[".repeat(depth % 300),
                "]".repeat(depth % 300)
            )
            .into_bytes()
        }),
    ]
}

/// What the input promises: a request (an id that must be answered) or nothing.
fn request_id_of(input: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(input).ok()?;
    let object = value.as_object()?;
    if object.get("jsonrpc")? != "2.0" || !object.get("method")?.is_string() {
        return None;
    }
    match object.get("id")? {
        id @ (Value::String(_) | Value::Number(_)) => Some(id.clone()),
        _ => None,
    }
}

// ───────────────────────────── the login host ─────────────────────────────

/// The login host's answer, chosen by the request's client_id.
async fn login_host_reply(body: Bytes) -> axum::response::Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let token = |status: u16, body: &'static [u8], extra: Option<(&'static str, &'static str)>| {
        let mut response =
            (StatusCode::from_u16(status).unwrap(), Body::from(body)).into_response();
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        if let Some((name, value)) = extra {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    };
    match request["client_id"].as_str() {
        Some("bad") => token(
            400,
            br#"{"error":"invalid_grant","error_description":"nope"}"#,
            None,
        ),
        Some("boom") => token(503, b"<html>down</html>", Some(("retry-after", "3"))),
        Some("moved") => token(302, b"", Some(("location", "http://127.0.0.1:9/elsewhere"))),
        Some("html") => token(200, b"<html>login page</html>", None),
        Some("binary") => token(200, b"\xff\xfe\x00\x01", None),
        _ => token(200, TOKEN_BODY.as_bytes(), None),
    }
}

// ───────────────────────────── the harness ─────────────────────────────

struct Harness {
    runtime: tokio::runtime::Runtime,
    server: ProcoreTokenServer,
    stdio: Mutex<PipeClient>,
    http: Mutex<HttpClient>,
}

/// The client end of the duplex pipe, with the replies read so far.
struct PipeClient {
    writer: WriteHalf<DuplexStream>,
    replies: mpsc::UnboundedReceiver<String>,
    serving: tokio::task::JoinHandle<()>,
    next_sentinel: u64,
}

/// The HTTP application, a streamable HTTP session and an old-SSE session into it.
struct HttpClient {
    app: Router,
    mcp_session: String,
    sse_session: String,
    sse_replies: mpsc::UnboundedReceiver<String>,
    next_sentinel: u64,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        procore_token_mcp::tls::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (server, stdio, http) = runtime.block_on(async {
            let login_host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", login_host.local_addr().unwrap());
            let app = Router::new().fallback(login_host_reply);
            tokio::spawn(async move { axum::serve(login_host, app).await });
            let procore =
                ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(5));
            let held = ClientCredentials {
                client_id: "held-id".into(),
                client_secret: HELD_SECRET.into(),
            };
            let server = ProcoreTokenServer::new(
                procore_token_mcp::exchange::TokenExchange::new(procore, None),
                Some(held),
            )
            .unwrap();
            let stdio = PipeClient::start(server.clone()).await;
            let http = HttpClient::start(server.clone()).await;
            (server, stdio, http)
        });
        Harness {
            runtime,
            server,
            stdio: Mutex::new(stdio),
            http: Mutex::new(http),
        }
    })
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

impl PipeClient {
    async fn start(server: ProcoreTokenServer) -> Self {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        let (server_reads, server_writes) = tokio::io::split(server_end);
        let serving = tokio::spawn(async move {
            // The stdio transport itself, on an in-memory pipe.
            let _ = transport::stdio::serve_on(
                server,
                server_reads,
                server_writes,
                tokio_util::sync::CancellationToken::new(),
            )
            .await;
        });
        let (reader, writer) = tokio::io::split(client_end);
        let (sender, replies) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut client = Self {
            writer,
            replies,
            serving,
            next_sentinel: 0,
        };
        client.send(INITIALIZE.as_bytes()).await;
        let reply = client.replies.recv().await.unwrap();
        assert!(reply.contains("serverInfo"), "{reply}");
        client.send(INITIALIZED.as_bytes()).await;
        client
    }

    async fn send(&mut self, line: &[u8]) {
        self.writer.write_all(line).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
    }

    /// Send the input as one line, then a ping; collect replies until both are answered.
    async fn exchange(&mut self, input: &[u8]) -> Result<Vec<String>, TestCaseError> {
        let line: Vec<u8> = input
            .iter()
            .map(|&byte| if byte == b'\n' { b' ' } else { byte })
            .collect();
        self.next_sentinel += 1;
        let sentinel = json!(format!("sentinel-{}", self.next_sentinel));
        self.send(&line).await;
        self.send(
            json!({"jsonrpc": "2.0", "id": sentinel, "method": "ping"})
                .to_string()
                .as_bytes(),
        )
        .await;
        let expected = request_id_of(&line);
        let replies = collect_replies(&mut self.replies, &sentinel, expected.as_ref()).await?;
        prop_assert!(!self.serving.is_finished(), "the server stopped serving");
        Ok(replies)
    }
}

/// Ids are equal as JSON, or as numbers (rmcp reads `-0.0` or `1e2` as the integer).
fn same_id(answered: &Value, sent: &Value) -> bool {
    answered == sent || matches!((answered.as_f64(), sent.as_f64()), (Some(a), Some(b)) if a == b)
}

/// Read replies until the sentinel's and (when a request was sent) the request's have come.
async fn collect_replies(
    replies: &mut mpsc::UnboundedReceiver<String>,
    sentinel: &Value,
    expected: Option<&Value>,
) -> Result<Vec<String>, TestCaseError> {
    let mut seen = Vec::new();
    let mut sentinel_answered = false;
    let mut request_answered = expected.is_none();
    let deadline = Instant::now() + ANSWER_WITHIN;
    while !(sentinel_answered && request_answered) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(reply)) = tokio::time::timeout(left, replies.recv()).await else {
            return Err(TestCaseError::fail(format!(
                "unanswered (sentinel answered: {sentinel_answered}, request answered: \
                 {request_answered}); replies: {seen:?}"
            )));
        };
        let message: Value = serde_json::from_str(&reply)
            .map_err(|_| TestCaseError::fail(format!("a reply that is not JSON: {reply}")))?;
        prop_assert_eq!(&message["jsonrpc"], "2.0", "{}", reply);
        prop_assert!(
            message.get("result").is_some() != message.get("error").is_some(),
            "a result or an error: {}",
            reply
        );
        if &message["id"] == sentinel {
            sentinel_answered = true;
            continue;
        }
        // rmcp answers a request it cannot read with an error whose id is null.
        if expected.is_some_and(|id| same_id(&message["id"], id))
            || (message["id"].is_null() && message.get("error").is_some())
        {
            request_answered = true;
        }
        seen.push(reply);
    }
    Ok(seen)
}

impl HttpClient {
    async fn start(server: ProcoreTokenServer) -> Self {
        let mut config = HttpConfig::loopback(SocketAddr::from(([127, 0, 0, 1], 8722)));
        config.auth_token = Some(Secret::new(AUTH_TOKEN));
        config.max_request_bytes = 256 * 1024;
        let app = transport::http::router(server, &config, &CancellationToken::new());
        let mut client = Self {
            app,
            mcp_session: String::new(),
            sse_session: String::new(),
            sse_replies: mpsc::unbounded_channel().1,
            next_sentinel: 0,
        };
        client.open_mcp_session().await;
        client.open_sse_session().await;
        client
    }

    fn request(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {AUTH_TOKEN}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
    }

    async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.app.clone().oneshot(request).await.unwrap()
    }

    async fn open_mcp_session(&mut self) {
        let request = self
            .request("POST", "/mcp")
            .body(Body::from(INITIALIZE))
            .unwrap();
        let response = self.send(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        self.mcp_session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = body_text(response).await;
        let request = self
            .request("POST", "/mcp")
            .header("mcp-session-id", &self.mcp_session)
            .body(Body::from(INITIALIZED))
            .unwrap();
        assert_eq!(self.send(request).await.status(), StatusCode::ACCEPTED);
    }

    async fn open_sse_session(&mut self) {
        let request = self.request("GET", "/sse").body(Body::empty()).unwrap();
        let response = self.send(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (sender, mut replies) = mpsc::unbounded_channel();
        let (endpoint_tx, mut endpoint_rx) = mpsc::unbounded_channel();
        let mut stream = response.into_body().into_data_stream();
        tokio::spawn(async move {
            let mut parser = SseParser::default();
            while let Some(Ok(chunk)) = stream.next().await {
                for event in parser.feed(&chunk) {
                    let target = if event.event == "endpoint" {
                        &endpoint_tx
                    } else {
                        &sender
                    };
                    if event.event == "endpoint" || event.event == "message" {
                        let _ = target.send(event.data);
                    }
                }
            }
        });
        let endpoint = endpoint_rx.recv().await.unwrap();
        self.sse_session = endpoint.split("sessionId=").nth(1).unwrap().to_owned();
        self.post_message(INITIALIZE.as_bytes()).await;
        let reply = replies.recv().await.unwrap();
        assert!(reply.contains("serverInfo"), "{reply}");
        self.post_message(INITIALIZED.as_bytes()).await;
        self.sse_replies = replies;
    }

    async fn post_message(&self, body: &[u8]) -> axum::response::Response {
        let uri = format!("/message?sessionId={}", self.sse_session);
        let request = self
            .request("POST", &uri)
            .body(Body::from(body.to_vec()))
            .unwrap();
        self.send(request).await
    }

    /// One input through streamable HTTP (in the session, or without one) or `/message`,
    /// sometimes with a wrong header; every answer checked.
    async fn exchange(&mut self, input: &[u8], route: Route) -> Result<(), TestCaseError> {
        let expected = request_id_of(input);
        match route {
            Route::Message => {
                let response = self.post_message(input).await;
                let status = response.status();
                let text = body_text(response).await?;
                assert_clean(&text, input)?;
                if status == StatusCode::ACCEPTED {
                    self.next_sentinel += 1;
                    let sentinel = json!(format!("sentinel-{}", self.next_sentinel));
                    let ping = json!({"jsonrpc": "2.0", "id": sentinel, "method": "ping"});
                    let answer = self.post_message(ping.to_string().as_bytes()).await;
                    prop_assert_eq!(answer.status(), StatusCode::ACCEPTED);
                    let replies =
                        collect_replies(&mut self.sse_replies, &sentinel, expected.as_ref())
                            .await?;
                    for reply in replies {
                        assert_clean(&reply, input)?;
                    }
                } else {
                    prop_assert!(
                        status == StatusCode::BAD_REQUEST
                            || status == StatusCode::PAYLOAD_TOO_LARGE,
                        "/message answered {} to {}",
                        status,
                        String::from_utf8_lossy(input)
                    );
                    check_rejection(status, &text)?;
                }
            }
            Route::Mcp(variant) => {
                let mut builder = self.request("POST", "/mcp");
                if variant != Variant::NoSession {
                    builder = builder.header("mcp-session-id", &self.mcp_session);
                }
                let replace = |name: &'static str, value: &'static str| {
                    move |mut builder: axum::http::request::Builder| {
                        if let Some(headers) = builder.headers_mut() {
                            headers.insert(name, value.parse().unwrap());
                        }
                        builder
                    }
                };
                builder = match variant {
                    Variant::WrongToken => {
                        replace("authorization", "Bearer wrong-token-0000000")(builder)
                    }
                    Variant::TwoTokens => {
                        builder.header("authorization", "Bearer wrong-token-0000000")
                    }
                    Variant::ForeignHost => replace("host", "evil.example")(builder),
                    Variant::TwoHosts => builder.header("host", "evil.example"),
                    Variant::WrongContentType => replace("content-type", "text/plain")(builder),
                    Variant::UnknownSession => {
                        replace("mcp-session-id", "no-such-session")(builder)
                    }
                    Variant::Session | Variant::NoSession => builder,
                };
                let request = builder.body(Body::from(input.to_vec())).unwrap();
                let response = self.send(request).await;
                let status = response.status();
                let headers = format!("{:?}", response.headers());
                assert_clean(&headers, input)?;
                let text = body_text(response).await?;
                // An event stream: each line on its own (each `data:` is one message).
                for line in text.lines() {
                    assert_clean(line.strip_prefix("data:").unwrap_or(line).trim(), input)?;
                }
                let allowed: &[u16] = match variant {
                    Variant::WrongToken | Variant::TwoTokens => &[401],
                    Variant::ForeignHost => &[403],
                    Variant::TwoHosts => &[400],
                    Variant::WrongContentType => &[415],
                    Variant::UnknownSession => &[400, 404],
                    Variant::Session | Variant::NoSession => &[200, 202, 400, 404, 406, 503],
                };
                prop_assert!(
                    allowed.contains(&status.as_u16()),
                    "/mcp ({:?}) answered {}: {}\ninput: {}",
                    variant,
                    status,
                    text,
                    String::from_utf8_lossy(input)
                );
                if status == StatusCode::BAD_REQUEST && variant == Variant::Session {
                    check_rejection(status, &text)?;
                }
                if let (Variant::Session, Some(id), StatusCode::OK) = (variant, &expected, status) {
                    let answered = sse_messages(&text)
                        .iter()
                        .any(|message| same_id(&message["id"], id) || message["id"].is_null());
                    prop_assert!(answered, "request {} unanswered: {}", id, text);
                }
            }
        }
        Ok(())
    }
}

/// A refused body carries a JSON-RPC error object.
fn check_rejection(status: StatusCode, text: &str) -> Result<(), TestCaseError> {
    if status == StatusCode::BAD_REQUEST {
        let message: Value = serde_json::from_str(text)
            .map_err(|_| TestCaseError::fail(format!("400 without a JSON-RPC error: {text}")))?;
        prop_assert!(message["error"]["code"].is_i64(), "{}", text);
    }
    Ok(())
}

fn sse_messages(text: &str) -> Vec<Value> {
    let mut parser = SseParser::default();
    let events = parser.feed(format!("{text}\n\n").as_bytes());
    let mut messages: Vec<Value> = events
        .into_iter()
        .filter(|event| event.event == "message" && !event.data.is_empty())
        .filter_map(|event| serde_json::from_str(&event.data).ok())
        .collect();
    if messages.is_empty() {
        messages.extend(serde_json::from_str::<Value>(text));
    }
    messages
}

async fn body_text(response: axum::response::Response) -> Result<String, TestCaseError> {
    let collected = tokio::time::timeout(ANSWER_WITHIN, response.into_body().collect())
        .await
        .map_err(|_| TestCaseError::fail("the answer's body never ended"))?
        .map_err(|error| TestCaseError::fail(format!("the answer's body broke: {error}")))?;
    Ok(String::from_utf8_lossy(&collected.to_bytes()).into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Session,
    NoSession,
    WrongToken,
    TwoTokens,
    ForeignHost,
    TwoHosts,
    WrongContentType,
    UnknownSession,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Mcp(Variant),
    Message,
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![
        12 => Just(Route::Mcp(Variant::Session)),
        2 => Just(Route::Mcp(Variant::NoSession)),
        1 => Just(Route::Mcp(Variant::WrongToken)),
        1 => Just(Route::Mcp(Variant::TwoTokens)),
        1 => Just(Route::Mcp(Variant::ForeignHost)),
        1 => Just(Route::Mcp(Variant::TwoHosts)),
        1 => Just(Route::Mcp(Variant::WrongContentType)),
        1 => Just(Route::Mcp(Variant::UnknownSession)),
        8 => Just(Route::Message),
    ]
}

// ───────────────────────────── the runs ─────────────────────────────

/// Cases for the long run: `PROPTEST_CASES`, at least 100,000 unless set lower on purpose.
fn long_run_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000)
}

fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    });
    let started = Instant::now();
    let result = runner.run(&strategy, test);
    let elapsed = started.elapsed();
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    eprintln!(
        "{name}: {cases} cases passed in {:.1} s ({:.0} cases/s)",
        elapsed.as_secs_f64(),
        f64::from(cases) / elapsed.as_secs_f64()
    );
}

fn pipe_case(input: Vec<u8>) -> Result<(), TestCaseError> {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut stdio = harness.stdio.lock().await;
        for reply in stdio.exchange(&input).await? {
            assert_clean(&reply, &input)?;
        }
        Ok(())
    })
}

fn http_case((input, route): (Vec<u8>, Route)) -> Result<(), TestCaseError> {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut http = harness.http.lock().await;
        http.exchange(&input, route).await
    })
}

/// Tool arguments straight into the handler: every call ends in a result (never a panic,
/// never a protocol error for the right tool name) that quotes no secret.
fn arguments_case(arguments: Value) -> Result<(), TestCaseError> {
    let harness = harness();
    harness.runtime.block_on(async {
        let params = rmcp::model::CallToolRequestParams::new(TOOL)
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        let result = tokio::time::timeout(ANSWER_WITHIN, harness.server.call(&params))
            .await
            .map_err(|_| TestCaseError::fail("the call never ended"))?
            .map_err(|error| TestCaseError::fail(format!("a protocol error: {error:?}")))?;
        let text = serde_json::to_string(&result).unwrap();
        let wrapped = json!({"jsonrpc": "2.0", "id": 1, "result": result}).to_string();
        assert_clean(&wrapped, arguments.to_string().as_bytes())?;
        prop_assert!(!text.is_empty());
        Ok(())
    })
}

#[test]
fn fuzz_pipe_messages() {
    run("pipe", 300, input(), pipe_case);
}

#[test]
fn fuzz_http_requests() {
    run("http", 300, (input(), route()), http_case);
}

#[test]
fn fuzz_tool_arguments() {
    run("arguments", 300, tool_arguments(), arguments_case);
}

#[test]
#[ignore = "long run: PROPTEST_CASES=100000 cargo test --release --test fuzz -- --ignored"]
fn fuzz_pipe_messages_long() {
    run("pipe (long)", long_run_cases(), input(), pipe_case);
}

#[test]
#[ignore = "long run: PROPTEST_CASES=100000 cargo test --release --test fuzz -- --ignored"]
fn fuzz_http_requests_long() {
    run(
        "http (long)",
        long_run_cases(),
        (input(), route()),
        http_case,
    );
}

#[test]
#[ignore = "long run: PROPTEST_CASES=100000 cargo test --release --test fuzz -- --ignored"]
fn fuzz_tool_arguments_long() {
    run(
        "arguments (long)",
        long_run_cases(),
        tool_arguments(),
        arguments_case,
    );
}

/// The canary check itself must catch a leak, or the fuzz proves nothing.
#[test]
fn the_secret_check_catches_a_leak() {
    let input = json!({"params": {"arguments": {"client_secret": CLIENT_SECRET}}}).to_string();
    let leak = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": CLIENT_SECRET}});
    assert!(assert_clean(&leak.to_string(), input.as_bytes()).is_err());
    let success = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": TOKEN_BODY}]}});
    assert!(assert_clean(&success.to_string(), input.as_bytes()).is_ok());
    let failed = json!({"jsonrpc": "2.0", "id": 1, "result": {"isError": true, "content": [{"type": "text", "text": TOKEN_BODY}]}});
    assert!(assert_clean(&failed.to_string(), input.as_bytes()).is_err());
    let keyed = json!({"params": {"arguments": {CLIENT_SECRET: 1}}}).to_string();
    let echo = json!({"error": {"message": format!("unknown argument `{CLIENT_SECRET}`")}});
    assert!(assert_clean(&echo.to_string(), keyed.as_bytes()).is_ok());
}

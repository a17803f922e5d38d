//! What the server writes about a call, and the secrets it never writes. The log has one
//! line per tool call with the tool, the grant type, the upstream status and the latency.
//! The secret hygiene audit: canary secrets (the client secret, passed and held, an
//! authorization code, refresh tokens in and out, the access token, the server's own bearer
//! token and a wrong one a caller presents) are pushed through every path — success, each
//! upstream error, a timeout, cancelled and abandoned calls, and every 4xx/5xx the server
//! itself answers — over every transport, with `RUST_LOG=trace` (which also turns on
//! hyper's, reqwest's, axum's and rmcp's own logs). None may appear in any log line, nor in
//! any answer but the token response itself (the product). And no peer's message reaches
//! the log at any level, whatever its shape.

use std::time::Duration;

use crate::common::{
    faulty_upstream::{Fault, FaultyUpstream, response},
    fixtures::*,
    raw_mcp::{self, Answer, RawSession, RawSseSession, RawStdio},
    *,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const AUTH_TOKEN: &str = "auth-token-canary-5b4a39";
const WRONG_TOKEN: &str = "presented-token-canary-0c1d";

/// Secrets that may never appear anywhere.
const INPUT_CANARIES: [&str; 6] = [
    CLIENT_SECRET,
    HELD_SECRET,
    CODE,
    REFRESH_IN,
    AUTH_TOKEN,
    WRONG_TOKEN,
];
/// Secrets that may appear only in a successful token result.
const PRODUCT_CANARIES: [&str; 2] = [ACCESS_OUT, REFRESH_OUT];

/// Every answer a client saw, for the final check.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn answer(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn http(&mut self, what: &str, answer: &Answer) {
        self.answer(
            format!("{what} → {}", answer.status),
            format!("{:?}\n{}", answer.headers, answer.body),
        );
    }

    fn result(&mut self, what: &str, result: &rmcp::model::CallToolResult) {
        self.answer(what, serde_json::to_string(result).unwrap());
    }

    /// No input secret anywhere; product secrets only in successful token results.
    fn assert_clean(&self) {
        assert!(
            self.0.len() > 20,
            "the audit saw its answers: {}",
            self.0.len()
        );
        for (what, text) in &self.0 {
            for canary in INPUT_CANARIES {
                assert!(!text.contains(canary), "{canary} in {what}:\n{text}");
            }
            if is_product(text) {
                continue;
            }
            for canary in PRODUCT_CANARIES {
                assert!(!text.contains(canary), "{canary} in {what}:\n{text}");
            }
        }
    }
}

/// A successful token result: the one place the issued tokens belong.
fn is_product(text: &str) -> bool {
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|line| {
            serde_json::from_str(line.strip_prefix("data:").unwrap_or(line).trim()).ok()
        })
        .collect();
    !messages.is_empty()
        && messages.iter().all(|message| {
            let result = message.get("result").unwrap_or(message);
            result["isError"] != true && result["content"][0]["text"] == TOKEN_BODY
        })
}

fn assert_logs_clean(logs: &str) {
    assert!(logs.contains("TRACE"), "trace level was on");
    assert!(logs.contains("tool call"), "the capture worked");
    for canary in INPUT_CANARIES.iter().chain(&PRODUCT_CANARIES) {
        assert!(
            !logs.contains(canary),
            "secret {canary} in the logs:\n{logs}"
        );
    }
}

fn launch(upstream: &FaultyUpstream) -> Launch {
    Launch::against(&upstream.url)
        .arg("--timeout-secs")
        .arg("1")
        .env("RUST_LOG", "trace")
        .env("PROCORE_CLIENT_ID", "held-id")
        .env("PROCORE_CLIENT_SECRET", HELD_SECRET)
}

fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        (
            "400 invalid_grant",
            Fault::Raw(response(
                400,
                &[],
                br#"{"error":"invalid_grant","error_description":"no"}"#,
            )),
        ),
        (
            "401 invalid_client",
            Fault::Raw(response(401, &[], br#"{"error":"invalid_client"}"#)),
        ),
        (
            "429",
            Fault::Raw(response(429, &[("retry-after", "3")], b"{}")),
        ),
        ("500", Fault::Raw(response(500, &[], b"oops"))),
        (
            "302",
            Fault::Raw(response(302, &[("location", "http://127.0.0.1:9/x")], b"")),
        ),
        ("non-JSON 200", Fault::Raw(response(200, &[], b"<html>"))),
        (
            "invalid UTF-8 200",
            Fault::Raw(response(200, &[], b"\xff\xfe")),
        ),
        ("hang (timeout)", Fault::Hang),
        (
            "trickle",
            Fault::Trickle {
                every: Duration::from_millis(300),
            },
        ),
        ("reset mid-body", Fault::ResetMidBody),
        (
            "huge body",
            Fault::Huge {
                size: 8 * 1024 * 1024,
                declared: false,
            },
        ),
    ]
}

fn grants() -> Vec<(&'static str, Value)> {
    vec![
        (
            "authorization_code",
            json!({"grant_type": "authorization_code", "client_id": "cid", "client_secret": CLIENT_SECRET, "code": CODE, "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}),
        ),
        (
            "refresh_token",
            json!({"grant_type": "refresh_token", "client_id": "cid", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_IN}),
        ),
        (
            "held client_credentials",
            json!({"grant_type": "client_credentials"}),
        ),
        (
            "held refresh_token",
            json!({"grant_type": "refresh_token", "refresh_token": REFRESH_IN}),
        ),
        (
            "client_credentials",
            json!({"grant_type": "client_credentials", "client_id": "cid", "client_secret": CLIENT_SECRET}),
        ),
    ]
}

/// Refused before anything is sent: secrets in wrong places and wrong types.
fn refused_arguments() -> Vec<Value> {
    vec![
        json!({"grant_type": "refresh_token", "client_secret": CLIENT_SECRET}),
        json!({"grant_type": "authorization_code", "code": CODE}),
        json!({"grant_type": "refresh_token", "refresh_token": [REFRESH_IN]}),
        json!({"grant_type": "client_credentials", "client_secret": {"v": CLIENT_SECRET}}),
        json!({"grant_type": REFRESH_IN, "client_secret": CLIENT_SECRET}),
        json!({"grant_type": "client_credentials", "extra": CODE}),
    ]
}

/// Success, every upstream fault and every refusal, through one client.
async fn every_tool_path(client: &Client, upstream: &mut FaultyUpstream, seen: &mut Seen) {
    every_grant_and_fault(client, upstream, seen).await;
    upstream.stop_listening();
    let result = call_token(client, grants()[1].1.clone()).await;
    assert!(is_error(&result));
    seen.result("connection refused", &result);
    upstream.listen_again().await;
    for arguments in refused_arguments() {
        let result = call_token(client, arguments).await;
        assert!(is_error(&result));
        seen.result("refused arguments", &result);
    }
}

/// Every grant's success, then each upstream fault on it.
async fn every_grant_and_fault(client: &Client, upstream: &mut FaultyUpstream, seen: &mut Seen) {
    for (grant, arguments) in grants() {
        let result = call_token(client, arguments.clone()).await;
        assert!(!is_error(&result), "{grant}: {}", text(&result));
        seen.result(grant, &result);
        for (fault, behaviour) in faults() {
            let slow = matches!(behaviour, Fault::Hang | Fault::Trickle { .. });
            if slow && grant != "refresh_token" {
                continue; // each waits out the 1 s timeout: once per transport is enough
            }
            upstream.push(behaviour);
            let result = call_token(client, arguments.clone()).await;
            assert!(is_error(&result), "{grant} / {fault}");
            seen.result(&format!("{grant} / {fault}"), &result);
        }
    }
}

#[tokio::test]
async fn no_secret_escapes_over_http() {
    init();
    let mut upstream = FaultyUpstream::start().await;
    let server = HttpServer::start(
        &launch(&upstream)
            .env("MCP_AUTH_TOKEN", AUTH_TOKEN)
            .arg("--max-request-bytes")
            .arg("4096")
            .arg("--read-timeout-secs")
            .arg("1")
            .arg("--max-sessions")
            .arg("4")
            .arg("--session-idle-secs")
            .arg("2"),
    )
    .await;
    let mut seen = Seen::default();

    // Every tool path through every HTTP transport (each client opened when its turn
    // comes: an idle session would expire after 2 s).
    for transport in 0..3 {
        let client = match transport {
            0 => authed_clients::legacy_client(&server, AUTH_TOKEN).await,
            1 => authed_clients::modern_client(&server, AUTH_TOKEN).await,
            _ => authed_clients::sse_client(&server, AUTH_TOKEN).await,
        };
        every_tool_path(&client, &mut upstream, &mut seen).await;
        client.cancel().await.unwrap();
    }
    let sent = upstream.requests().join("\n");
    for canary in [CLIENT_SECRET, HELD_SECRET, CODE, REFRESH_IN] {
        assert!(sent.contains(canary), "{canary} really went upstream");
    }

    server_refusals(&server, &mut seen).await;
    cancelled_and_abandoned_calls(&server, &mut upstream, &mut seen).await;

    seen.assert_clean();
    // Every line the server wrote, to its exit.
    assert_logs_clean(&server.stop().await);
}

/// Every 4xx/5xx the server answers by itself, each carrying secrets in the request.
async fn server_refusals(server: &HttpServer, seen: &mut Seen) {
    let http = reqwest::Client::new();
    let secret_call = raw_call(1, grants()[0].1.clone());

    // 401: no token, and a wrong one (itself a secret).
    for authorization in [None, Some(WRONG_TOKEN)] {
        let answer = raw_mcp::post_mcp(
            &http,
            &server.mcp_url(),
            None,
            authorization,
            secret_call.clone(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        seen.http("401", &answer);
    }
    // 403: a foreign Host with the right token.
    let answer = raw_mcp::read(
        http.post(server.mcp_url())
            .bearer_auth(AUTH_TOKEN)
            .header("host", "evil.example")
            .body(secret_call.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    seen.http("403", &answer);

    let session = RawSession::open(server, Some(AUTH_TOKEN)).await;
    // 400: broken JSON and wrong shapes around secrets.
    for body in [
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"arguments":{{"client_secret":"{CLIENT_SECRET}""#
        ),
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":"{REFRESH_IN}"}}"#),
        format!(r#"[{{"code":"{CODE}"}}]"#),
        format!(r#"{{"jsonrpc":"2.0","id":{{"{CODE}":1}},"method":"ping"}}"#),
    ] {
        let answer = session.post(body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        seen.http("400", &answer);
    }
    // 404: an unknown session.
    let answer = raw_mcp::post_mcp(
        &http,
        &server.mcp_url(),
        Some("no-such-session"),
        Some(AUTH_TOKEN),
        secret_call.clone(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    seen.http("404 unknown", &answer);
    // 406 and 415: wrong Accept, wrong Content-Type.
    let answer = raw_mcp::read(
        http.post(server.mcp_url())
            .bearer_auth(AUTH_TOKEN)
            .header("mcp-session-id", &session.id)
            .header("content-type", "application/json")
            .body(secret_call.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_ACCEPTABLE);
    seen.http("406", &answer);
    let answer = raw_mcp::read(
        http.post(server.mcp_url())
            .bearer_auth(AUTH_TOKEN)
            .header("mcp-session-id", &session.id)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "text/plain")
            .body(secret_call.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    seen.http("415", &answer);
    // 413: a body over the limit, full of secrets.
    let big = raw_call(
        2,
        json!({"grant_type": "refresh_token", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_IN.repeat(400)}),
    );
    let answer = session.post(big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    seen.http("413", &answer);
    // 408: a body that never finishes.
    let address = server.base.trim_start_matches("http://");
    let mut slow = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {AUTH_TOKEN}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Mcp-Session-Id: {}\r\nContent-Length: 500\r\n\r\n{{\"client_secret\":\"{CLIENT_SECRET}\"",
        session.id
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_string(&mut answer))
        .await
        .unwrap()
        .ok();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    seen.answer("408", answer);
    // 503: more sessions than allowed.
    let mut extra = Vec::new();
    let refused = loop {
        let answer = raw_mcp::post_mcp(
            &http,
            &server.mcp_url(),
            None,
            Some(AUTH_TOKEN),
            raw_mcp::INITIALIZE,
        )
        .await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            break answer;
        }
        assert_eq!(answer.status, StatusCode::OK);
        extra.push(
            answer.headers["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        assert!(extra.len() <= 4, "the cap held");
    };
    seen.http("503", &refused);
    for id in extra {
        http.delete(server.mcp_url())
            .bearer_auth(AUTH_TOKEN)
            .header("mcp-session-id", id)
            .send()
            .await
            .unwrap();
    }
    // 404: a session that expired while idle.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let answer = session.post(secret_call.clone()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    seen.http("404 expired", &answer);
    // The old transport's refusals: unknown session, broken body.
    let answer = raw_mcp::read(
        http.post(format!("{}/message?sessionId=nope", server.base))
            .bearer_auth(AUTH_TOKEN)
            .body(secret_call.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    seen.http("404 /message", &answer);
}

fn raw_call(id: i64, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": TOOL, "arguments": arguments}})
    .to_string()
}

/// A call cancelled by `notifications/cancelled`, and one whose client went away.
async fn cancelled_and_abandoned_calls(
    server: &HttpServer,
    upstream: &mut FaultyUpstream,
    seen: &mut Seen,
) {
    let session = RawSession::open(server, Some(AUTH_TOKEN)).await;
    for abandon in [false, true] {
        let before = upstream.count();
        upstream.push(Fault::Hang);
        // Different requests each time: identical ones in flight together become one.
        let body = raw_call(70, grants()[if abandon { 3 } else { 1 }].1.clone());
        let url = session.url.clone();
        let id = session.id.clone();
        let pending = tokio::spawn(async move {
            let http = reqwest::Client::new();
            raw_mcp::post_mcp(&http, &url, Some(&id), Some(AUTH_TOKEN), body).await
        });
        upstream.wait_for_requests(before + 1).await;
        if abandon {
            pending.abort();
        } else {
            let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                "params": {"requestId": 70, "reason": "the user changed their mind"}});
            let answer = session.post(cancel.to_string()).await;
            assert_eq!(answer.status, StatusCode::ACCEPTED);
            seen.http("cancel", &answer);
            if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(3), pending).await {
                seen.http("cancelled call", &answer);
            }
        }
    }
    // Over the old transport too.
    let mut sse = RawSseSession::open_with_token(server, AUTH_TOKEN).await;
    sse.initialize_with_token(server, AUTH_TOKEN).await;
    upstream.push(Fault::Hang);
    let before = upstream.count();
    let answer = raw_mcp::post_message_with_token(
        server,
        &sse.id,
        AUTH_TOKEN,
        raw_call(71, grants()[0].1.clone()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    // Cancelled once it is waiting on the upstream.
    upstream.wait_for_requests(before + 1).await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 71}});
    let answer =
        raw_mcp::post_message_with_token(server, &sse.id, AUTH_TOKEN, cancel.to_string()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    drop(sse);
}

#[tokio::test]
async fn no_secret_escapes_over_stdio() {
    init();
    let mut upstream = FaultyUpstream::start().await;
    let mut seen = Seen::default();
    let (client, logs) = stdio_client(&launch(&upstream)).await;
    every_tool_path(&client, &mut upstream, &mut seen).await;
    client.cancel().await.unwrap();

    // Raw lines: broken messages around secrets, and a cancelled call.
    let mut stdio = RawStdio::spawn(&launch(&upstream));
    upstream.push(Fault::Hang);
    let before = upstream.count();
    let lines = [
        raw_mcp::INITIALIZE.to_owned(),
        raw_mcp::INITIALIZED.to_owned(),
        format!(r#"{{"jsonrpc":"2.0","id":2,"method":"ping","params":"{REFRESH_IN}"}}"#),
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{TOOL}","arguments":"{CLIENT_SECRET}"}}}}"#
        ),
        format!(r#"{{"client_secret":"{CLIENT_SECRET}""#),
        format!(r#"[{{"code":"{CODE}"}}]"#),
        raw_call(4, grants()[1].1.clone()),
    ];
    for line in &lines {
        stdio.send(line).await;
    }
    // Call 4 (the only line that reaches the upstream) is cancelled while it waits there.
    upstream.wait_for_requests(before + 1).await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}});
    stdio.send(&cancel.to_string()).await;
    stdio.send(&raw_call(5, grants()[2].1.clone())).await;
    let mut replies = 0;
    loop {
        let line = stdio.next_line().await;
        replies += 1;
        let done = line.contains(r#""id":5"#);
        seen.answer("stdio raw", line);
        if done {
            break;
        }
    }
    assert!(
        replies >= 4,
        "initialize, three errors and the last call answered"
    );
    let (_, raw_logs) = stdio.finish().await;

    seen.assert_clean();
    assert_logs_clean(&logs.until_closed().await);
    assert_logs_clean(&raw_logs);
}

/// Every JSON-RPC shape a peer can send, each carrying secrets where its content goes: a
/// `tools/call` without an `id` (a notification, arguments and all), a cancellation whose
/// free-text `reason` is a secret, batches, responses and error responses the server never
/// asked for, an `initialize` whose client info is a secret, unknown methods and
/// notifications with secret params. rmcp echoes several of these whole at `info`, the
/// default level.
fn peer_message_shapes() -> Vec<String> {
    let arguments = json!({"grant_type": "refresh_token", "client_id": "shape-id",
                           "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_IN,
                           "code": CODE});
    let call_without_id = json!({"jsonrpc": "2.0", "method": "tools/call",
                                 "params": {"name": TOOL, "arguments": arguments}});
    vec![
        call_without_id.to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": 999, "reason": CLIENT_SECRET}})
        .to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": REFRESH_IN, "reason": CODE}})
        .to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/progress",
               "params": {"progressToken": REFRESH_IN, "progress": 1, "message": CODE}})
        .to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed",
               "params": {"secret": CLIENT_SECRET}})
        .to_string(),
        json!({"jsonrpc": "2.0", "method": "notifications/made-up", "params": {"code": CODE}})
            .to_string(),
        json!([call_without_id, {"jsonrpc": "2.0", "id": 40, "method": "tools/call",
                                 "params": {"name": TOOL, "arguments": arguments}}])
        .to_string(),
        json!({"jsonrpc": "2.0", "id": 41, "result": {"token": REFRESH_IN}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 42,
               "error": {"code": -32000, "message": CLIENT_SECRET, "data": CODE}})
        .to_string(),
        json!({"jsonrpc": "2.0", "id": 43, "method": "made/up", "params": {"code": CODE}})
            .to_string(),
        json!({"jsonrpc": "2.0", "id": 44, "method": "tools/call",
               "params": {"name": TOOL, "arguments": REFRESH_IN}})
        .to_string(),
        json!({"jsonrpc": "2.0", "id": 45, "method": "tools/call",
               "params": {"name": CODE, "arguments": {}}})
        .to_string(),
        // A call that reaches the upstream (so the verbose crates log too).
        json!({"jsonrpc": "2.0", "id": 47, "method": "tools/call",
               "params": {"name": TOOL, "arguments": {"grant_type": "client_credentials"}}})
        .to_string(),
        json!({"jsonrpc": "2.0", "id": 46, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {"x": CODE},
                          "clientInfo": {"name": CLIENT_SECRET, "version": REFRESH_IN}}})
        .to_string(),
    ]
}

fn assert_no_input_canary(what: &str, logs: &str) {
    for canary in INPUT_CANARIES {
        assert!(
            !logs.contains(canary),
            "{what}: secret {canary} in the logs:\n{logs}"
        );
    }
}

/// The server holding credentials, at the default log level or at `level`.
fn shape_launch(upstream: &Upstream, level: Option<&str>) -> Launch {
    let launch = Launch::against(&upstream.url)
        .env("PROCORE_CLIENT_ID", "held-id")
        .env("PROCORE_CLIENT_SECRET", HELD_SECRET);
    match level {
        Some(level) => launch.env("RUST_LOG", level),
        None => launch,
    }
}

/// The initialize every shape test starts with, its client info a secret.
fn secret_initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
           "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                      "clientInfo": {"name": CODE, "version": CLIENT_SECRET}}})
    .to_string()
}

#[tokio::test]
async fn no_peer_message_reaches_the_log_over_stdio_at_any_level() {
    init();
    let upstream = Upstream::start().await;
    upstream.always(Reply::new(400, r#"{"error":"invalid_grant"}"#));
    for level in [None, Some("trace")] {
        let launch = shape_launch(&upstream, level);
        let mut stdio = RawStdio::spawn(&launch);
        stdio.send(&secret_initialize()).await;
        let reply = stdio.next_reply().await;
        assert_eq!(reply["id"], 0, "initialized: {reply}");
        stdio.send(raw_mcp::INITIALIZED).await;
        for shape in peer_message_shapes() {
            stdio.send(&shape).await;
        }
        // A request after them all: its answer means every line before it was read.
        stdio
            .send(r#"{"jsonrpc":"2.0","id":"last","method":"ping"}"#)
            .await;
        loop {
            let line = stdio.next_line().await;
            if line.contains(r#""id":"last""#) {
                break;
            }
        }
        let (_, logs) = stdio.finish().await;
        let what = format!("stdio, RUST_LOG={level:?}");
        if level.is_some() {
            assert!(
                logs.contains("TRACE"),
                "{what}: trace level was on:\n{logs}"
            );
        }
        assert_no_input_canary(&what, &logs);
    }
}

#[tokio::test]
async fn no_peer_message_reaches_the_log_over_http_at_any_level() {
    init();
    let upstream = Upstream::start().await;
    upstream.always(Reply::new(400, r#"{"error":"invalid_grant"}"#));
    for level in [None, Some("trace")] {
        let launch = shape_launch(&upstream, level);
        let server = HttpServer::start(&launch).await;
        let http = reqwest::Client::new();
        let answer =
            raw_mcp::post_mcp(&http, &server.mcp_url(), None, None, secret_initialize()).await;
        assert_eq!(answer.status, StatusCode::OK, "initialize: {answer:?}");
        let session = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let post = |body: String| {
            let http = http.clone();
            let url = server.mcp_url();
            let session = session.clone();
            async move { raw_mcp::post_mcp(&http, &url, Some(&session), None, body).await }
        };
        assert_eq!(
            post(raw_mcp::INITIALIZED.to_owned()).await.status,
            StatusCode::ACCEPTED
        );
        for shape in peer_message_shapes() {
            let answer = post(shape.clone()).await;
            assert!(
                answer.status.is_success() || answer.status.is_client_error(),
                "{shape}: {answer:?}"
            );
        }
        // The stateless protocol's door too: a notification with no session.
        let bare_call = peer_message_shapes().remove(0);
        let _ = raw_mcp::post_mcp(&http, &server.mcp_url(), None, None, bare_call).await;
        // A request after them all: once answered, the notifications before it were handled.
        let answer = post(r#"{"jsonrpc":"2.0","id":"last","method":"ping"}"#.to_owned()).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let what = format!("streamable HTTP, RUST_LOG={level:?}");
        // Every line the server wrote, to its exit.
        let logs = server.stop().await;
        if level.is_some() {
            assert!(
                logs.contains("TRACE"),
                "{what}: trace level was on:\n{logs}"
            );
        }
        assert_no_input_canary(&what, &logs);
    }
}

#[tokio::test]
async fn one_log_line_per_tool_call_with_grant_status_and_latency() {
    init();
    let upstream = Upstream::start().await;
    let (client, logs) = stdio_client(&Launch::against(&upstream.url)).await;
    upstream.push(Reply::new(400, r#"{"error":"invalid_grant"}"#));
    call_token(&client, refresh("rt-x")).await;
    let line = logs.wait_for("tool call").await;
    for part in [
        "tool=\"get_or_refresh_an_access_token\"",
        "grant_type=\"refresh_token\"",
        "upstream=400",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    client.cancel().await.unwrap();
}

/// `get_access_token` hands out an access token and never a refresh token: not on success,
/// not in any error (an upstream echoing the refresh request included), and no token of
/// either kind reaches the log. The stored pair ([`TOKEN_BODY`], issued in 2017) is always
/// expired, so every call renews it.
#[tokio::test]
async fn get_access_token_never_shows_a_refresh_token_nor_logs_a_token() {
    init();
    let upstream = FaultyUpstream::start().await;
    let dir = crate::common::StoreDir::new();
    let launch = launch(&upstream)
        .arg("--token-store")
        .arg(dir.file().to_str().unwrap());
    let (client, logs) = stdio_client(&launch).await;
    let first = call_token(
        &client,
        json!({"grant_type": "authorization_code", "code": CODE, "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}),
    )
    .await;
    assert!(!is_error(&first), "{}", text(&first));

    let get = |arguments: Value| {
        client.call_tool(
            rmcp::model::CallToolRequestParams::new("get_access_token")
                .with_arguments(args(arguments)),
        )
    };
    let mut answers = Vec::new();
    // Every failure first: none rotates the pair, so each call is sent (a pair rotated
    // moments ago would be the answer, with nothing sent).
    let mut cases = faults();
    cases.push(("echo 400", Fault::Echo(400)));
    cases.push(("echo 200", Fault::Echo(200)));
    for (fault, behaviour) in cases {
        if matches!(behaviour, Fault::Trickle { .. }) {
            continue; // the hang already waits out the timeout once
        }
        upstream.push(behaviour);
        let result = get(json!({})).await.unwrap();
        assert!(is_error(&result), "{fault}: {}", text(&result));
        answers.push((fault.to_owned(), result));
    }
    let renewed = get(json!({})).await.unwrap();
    assert!(!is_error(&renewed), "{}", text(&renewed));
    assert_eq!(
        renewed.structured_content.as_ref().unwrap()["access_token"],
        ACCESS_OUT
    );
    answers.push(("renewed".to_owned(), renewed));
    let sent = upstream.requests().join("\n");
    assert!(
        sent.contains(REFRESH_OUT),
        "the stored refresh token really went upstream"
    );
    for (what, result) in &answers {
        let shown = serde_json::to_string(result).unwrap();
        for canary in INPUT_CANARIES.iter().chain([&REFRESH_OUT]) {
            assert!(!shown.contains(canary), "{canary} in {what}:\n{shown}");
        }
        if is_error(result) {
            assert!(!shown.contains(ACCESS_OUT), "{what}:\n{shown}");
        }
    }
    client.cancel().await.unwrap();
    assert_logs_clean(&logs.until_closed().await);
}

/// The same audit with a Redis token store: every grant and upstream fault, at trace level,
/// stores pairs in Redis without a secret reaching the log. (No reuse window, so every call
/// is sent and meets its fault, as without a store.)
#[tokio::test]
async fn no_secret_escapes_over_stdio_with_a_redis_store() {
    init();
    let Some(redis) = crate::common::redis_server::RedisServer::start(&[]) else {
        return;
    };
    let mut upstream = FaultyUpstream::start().await;
    let mut seen = Seen::default();
    let launch = launch(&upstream)
        .arg("--token-store")
        .arg(redis.url())
        .arg("--reuse-window-secs")
        .arg("0");
    let (client, logs) = stdio_client(&launch).await;
    every_grant_and_fault(&client, &mut upstream, &mut seen).await;
    client.cancel().await.unwrap();
    assert!(
        !redis.stored_responses().is_empty(),
        "the paths went through the store"
    );
    seen.assert_clean();
    assert_logs_clean(&logs.until_closed().await);
}

/// The same audit with a Redis token store and `PROCORE_STORE_KEY`: no secret reaches the
/// log, the key included, and none is readable at rest, in any Redis value or in the
/// append-only file.
#[tokio::test]
async fn no_secret_is_at_rest_in_redis_nor_logged_with_a_store_key() {
    init();
    let Some(redis) = crate::common::redis_server::RedisServer::start(&[]) else {
        return;
    };
    const STORE_KEY: &str = "c3RvcmUta2V5LWNhbmFyeS0wMTIzNDU2Nzg5YWJjZGU=";
    let mut upstream = FaultyUpstream::start().await;
    let mut seen = Seen::default();
    let launch = launch(&upstream)
        .arg("--token-store")
        .arg(redis.url())
        .arg("--reuse-window-secs")
        .arg("0")
        .env("PROCORE_STORE_KEY", STORE_KEY);
    let (client, logs) = stdio_client(&launch).await;
    every_grant_and_fault(&client, &mut upstream, &mut seen).await;
    client.cancel().await.unwrap();
    let key_ids = redis.pair_fields("kid");
    assert!(
        !key_ids.is_empty()
            && key_ids
                .iter()
                .all(|kid| kid.as_deref().is_some_and(|kid| kid.len() == 8)),
        "the paths stored sealed pairs: {key_ids:?}"
    );
    let at_rest = redis.everything_at_rest();
    assert!(
        at_rest.contains("appendonly") || at_rest.contains("HSET"),
        "the AOF was read"
    );
    for canary in INPUT_CANARIES.iter().chain(&PRODUCT_CANARIES) {
        assert!(
            !at_rest.contains(canary),
            "secret {canary} at rest:\n{at_rest}"
        );
    }
    seen.assert_clean();
    let logged = logs.until_closed().await;
    assert!(
        !logged.contains(STORE_KEY),
        "the store key in the logs:\n{logged}"
    );
    assert_logs_clean(&logged);
}

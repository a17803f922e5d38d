//! Every transport through the real binary and rmcp's client: stdio, streamable HTTP in
//! both protocol eras, the old HTTP+SSE endpoints; stdio's clean stdout, parse errors and
//! exit; graceful stop on SIGTERM and SIGINT. Who may reach the HTTP endpoints (Host,
//! Origin, bearer token) is `http_access`.

use std::{process::Stdio, time::Duration};

use crate::common::{raw_mcp, *};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The checks every transport must pass: identity, instructions, tool list, a token call.
async fn exercise(client: &Client, upstream: &Upstream) {
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "grant_app_authorization",
            TOOL,
            "get_token_info",
            "revoke_token"
        ]
    );
    let before = upstream.count();
    let result = call_token(client, client_credentials()).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(text(&result), TOKEN_BODY);
    assert_eq!(upstream.count(), before + 1);
}

fn assert_identity(client: &Client) {
    let info = client.peer_info().expect("server info after initialize");
    let implementation = info.server_info.clone().expect("serverInfo");
    assert_eq!(implementation.name, "procore-token-mcp");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(instructions.contains(TOOL), "{instructions}");
}

#[tokio::test]
async fn stdio_serves_the_tool() {
    init();
    let upstream = Upstream::start().await;
    let (client, _logs) = stdio_client(&Launch::against(&upstream.url)).await;
    assert_identity(&client);
    exercise(&client, &upstream).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_stdout_carries_only_json_rpc_and_exits_0_when_stdin_closes() {
    init();
    let upstream = Upstream::start().await;
    let mut command = Launch::against(&upstream.url)
        .env("RUST_LOG", "trace")
        .command();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let messages = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_or_refresh_an_access_token","arguments":{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}}}"#,
    ];
    for message in messages {
        stdin.write_all(message.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    // Read until the call's answer (id 3) has arrived, then close stdin.
    let mut output = String::new();
    let mut buffer = [0u8; 4096];
    while !output.contains(r#""id":3"#) {
        let read = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buffer))
            .await
            .expect("answers arrive")
            .unwrap();
        assert!(read > 0, "stdout closed early: {output}");
        output.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits after stdin closes")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    output.push_str(&rest);

    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 3, "one line per answer: {output}");
    for line in lines {
        let message: Value = serde_json::from_str(line).expect("every stdout line is JSON");
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("tool call"), "logs go to stderr: {stderr}");
}

/// A truncated request over stdio gets -32700 with a null id (so its sender is not left
/// waiting for ever), and the next line is served as usual.
#[tokio::test]
async fn stdio_answers_a_line_that_is_not_json_with_a_parse_error_and_goes_on() {
    init();
    let upstream = Upstream::start().await;
    let mut stdio = raw_mcp::RawStdio::spawn(&Launch::against(&upstream.url));
    stdio.send(raw_mcp::INITIALIZE).await;
    assert!(stdio.next_reply().await["result"]["serverInfo"].is_object());
    stdio.send(raw_mcp::INITIALIZED).await;
    stdio
        .send(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_or_"#)
        .await;
    let reply = stdio.next_reply().await;
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert!(reply["id"].is_null(), "{reply}");
    assert!(reply.get("result").is_none(), "{reply}");
    stdio
        .send(r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#)
        .await;
    let reply = stdio.next_reply().await;
    assert_eq!(reply["id"], 6, "{reply}");
    assert!(reply["result"].is_object(), "{reply}");
    let (code, _) = stdio.finish().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn streamable_http_serves_legacy_sessions() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    let client = server.legacy_client().await;
    assert_identity(&client);
    exercise(&client, &upstream).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn streamable_http_serves_stateless_2026_07_28_requests() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    let client = server.modern_client().await;
    exercise(&client, &upstream).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn old_sse_endpoints_serve_the_2024_11_05_transport() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    let client = server.sse_client().await;
    assert_identity(&client);
    exercise(&client, &upstream).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn posting_to_an_unknown_sse_session_is_404() {
    init();
    let server = HttpServer::start(&Launch::default()).await;
    let response = reqwest::Client::new()
        .post(format!("{}/message?sessionId=nope", server.base))
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

async fn stops_on(signal: &str) {
    init();
    let mut server = HttpServer::start(&Launch::default()).await;
    // A long-lived old-SSE stream must not hold the shutdown up.
    let _stream = reqwest::Client::new()
        .get(server.sse_url())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let pid = server.child.id().unwrap();
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("stopped within 5 s")
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on {signal}");
    server.logs.wait_for("shutting down").await;
}

#[tokio::test]
async fn sigterm_stops_gracefully() {
    stops_on("TERM").await;
}

#[tokio::test]
async fn sigint_stops_gracefully() {
    stops_on("INT").await;
}

#[tokio::test]
async fn methods_removed_in_2026_07_28_are_not_found_there() {
    init();
    let server = HttpServer::start(&Launch::default()).await;
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    for method in ["initialize", "ping"] {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": {"_meta": meta}});
        let response = reqwest::Client::new()
            .post(server.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
        assert_eq!(answer["id"], 7);
    }
}

//! No secret in any log line at any level: every path of a token call, at RUST_LOG=trace
//! (which also turns on hyper's, reqwest's, axum's and rmcp's own logs), over stdio and
//! HTTP, with canary values that are searched for in the captured stderr.

use std::time::Duration;

use crate::common::*;
use serde_json::json;

const CANARIES: [&str; 6] = [
    "cs-canary-5e1d",     // client secret passed by the caller
    "held-secret-canary", // client secret held by the server
    "code-canary-3c2b",   // authorization code
    "rt-in-canary-a1f0",  // refresh token sent
    "at-canary-7f3a",     // access token received (in TOKEN_BODY)
    "rt-canary-91bc",     // refresh token received (in TOKEN_BODY)
];

/// Drive a token call down every path the server has.
async fn every_path(client: &Client, upstream: &Upstream) {
    let calls = [
        (Reply::token(), authorization_code("code-canary-3c2b")),
        (Reply::token(), refresh("rt-in-canary-a1f0")),
        (
            Reply::new(400, r#"{"error":"invalid_grant"}"#),
            refresh("rt-in-canary-a1f0"),
        ),
        (
            Reply::new(401, r#"{"error":"invalid_client"}"#),
            client_credentials(),
        ),
        (
            Reply::new(429, "{}").header("retry-after", "3"),
            client_credentials(),
        ),
        (
            Reply::new(500, "oops"),
            authorization_code("code-canary-3c2b"),
        ),
        (
            Reply::new(302, "").header("location", "http://127.0.0.1:1/x"),
            client_credentials(),
        ),
        (Reply::new(200, "not json"), refresh("rt-in-canary-a1f0")),
        (
            Reply::token().delayed(Duration::from_secs(3)),
            refresh("rt-in-canary-a1f0"),
        ),
    ];
    for (reply, arguments) in calls {
        upstream.push(reply);
        call_token(client, arguments).await;
    }
    // Refused before sending, and held credentials filled in.
    call_token(
        client,
        json!({"grant_type": "refresh_token", "client_secret": "cs-canary-5e1d"}),
    )
    .await;
    call_token(client, json!({"grant_type": "client_credentials"})).await;
}

fn assert_clean(logs: &str) {
    assert!(logs.contains("tool call"), "the capture worked:\n{logs}");
    assert!(logs.contains("TRACE"), "trace level was on");
    for canary in CANARIES {
        assert!(
            !logs.contains(canary),
            "secret {canary} leaked into the logs:\n{logs}"
        );
    }
}

fn launch(upstream: &Upstream) -> Launch {
    Launch::against(&upstream.url)
        .arg("--timeout-secs")
        .arg("1")
        .env("RUST_LOG", "trace")
        .env("PROCORE_CLIENT_ID", "held-id")
        .env("PROCORE_CLIENT_SECRET", "held-secret-canary")
}

#[tokio::test]
async fn no_secret_in_trace_logs_over_stdio() {
    init();
    let upstream = Upstream::start().await;
    let (client, logs) = stdio_client(&launch(&upstream)).await;
    every_path(&client, &upstream).await;
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_clean(&logs.text());
}

#[tokio::test]
async fn no_secret_in_trace_logs_over_http_and_sse() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&launch(&upstream)).await;
    for client in [
        server.legacy_client().await,
        server.modern_client().await,
        server.sse_client().await,
    ] {
        every_path(&client, &upstream).await;
        client.cancel().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_clean(&server.logs.text());
}

#[tokio::test]
async fn one_line_per_tool_call_with_grant_status_and_latency() {
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

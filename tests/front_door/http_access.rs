//! Who may use the HTTP transport: a foreign `Host` or `Origin` is refused (403) at every
//! endpoint, with or without a token, and `--allowed-host` widens the list; with
//! `--auth-token` / `MCP_AUTH_TOKEN`, every endpoint wants `Authorization: Bearer <token>`
//! (401 with `WWW-Authenticate: Bearer` otherwise) and real clients with the token work on
//! every transport; two credentials or two origins are refused; a non-loopback listener
//! without a token is refused at start-up; `--allow-unauthenticated` warns at every start;
//! every answer carries `Cache-Control: no-store`.

use crate::common::{raw_mcp, *};
use reqwest::{Method, StatusCode};

const TOKEN: &str = "bearer-canary-0f9e8d7c6b5a";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

async fn guarded_server(upstream: &Upstream) -> HttpServer {
    init();
    HttpServer::start(&Launch::against(&upstream.url).env("MCP_AUTH_TOKEN", TOKEN)).await
}

/// One request to each endpoint, with the given `Authorization` header (if any).
async fn every_endpoint(
    server: &HttpServer,
    authorization: Option<&str>,
) -> Vec<(String, reqwest::Response)> {
    let http = reqwest::Client::new();
    let requests = [
        (Method::POST, "/mcp", Some(INITIALIZE)),
        (Method::GET, "/mcp", None),
        (Method::DELETE, "/mcp", None),
        (Method::GET, "/sse", None),
        (
            Method::POST,
            "/message?sessionId=abc",
            Some(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        ),
        (Method::GET, "/nowhere", None),
    ];
    let mut responses = Vec::new();
    for (method, path, body) in requests {
        let mut request = http
            .request(method.clone(), format!("{}{path}", server.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        responses.push((format!("{method} {path}"), response));
    }
    responses
}

#[tokio::test]
async fn every_endpoint_wants_the_bearer_token() {
    let upstream = Upstream::start().await;
    let server = guarded_server(&upstream).await;
    let wrong = format!("Bearer {TOKEN}x");
    for (authorization, invalid) in [
        (None, false),
        (Some(wrong.as_str()), true),
        (Some("Basic dXNlcjpwYXNz"), true),
        (Some("Bearer"), true),
    ] {
        for (what, response) in every_endpoint(&server, authorization).await {
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{what} with {authorization:?}"
            );
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert_eq!(challenge.contains("invalid_token"), invalid, "{challenge}");
            assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
            let body = response.text().await.unwrap();
            assert!(!body.contains(TOKEN), "{body}");
        }
    }
    // With the token the same requests reach the endpoints (no 401).
    for (what, response) in every_endpoint(&server, Some(&format!("Bearer {TOKEN}"))).await {
        assert_ne!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
    }
    assert_eq!(upstream.count(), 0);
    assert!(
        !server.logs.text().contains(TOKEN),
        "the token is never logged"
    );
}

#[tokio::test]
async fn clients_with_the_token_use_every_transport() {
    let upstream = Upstream::start().await;
    let server = guarded_server(&upstream).await;
    for client in [
        authed_clients::legacy_client(&server, TOKEN).await,
        authed_clients::modern_client(&server, TOKEN).await,
        authed_clients::sse_client(&server, TOKEN).await,
    ] {
        let result = call_token(&client, client_credentials()).await;
        assert!(!is_error(&result), "{}", text(&result));
        assert_eq!(text(&result), TOKEN_BODY);
        client.cancel().await.unwrap();
    }
    assert_eq!(upstream.count(), 3);
}

/// POST `initialize` to `/mcp` with `headers` (and the token, if given); the status.
async fn post_mcp(
    server: &HttpServer,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(server.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

/// A foreign `Host` or `Origin` (or `Origin: null`) gets 403, not cacheable, at every
/// endpoint and method, whether the server wants a token or not (and when the right token
/// is presented); loopback hosts and origins pass.
#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_on_every_endpoint_with_or_without_a_token() {
    let upstream = Upstream::start().await;
    let open = HttpServer::start(&Launch::against(&upstream.url)).await;
    let guarded = guarded_server(&upstream).await;
    let http = reqwest::Client::new();
    for (server, token) in [(&open, None), (&guarded, Some(TOKEN))] {
        for (name, value) in [
            ("host", "evil.example:80"),
            ("host", "evil.example"),
            ("origin", "http://evil.example"),
            ("origin", "null"),
        ] {
            for (method, path, body) in [
                (Method::POST, "/mcp", INITIALIZE),
                (Method::GET, "/sse", ""),
                (Method::POST, "/sse", "{}"),
                (
                    Method::POST,
                    "/message?sessionId=x",
                    r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
                ),
                (Method::POST, "/message?sessionId=x", "{}"),
            ] {
                let mut request = http
                    .request(method.clone(), format!("{}{path}", server.base))
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header(name, value)
                    .body(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.unwrap();
                let what = format!("{method} {path} with {name}: {value}, token {token:?}");
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
                assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
            }
        }
        // Loopback hosts and origins pass.
        assert_eq!(post_mcp(server, token, &[]).await, StatusCode::OK);
        assert_eq!(
            post_mcp(server, token, &[("origin", "http://localhost:6274")]).await,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn allowed_host_widens_the_list() {
    init();
    let server = HttpServer::start(
        &Launch::default()
            .arg("--allowed-host")
            .arg("mcp.example.com"),
    )
    .await;
    for (header, expected) in [
        (("host", "mcp.example.com"), StatusCode::OK),
        (("origin", "https://mcp.example.com"), StatusCode::OK),
        (("host", "other.example.com"), StatusCode::FORBIDDEN),
        // Loopback stays allowed.
        (("host", "localhost"), StatusCode::OK),
    ] {
        assert_eq!(
            post_mcp(&server, None, &[header]).await,
            expected,
            "{header:?}"
        );
    }
}

#[tokio::test]
async fn token_answers_are_not_cacheable() {
    let upstream = Upstream::start().await;
    let server = guarded_server(&upstream).await;
    let session = raw_mcp::RawSession::open(&server, Some(TOKEN)).await;
    let answer = session
        .post(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_or_refresh_an_access_token","arguments":{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}}}"#)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let reply = answer.message();
    assert_eq!(reply["id"], 9);
    assert_eq!(reply["result"]["content"][0]["text"], TOKEN_BODY);
}

#[tokio::test]
async fn a_public_listener_without_a_token_is_refused_at_start_up() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let output = Launch::default()
            .arg("--transport")
            .arg("http")
            .arg("--listen")
            .arg(listen)
            .command()
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a loopback address"), "{stderr}");
        assert!(stderr.contains("MCP_AUTH_TOKEN"), "{stderr}");
        assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
        assert!(
            !stderr.contains("listening"),
            "nothing was served: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_short_token_is_refused_at_start_up() {
    let output = Launch::default()
        .arg("--transport")
        .arg("http")
        .env("MCP_AUTH_TOKEN", "short-canary")
        .command()
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(!stderr.contains("short-canary"), "{stderr}");
}

#[tokio::test]
async fn allow_unauthenticated_warns_at_every_start() {
    init();
    for launch in [
        Launch::default().arg("--allow-unauthenticated"),
        Launch::default().env("MCP_ALLOW_UNAUTHENTICATED", "1"),
    ] {
        let server = HttpServer::start(&launch).await;
        let line = server.logs.wait_for("WITHOUT AUTHENTICATION").await;
        assert!(line.contains("WARN"), "{line}");
    }
    // Without the flag there is no such warning.
    let server = HttpServer::start(&Launch::default()).await;
    server.logs.wait_for("listening").await;
    assert!(!server.logs.text().contains("WITHOUT AUTHENTICATION"));
}

#[tokio::test]
async fn the_token_is_not_shown_in_help() {
    let output = Launch::default()
        .env("MCP_AUTH_TOKEN", TOKEN)
        .arg("--help")
        .command()
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--auth-token"), "{help}");
    assert!(help.contains("MCP_AUTH_TOKEN"), "{help}");
    assert!(!help.contains(TOKEN), "{help}");
}

#[tokio::test]
async fn two_credentials_or_two_hosts_are_refused() {
    let upstream = Upstream::start().await;
    let server = guarded_server(&upstream).await;
    let http = reqwest::Client::new();
    let right = format!("Bearer {TOKEN}");
    for pair in [
        [right.as_str(), "Bearer wrong-but-long-enough"],
        ["Bearer wrong-but-long-enough", right.as_str()],
    ] {
        let response = http
            .get(server.sse_url())
            .header("authorization", pair[0])
            .header("authorization", pair[1])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{pair:?}");
    }
    let response = http
        .get(server.sse_url())
        .header("authorization", &right)
        .header("origin", "http://localhost")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

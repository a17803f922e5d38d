//! Upstream faults that must leave the server serving: each one, against a purpose-built
//! loopback login host, gives a clear `isError` naming what happened, is sent once and never
//! retried, the next call on the same server works, and a huge body neither gets buffered
//! nor grows the server's memory. Refused connections, DNS failures, hangs and trickles
//! (the timeout covers the whole exchange), resets, 5xx and 429 with `Retry-After`,
//! redirects (never followed), bodies that are not UTF-8, not JSON or break the output
//! schema, and login hosts that echo the request (none of its secrets comes back). The
//! server runs as the real binary over streamable HTTP with a 1 s upstream timeout.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{
    faulty_upstream::{Fault, FaultyUpstream, response},
    *,
};

async fn server_for(upstream_url: &str) -> HttpServer {
    init();
    HttpServer::start(&Launch::against(upstream_url).arg("--timeout-secs").arg("1")).await
}

/// A server that met one fault: what it answered, and the upstream and client to go on with.
struct Faulted {
    upstream: FaultyUpstream,
    // Kept so the server lives as long as its client.
    _server: HttpServer,
    client: Client,
    /// The error result's text.
    message: String,
    /// How long the faulty call took.
    took: Duration,
}

/// A fresh server meets `fault` on a call with `grant`: an error naming each of `expected`
/// (in any case), without structured content.
async fn faulted(fault: Fault, grant: serde_json::Value, expected: &[&str]) -> Faulted {
    let upstream = FaultyUpstream::start().await;
    let server = server_for(&upstream.url).await;
    let client = server.legacy_client().await;
    upstream.push(fault);
    let started = Instant::now();
    let result = call_token(&client, grant).await;
    let took = started.elapsed();
    let message = text(&result);
    assert!(is_error(&result), "an error result: {message}");
    assert!(result.structured_content.is_none());
    for part in expected {
        assert!(
            message.to_lowercase().contains(&part.to_lowercase()),
            "{part:?} in {message}"
        );
    }
    Faulted {
        upstream,
        _server: server,
        client,
        message,
        took,
    }
}

impl Faulted {
    /// The next call works, and each call was one request, never retried.
    async fn recovers(self) -> String {
        assert_recovers(&self.client).await;
        assert_eq!(self.upstream.count(), 2, "one request each, never retried");
        self.client.cancel().await.unwrap();
        self.message
    }
}

/// The fault gives an error naming each of `expected`; then a normal call succeeds.
async fn fault_then_recovery(fault: Fault, grant: serde_json::Value, expected: &[&str]) -> String {
    faulted(fault, grant, expected).await.recovers().await
}

async fn assert_recovers(client: &Client) {
    let result = call_token(client, client_credentials()).await;
    assert!(!is_error(&result), "the next call works: {}", text(&result));
    assert_eq!(text(&result), TOKEN_BODY);
}

#[tokio::test]
async fn connection_refused() {
    let mut upstream = FaultyUpstream::start().await;
    let server = server_for(&upstream.url).await;
    let client = server.legacy_client().await;
    upstream.stop_listening();
    let result = call_token(&client, refresh("rt-refused")).await;
    let message = text(&result);
    assert!(is_error(&result));
    assert!(
        message.contains(&format!("could not connect to {}", upstream.url)),
        "{message}"
    );
    assert!(message.contains("Nothing reached Procore"), "{message}");
    upstream.listen_again().await;
    assert_recovers(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn dns_failure_of_the_configured_host_fails_fast_and_the_server_keeps_serving() {
    init();
    // RFC 2606: `.invalid` never resolves.
    let server = HttpServer::start(
        &Launch::default()
            .arg("--login-url")
            .arg("https://login.procore-token-mcp.invalid"),
    )
    .await;
    let client = server.legacy_client().await;
    for _ in 0..2 {
        let started = Instant::now();
        let result = call_token(&client, refresh("rt-dns")).await;
        let message = text(&result);
        assert!(is_error(&result));
        assert!(
            message.contains("could not connect to https://login.procore-token-mcp.invalid"),
            "{message}"
        );
        assert!(message.to_lowercase().contains("dns"), "{message}");
        assert!(message.contains("Nothing reached Procore"), "{message}");
        // Generous: the point is that it does not wait for the 30 s request timeout.
        assert!(started.elapsed() < Duration::from_secs(20), "fails fast");
        // The server still answers everything else.
        let tools = client.list_all_tools().await.unwrap();
        assert!(tools.iter().any(|tool| tool.name == TOOL));
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_hang_times_out_naming_the_host_and_warning_about_the_refresh_token() {
    let faulted = faulted(
        Fault::Hang,
        refresh("rt-hang"),
        &[
            "no complete answer",
            "within 1s",
            "old refresh token may already be consumed",
        ],
    )
    .await;
    let message = &faulted.message;
    assert!(
        message.contains(&faulted.upstream.url),
        "names the host: {message}"
    );
    assert!(
        faulted.took < Duration::from_secs(4),
        "gave up at the timeout, took {:?}",
        faulted.took
    );
    faulted.recovers().await;
}

#[tokio::test]
async fn a_body_trickling_slower_than_the_timeout_is_cut_off() {
    fault_then_recovery(
        Fault::Trickle {
            every: Duration::from_millis(200),
        },
        client_credentials(),
        &["no complete answer", "within 1s", "safe to call again"],
    )
    .await;
}

#[tokio::test]
async fn a_connection_reset_mid_body() {
    fault_then_recovery(
        Fault::ResetMidBody,
        authorization_code("code-reset"),
        &[
            "connection to http://127.0.0.1",
            "failed",
            "code may already be used up",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_5xx_is_reported_once_and_never_retried() {
    fault_then_recovery(
        Fault::Raw(response(
            503,
            &[("retry-after", "7"), ("content-type", "text/html")],
            b"<html>maintenance</html>",
        )),
        client_credentials(),
        &[
            "HTTP 503",
            "<html>maintenance</html>",
            "Retry-After says 7",
            "try again",
        ],
    )
    .await;
    fault_then_recovery(
        Fault::Raw(response(500, &[], b"")),
        refresh("rt-500"),
        &["HTTP 500", "(empty body)"],
    )
    .await;
    let faulted = faulted(
        Fault::Raw(response(
            503,
            &[("content-type", "text/html")],
            b"<html><body>Service Unavailable</body></html>",
        )),
        refresh("rt-5xx"),
        &[
            "HTTP 503",
            "<html><body>Service Unavailable</body></html>",
            "old refresh token may already be consumed",
        ],
    )
    .await;
    // Give a retry every chance to happen before counting (no condition to wait for: the
    // point is that nothing comes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(faulted.upstream.count(), 1, "exactly one request: no retry");
    faulted.recovers().await;
}

#[tokio::test]
async fn a_429_names_retry_after() {
    fault_then_recovery(
        Fault::Raw(response(
            429,
            &[("retry-after", "17")],
            br#"{"error":"rate_limited"}"#,
        )),
        client_credentials(),
        &[
            "HTTP 429",
            r#"{"error":"rate_limited"}"#,
            "Retry-After says 17",
        ],
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_in_a_200() {
    fault_then_recovery(
        Fault::Raw(response(200, &[], b"{\"access_token\":\"\xff\xfe\xfd\"}")),
        client_credentials(),
        &["HTTP 200", "not valid UTF-8"],
    )
    .await;
}

#[tokio::test]
async fn a_non_json_200() {
    fault_then_recovery(
        Fault::Raw(response(
            200,
            &[("content-type", "text/html")],
            b"<html>login</html>",
        )),
        client_credentials(),
        &["HTTP 200 OK", "not a token response", "<html>login</html>"],
    )
    .await;
}

#[tokio::test]
async fn a_redirect_is_reported_naming_its_location_and_not_followed() {
    for status in [302, 307] {
        let elsewhere = FaultyUpstream::start().await;
        let target = format!("{}/oauth/token", elsewhere.url);
        fault_then_recovery(
            Fault::Raw(response(status, &[("location", &target)], b"")),
            client_credentials(),
            &[
                &format!("HTTP {status}"),
                &target,
                "Redirects are not followed",
            ],
        )
        .await;
        assert_eq!(elsewhere.count(), 0, "the secret never went to the target");
    }
}

/// Resident and peak memory of a process, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_huge_body_is_cut_off_without_buffering_it() {
    const SIZE: usize = 256 * 1024 * 1024;
    for declared in [false, true] {
        let upstream = FaultyUpstream::start().await;
        let server = server_for(&upstream.url).await;
        let pid = server.child.id().unwrap();
        let client = server.legacy_client().await;
        upstream.push(Fault::Huge {
            size: SIZE,
            declared,
        });
        let result = call_token(&client, client_credentials()).await;
        let message = text(&result);
        assert!(is_error(&result), "{message}");
        assert!(message.contains("over the 1048576-byte limit"), "{message}");
        let outcome = upstream.huge().await;
        assert!(
            outcome.cut_off && outcome.written < SIZE / 4,
            "the server stopped reading (declared={declared}): {outcome:?}"
        );
        let (rss, peak) = memory_kib(pid);
        // The body is 256 MiB; a server that buffered it would peak far above this.
        assert!(
            peak < 64 * 1024,
            "peak resident memory {peak} KiB (now {rss} KiB)"
        );
        assert_recovers(&client).await;
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn the_upstream_limit_is_configurable() {
    init();
    let upstream = FaultyUpstream::start().await;
    let server = HttpServer::start(
        &Launch::against(&upstream.url)
            .arg("--max-response-bytes")
            .arg("2048"),
    )
    .await;
    let client = server.legacy_client().await;
    upstream.push(Fault::Raw(response(400, &[], &[b' '; 2049])));
    let result = call_token(&client, client_credentials()).await;
    assert!(is_error(&result));
    assert!(
        text(&result).contains("over the 2048-byte limit"),
        "{}",
        text(&result)
    );
    upstream.push(Fault::Raw(response(400, &[], &[b' '; 2048])));
    let result = call_token(&client, client_credentials()).await;
    assert!(
        text(&result).contains("HTTP 400"),
        "at the limit: {}",
        text(&result)
    );
    assert_recovers(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn one_server_survives_every_fault_in_a_row_with_flat_memory() {
    let mut upstream = FaultyUpstream::start().await;
    let server = server_for(&upstream.url).await;
    let pid = server.child.id().unwrap();
    let client = server.legacy_client().await;
    assert_recovers(&client).await;
    let (before, _) = memory_kib(pid);
    let faults = [
        Fault::Hang,
        Fault::Trickle {
            every: Duration::from_millis(200),
        },
        Fault::ResetMidBody,
        Fault::Raw(response(503, &[("retry-after", "1")], b"busy")),
        Fault::Raw(response(429, &[("retry-after", "1")], b"{}")),
        Fault::Raw(response(200, &[], b"\xff\xfe")),
        Fault::Raw(response(200, &[], b"not json")),
        Fault::Raw(response(307, &[("location", "http://127.0.0.1:9/x")], b"")),
        Fault::Huge {
            size: 32 * 1024 * 1024,
            declared: false,
        },
    ];
    for round in 0..2 {
        for fault in faults.clone() {
            upstream.push(fault.clone());
            let result = call_token(&client, client_credentials()).await;
            assert!(is_error(&result), "{fault:?}: {}", text(&result));
            assert_recovers(&client).await;
        }
        upstream.stop_listening();
        let result = call_token(&client, client_credentials()).await;
        assert!(is_error(&result), "refused, round {round}");
        upstream.listen_again().await;
        assert_recovers(&client).await;
    }
    let (after, peak) = memory_kib(pid);
    assert!(
        after < before + 32 * 1024 && peak < 64 * 1024,
        "resident {before} KiB before, {after} KiB after, peak {peak} KiB"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_200_that_breaks_the_output_schema_is_an_error_quoting_the_body_whole() {
    // Each body is a 200 the official Python SDK would reject as "Invalid structured
    // content"; the rule named is the first one the body breaks.
    for (body, rule) in [
        (r#"{"access_token":12345}"#, "at /access_token"),
        (
            r#"{"access_token":"at-x","refresh_token":"rt-successor-77"}"#,
            "\"token_type\" is a required property",
        ),
        (
            r#"{"access_token":"at-x","token_type":"bearer","expires_in":"5400"}"#,
            "at /expires_in",
        ),
        (r#"["access_token","token_type"]"#, "not of type \"object\""),
    ] {
        fault_then_recovery(
            Fault::Raw(response(200, &[], body.as_bytes())),
            refresh("rt-schema-check"),
            &["HTTP 200", "not a token response", rule, body, "keep it"],
        )
        .await;
    }
}

#[tokio::test]
async fn a_token_info_200_that_breaks_the_output_schema_is_an_error() {
    let upstream = FaultyUpstream::start().await;
    let server = server_for(&upstream.url).await;
    let client = server.legacy_client().await;
    let body = r#"{"resource_owner_id":42,"scopes":"all","expires_in_seconds":7200}"#;
    upstream.push(Fault::Raw(response(200, &[], body.as_bytes())));
    let result = call_named(
        &client,
        "get_token_info",
        json!({"access_token": "at-info-1234"}),
    )
    .await;
    let message = text(&result);
    assert!(is_error(&result), "{message}");
    assert!(result.structured_content.is_none());
    assert!(message.contains("at /scopes"), "{message}");
    assert!(message.contains(body), "the body whole: {message}");
    client.cancel().await.unwrap();
}

async fn call_named(
    client: &Client,
    name: &'static str,
    arguments: serde_json::Value,
) -> rmcp::model::CallToolResult {
    client
        .call_tool(rmcp::model::CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .expect("tools/call answered")
}

/// Every secret `arguments` carry, as the test sent them.
fn assert_scrubbed(message: &str, secrets: &[&str]) {
    assert!(message.contains("[redacted]"), "{message}");
    for secret in secrets {
        assert!(!message.contains(secret), "{secret} leaked: {message}");
    }
}

#[tokio::test]
async fn an_upstream_echoing_the_request_gets_none_of_its_secrets_into_the_result() {
    // The token request: an error status, and a 200 that is not a token response.
    for status in [400, 500, 200] {
        let message = fault_then_recovery(
            Fault::Echo(status),
            refresh("rt-echoed-4411"),
            &[
                &format!("HTTP {status}"),
                "\"grant_type\":\"refresh_token\"",
                "cid-canary",
            ],
        )
        .await;
        assert_scrubbed(&message, &["cs-canary-5e1d", "rt-echoed-4411"]);
    }
    let message = fault_then_recovery(
        Fault::Echo(400),
        authorization_code("code-echoed-8812"),
        &["HTTP 400", "urn:ietf:wg:oauth:2.0:oob"],
    )
    .await;
    assert_scrubbed(&message, &["cs-canary-5e1d", "code-echoed-8812"]);
    // Quoted inside a JSON string, the secret reads escaped.
    let secret = r#"cs-"quoted"-secret-5e1d"#;
    let echoed = json!({"error": "invalid_client", "received": {"client_secret": secret}});
    let message = fault_then_recovery(
        Fault::Raw(response(400, &[], echoed.to_string().as_bytes())),
        json!({"grant_type": "client_credentials", "client_id": "cid-canary", "client_secret": secret}),
        &["HTTP 400", "invalid_client:"],
    )
    .await;
    assert_scrubbed(&message, &[secret, r#"cs-\"quoted\"-secret-5e1d"#]);

    // token info sends the access token in a header; revoke sends token and secret.
    let upstream = FaultyUpstream::start().await;
    let server = server_for(&upstream.url).await;
    let client = server.legacy_client().await;
    upstream.push(Fault::Echo(401));
    let result = call_named(
        &client,
        "get_token_info",
        json!({"access_token": "at-echoed-5150"}),
    )
    .await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("Bearer [redacted]"), "{message}");
    assert_scrubbed(&message, &["at-echoed-5150"]);
    let revoke = json!({"token": "rt-revoked-6161", "client_id": "cid-canary", "client_secret": "cs-canary-5e1d"});
    upstream.push(Fault::Echo(400));
    let result = call_named(&client, "revoke_token", revoke.clone()).await;
    assert!(is_error(&result));
    assert_scrubbed(&text(&result), &["rt-revoked-6161", "cs-canary-5e1d"]);
    upstream.push(Fault::Echo(200));
    let result = call_named(&client, "revoke_token", revoke).await;
    assert!(!is_error(&result), "{}", text(&result));
    let shown = result.structured_content.as_ref().unwrap()["response"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown.contains("POST /oauth/revoke"), "{shown}");
    assert_scrubbed(&shown, &["rt-revoked-6161", "cs-canary-5e1d"]);
    assert_scrubbed(&text(&result), &["rt-revoked-6161", "cs-canary-5e1d"]);
    assert_eq!(upstream.count(), 3, "one request each, never retried");
    client.cancel().await.unwrap();
}

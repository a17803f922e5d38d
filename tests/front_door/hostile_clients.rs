//! Hostile and broken clients, through the real binary: malformed JSON-RPC, valid JSON of
//! the wrong shape, unknown methods, an unknown tool, arguments of the wrong types, 10,000
//! fields, deeply nested JSON, a client that disconnects mid-call and 500 concurrent SSE
//! connections. Each gets the proper JSON-RPC error or HTTP status, and the server keeps
//! answering everyone else.

use std::time::Duration;

use crate::common::{
    raw_mcp::{self, Answer, RawSession, RawSseSession, RawStdio},
    *,
};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn call(id: i64, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": TOOL, "arguments": arguments}})
    .to_string()
}

/// `depth` nested arrays around a string.
fn nested(depth: usize) -> String {
    format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth))
}

/// Bodies that are not JSON-RPC messages, each with the error code it must get.
fn broken_bodies() -> Vec<(String, i64)> {
    vec![
        ("{".to_owned(), PARSE_ERROR),
        ("not json at all".to_owned(), PARSE_ERROR),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping""#.to_owned(),
            PARSE_ERROR,
        ),
        (
            String::from_utf8_lossy(b"{\"a\":\"\xff\"}").into_owned(),
            INVALID_REQUEST,
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"grant_type":{}}}}}}}"#,
                nested(100_000)
            ),
            PARSE_ERROR,
        ),
        ("[]".to_owned(), INVALID_REQUEST),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_owned(),
            INVALID_REQUEST,
        ),
        ("42".to_owned(), INVALID_REQUEST),
        (r#""ping""#.to_owned(), INVALID_REQUEST),
        (r#"{"foo":1}"#.to_owned(), INVALID_REQUEST),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_owned(),
            INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#.to_owned(),
            INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":42}"#.to_owned(),
            INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#.to_owned(),
            INVALID_PARAMS,
        ),
    ]
}

fn assert_rejected(answer: &Answer, code: i64, body: &str) {
    let shown: String = body.chars().take(80).collect();
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{shown}: {answer:?}"
    );
    let message = answer.message();
    assert_eq!(message["jsonrpc"], "2.0");
    assert_eq!(message["error"]["code"], code, "{shown}: {message}");
    assert!(message["error"]["message"].is_string());
}

/// Messages that are JSON-RPC but ask for what does not exist or send wrong params, each
/// with the id and error code (or tool error text) it must get.
enum Expect {
    Code(i64),
    ToolError(&'static str),
}

fn wrong_requests() -> Vec<(String, i64, Expect)> {
    let mut ten_thousand = Map::new();
    for index in 0..10_000 {
        ten_thousand.insert(format!("field_{index}"), json!(index));
    }
    let ten_thousand = Value::Object(ten_thousand);
    vec![
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"no/such/method"}"#.to_owned(),
            11,
            Expect::Code(METHOD_NOT_FOUND),
        ),
        (
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}"#.to_owned(),
            12,
            Expect::Code(INVALID_PARAMS),
        ),
        (
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"get_or_refresh_an_access_token","arguments":"cs-canary-5e1d"}}"#.to_owned(),
            13,
            Expect::Code(INVALID_PARAMS),
        ),
        (
            r#"{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":7}}"#.to_owned(),
            14,
            Expect::Code(INVALID_PARAMS),
        ),
        (
            call(15, json!({"grant_type": 5, "client_id": "a", "client_secret": "b"})),
            15,
            Expect::ToolError("`grant_type` must be a string, not a number"),
        ),
        (
            call(16, json!({"grant_type": "client_credentials", "client_id": ["a"], "client_secret": "b"})),
            16,
            Expect::ToolError("`client_id` must be a string, not an array"),
        ),
        (
            call(17, json!({"grant_type": "refresh_token", "client_id": "a", "client_secret": "b", "refresh_token": {"t": "rt-canary"}})),
            17,
            Expect::ToolError("`refresh_token` must be a string, not an object"),
        ),
        (call(18, ten_thousand.clone()), 18, Expect::ToolError("unknown argument")),
        (
            json!({"jsonrpc": "2.0", "id": 19, "method": "tools/list", "params": {"_meta": ten_thousand}}).to_string(),
            19,
            Expect::Code(0),
        ),
        (
            call(20, json!({"grant_type": serde_json::from_str::<Value>(&nested(100)).unwrap(), "client_id": "a", "client_secret": "b"})),
            20,
            Expect::ToolError("`grant_type` must be a string, not an array"),
        ),
    ]
}

/// Check one reply against what it must be. `Code(0)` means a plain result.
fn assert_reply(reply: &Value, id: i64, expect: &Expect) {
    assert_eq!(reply["id"], id, "{reply}");
    match expect {
        Expect::Code(0) => assert!(reply["result"].is_object(), "{reply}"),
        Expect::Code(code) => assert_eq!(reply["error"]["code"], *code, "{reply}"),
        Expect::ToolError(text) => {
            assert_eq!(reply["result"]["isError"], true, "{reply}");
            let message = reply["result"]["content"][0]["text"].as_str().unwrap();
            assert!(message.contains(text), "{text:?} in {message}");
        }
    }
    assert!(!reply.to_string().contains("canary"), "no echo: {reply}");
}

#[tokio::test]
async fn streamable_http_answers_every_broken_or_wrong_message_properly() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    let session = RawSession::open(&server, None).await;
    let http = reqwest::Client::new();
    for (body, code) in broken_bodies() {
        // In a session, and without one.
        assert_rejected(&session.post(body.clone()).await, code, &body);
        let answer = raw_mcp::post_mcp(&http, &server.mcp_url(), None, None, body.clone()).await;
        assert_rejected(&answer, code, &body);
    }
    // Raw bytes that are not UTF-8 at all.
    let answer = session.post(b"\xff\xfe{}".to_vec()).await;
    assert_rejected(&answer, PARSE_ERROR, "invalid UTF-8");
    for (body, id, expect) in wrong_requests() {
        let answer = session.post(body).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_reply(&answer.message(), id, &expect);
    }
    assert_eq!(upstream.count(), 0, "nothing broken reached the upstream");
    // The same session still works.
    let answer = session.post(call(99, client_credentials())).await;
    assert_eq!(answer.message()["result"]["content"][0]["text"], TOKEN_BODY);
}

#[tokio::test]
async fn old_sse_answers_every_broken_or_wrong_message_properly() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    let mut session = RawSseSession::open(&server).await.unwrap();
    session.initialize(&server).await;
    for (body, code) in broken_bodies() {
        let answer = raw_mcp::post_message(&server, &session.id, body.clone()).await;
        assert_rejected(&answer, code, &body);
    }
    for (body, id, expect) in wrong_requests() {
        let answer = raw_mcp::post_message(&server, &session.id, body).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        let reply = session.next_message().await.unwrap();
        assert_reply(&reply, id, &expect);
    }
    assert_eq!(upstream.count(), 0);
    let answer = raw_mcp::post_message(&server, &session.id, call(99, client_credentials())).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let reply = session.next_message().await.unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], TOKEN_BODY);
}

#[tokio::test]
async fn stdio_survives_broken_lines_and_answers_wrong_requests() {
    init();
    let upstream = Upstream::start().await;
    let mut stdio = RawStdio::spawn(&Launch::against(&upstream.url));
    stdio.send(raw_mcp::INITIALIZE).await;
    assert!(stdio.next_reply().await["result"]["serverInfo"].is_object());
    stdio.send(raw_mcp::INITIALIZED).await;
    // Every broken line gets the same error as over HTTP: with its id when the line is JSON
    // that names one, else (a line that is not JSON) -32700 with a null id.
    for (body, code) in broken_bodies() {
        stdio.send(&body).await;
        let reply = stdio.next_reply().await;
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
        let sent_id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|value| value.get("id").cloned())
            .filter(|id| id.is_number() || id.is_string())
            .unwrap_or(Value::Null);
        assert_eq!(reply["id"], sent_id, "{body}: {reply}");
    }
    for (body, id, expect) in wrong_requests() {
        stdio.send(&body).await;
        loop {
            let reply = stdio.next_reply().await;
            if reply["id"] == id {
                assert_reply(&reply, id, &expect);
                break;
            }
        }
    }
    stdio.send(&call(99, client_credentials())).await;
    let reply = stdio.next_reply().await;
    assert_eq!(reply["id"], 99);
    assert_eq!(reply["result"]["content"][0]["text"], TOKEN_BODY);
    let (code, _) = stdio.finish().await;
    assert_eq!(code, Some(0), "no crash, clean exit");
}

#[tokio::test]
async fn a_request_id_already_in_flight_is_refused_and_the_first_post_is_answered() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    upstream.push(Reply::token().delayed(Duration::from_millis(1500)));
    let session = std::sync::Arc::new(RawSession::open(&server, None).await);

    let first = tokio::spawn({
        let session = session.clone();
        async move { session.post(call(7, refresh("rt-first"))).await }
    });
    upstream.wait_for_requests(1).await;
    // Same id, same session, while the first is still waiting on the upstream.
    let duplicate = session.post(call(7, refresh("rt-second"))).await;
    assert_eq!(duplicate.status, StatusCode::OK, "{duplicate:?}");
    let reply = duplicate.message();
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["error"]["code"], INVALID_REQUEST, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still in flight"),
        "{reply}"
    );

    let first = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the first POST got its answer")
        .unwrap();
    let reply = first.message();
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["result"]["content"][0]["text"], TOKEN_BODY, "{reply}");
    assert_eq!(upstream.count(), 1, "the duplicate sent nothing");
    assert!(
        !String::from_utf8_lossy(&upstream.requests()[0].body).contains("rt-second"),
        "the duplicate's token was not spent"
    );

    // Once answered, the id is free again: a client may reuse it at once.
    for round in 0..3 {
        let again = session.post(call(7, client_credentials())).await;
        let reply = again.message();
        assert_eq!(
            reply["result"]["content"][0]["text"], TOKEN_BODY,
            "round {round}: {reply}"
        );
    }
    assert_eq!(upstream.count(), 4);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_harms_no_one_else() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(&Launch::against(&upstream.url)).await;
    upstream.push(Reply::token().delayed(Duration::from_millis(1500)));
    upstream.push(Reply::token().delayed(Duration::from_millis(1500)));

    // Streamable HTTP: the POST carrying the call is dropped while the upstream thinks.
    let session = RawSession::open(&server, None).await;
    let call_body = call(5, refresh("rt-dropped-http"));
    let pending = tokio::spawn(async move { session.post(call_body).await });
    // Old SSE: the event stream that would carry the answer is closed mid-call.
    let mut sse = RawSseSession::open(&server).await.unwrap();
    sse.initialize(&server).await;
    let answer = raw_mcp::post_message(&server, &sse.id, call(6, refresh("rt-dropped-sse"))).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    upstream.wait_for_requests(2).await;
    assert_eq!(upstream.count(), 2, "both calls reached the upstream");
    pending.abort();
    drop(sse);

    // Everyone else is served, during and after.
    let client = server.legacy_client().await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result), "{}", text(&result));
    // After: the two held-back answers (and the one just served) have gone out.
    upstream.wait_for_replies(3).await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(upstream.count(), 4, "the dropped calls were not retried");
    let logs = server.logs.text();
    assert!(!logs.contains("panicked"), "{logs}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn five_hundred_concurrent_sse_connections() {
    init();
    let upstream = Upstream::start().await;
    let server = HttpServer::start(
        &Launch::against(&upstream.url)
            .arg("--max-sessions")
            .arg("450"),
    )
    .await;
    let opened = futures::future::join_all((0..500).map(|_| RawSseSession::open(&server))).await;
    let mut sessions = Vec::new();
    let mut refused = 0;
    for outcome in opened {
        match outcome {
            Ok(session) => sessions.push(session),
            Err(answer) => {
                assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(sessions.len(), 450, "exactly the cap was admitted");
    assert_eq!(refused, 50);
    // With 450 streams open, other clients are served.
    let client = server.legacy_client().await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result), "{}", text(&result));
    // And the open sessions work: every 25th one runs the handshake and a ping.
    for session in sessions.iter_mut().step_by(25) {
        session.initialize(&server).await;
        let answer = raw_mcp::post_message(
            &server,
            &session.id,
            r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(session.next_message().await.unwrap()["id"], 3);
    }
    drop(sessions);
    // Once they close, the places come back.
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(session) = RawSseSession::open(&server).await {
            reopened = Some(session);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reopened.expect("a new stream after the others closed");
    client.cancel().await.unwrap();
}

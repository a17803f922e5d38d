//! What goes to the login host and what comes back, through the real binary over stdio:
//! the exact request, the verbatim result, Procore's OAuth refusals as tool errors with
//! their hints, arguments refused before anything is sent, and server-held credentials.
//! Login hosts that misbehave (timeouts, 5xx, redirects, broken bodies) are
//! `upstream_faults`.

use crate::common::*;
use serde_json::{Value, json};

async fn against(upstream: &Upstream) -> (Client, Logs) {
    init();
    stdio_client(&Launch::against(&upstream.url)).await
}

#[tokio::test]
async fn forwards_exactly_the_given_fields_as_json_with_the_right_headers() {
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;

    let given = json!({
        "grant_type": "authorization_code",
        "client_id": "cid-1",
        "client_secret": "cs-1",
        "code": "code-1",
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"
    });
    let result = call_token(&client, given.clone()).await;
    assert!(!is_error(&result), "{}", text(&result));

    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/oauth/token");
    assert_eq!(
        sent.json(),
        given,
        "the body holds exactly the given fields"
    );
    assert_eq!(
        sent.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(sent.header("accept").as_deref(), Some("application/json"));
    let agent = sent.header("user-agent").unwrap();
    assert!(
        agent.starts_with(&format!("procore-token-mcp/{}", env!("CARGO_PKG_VERSION"))),
        "{agent}"
    );
    assert_eq!(
        sent.header("authorization"),
        None,
        "no Authorization header"
    );

    // A refresh sends its own field set: nothing added, nothing dropped.
    let given = refresh("rt-1");
    call_token(&client, given.clone()).await;
    assert_eq!(upstream.requests()[1].json(), given);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn success_returns_the_upstream_body_verbatim_and_structured() {
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result));
    assert_eq!(
        text(&result),
        TOKEN_BODY,
        "byte for byte, spacing and order kept"
    );
    let structured = result
        .structured_content
        .clone()
        .expect("structuredContent");
    assert_eq!(
        structured,
        serde_json::from_str::<Value>(TOKEN_BODY).unwrap()
    );
    assert_eq!(result.content.len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn oauth_errors_are_tool_errors_with_status_body_and_hint() {
    let cases = [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"The provided authorization grant is invalid, expired, revoked."}"#,
            refresh("rt-old"),
            "already used",
        ),
        (
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
            authorization_code("code-old"),
            "codes last 10 minutes",
        ),
        (
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#,
            client_credentials(),
            "belong to this Procore environment",
        ),
        (
            400,
            r#"{"error":"invalid_request","error_description":"missing redirect_uri"}"#,
            client_credentials(),
            "required parameter is missing",
        ),
        (
            400,
            r#"{"error":"unsupported_grant_type","error_description":"nope"}"#,
            client_credentials(),
            "use authorization_code, refresh_token or client_credentials",
        ),
    ];
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;
    for (status, body, arguments, hint) in cases {
        upstream.push(Reply::new(status, body));
        let result = call_token(&client, arguments).await;
        let message = text(&result);
        assert!(is_error(&result), "{message}");
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        assert!(message.contains(body), "body quoted as received: {message}");
        assert!(message.contains(hint), "hint {hint:?} in {message}");
        assert!(result.structured_content.is_none());
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;
    let cases = [
        (
            json!({"grant_type": "authorization_code", "client_id": "a", "client_secret": "b", "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}),
            "needs code",
        ),
        (
            json!({"grant_type": "refresh_token", "client_id": "a", "client_secret": "b"}),
            "needs refresh_token",
        ),
        (
            json!({"grant_type": "implicit", "client_id": "a", "client_secret": "b"}),
            "unknown grant_type",
        ),
        (
            json!({"grant_type": "client_credentials"}),
            "client_id and client_secret are required",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "a"}),
            "client_id and client_secret are required",
        ),
        (
            json!({"grant_type": 3, "client_id": "a", "client_secret": "b"}),
            "must be a string",
        ),
        (
            json!({"grant_type": "client_credentials", "client_id": "a", "client_secret": "b", "scope": "x"}),
            "unknown argument",
        ),
    ];
    for (arguments, expected) in cases {
        let result = call_token(&client, arguments.clone()).await;
        let message = text(&result);
        assert!(is_error(&result), "{arguments}: {message}");
        assert!(message.contains(expected), "{arguments}: {message}");
        assert!(message.contains("nothing was sent"), "{message}");
    }
    assert_eq!(upstream.count(), 0, "no request reached the upstream");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn held_credentials_fill_in_what_the_caller_omits() {
    init();
    let upstream = Upstream::start().await;
    let (client, _logs) = stdio_client(
        &Launch::against(&upstream.url)
            .env("PROCORE_CLIENT_ID", "held-id")
            .env("PROCORE_CLIENT_SECRET", "held-secret-canary"),
    )
    .await;

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        find_tool(&tools, TOOL).input_schema["required"],
        json!(["grant_type"])
    );

    let result = call_token(&client, json!({"grant_type": "client_credentials"})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(
        upstream.requests()[0].json(),
        json!({"grant_type": "client_credentials", "client_id": "held-id", "client_secret": "held-secret-canary"})
    );

    // What the caller does give is sent as given.
    call_token(&client, json!({"grant_type": "client_credentials", "client_id": "own-id", "client_secret": "own-secret"})).await;
    assert_eq!(
        upstream.requests()[1].json(),
        json!({"grant_type": "client_credentials", "client_id": "own-id", "client_secret": "own-secret"})
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn without_held_credentials_the_schema_requires_them() {
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        find_tool(&tools, TOOL).input_schema["required"],
        json!(["grant_type", "client_id", "client_secret"])
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let upstream = Upstream::start().await;
    let (client, _logs) = against(&upstream).await;
    let error = client
        .call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unknown tool"), "{error}");
    client.cancel().await.unwrap();
}

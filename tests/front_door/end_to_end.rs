//! End to end: the real binary, driven by rmcp's client over stdio, streamable HTTP (legacy
//! sessions and 2026-07-28 stateless requests) and the old HTTP+SSE endpoints, against the
//! local OAuth emulator: a user authorizes out of band and copies the code off the page, the
//! tool exchanges it, token info confirms the token, the tool refreshes, the old refresh
//! token then fails, and client credentials work. Then the faults as the tool reports them,
//! the `emulator` subcommand (its banner, flags and refusals) and the `demo` subcommand.

use crate::common::{emulator_flow::*, *};
use procore_emulator::{
    DelayFault, DropAfterRefreshFault, EMULATED_USER_ID, EmulatorConfig, Fault, GrantType,
    RunningEmulator, StatusFault,
};
use rmcp::{
    ServiceExt,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

/// The app's credentials as tool arguments, plus `fields`.
fn tool_args(client_id: &str, client_secret: &str, fields: Value) -> Value {
    let mut arguments = json!({"client_id": client_id, "client_secret": client_secret});
    for (name, value) in fields.as_object().unwrap() {
        arguments[name] = value.clone();
    }
    arguments
}

/// A successful tool result's token JSON (text and structured content agree).
fn tokens_of(result: &rmcp::model::CallToolResult) -> Value {
    assert!(!is_error(result), "{}", text(result));
    let body: Value = serde_json::from_str(&text(result)).unwrap();
    assert_eq!(result.structured_content.as_ref(), Some(&body));
    assert_eq!(body["token_type"], "bearer");
    body
}

fn string(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}

/// The whole flow through `client`; `credentials` are what the tool calls carry (`None`
/// when the server holds them). Returns nothing: every step asserts.
async fn full_flow(
    client: &Client,
    login: &str,
    authorize_url: &str,
    client_id: &str,
    credentials: Option<&str>,
) {
    let with_app = |fields: Value| match credentials {
        Some(secret) => tool_args(client_id, secret, fields),
        None => fields,
    };
    let before = stats(login).await;

    // The user opens the authorize URL and copies the code shown on the page.
    let code = authorize_as_user(authorize_url).await;

    // The tool exchanges it; token info over HTTP confirms the token.
    let first = tokens_of(
        &call_token(
            client,
            with_app(
                json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
            ),
        )
        .await,
    );
    let info = token_info(login, &string(&first, "access_token")).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json()["application"]["uid"], client_id);
    assert_eq!(info.json()["resource_owner_id"], EMULATED_USER_ID);
    assert!(info.json()["expires_in_seconds"].as_u64().unwrap() > 0);

    // The code was single-use.
    let again = call_token(
        client,
        with_app(json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB})),
    )
    .await;
    assert!(is_error(&again), "{}", text(&again));
    assert!(text(&again).contains("invalid_grant"), "{}", text(&again));

    // The tool refreshes: a new pair, confirmed by token info.
    let old_refresh = string(&first, "refresh_token");
    let second = tokens_of(
        &call_token(
            client,
            with_app(json!({"grant_type": "refresh_token", "refresh_token": old_refresh})),
        )
        .await,
    );
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        token_info(login, &string(&second, "access_token"))
            .await
            .status,
        200
    );

    // The old refresh token now fails, as a tool error with Procore's answer and a hint.
    let stale = call_token(
        client,
        with_app(json!({"grant_type": "refresh_token", "refresh_token": old_refresh})),
    )
    .await;
    assert!(is_error(&stale));
    let message = text(&stale);
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("already used"), "{message}");

    // Client credentials: an access token, no refresh token.
    let service = tokens_of(
        &call_token(
            client,
            with_app(json!({"grant_type": "client_credentials"})),
        )
        .await,
    );
    assert!(service.get("refresh_token").is_none(), "{service}");
    let info = token_info(login, &string(&service, "access_token")).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["resource_owner_id"], Value::Null);

    // Exactly one upstream request per tool call: nothing was retried.
    let after = stats(login).await;
    let delta = |path: &[&str]| {
        let pick = |value: &Value| {
            path.iter()
                .fold(value.clone(), |v, key| v[*key].clone())
                .as_u64()
                .unwrap()
        };
        pick(&after) - pick(&before)
    };
    assert_eq!(delta(&["token_requests", "authorization_code"]), 2);
    assert_eq!(delta(&["token_requests", "refresh_token"]), 2);
    assert_eq!(delta(&["token_requests", "client_credentials"]), 1);
    assert_eq!(delta(&["successful_refreshes"]), 1);
    assert_eq!(delta(&["failed_refreshes"]), 1);
}

async fn flow_against(client: &Client, emulator: &RunningEmulator) {
    full_flow(
        client,
        emulator.base_url(),
        &emulator.authorize_url(OOB, "e2e"),
        emulator.client_id(),
        Some(emulator.client_secret().expose()),
    )
    .await;
}

#[tokio::test]
async fn the_whole_flow_over_stdio() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, logs) = stdio_client(&Launch::against(emulator.base_url())).await;
    flow_against(&client, &emulator).await;
    client.cancel().await.unwrap();
    assert!(!logs.text().contains(emulator.client_secret().expose()));
}

#[tokio::test]
async fn the_whole_flow_over_streamable_http_legacy_and_stateless() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let server = HttpServer::start(&Launch::against(emulator.base_url())).await;
    let legacy = server.legacy_client().await;
    flow_against(&legacy, &emulator).await;
    legacy.cancel().await.unwrap();
    let modern = server.modern_client().await;
    flow_against(&modern, &emulator).await;
    modern.cancel().await.unwrap();
}

#[tokio::test]
async fn the_whole_flow_over_the_old_sse_endpoints() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let server = HttpServer::start(&Launch::against(emulator.base_url())).await;
    let client = server.sse_client().await;
    flow_against(&client, &emulator).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_whole_flow_with_credentials_held_by_the_server() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = Launch::against(emulator.base_url())
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose());
    let (client, _logs) = stdio_client(&launch).await;
    full_flow(
        &client,
        emulator.base_url(),
        &emulator.authorize_url(OOB, "held"),
        emulator.client_id(),
        None,
    )
    .await;
    client.cancel().await.unwrap();
}

/// A first token pair obtained through the tool: (access_token, refresh_token).
async fn first_pair(client: &Client, emulator: &RunningEmulator) -> (String, String) {
    let code = authorize_as_user(&emulator.authorize_url(OOB, "pair")).await;
    let tokens = tokens_of(
        &call_token(
            client,
            tool_args(
                emulator.client_id(),
                emulator.client_secret().expose(),
                json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
            ),
        )
        .await,
    );
    (
        string(&tokens, "access_token"),
        string(&tokens, "refresh_token"),
    )
}

async fn refresh_with(
    client: &Client,
    emulator: &RunningEmulator,
    refresh_token: &str,
) -> rmcp::model::CallToolResult {
    call_token(
        client,
        tool_args(
            emulator.client_id(),
            emulator.client_secret().expose(),
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        ),
    )
    .await
}

/// After the lost-response fault: the tool said the token may be consumed; a second refresh
/// with the same token gets invalid_grant, reported as a tool error with the explanation.
fn assert_lost_then_refused(
    lost: &rmcp::model::CallToolResult,
    retry: &rmcp::model::CallToolResult,
) {
    assert!(is_error(lost), "{}", text(lost));
    let message = text(lost);
    assert!(
        message.contains("refresh_token token request failed"),
        "{message}"
    );
    assert!(
        message.contains("the old refresh token may already be consumed"),
        "{message}"
    );
    assert!(!message.contains("safe to call again"), "{message}");

    assert!(is_error(retry), "{}", text(retry));
    let message = text(retry);
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(message.contains("\"error\":\"invalid_grant\""), "{message}");
    assert!(
        message.contains("a refresh consumes it even when its answer is lost"),
        "{message}"
    );
    assert!(message.contains("authorize the app again"), "{message}");
}

#[tokio::test]
async fn a_lost_refresh_response_is_reported_and_the_old_token_then_fails() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, logs) = stdio_client(&Launch::against(emulator.base_url())).await;
    let (_, refresh_token) = first_pair(&client, &emulator).await;

    emulator
        .arm(Fault::DropAfterRefresh(DropAfterRefreshFault {
            times: Some(1),
        }))
        .unwrap();
    let lost = refresh_with(&client, &emulator, &refresh_token).await;
    let stats = emulator.stats();
    assert_eq!(
        stats.token_requests.refresh_token, 1,
        "sent once, never retried"
    );
    assert_eq!(
        stats.successful_refreshes, 1,
        "the emulator did rotate the pair"
    );
    assert_eq!(stats.faults_applied.drop_after_refresh, 1);

    let retry = refresh_with(&client, &emulator, &refresh_token).await;
    assert_lost_then_refused(&lost, &retry);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 2);
    assert_eq!(emulator.stats().failed_refreshes, 1);
    client.cancel().await.unwrap();
    assert!(!logs.text().contains(&refresh_token));
}

#[tokio::test]
async fn the_lost_response_fault_armed_through_the_control_endpoint_of_the_emulator_binary() {
    let mut emulator = EmulatorProcess::start(&[]).await;
    let server = HttpServer::start(&Launch::against(&emulator.base)).await;
    let client = server.legacy_client().await;
    let args = |fields: Value| tool_args(&emulator.client_id, &emulator.client_secret, fields);

    let code = authorize_as_user(&emulator.authorize_url).await;
    let first = tokens_of(
        &call_token(
            &client,
            args(json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB})),
        )
        .await,
    );
    let refresh_token = string(&first, "refresh_token");

    let armed = set_faults(&emulator.base, &json!({"drop_after_refresh": {"times": 1}})).await;
    assert_eq!(armed.status, 200, "{}", armed.text);
    let refresh_args = args(json!({"grant_type": "refresh_token", "refresh_token": refresh_token}));
    let lost = call_token(&client, refresh_args.clone()).await;
    let counted = stats(&emulator.base).await;
    assert_eq!(counted["token_requests"]["refresh_token"], 1);
    assert_eq!(counted["successful_refreshes"], 1);
    assert_eq!(counted["faults_applied"]["drop_after_refresh"], 1);
    let retry = call_token(&client, refresh_args).await;
    assert_lost_then_refused(&lost, &retry);
    assert_eq!(
        stats(&emulator.base).await["token_requests"]["refresh_token"],
        2
    );

    client.cancel().await.unwrap();
    assert!(terminate(&mut emulator.child).await.success());
}

#[tokio::test]
async fn status_and_delay_faults_reach_the_caller_as_tool_errors() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = Launch::against(emulator.base_url())
        .arg("--timeout-secs")
        .arg("1");
    let (client, _logs) = stdio_client(&launch).await;
    let (_, refresh_token) = first_pair(&client, &emulator).await;

    // 503 with Retry-After: reported with the wait; the refresh token was not consumed.
    emulator
        .arm(Fault::Status(StatusFault {
            code: 503,
            retry_after_secs: Some(7),
            times: Some(1),
            grant_type: None,
        }))
        .unwrap();
    let unavailable = refresh_with(&client, &emulator, &refresh_token).await;
    assert!(is_error(&unavailable));
    assert!(
        text(&unavailable).contains("HTTP 503"),
        "{}",
        text(&unavailable)
    );
    assert!(
        text(&unavailable).contains("Retry-After says 7"),
        "{}",
        text(&unavailable)
    );
    let renewed = tokens_of(&refresh_with(&client, &emulator, &refresh_token).await);
    let refresh_token = string(&renewed, "refresh_token");

    // 429: rate limiting, with the wait.
    emulator
        .arm(Fault::Status(StatusFault {
            code: 429,
            retry_after_secs: Some(30),
            times: Some(1),
            grant_type: None,
        }))
        .unwrap();
    let limited = refresh_with(&client, &emulator, &refresh_token).await;
    assert!(is_error(&limited));
    assert!(
        text(&limited).contains("rate limiting"),
        "{}",
        text(&limited)
    );
    assert!(
        text(&limited).contains("Retry-After says 30"),
        "{}",
        text(&limited)
    );

    // A delay beyond the server's 1 s timeout: the request was processed, the answer is
    // lost to the timeout, and the tool says the token may be consumed (it is).
    emulator
        .arm(Fault::Delay(DelayFault {
            ms: 4_000,
            times: Some(1),
            grant_type: Some(GrantType::RefreshToken),
        }))
        .unwrap();
    let slow = refresh_with(&client, &emulator, &refresh_token).await;
    assert!(is_error(&slow));
    assert!(
        text(&slow).contains("no complete answer"),
        "{}",
        text(&slow)
    );
    assert!(
        text(&slow).contains("may already be consumed"),
        "{}",
        text(&slow)
    );
    let retry = refresh_with(&client, &emulator, &refresh_token).await;
    assert!(text(&retry).contains("invalid_grant"), "{}", text(&retry));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_emulator_subcommand_prints_a_parseable_banner_and_logs_no_secret() {
    let mut process = EmulatorProcess::start(&[]).await;
    let base = process.base.clone();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "the real port is printed: {base}");
    assert!(process.client_id.starts_with("demo-"));
    assert_eq!(
        process.client_secret.len(),
        64,
        "a generated secret is shown"
    );

    // The printed credentials and authorize URL work for the whole flow.
    let code = authorize_as_user(&process.authorize_url).await;
    let creds = json!({"client_id": process.client_id, "client_secret": process.client_secret});
    let mut body = creds.clone();
    body["grant_type"] = "authorization_code".into();
    body["code"] = code.clone().into();
    body["redirect_uri"] = OOB.into();
    let first = post_token(&base, &body).await;
    assert_token_response(&first, true, 5400);
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    let refresh_token = first.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(token_info(&base, &access).await.status, 200);
    let mut body = creds.clone();
    body["grant_type"] = "refresh_token".into();
    body["refresh_token"] = refresh_token.clone().into();
    let second = post_token(&base, &body).await;
    assert_token_response(&second, true, 5400);
    let new_refresh = second.json()["refresh_token"].as_str().unwrap().to_owned();
    let mut body = creds.clone();
    body["token"] = new_refresh.clone().into();
    assert_eq!(revoke(&base, &body).await.status, 200);
    let counted = stats(&base).await;
    assert_eq!(counted["token_requests"]["total"], 2);
    assert_eq!(counted["successful_refreshes"], 1);

    // One log line per request, none with a secret.
    process.logs.wait_for("route=\"/oauth/revoke\"").await;
    let logs = process.logs.text();
    for route in [
        "route=\"/oauth/authorize\"",
        "route=\"/oauth/authorize/{code}\"",
        "route=\"/oauth/token\"",
        "route=\"/oauth/token/info\"",
    ] {
        assert!(logs.contains(route), "{route} in:\n{logs}");
    }
    for secret in [
        &code,
        &access,
        &refresh_token,
        &new_refresh,
        &process.client_secret,
    ] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs:\n{logs}"
        );
    }
    assert!(terminate(&mut process.child).await.success());
}

#[tokio::test]
async fn the_emulator_subcommand_takes_its_app_ttls_and_faults_from_flags() {
    let mut process = EmulatorProcess::start(&[
        "--client-id",
        "my-app",
        "--client-secret",
        "given-secret-canary",
        "--redirect-uri",
        "https://app.example/cb",
        "--access-ttl-secs",
        "120",
        "--fault-status",
        "503",
        "--fault-retry-after-secs",
        "4",
        "--fault-times",
        "1",
    ])
    .await;
    assert_eq!(process.client_id, "my-app");
    assert_eq!(
        process.client_secret, "(given)",
        "a given secret is not printed"
    );
    assert!(!process.stdout.text().contains("given-secret-canary"));
    let body = json!({"grant_type": "client_credentials", "client_id": "my-app",
                      "client_secret": "given-secret-canary"});
    let faulted = post_token(&process.base, &body).await;
    assert_eq!(faulted.status, 503);
    assert_eq!(faulted.header("retry-after"), Some("4"));
    let answer = post_token(&process.base, &body).await;
    assert_token_response(&answer, false, 120);

    // The registered redirect URI gets the code by redirect.
    let redirect = Answer::from(
        http()
            .get(format!(
                "{}/oauth/authorize?response_type=code&client_id=my-app&redirect_uri={}&state=s",
                process.base, "https%3A%2F%2Fapp.example%2Fcb"
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(redirect.status, 302);
    assert!(
        redirect
            .header("location")
            .unwrap()
            .starts_with("https://app.example/cb?code=")
    );
    assert!(!process.logs.text().contains("given-secret-canary"));
    assert!(terminate(&mut process.child).await.success());
}

#[tokio::test]
async fn the_emulator_subcommand_refuses_bad_flags() {
    for (args, expected) in [
        (vec!["--redirect-uri", "not a url"], "redirect URI"),
        (vec!["--fault-status", "450"], "not 429 or 500-599"),
        (vec!["--client-id", " "], "client id"),
    ] {
        let mut argv = vec!["emulator", "--listen", "127.0.0.1:0"];
        argv.extend(args);
        let output = tokio::process::Command::new(BIN)
            .args(&argv)
            .env_remove("EMULATOR_CLIENT_ID")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{argv:?}: {stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test]
async fn a_busy_port_is_reported_once_by_the_emulator_and_with_a_way_out_by_the_demo() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for (argv, expected) in [
        (
            vec!["emulator", "--listen", address.as_str()],
            format!("cannot listen on {address}"),
        ),
        (
            vec!["demo", "--listen", address.as_str()],
            "pick another port with --listen 127.0.0.1:PORT".to_owned(),
        ),
    ] {
        let output = tokio::process::Command::new(BIN)
            .args(&argv)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{argv:?}: {stderr}");
        assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
        let os_error = "Address already in use";
        assert!(
            stderr.matches(os_error).count() <= 1,
            "the OS error once: {stderr}"
        );
    }
}

async fn http_client(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    ().serve(transport)
        .await
        .expect("initialize over streamable HTTP")
}

#[tokio::test]
async fn demo_prints_what_a_newcomer_needs_and_serves_the_whole_flow() {
    init();
    let mut demo = DemoProcess::start().await;
    let printed = demo.stdout.text();

    assert!(demo.mcp_url.starts_with("http://127.0.0.1:"), "{printed}");
    assert!(demo.mcp_url.ends_with("/mcp"), "{printed}");
    assert!(demo.sse_url.ends_with("/sse"), "{printed}");
    assert!(
        demo.emulator_url.starts_with("http://127.0.0.1:"),
        "{printed}"
    );
    assert!(demo.client_id.starts_with("demo-"), "{printed}");
    assert_eq!(demo.client_secret.len(), 64, "{printed}");
    assert!(printed.contains("local OAuth emulator"), "{printed}");
    assert!(
        printed.contains(&format!(
            "claude mcp add --transport http procore-token-demo {}",
            demo.mcp_url
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "npx -y @modelcontextprotocol/inspector --cli {} --transport http --method tools/list",
            demo.mcp_url
        )),
        "{printed}"
    );
    assert!(printed.contains("--method tools/call --tool-name get_or_refresh_an_access_token"));
    for hint_of_procore in ["procore.com", "login.procore", "sandbox.procore"] {
        assert!(
            !printed.to_lowercase().contains(hint_of_procore),
            "{printed}"
        );
        assert!(!demo.logs.text().to_lowercase().contains(hint_of_procore));
    }

    // The printed authorize URL and MCP URL complete the whole flow; the server holds the
    // demo app's credentials, so the tool calls leave them out.
    let client = http_client(&demo.mcp_url).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|tool| tool.name == TOOL));
    full_flow(
        &client,
        &demo.emulator_url,
        &demo.authorize_url,
        &demo.client_id,
        None,
    )
    .await;
    // ... and the printed secret is the app's: the same flow with explicit credentials.
    full_flow(
        &client,
        &demo.emulator_url,
        &demo.authorize_url,
        &demo.client_id,
        Some(&demo.client_secret),
    )
    .await;
    client.cancel().await.unwrap();

    // The old SSE endpoint is served too.
    let sse = ().serve(sse_client::connect(&demo.sse_url).await).await.unwrap();
    assert!(
        sse.list_all_tools()
            .await
            .unwrap()
            .iter()
            .any(|tool| tool.name == TOOL)
    );
    sse.cancel().await.unwrap();

    // Ctrl-C (SIGTERM here) stops it cleanly.
    assert!(terminate(&mut demo.child).await.success());
    assert!(!demo.logs.text().contains(&demo.client_secret));
}

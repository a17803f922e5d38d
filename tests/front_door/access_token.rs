//! "A working access token": the `get_access_token` tool and the `token` command, through
//! the real binary against the local emulator. A stored token with time left is handed out
//! with no request to the login host; one running short is renewed once however many
//! callers (in however many processes) ask at once; an empty store or an ended sign-in
//! says how to sign in; no refresh token ever comes out, and no token reaches the log.

use std::time::Duration;

use crate::{
    common::{emulator_flow::*, *},
    token_store::{StoreDir, call, delay_refreshes, field, first_pair, launch, stored},
};
use procore_emulator::{EmulatorConfig, GrantType};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

const GET: &str = "get_access_token";

/// The structured result of a successful call, checked for the fields it must (and must
/// not) carry.
fn token_of(result: &CallToolResult) -> Value {
    assert!(!is_error(result), "{}", text(result));
    let value = result
        .structured_content
        .clone()
        .expect("structured content");
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "access_token",
            "api_base_url",
            "expires_at",
            "expires_in",
            "refreshed",
            "token_type"
        ]
    );
    assert_eq!(text(result), value.to_string(), "the text is the same JSON");
    value
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_token_with_time_left_comes_back_with_no_request_at_all() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let first = first_pair(&client, &emulator).await;
    let before = emulator.stats();

    let token = token_of(&call(&client, GET, json!({})).await);
    assert_eq!(
        emulator.stats(),
        before,
        "nothing was sent to the login host"
    );
    assert_eq!(token["access_token"], first["access_token"]);
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["refreshed"], false);
    assert_eq!(token["api_base_url"], emulator.base_url());
    let expires_at = token["expires_at"].as_u64().unwrap();
    assert_eq!(
        expires_at,
        first["created_at"].as_u64().unwrap() + 5400,
        "created_at + expires_in"
    );
    let expires_in = token["expires_in"].as_u64().unwrap();
    assert!(
        expires_in <= 5400 && expires_in + 60 >= 5400,
        "{expires_in}"
    );
    assert!(expires_at.abs_diff(now_secs() + expires_in) <= 1);

    // Asking for longer than the token has left renews it, once.
    let renewed = token_of(&call(&client, GET, json!({"min_valid_secs": 6000})).await);
    assert_eq!(renewed["refreshed"], true);
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    let pair = stored(&dir.file());
    assert_eq!(
        pair["access_token"], renewed["access_token"],
        "stored first"
    );
    assert_ne!(
        field(&pair, "refresh_token"),
        field(&first, "refresh_token")
    );
    // The renewed token is handed out as is from now on.
    let again = token_of(&call(&client, GET, json!({"min_valid_secs": "600"})).await);
    assert_eq!(again["access_token"], renewed["access_token"]);
    assert_eq!(again["refreshed"], false);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    // And it works upstream.
    let info = token_info(emulator.base_url(), &field(&renewed, "access_token")).await;
    assert_eq!(info.status, 200, "{}", info.text);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_callers_in_two_processes_near_expiry_share_one_refresh() {
    // Tokens live 60 s: always less than the default 300 s a caller asks for.
    let emulator =
        start_emulator(EmulatorConfig::generated().with_access_ttl(Duration::from_secs(60))).await;
    let dir = StoreDir::new();
    let traced = launch(&emulator, &dir.file()).env("RUST_LOG", "trace");
    let (one, one_logs) = stdio_client(&traced).await;
    let (two, two_logs) = stdio_client(&traced).await;
    let first = first_pair(&one, &emulator).await;

    delay_refreshes(&emulator, 400);
    let calls = (0..10).map(|n| {
        let client = if n % 2 == 0 { &one } else { &two };
        call(client, GET, json!({}))
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one refresh for ten callers"
    );
    let tokens: Vec<Value> = results.iter().map(token_of).collect();
    for token in &tokens {
        assert_eq!(token["access_token"], tokens[0]["access_token"]);
        assert_eq!(token["refreshed"], true);
        assert!(token["expires_in"].as_u64().unwrap() <= 60);
    }
    assert_ne!(tokens[0]["access_token"], first["access_token"]);
    let pair = stored(&dir.file());
    assert_eq!(pair["access_token"], tokens[0]["access_token"]);

    // No refresh token in any result; no token of either pair in either log.
    let secrets = [
        field(&first, "access_token"),
        field(&first, "refresh_token"),
        field(&pair, "access_token"),
        field(&pair, "refresh_token"),
    ];
    for result in &results {
        let shown = serde_json::to_string(result).unwrap();
        assert!(!shown.contains(&secrets[1]) && !shown.contains(&secrets[3]));
    }
    one.cancel().await.unwrap();
    two.cancel().await.unwrap();
    for logs in [&one_logs, &two_logs] {
        let text = logs.until_closed().await;
        assert!(text.contains("get_access_token"), "the call is logged");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a token in the log:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_or_an_ended_sign_in_says_how_to_sign_in() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;

    let empty = call(&client, GET, json!({})).await;
    assert!(is_error(&empty));
    let message = text(&empty);
    for needed in [
        "sign-in is needed",
        "nothing was sent",
        "procore-token-mcp login",
        "grant_app_authorization",
        "grant_type=authorization_code",
        emulator.client_id(),
    ] {
        assert!(message.contains(needed), "{needed:?} in {message}");
    }
    assert_eq!(emulator.stats().token_requests.refresh_token, 0);

    // The user revokes the app elsewhere: the stored refresh token is refused.
    let first = first_pair(&client, &emulator).await;
    let revoked = revoke(
        emulator.base_url(),
        &json!({"token": field(&first, "refresh_token"), "client_id": emulator.client_id(),
                "client_secret": emulator.client_secret().expose()}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let ended = call(&client, GET, json!({"min_valid_secs": 86400})).await;
    assert!(is_error(&ended));
    let message = text(&ended);
    for needed in [
        "sign-in is needed",
        "invalid_grant",
        "procore-token-mcp login",
    ] {
        assert!(message.contains(needed), "{needed:?} in {message}");
    }
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);

    let refused = call(&client, GET, json!({"min_valid_secs": -5})).await;
    assert!(is_error(&refused));
    assert!(
        text(&refused).contains("min_valid_secs"),
        "{}",
        text(&refused)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_tool_is_listed_only_with_a_store() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let without = Launch::against(emulator.base_url())
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose());
    let (client, _logs) = stdio_client(&without).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().all(|tool| tool.name != GET));
    let unlisted = client
        .call_tool(rmcp::model::CallToolRequestParams::new(GET).with_arguments(args(json!({}))))
        .await;
    assert!(unlisted.is_err(), "an unknown tool without a store");
    client.cancel().await.unwrap();

    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = find_tool(&tools, GET);
    let annotations = tool.annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
    assert!(tool.output_schema.is_some());
    client.cancel().await.unwrap();
}

//! Several server processes on one real Redis (`--token-store redis://…`), against the
//! emulator: the store's promises across processes (one upstream refresh for a storm
//! through both, every caller the same answer; the reuse window and a lost answer
//! recovered on the other process), Redis killed and restarted from its append-only file,
//! the durability settings refused at start-up, and the URL's password kept out of every
//! log line. Legacy streamable-HTTP sessions kept in that Redis: one process serves a
//! session the other opened (and outlived), idle expiry and the cap hold for both, and a
//! user's session stays hers on either. Each test starts its own `redis-server` (Debian package redis-server) and stops
//! it by its PID; without one installed a test says so and passes, except under CI=true.

use std::time::Duration;

use crate::common::{
    emulator_flow::*,
    holding_proxy::HoldingProxy,
    raw_mcp::{INITIALIZE, RawSession, post_mcp},
    redis_server::RedisServer,
    test_issuer::TestIssuer,
    *,
};
use crate::resource_server::PUBLIC_URL;
use crate::token_store::{
    assert_one_rotation_for_all, call, delay_refreshes, field, first_pair, launch_on,
    refresh_and_hang_up, refused_at_start, store_warning, tokens_of,
};
use procore_emulator::{EmulatorConfig, GrantType, RunningEmulator};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

fn replayed(result: &CallToolResult) -> bool {
    result.meta.as_ref().is_some_and(|meta| {
        meta.0
            .contains_key("io.github.procore-token-mcp/replayed-from-store")
    })
}

/// Ten concurrent token calls with `arguments`, every other one through each process.
async fn ten_calls_through_both(
    one: &Client,
    two: &Client,
    arguments: &Value,
) -> Vec<CallToolResult> {
    let calls = (0..10).map(|i| {
        let client = if i % 2 == 0 { one } else { two };
        call(client, TOOL, arguments.clone())
    });
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_refreshes_through_three_replicas_on_one_redis_are_one_upstream_refresh() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = launch_on(&emulator, &redis.url());
    let (one, _a) = stdio_client(&launch).await;
    let (two, _b) = stdio_client(&launch).await;
    let (three, _c) = stdio_client(&launch).await;
    let first = first_pair(&one, &emulator).await;
    assert_eq!(redis.stored(), first, "the first pair is in Redis");
    let old_refresh = field(&first, "refresh_token");

    delay_refreshes(&emulator, 500);
    let arguments = json!({"grant_type": "refresh_token", "refresh_token": old_refresh});
    let replicas = [&one, &two, &three];
    let calls = (0..50).map(|i| call(replicas[i % 3], TOOL, arguments.clone()));
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.len(), 50);
    assert_one_rotation_for_all(&results, &emulator, &first, redis.stored());
    for client in [one, two, three] {
        client.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_of_the_stored_pair_through_two_processes_rotate_it_once() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (one, _a) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let (two, _b) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let first = first_pair(&one, &emulator).await;

    delay_refreshes(&emulator, 500);
    // Without refresh_token: each process refreshes whatever pair Redis holds.
    let arguments = json!({"grant_type": "refresh_token"});
    let results = ten_calls_through_both(&one, &two, &arguments).await;
    assert_one_rotation_for_all(&results, &emulator, &first, redis.stored());
    one.cancel().await.unwrap();
    two.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_on_one_process_is_recovered_on_the_other_and_nothing_is_sent() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let server = HttpServer::start(&launch_on(&emulator, &redis.url())).await;
    let (other, _logs) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let client = server.legacy_client().await;
    let first = first_pair(&client, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    delay_refreshes(&emulator, 600);
    refresh_and_hang_up(&server, &old_refresh).await;
    // The first process finishes the refresh on its own and commits the new pair.
    for _ in 0..150 {
        if field(&redis.stored(), "refresh_token") != old_refresh {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = redis.stored();
    assert_ne!(field(&kept, "refresh_token"), old_refresh, "committed");
    assert_eq!(emulator.successful_refreshes(), 1);

    // The caller retries with the token it still has, on the other process: the stored
    // successor, and nothing sent.
    let retry = call(
        &other,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": old_refresh}),
    )
    .await;
    assert_eq!(tokens_of(&retry), kept);
    assert!(replayed(&retry), "answered from the store");
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "nothing more was sent"
    );
    // And the successor's own refresh token renews, through either process.
    let renewed = call(
        &other,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": field(&kept, "refresh_token")}),
    )
    .await;
    assert_eq!(tokens_of(&renewed), redis.stored());
    assert_eq!(emulator.successful_refreshes(), 2);
    client.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_tool_error_with_nothing_sent_and_a_restart_recovers_the_pair() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, logs) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let first = first_pair(&client, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    redis.kill();
    let down = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": old_refresh}),
    )
    .await;
    assert!(is_error(&down), "{}", text(&down));
    assert!(
        text(&down).contains(&format!("token store {}", redis.url())),
        "names the store: {}",
        text(&down)
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        0,
        "nothing sent without the store"
    );

    // Back from its append-only file: the server reconnects by itself, and the pair the
    // code gave survived the kill (a refresh of "the stored pair" finds it).
    redis.restart();
    assert_eq!(redis.stored(), first, "the pair survived kill -9");
    let mut answer = None;
    let recovering = std::time::Instant::now();
    for _ in 0..100 {
        let result = call(&client, TOOL, json!({"grant_type": "refresh_token"})).await;
        if !is_error(&result) {
            answer = Some(result);
            break;
        }
        assert!(
            text(&result).contains("token store"),
            "only the store fails: {}",
            text(&result)
        );
        assert_eq!(emulator.token_requests(GrantType::RefreshToken), 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.unwrap_or_else(|| panic!("never recovered: {}", logs.text()));
    assert!(
        recovering.elapsed() < Duration::from_secs(10),
        "no lock was left to wait out: the commit cleared it"
    );
    let renewed = tokens_of(&answer);
    assert_ne!(field(&renewed, "refresh_token"), old_refresh);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    assert_eq!(redis.stored(), renewed);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_redis_that_can_lose_pairs_is_refused_unless_durability_is_relaxed() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    for (setting, value) in [
        ("appendonly", "no"),
        ("appendfsync", "everysec"),
        ("maxmemory-policy", "allkeys-lru"),
    ] {
        let flag = format!("--{setting}");
        let Some(redis) = RedisServer::start(&[&flag, value]) else {
            return;
        };
        let launch = launch_on(&emulator, &redis.url());
        refused_at_start(
            &launch,
            &[setting, value, &redis.url(), "--store-durability relaxed"],
        )
        .await;

        let relaxed = launch.clone().arg("--store-durability").arg("relaxed");
        let server = HttpServer::start(&relaxed).await;
        let logs = server.stop().await;
        assert!(
            logs.contains(setting) && logs.contains("started anyway"),
            "warned about {setting}: {logs}"
        );
    }
    // The environment variable does the same.
    let Some(redis) = RedisServer::start(&["--appendonly", "no"]) else {
        return;
    };
    let launch = launch_on(&emulator, &redis.url()).env("PROCORE_STORE_DURABILITY", "relaxed");
    let (client, _logs) = stdio_client(&launch).await;
    first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_redis_password_never_appears_in_a_log_line_or_an_error() {
    const PASSWORD: &str = "redis-canary-pw-7f3a9c1e5b";
    let Some(redis) = RedisServer::start(&["--requirepass", PASSWORD]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", redis.port());
    let launch = launch_on(&emulator, &url).env("RUST_LOG", "trace");
    let (client, logs) = stdio_client(&launch).await;
    first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();
    let logged = logs.until_closed().await;
    assert!(
        logged.contains(&redis.url()),
        "the store is named without its password: {logged}"
    );
    assert!(
        logged.contains("plain text") && logged.contains("set PROCORE_STORE_KEY"),
        "warns of plain text at rest, saying how to encrypt: {logged}"
    );
    assert!(!logged.contains(PASSWORD), "{logged}");

    // A wrong password is refused at start-up, naming the store, not the password.
    let wrong = format!("redis://:wrong-{PASSWORD}@127.0.0.1:{}/0", redis.port());
    let output = launch_on(&emulator, &wrong)
        .command()
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&redis.url()), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_refresh_and_restarted_the_commit_goes_through_and_survives_a_kill() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, logs) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let first = first_pair(&client, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    delay_refreshes(&emulator, 1000);
    let refresh = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": old_refresh}),
    );
    let outage = async {
        wait_until(
            || emulator.token_requests(GrantType::RefreshToken) == 1,
            || "the refresh was sent".into(),
        )
        .await;
        redis.kill();
        // Procore answers meanwhile; the commit waits out the outage.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        redis.restart();
    };
    let (result, ()) = tokio::join!(refresh, outage);
    let renewed = tokens_of(&result);
    assert!(
        store_warning(&result).is_empty(),
        "stored: {}",
        store_warning(&result)
    );
    assert!(
        logs.text().contains("could not be committed yet"),
        "the commit met the outage: {}",
        logs.text()
    );
    assert_ne!(field(&renewed, "refresh_token"), old_refresh);
    assert_eq!(redis.stored(), renewed);
    redis.restart();
    assert_eq!(
        redis.stored(),
        renewed,
        "the pair survives a second kill -9"
    );
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_longer_than_the_commits_patience_returns_the_pair_unstored_with_a_warning() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // A 1 s upstream timeout: the commit keeps trying for the lease, 1 s + 5 s.
    let launch = launch_on(&emulator, &redis.url())
        .arg("--timeout-secs")
        .arg("1");
    let (client, _logs) = stdio_client(&launch).await;
    let first = first_pair(&client, &emulator).await;

    delay_refreshes(&emulator, 500);
    let refresh = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": field(&first, "refresh_token")}),
    );
    let outage = async {
        wait_until(
            || emulator.token_requests(GrantType::RefreshToken) == 1,
            || "the refresh was sent".into(),
        )
        .await;
        redis.kill();
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(refresh, outage);
    let renewed = tokens_of(&result);
    assert_ne!(
        field(&renewed, "refresh_token"),
        field(&first, "refresh_token")
    );
    let warning = store_warning(&result);
    assert!(
        warning.contains("could not be written to the token store")
            && warning.contains(&redis.url()),
        "{warning}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it kept trying first"
    );
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ready_only_while_redis_answers_and_needs_no_token() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // With a bearer token and a non-matching Host: a load balancer's probe carries neither.
    let launch =
        launch_on(&emulator, &redis.url()).env("MCP_AUTH_TOKEN", "a-bearer-token-for-tests-123");
    let server = HttpServer::start(&launch).await;
    let health = format!("{}/healthz", server.base);
    let probe = |host: &'static str| {
        let health = health.clone();
        async move {
            let response = http()
                .get(&health)
                .header("host", host)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(probe("10.1.2.3:8080").await, (200, "ready\n".to_owned()));
    let refused = http().post(server.mcp_url()).send().await.unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the MCP endpoint still wants the token"
    );

    redis.kill();
    let (status, body) = probe("localhost").await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("127.0.0.1"), "names no address: {body}");

    redis.restart();
    let mut status = 0;
    for _ in 0..100 {
        status = probe("localhost").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again by itself");
    let logs = server.stop().await;
    assert!(logs.contains("readiness check: not ready"), "{logs}");
}

#[tokio::test]
async fn rediss_verifies_the_certificate_and_keeps_the_pairs() {
    let Some(redis) = RedisServer::start_tls() else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // A CA the system does not trust: refused at start-up, naming the store.
    refused_at_start(&launch_on(&emulator, &redis.tls_url()), &[&redis.tls_url()]).await;

    let trusted = launch_on(&emulator, &redis.tls_url())
        .env("SSL_CERT_FILE", redis.ca_file().to_str().unwrap());
    let (client, _logs) = stdio_client(&trusted).await;
    let first = first_pair(&client, &emulator).await;
    assert_eq!(redis.stored(), first, "stored over TLS");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_redis_that_does_not_answer_at_start_up_is_refused_naming_it() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    redis.kill();
    refused_at_start(
        &launch_on(&emulator, &redis.url()),
        &[&redis.url(), "cannot be reached"],
    )
    .await;
    // Not a Redis URL with a host: refused before any connection, without echoing it.
    refused_at_start(
        &launch_on(&emulator, "redis://:hunter2-secret@/0"),
        &["redis://…"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_after_procore_rotated_costs_a_refusal_never_a_hang() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // A 2 s upstream timeout: a lease of 2 s + 5 s.
    let launch = launch_on(&emulator, &redis.url())
        .arg("--timeout-secs")
        .arg("2");
    let mut holder = HttpServer::start(&launch).await;
    let (other, _logs) = stdio_client(&launch).await;
    let first = first_pair(&other, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    // The holder's refresh reaches Procore, which rotates the pair and answers late; the
    // holder is killed before the answer arrives.
    delay_refreshes(&emulator, 1500);
    let client = holder.legacy_client().await;
    let arguments = json!({"grant_type": "refresh_token", "refresh_token": old_refresh});
    let in_flight = {
        let arguments = arguments.clone();
        tokio::spawn(async move { call(&client, TOOL, arguments).await })
    };
    wait_until(
        || emulator.token_requests(GrantType::RefreshToken) == 1,
        || "the holder's refresh reached Procore".into(),
    )
    .await;
    holder.child.start_kill().unwrap();
    holder.child.wait().await.unwrap();
    in_flight.abort();

    // The other process waits out the dead holder's lease, then sends: Procore refuses the
    // consumed token, and the caller is told to authorize again.
    let started = std::time::Instant::now();
    let refused = call(&other, TOOL, arguments).await;
    let waited = started.elapsed();
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("invalid_grant"),
        "{}",
        text(&refused)
    );
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(15),
        "waited out the lease, no longer: {waited:?}"
    );
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 2);
    assert_eq!(emulator.successful_refreshes(), 1);
    assert_eq!(redis.stored(), first, "nothing new was stored");
    other.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_before_its_request_reached_procore_delays_the_next_by_its_lease_only() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // Both processes reach the emulator through one proxy (one login host, so one pair).
    let proxy = HoldingProxy::start(emulator.base_url()).await;
    let launch = Launch::against(&proxy.url)
        .arg("--token-store")
        .arg(redis.url())
        .arg("--timeout-secs")
        .arg("2")
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose());
    let (other, _logs) = stdio_client(&launch).await;
    let first = first_pair(&other, &emulator).await;
    let arguments =
        json!({"grant_type": "refresh_token", "refresh_token": field(&first, "refresh_token")});

    // The holder takes the lock and sends; its request is held on the way and the holder
    // is killed: Procore never saw it.
    let mut holder = HttpServer::start(&launch).await;
    let client = holder.legacy_client().await;
    proxy.hold(true);
    let in_flight = {
        let arguments = arguments.clone();
        tokio::spawn(async move { call(&client, TOOL, arguments).await })
    };
    wait_until(
        || proxy.held() == 1,
        || "the holder's request was held".into(),
    )
    .await;
    holder.child.start_kill().unwrap();
    holder.child.wait().await.unwrap();
    in_flight.abort();
    proxy.hold(false);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 0);

    // The other process proceeds once the dead holder's lease (2 s + 5 s) runs out.
    let started = std::time::Instant::now();
    let renewed = tokens_of(&call(&other, TOOL, arguments).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(15),
        "waited out the lease, no longer: {waited:?}"
    );
    assert_ne!(
        field(&renewed, "refresh_token"),
        field(&first, "refresh_token")
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one refresh"
    );
    assert_eq!(redis.stored(), renewed);
    other.cancel().await.unwrap();
}

/// Send `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_stopped_past_its_lease_after_procore_answered_stores_the_pair_once_resumed() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    // A 1 s upstream timeout: a lease of 1 s + 5 s.
    let launch = launch_on(&emulator, &redis.url())
        .arg("--timeout-secs")
        .arg("1");
    let holder = HttpServer::start(&launch).await;
    let (other, logs) = stdio_client(&launch).await;
    let first = first_pair(&other, &emulator).await;
    let arguments =
        json!({"grant_type": "refresh_token", "refresh_token": field(&first, "refresh_token")});

    // Procore rotates the pair at once and answers 300 ms later; by then the holder is
    // stopped (SIGSTOP), so the only copy of the new pair waits unread in its socket.
    delay_refreshes(&emulator, 300);
    let client = holder.legacy_client().await;
    let in_flight = {
        let arguments = arguments.clone();
        tokio::spawn(async move { call(&client, TOOL, arguments).await })
    };
    wait_until(
        || emulator.token_requests(GrantType::RefreshToken) == 1,
        || "the holder's refresh reached Procore".into(),
    )
    .await;
    let pid = holder.child.id().unwrap();
    signal(pid, "STOP");

    // The other process gets the lock once the stopped holder's lease runs out, finds its
    // intent to spend the same refresh token, sees it still connected to Redis, and waits
    // instead of sending a token Procore has already retired.
    let waiting = tokio::spawn(async move {
        let answer = call(&other, TOOL, arguments).await;
        other.cancel().await.unwrap();
        answer
    });
    logs.wait_for("waiting for another server's unfinished refresh")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(pid, "CONT");

    // Resumed past its timeout, the holder still reads the answer and commits it (the
    // version rule, not the lost lease, decides); the waiter is answered with that pair.
    let theirs = waiting.await.unwrap();
    let mine = in_flight.await.unwrap();
    let renewed = tokens_of(&mine);
    assert_ne!(
        field(&renewed, "refresh_token"),
        field(&first, "refresh_token")
    );
    assert_eq!(
        tokens_of(&theirs),
        renewed,
        "both callers have the one new pair"
    );
    assert!(replayed(&theirs), "the waiter sent nothing");
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one refresh upstream"
    );
    assert_eq!(redis.stored(), renewed, "the pair is stored");
}

#[tokio::test]
async fn a_redis_that_refuses_config_is_warned_about_and_used() {
    // As managed Redis services do: CONFIG is not available.
    let Some(redis) = RedisServer::start(&["--rename-command", "CONFIG", ""]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, logs) = stdio_client(&launch_on(&emulator, &redis.url())).await;
    let first = first_pair(&client, &emulator).await;
    assert_eq!(redis.stored(), first);
    client.cancel().await.unwrap();
    let logged = logs.until_closed().await;
    assert!(
        logged.contains("refuses CONFIG GET") && logged.contains("appendonly yes"),
        "{logged}"
    );
}

// ─────────────── legacy sessions any process serves (rmcp's session store on Redis) ───────────────

pub(crate) const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// Two processes on one Redis, the emulator behind them, with `extra` flags.
async fn two_on(redis: &RedisServer, extra: &[&str]) -> (RunningEmulator, HttpServer, HttpServer) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let mut launch = launch_on(&emulator, &redis.url());
    for arg in extra {
        launch = launch.arg(*arg);
    }
    let a = HttpServer::start(&launch).await;
    let b = HttpServer::start(&launch).await;
    (emulator, a, b)
}

/// `session` (opened anywhere) addressed to `server`.
fn on(session: &RawSession, server: &HttpServer) -> RawSession {
    RawSession {
        http: reqwest::Client::new(),
        url: server.mcp_url(),
        id: session.id.clone(),
        token: session.token.clone(),
    }
}

/// The tool names `tools/list` answers in `session`; panics unless it is answered.
pub(crate) async fn tool_names(session: &RawSession) -> Vec<String> {
    let answer = session.post(TOOLS_LIST).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let message = answer.message();
    message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("a tool list: {message}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_session_opened_on_one_process_is_served_by_the_other_and_outlives_it() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let (_emulator, mut a, b) = two_on(&redis, &[]).await;

    let session = RawSession::open(&a, None).await;
    let here = tool_names(&session).await;
    assert!(here.contains(&"get_token_info".to_owned()), "{here:?}");
    assert_eq!(
        tool_names(&on(&session, &b)).await,
        here,
        "B serves A's session"
    );
    // And back: both hold it now, each answering it.
    assert_eq!(tool_names(&session).await, here);

    // A DELETE through B ends it for A too (A closes its own copy, and answers 404).
    assert_eq!(on(&session, &b).delete().await, 202);
    assert_eq!(session.post(TOOLS_LIST).await.status, 404);
    assert_eq!(on(&session, &b).post(TOOLS_LIST).await.status, 404);

    // A session opened on A and never used on B survives A's kill -9.
    let session = RawSession::open(&a, None).await;
    a.child.kill().await.unwrap();
    let on_b = on(&session, &b);
    assert_eq!(
        tool_names(&on_b).await,
        here,
        "served after its process died"
    );
    let called = on_b
        .post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_token_info","arguments":{"access_token":"not-a-real-one"}}}"#)
        .await;
    assert_eq!(called.status, 200, "{called:?}");
    assert!(called.message()["result"].is_object(), "{called:?}");

    // An id Redis never saw is still 404.
    let unknown = RawSession {
        id: "00000000000000000000000000000000".to_owned(),
        ..on(&session, &b)
    };
    assert_eq!(unknown.post(TOOLS_LIST).await.status, 404);
    let logs = b.stop().await;
    assert!(!logs.contains("ERROR"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_past_its_expiry_is_404_on_both_processes() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let (_emulator, a, b) = two_on(&redis, &["--session-idle-secs", "2"]).await;

    let session = RawSession::open(&a, None).await;
    // Kept alive by use on B alone: every request pushes the expiry for every process.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        tool_names(&on(&session, &b)).await;
    }
    assert!(
        !tool_names(&session).await.is_empty(),
        "still live on A after 3 s of use on B"
    );

    let idle = RawSession::open(&b, None).await;
    tool_names(&on(&idle, &a)).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(on(&idle, &a).post(TOOLS_LIST).await.status, 404);
    assert_eq!(idle.post(TOOLS_LIST).await.status, 404);
    let mut connection = redis.connection();
    let live: Vec<String> = redis::cmd("ZRANGE")
        .arg("ptm:1:{sessions}:live")
        .arg(0)
        .arg(-1)
        .query(&mut connection)
        .unwrap();
    assert!(!live.contains(&idle.id), "{live:?}");
    let kept: bool = redis::cmd("EXISTS")
        .arg(format!("ptm:1:{{sessions}}:s:{}", idle.id))
        .query(&mut connection)
        .unwrap();
    assert!(!kept, "the expired session's state is gone from Redis");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_counts_the_sessions_of_both_processes() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let (_emulator, a, b) = two_on(&redis, &["--max-sessions", "2"]).await;
    let http = reqwest::Client::new();

    let first = RawSession::open(&a, None).await;
    let second = RawSession::open(&b, None).await;
    for server in [&a, &b] {
        let refused = post_mcp(&http, &server.mcp_url(), None, None, INITIALIZE).await;
        assert_eq!(refused.status, 503, "two live between them: {refused:?}");
    }
    // Still served, on either process.
    tool_names(&on(&first, &b)).await;
    tool_names(&on(&second, &a)).await;

    assert_eq!(on(&second, &a).delete().await, 202);
    let third = RawSession::open(&b, None).await;
    tool_names(&on(&third, &a)).await;
    let refused = post_mcp(&http, &a.mcp_url(), None, None, INITIALIZE).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initializes_racing_through_both_processes_for_the_last_place_open_one_session() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let (_emulator, a, b) = two_on(&redis, &["--max-sessions", "1"]).await;
    let http = reqwest::Client::new();
    let (url_a, url_b) = (a.mcp_url(), b.mcp_url());
    let answers = futures::future::join_all((0..16).map(|n| {
        let url = if n % 2 == 0 { &url_a } else { &url_b };
        post_mcp(&http, url, None, None, INITIALIZE)
    }))
    .await;
    let opened = answers.iter().filter(|answer| answer.status == 200).count();
    assert_eq!(opened, 1, "one place between them: {answers:?}");
    for refused in answers.iter().filter(|answer| answer.status != 200) {
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.headers["retry-after"], "5", "{refused:?}");
        assert!(
            refused.body.contains("maximum of 1 sessions"),
            "{refused:?}"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_session_stays_hers_on_the_other_process_and_one_without_an_owner_is_refused() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let issuer = TestIssuer::start().await;
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = launch_on(&emulator, &redis.url())
        .env("MCP_AUTH_ISSUER", &issuer.url)
        .env("MCP_PUBLIC_URL", PUBLIC_URL);
    let a = HttpServer::start(&launch).await;
    let b = HttpServer::start(&launch).await;
    let alice = issuer.mint(&issuer.claims("alice", PUBLIC_URL));
    let bob = issuer.mint(&issuer.claims("bob", PUBLIC_URL));

    let session = RawSession::open(&a, Some(&alice)).await;
    let as_bob = RawSession {
        token: Some(bob.clone()),
        ..on(&session, &b)
    };
    assert_eq!(
        as_bob.post(TOOLS_LIST).await.status,
        404,
        "not Bob's, on B either"
    );
    tool_names(&on(&session, &b)).await;
    let as_bob_on_a = RawSession {
        token: Some(bob),
        ..on(&session, &a)
    };
    assert_eq!(as_bob_on_a.post(TOOLS_LIST).await.status, 404);

    // A session whose owner Redis lost is no one's on a process that never held it.
    let orphan = RawSession::open(&a, Some(&alice)).await;
    let removed: i64 = redis::cmd("HDEL")
        .arg(format!("ptm:1:{{sessions}}:s:{}", orphan.id))
        .arg("owner")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(removed, 1, "the owner was kept in Redis");
    assert_eq!(on(&orphan, &b).post(TOOLS_LIST).await.status, 404);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_a_shared_session_is_a_clear_error_and_served_again_once_it_is_back() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let (_emulator, a, b) = two_on(&redis, &[]).await;
    let session = RawSession::open(&a, None).await;
    tool_names(&on(&session, &b)).await;

    redis.kill();
    let started = std::time::Instant::now();
    let answer = on(&session, &b).post(TOOLS_LIST).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.headers["retry-after"], "1", "{answer:?}");
    assert!(answer.body.contains("session store"), "{answer:?}");
    // A's own session, held in its memory: Redis decides whether it still lives.
    let held = session.post(TOOLS_LIST).await;
    assert_eq!(held.status, 503, "{held:?}");
    assert!(held.body.contains("session store"), "{held:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let opening = post_mcp(
        &reqwest::Client::new(),
        &a.mcp_url(),
        None,
        None,
        INITIALIZE,
    )
    .await;
    assert_eq!(
        opening.status, 503,
        "no session opened uncounted: {opening:?}"
    );
    assert!(opening.body.contains("session store"), "{opening:?}");

    redis.restart();
    let mut status = 0;
    for _ in 0..100 {
        status = on(&session, &b).post(TOOLS_LIST).await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "served again, by itself, once Redis is back");
    tool_names(&session).await;
    a.stop().await;
    b.stop().await;
}

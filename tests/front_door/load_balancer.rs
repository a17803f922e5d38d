//! Three server processes on one real Redis behind a real nginx (Debian package nginx),
//! against the emulator: round-robin serves 2026-07-28 requests and legacy sessions alike
//! (any replica restores a session from Redis), a legacy session outlives the replica that
//! opened it being restarted, and the old HTTP+SSE transport works behind `ip_hash`
//! (client-IP affinity). nginx and redis-server are started here on loopback and stopped by
//! their PIDs; without either installed a test says so and passes, except under CI=true.

use std::collections::HashSet;

use crate::common::{nginx::Nginx, raw_mcp::RawSession, redis_server::RedisServer, *};
use crate::replicas::{TOOLS_LIST, tool_names};
use crate::token_store::launch_on;
use procore_emulator::{EmulatorConfig, RunningEmulator};

use crate::common::emulator_flow::start_emulator;

/// The token tool answers through `client`: a client-credentials token from the emulator.
async fn token_call_works(client: &Client, emulator: &RunningEmulator) {
    let arguments = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": emulator.client_id(),
        "client_secret": emulator.client_secret().expose(),
    });
    let result = call_token(client, arguments).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("access_token"), "{}", text(&result));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_nginx_serve_both_eras_and_a_session_outlives_its_replica() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = launch_on(&emulator, &redis.url());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(HttpServer::start(&launch).await);
    }
    let upstreams: Vec<String> = replicas
        .iter()
        .map(|replica| replica.base.trim_start_matches("http://").to_owned())
        .collect();
    let Some(nginx) = Nginx::start(&upstreams) else {
        return;
    };
    let mcp = format!("{}/mcp", nginx.round_robin);

    // 2026-07-28: stateless, each request to whichever replica.
    let modern = modern_client_at(&mcp).await;
    assert!(!modern.list_all_tools().await.unwrap().is_empty());
    token_call_works(&modern, &emulator).await;
    // Legacy: one session, its requests spread over the three.
    let legacy = legacy_client_at(&mcp).await;
    for _ in 0..3 {
        token_call_works(&legacy, &emulator).await;
    }

    let session = RawSession::open_at(&mcp, None).await;
    let opened_on = nginx
        .access_log()
        .into_iter()
        .rev()
        .find(|(method, path, status, _)| method == "POST" && path == "/mcp" && *status == 200)
        .map(|(_, _, _, upstream)| upstream)
        .expect("the initialize in nginx's log");
    let before = nginx.access_log().len();
    for _ in 0..6 {
        tool_names(&session).await;
    }
    let served_by: HashSet<String> = nginx.access_log()[before..]
        .iter()
        .map(|(_, _, _, upstream)| upstream.clone())
        .collect();
    assert_eq!(
        served_by.len(),
        3,
        "round-robin over all three: {served_by:?}"
    );

    // Restart the replica that opened it (kill -9, then a new process on its port).
    let at = upstreams
        .iter()
        .position(|upstream| *upstream == opened_on)
        .unwrap_or_else(|| panic!("{opened_on} is one of {upstreams:?}"));
    replicas[at].child.kill().await.unwrap();
    let answer = session.post(TOOLS_LIST).await;
    assert_eq!(
        answer.status, 200,
        "served while its replica is down: {answer:?}"
    );
    replicas[at] = HttpServer::start_on(&launch, &opened_on).await;
    let before = nginx.access_log().len();
    for _ in 0..6 {
        tool_names(&session).await;
    }
    let after_restart: Vec<String> = nginx.access_log()[before..]
        .iter()
        .map(|(_, _, _, upstream)| upstream.clone())
        .collect();
    assert!(
        after_restart.contains(&opened_on),
        "the restarted replica served it too: {after_restart:?}"
    );
    token_call_works(&legacy, &emulator).await;

    // The old HTTP+SSE transport: its stream and its POSTs on one replica, by client IP.
    let sse = sse_client_at(&format!("{}/sse", nginx.affinity)).await;
    token_call_works(&sse, &emulator).await;
    for client in [modern, legacy, sse] {
        client.cancel().await.unwrap();
    }
    let errors = nginx.error_log();
    for replica in replicas {
        let logs = replica.stop().await;
        assert!(!logs.contains(" ERROR "), "{logs}\nnginx: {errors}");
    }
}

//! The token store and the refresh that cannot race or be lost, through the real binary and
//! rmcp's client against the local emulator: single flight within a process and across
//! processes, the reuse window after a lost answer, crashes mid-refresh, permissions and
//! corruption, and the whole out-of-band flow using only the tools.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use crate::common::{emulator_flow::*, redis_server::RedisServer, *};
use procore_emulator::{
    DelayFault, DropAfterRefreshFault, EmulatorConfig, Fault, GrantType, RunningEmulator,
};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

// ───────────────────────────── support ─────────────────────────────

/// Where a test keeps its tokens: a store file, or a real Redis (the tests that hold for
/// both run on each).
pub(crate) enum Backend {
    File(StoreDir),
    Redis(RedisServer),
}

impl Backend {
    pub(crate) fn file() -> Self {
        Self::File(StoreDir::new())
    }

    /// `None` (after a notice) where redis-server is not installed, outside CI.
    pub(crate) fn redis() -> Option<Self> {
        RedisServer::start(&[]).map(Self::Redis)
    }

    /// What `--token-store` is given.
    pub(crate) fn location(&self) -> String {
        match self {
            Self::File(dir) => dir.file().to_str().unwrap().to_owned(),
            Self::Redis(redis) => redis.url(),
        }
    }

    /// Every stored token response.
    fn stored_pairs(&self) -> Vec<Value> {
        match self {
            Self::File(dir) => stored_pairs(&dir.file())
                .into_iter()
                .map(|(_, response)| response)
                .collect(),
            Self::Redis(redis) => redis.stored_responses(),
        }
    }

    /// The one stored token response.
    fn stored(&self) -> Value {
        let mut pairs = self.stored_pairs();
        assert_eq!(pairs.len(), 1, "one pair stored");
        pairs.remove(0)
    }
}

/// `$body(backend)` as two tests: on a store file (`$file`) and on a real Redis (`$redis`).
macro_rules! on_each_backend {
    ($file:ident, $redis:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $file() {
            $body(Backend::file()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $redis() {
            if let Some(backend) = Backend::redis() {
                $body(backend).await;
            }
        }
    };
}

/// The server against `emulator`, holding its credentials, keeping tokens in the file `store`.
pub(crate) fn launch(emulator: &RunningEmulator, store: &Path) -> Launch {
    launch_on(emulator, store.to_str().unwrap())
}

/// The server against `emulator`, holding its credentials, with `--token-store store` (a
/// path or a Redis URL).
pub(crate) fn launch_on(emulator: &RunningEmulator, store: &str) -> Launch {
    Launch::against(emulator.base_url())
        .arg("--token-store")
        .arg(store)
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose())
}

/// The pairs in the store file, as (client_id, token response JSON).
pub(crate) fn stored_pairs(store: &Path) -> Vec<(String, Value)> {
    let file: Value = serde_json::from_slice(&std::fs::read(store).unwrap()).unwrap();
    file["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let response: Value = serde_json::from_str(pair["response"].as_str().unwrap()).unwrap();
            (pair["client_id"].as_str().unwrap().to_owned(), response)
        })
        .collect()
}

/// The one stored token response.
pub(crate) fn stored(store: &Path) -> Value {
    let pairs = stored_pairs(store);
    assert_eq!(pairs.len(), 1, "one pair stored");
    pairs[0].1.clone()
}

/// The second text block of a result: where the store's warning goes.
pub(crate) fn store_warning(result: &CallToolResult) -> String {
    result
        .content
        .get(1)
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

pub(crate) fn tokens_of(result: &CallToolResult) -> Value {
    assert!(!is_error(result), "{}", text(result));
    serde_json::from_str(&text(result)).unwrap()
}

pub(crate) fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}

pub(crate) async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .expect("tools/call answered")
}

/// A user authorizes out of band; the tool exchanges the code. The first pair.
pub(crate) async fn first_pair(client: &Client, emulator: &RunningEmulator) -> Value {
    let code = authorize_as_user(&emulator.authorize_url(OOB, "state-1")).await;
    let result = call(
        client,
        TOOL,
        json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
    )
    .await;
    tokens_of(&result)
}

pub(crate) fn delay_refreshes(emulator: &RunningEmulator, ms: u64) {
    emulator
        .arm(Fault::Delay(DelayFault {
            ms,
            times: Some(1),
            grant_type: Some(GrantType::RefreshToken),
        }))
        .unwrap();
}

// ───────────────────────────── single flight ─────────────────────────────

on_each_backend!(
    fifty_concurrent_refreshes_become_one_upstream_request,
    fifty_concurrent_refreshes_become_one_upstream_request_on_redis,
    fifty_concurrent_refreshes_on
);

async fn fifty_concurrent_refreshes_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, _logs) = stdio_client(&launch_on(&emulator, &backend.location())).await;
    let first = first_pair(&client, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    delay_refreshes(&emulator, 500);
    let calls = (0..50).map(|_| {
        call(
            &client,
            TOOL,
            json!({"grant_type": "refresh_token", "refresh_token": old_refresh}),
        )
    });
    let results = futures::future::join_all(calls).await;

    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one upstream refresh"
    );
    assert_eq!(emulator.successful_refreshes(), 1);
    let bodies: Vec<String> = results.iter().map(text).collect();
    assert!(results.iter().all(|r| !is_error(r)), "{}", bodies[0]);
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "50 identical results"
    );
    let new_pair: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_ne!(field(&new_pair, "refresh_token"), old_refresh);
    assert_eq!(backend.stored(), new_pair, "the store holds the new pair");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_coalesce_without_a_store_too() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, _logs) = stdio_client(
        &Launch::against(emulator.base_url())
            .env("PROCORE_CLIENT_ID", emulator.client_id())
            .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose()),
    )
    .await;
    let first = first_pair(&client, &emulator).await;
    delay_refreshes(&emulator, 300);
    let arguments =
        json!({"grant_type": "refresh_token", "refresh_token": field(&first, "refresh_token")});
    let results =
        futures::future::join_all((0..10).map(|_| call(&client, TOOL, arguments.clone()))).await;
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    assert!(
        results
            .iter()
            .all(|r| text(r) == text(&results[0]) && !is_error(r))
    );
    client.cancel().await.unwrap();
}

on_each_backend!(
    two_processes_sharing_a_store_refresh_once,
    two_processes_sharing_redis_refresh_once,
    two_processes_sharing_a_store_on
);

async fn two_processes_sharing_a_store_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (first_process, _a) = stdio_client(&launch_on(&emulator, &backend.location())).await;
    let (second_process, _b) = stdio_client(&launch_on(&emulator, &backend.location())).await;
    let first = first_pair(&first_process, &emulator).await;

    delay_refreshes(&emulator, 600);
    // Both refresh the stored token at once, without passing it.
    let refresh = json!({"grant_type": "refresh_token"});
    let (one, two) = tokio::join!(
        call(&first_process, TOOL, refresh.clone()),
        call(&second_process, TOOL, refresh.clone())
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one upstream refresh"
    );
    let (one, two) = (tokens_of(&one), tokens_of(&two));
    assert_eq!(one, two, "both see the new pair");
    assert_ne!(field(&one, "refresh_token"), field(&first, "refresh_token"));
    assert_eq!(backend.stored(), one);
    first_process.cancel().await.unwrap();
    second_process.cancel().await.unwrap();
}

// ───────────────────────────── lost answers ─────────────────────────────

/// POST a refresh over a raw streamable HTTP session and hang up before the answer.
pub(crate) async fn refresh_and_hang_up(server: &HttpServer, refresh_token: &str) {
    let http = http();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = http
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.text().await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": TOOL, "arguments": {"grant_type": "refresh_token", "refresh_token": refresh_token}}});
    let response = http
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&call)
        .send()
        .await
        .unwrap();
    // The answer is on its way (the emulator holds it back); the caller goes away.
    let outcome = tokio::time::timeout(Duration::from_millis(200), response.text()).await;
    assert!(
        outcome.is_err(),
        "the call was still pending when the caller hung up"
    );
}

on_each_backend!(
    an_answer_lost_on_the_way_to_the_caller_is_recovered_within_the_window,
    an_answer_lost_on_the_way_to_the_caller_is_recovered_from_redis,
    an_answer_lost_on_the_way_on
);

async fn an_answer_lost_on_the_way_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let server = HttpServer::start(&launch_on(&emulator, &backend.location())).await;
    let client = server.legacy_client().await;
    let first = first_pair(&client, &emulator).await;
    let old_refresh = field(&first, "refresh_token");

    delay_refreshes(&emulator, 600);
    refresh_and_hang_up(&server, &old_refresh).await;
    // The server finishes the refresh on its own and stores the new pair.
    for _ in 0..100 {
        if field(&backend.stored(), "refresh_token") != old_refresh {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = backend.stored();
    assert_ne!(
        field(&kept, "refresh_token"),
        old_refresh,
        "the new pair was stored"
    );
    assert_eq!(emulator.successful_refreshes(), 1);

    // The caller retries with the token it still has: the stored successor comes back.
    // Until the first flight has left the flight table (just after it stored the pair), a
    // retry joins it and gets the same answer; after that, the store answers.
    let replayed = |result: &CallToolResult| {
        result.meta.as_ref().is_some_and(|meta| {
            meta.0
                .contains_key("io.github.procore-token-mcp/replayed-from-store")
        })
    };
    let mut retry = None;
    for _ in 0..50 {
        let result = call(
            &client,
            TOOL,
            json!({"grant_type": "refresh_token", "refresh_token": old_refresh}),
        )
        .await;
        assert_eq!(tokens_of(&result), kept);
        if replayed(&result) {
            retry = Some(result);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        retry.is_some(),
        "answered from the store once the flight landed"
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "nothing more was sent"
    );
    // The user stays logged in: the new access token works and the new refresh token renews.
    let info = token_info(emulator.base_url(), &field(&kept, "access_token")).await;
    assert_eq!(info.status, 200, "{}", info.text);
    let renewed = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": field(&kept, "refresh_token")}),
    )
    .await;
    let renewed = tokens_of(&renewed);

    // A token this store never rotated is forwarded and Procore's refusal comes back.
    // (Crossing the window is the exchange's unit test, on a clock it is given.)
    let late = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": "rt-never-issued"}),
    )
    .await;
    assert!(is_error(&late));
    assert!(text(&late).contains("invalid_grant"), "{}", text(&late));
    assert_eq!(
        backend.stored(),
        renewed,
        "a refused refresh leaves the store alone"
    );
    client.cancel().await.unwrap();
}

on_each_backend!(
    an_answer_lost_before_the_server_got_it_cannot_be_recovered,
    an_answer_lost_before_the_server_got_it_cannot_be_recovered_from_redis,
    an_answer_lost_before_on
);

async fn an_answer_lost_before_on(backend: Backend) {
    // The emulator's lost-response fault: Procore rotated the pair but the answer never
    // reached this server. No client can recover that; the store keeps the old pair, the
    // tool says so, and the retry gets invalid_grant with the explanation.
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, _logs) = stdio_client(&launch_on(&emulator, &backend.location())).await;
    let first = first_pair(&client, &emulator).await;
    emulator
        .arm(Fault::DropAfterRefresh(DropAfterRefreshFault {
            times: Some(1),
        }))
        .unwrap();
    let lost = call(&client, TOOL, json!({"grant_type": "refresh_token"})).await;
    assert!(is_error(&lost));
    assert!(
        text(&lost).contains("old refresh token may already be consumed"),
        "{}",
        text(&lost)
    );
    assert_eq!(backend.stored(), first, "nothing new to store");

    let retry = call(&client, TOOL, json!({"grant_type": "refresh_token"})).await;
    assert!(is_error(&retry));
    assert!(text(&retry).contains("invalid_grant"), "{}", text(&retry));
    assert!(
        text(&retry).contains("authorize the app again"),
        "{}",
        text(&retry)
    );
    client.cancel().await.unwrap();
}

// ───────────────────────────── crashes ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_refresh_never_leaves_a_torn_store() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();

    // Kill at moments spread before, around and after the answer (held back 100 ms).
    let (mut kept_old, mut kept_new) = (0, 0);
    for kill_after_ms in [0u64, 40, 80, 95, 100, 105, 110, 120, 150, 250, 400] {
        let before = stored(&dir.file());
        let refreshes_before = emulator.successful_refreshes();
        delay_refreshes(&emulator, 100);
        let mut command = launch(&emulator, &dir.file()).command();
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"k","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ] {
            stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .unwrap();
        }
        stdout.next_line().await.unwrap();
        stdin
            .write_all(format!("{}\n", json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":TOOL,"arguments":{"grant_type":"refresh_token","refresh_token":field(&before, "refresh_token")}}})).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();

        // A restart reads the store: the old pair, or the new one if its answer arrived.
        let (restarted, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
        let after = stored(&dir.file());
        let rotated_upstream = emulator.successful_refreshes() > refreshes_before;
        if after == before {
            kept_old += 1;
        } else {
            kept_new += 1;
            assert!(rotated_upstream);
            let info = token_info(emulator.base_url(), &field(&after, "access_token")).await;
            assert_eq!(info.status, 200, "the stored new pair is the live one");
        }
        // Whatever the store holds must still renew; if the old pair is kept but Procore
        // had rotated it, that is the lost-answer case no client can recover. (Tokens are
        // passed explicitly: a stored pair rotated moments ago would answer by itself.)
        let renewed = call(
            &restarted,
            TOOL,
            json!({"grant_type": "refresh_token", "refresh_token": field(&after, "refresh_token")}),
        )
        .await;
        if after != before || !rotated_upstream {
            tokens_of(&renewed);
        } else {
            assert!(
                text(&renewed).contains("invalid_grant"),
                "{}",
                text(&renewed)
            );
            // Start the next round from a fresh authorization.
            first_pair(&restarted, &emulator).await;
        }
        restarted.cancel().await.unwrap();
    }
    assert!(
        kept_old > 0 && kept_new > 0,
        "kills landed on both sides of the write: {kept_old} old, {kept_new} new"
    );
}

// ───────────────────────────── refusals ─────────────────────────────

pub(crate) async fn refused_at_start(launch: &Launch, expected: &[&str]) {
    let output = launch.command().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

#[tokio::test]
async fn a_store_readable_by_others_is_refused() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    std::fs::write(dir.file(), br#"{"format":1,"pairs":[]}"#).unwrap();
    std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    refused_at_start(
        &launch(&emulator, &dir.file()),
        &["tokens.json", "chmod 600"],
    )
    .await;
}

#[tokio::test]
async fn a_corrupt_store_is_refused_and_left_untouched() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let garbage = b"{\"format\":1,\"pairs\":[{\"client_id\": tr";
    std::fs::write(dir.file(), garbage).unwrap();
    std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    refused_at_start(
        &launch(&emulator, &dir.file()),
        &["tokens.json", "corrupt", "line 1"],
    )
    .await;
    assert_eq!(
        std::fs::read(dir.file()).unwrap(),
        garbage,
        "nothing discarded"
    );
}

/// Whether this process runs as root (then file modes do not stop it).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().next() == Some("0"))
}

/// As root, run the server as `nobody`, for whom directory modes apply.
fn as_unprivileged(launch: &Launch) -> tokio::process::Command {
    let command = launch.command();
    if !running_as_root() {
        return command;
    }
    let std = command.as_std();
    let mut wrapped = tokio::process::Command::new("setpriv");
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std.get_program())
        .args(std.get_args());
    for (name, value) in std.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped.kill_on_drop(true);
    wrapped
}

/// Hand `path` to the user the server runs as.
fn give_to_server(path: &Path) {
    if running_as_root() {
        std::process::Command::new("chown")
            .args(["65534:65534", path.to_str().unwrap()])
            .status()
            .unwrap();
    }
}

#[tokio::test]
async fn an_unwritable_directory_is_refused_at_start() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    // World-traversable but not writable by the server's user.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o555)).unwrap();
    let output = as_unprivileged(&launch(&emulator, &dir.file()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tokens.json.lock"), "{stderr}");
    assert!(stderr.contains("writable"), "{stderr}");
}

#[tokio::test]
async fn a_directory_that_exists_but_cannot_be_entered_is_reported_as_such() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let inner = dir.0.join("inner");
    std::fs::create_dir(&inner).unwrap();
    // The store's directory exists; its parent may not be entered by the server's user.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o000)).unwrap();
    let output = as_unprivileged(&launch(&emulator, &inner.join("tokens.json")))
        .output()
        .await
        .unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exists but cannot be entered"), "{stderr}");
    assert!(!stderr.contains("cannot create"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_turns_corrupt_refuses_the_call_and_says_so_once() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let server = HttpServer::start(&launch(&emulator, &dir.file())).await;
    let client = server.legacy_client().await;
    let first = first_pair(&client, &emulator).await;
    std::fs::write(dir.file(), b"{\"format\":1,\"pairs\":[tr").unwrap();
    let result = call(
        &client,
        TOOL,
        json!({"grant_type": "refresh_token", "refresh_token": field(&first, "refresh_token")}),
    )
    .await;
    let message = text(&result);
    assert!(is_error(&result), "{message}");
    assert!(
        message.contains("token store could not be used"),
        "{message}"
    );
    assert_eq!(
        message.matches("othing was sent to Procore").count(),
        1,
        "said once: {message}"
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        0,
        "{message}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_becomes_unwritable_loses_nothing() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    give_to_server(&dir.0);
    let launch = launch(&emulator, &dir.file());
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(as_unprivileged(&launch))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client: Client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let first = first_pair(&client, &emulator).await;

    // The directory turns read-only under the running server.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o500)).unwrap();
    let result = call(&client, TOOL, json!({"grant_type": "refresh_token"})).await;
    let new_pair = tokens_of(&result);
    assert_ne!(new_pair["refresh_token"], first["refresh_token"]);
    let warning = store_warning(&result);
    assert!(
        warning.contains("could not be written to the token store"),
        "{warning}"
    );
    assert!(warning.contains("keep it"), "{warning}");
    // The pair the caller got is the live one.
    let info = token_info(emulator.base_url(), &field(&new_pair, "access_token")).await;
    assert_eq!(info.status, 200);
    client.cancel().await.unwrap();
}

// ───────────────────────────── the tools, end to end ─────────────────────────────

on_each_backend!(
    the_whole_out_of_band_flow_using_only_the_tools,
    the_whole_out_of_band_flow_using_only_the_tools_on_redis,
    the_whole_flow_on
);

async fn the_whole_flow_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (client, _logs) = stdio_client(&launch_on(&emulator, &backend.location())).await;

    let link = call(&client, "grant_app_authorization", json!({})).await;
    assert!(!is_error(&link), "{}", text(&link));
    let link = link.structured_content.unwrap();
    assert_eq!(link["redirect_uri"], OOB);
    assert_eq!(
        emulator.token_requests(GrantType::AuthorizationCode),
        0,
        "nothing sent"
    );
    let code = authorize_as_user(link["authorize_url"].as_str().unwrap()).await;

    let first = tokens_of(
        &call(
            &client,
            TOOL,
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
        )
        .await,
    );
    let info = call(&client, "get_token_info", json!({})).await;
    assert!(!is_error(&info), "{}", text(&info));
    let info = info.structured_content.unwrap();
    assert_eq!(info["application"]["uid"], emulator.client_id());
    assert!(info["expires_in_seconds"].as_i64().unwrap() > 0);

    let renewed = tokens_of(&call(&client, TOOL, json!({"grant_type": "refresh_token"})).await);
    assert_ne!(renewed["refresh_token"], first["refresh_token"]);
    assert_eq!(backend.stored(), renewed);

    let revoked = call(&client, "revoke_token", json!({})).await;
    assert!(!is_error(&revoked), "{}", text(&revoked));
    let revoked = revoked.structured_content.unwrap();
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["removed_from_store"], true);
    assert!(backend.stored_pairs().is_empty(), "the pair left the store");

    let dead = call(
        &client,
        "get_token_info",
        json!({"access_token": field(&renewed, "access_token")}),
    )
    .await;
    assert!(is_error(&dead));
    assert!(text(&dead).contains("HTTP 401"), "{}", text(&dead));
    let refresh_dead = post_token(
        emulator.base_url(),
        &json!({"grant_type": "refresh_token", "refresh_token": field(&renewed, "refresh_token"),
                "client_id": emulator.client_id(), "client_secret": emulator.client_secret().expose()}),
    )
    .await;
    refresh_dead.assert_oauth_error(400, "invalid_grant");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_tool_list_with_a_store() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let tools = serde_json::to_value(client.list_all_tools().await.unwrap()).unwrap();
    client.cancel().await.unwrap();
    assert_tool_list_snapshot("token_store__tools_store", &tools);
}

// ───────────────────────────── fault campaign regressions ─────────────────────────────

/// `launch`, run under `prlimit` with the given limit on the size of any file it writes.
fn under_file_size_limit(launch: &Launch, bytes: u64) -> tokio::process::Command {
    let inner = launch.command();
    let inner = inner.as_std();
    let mut command = tokio::process::Command::new("prlimit");
    command.arg(format!("--fsize={bytes}:{bytes}")).arg("--");
    command.arg(inner.get_program()).args(inner.get_args());
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.kill_on_drop(true);
    command
}

fn prlimit_installed() -> bool {
    std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Every caller of a storm got the same new pair, from one upstream rotation, and the
/// store holds it (`stored`, read after the storm).
pub(crate) fn assert_one_rotation_for_all(
    results: &[CallToolResult],
    emulator: &RunningEmulator,
    first: &Value,
    stored: Value,
) {
    let failed: Vec<String> = results
        .iter()
        .filter(|result| is_error(result))
        .map(text)
        .collect();
    assert!(failed.is_empty(), "every caller got a pair: {failed:?}");
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        1,
        "one upstream rotation for one logical refresh"
    );
    let pairs: Vec<Value> = results.iter().map(tokens_of).collect();
    assert!(
        pairs.iter().all(|pair| *pair == pairs[0]),
        "one pair for all"
    );
    assert_ne!(
        field(&pairs[0], "refresh_token"),
        field(first, "refresh_token")
    );
    assert_eq!(stored, pairs[0], "the store holds it");
}

on_each_backend!(
    without_a_reuse_window_three_processes_still_refresh_the_stored_pair_once,
    without_a_reuse_window_three_processes_on_redis_still_refresh_once,
    without_a_reuse_window_on
);

async fn without_a_reuse_window_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = launch_on(&emulator, &backend.location())
        .arg("--reuse-window-secs")
        .arg("0");
    let mut processes = Vec::new();
    for _ in 0..3 {
        processes.push(stdio_client(&launch).await);
    }
    let first = first_pair(&processes[0].0, &emulator).await;

    delay_refreshes(&emulator, 600);
    // 48 callers, 16 in each process, all refreshing "the stored pair" at once.
    let refresh = json!({"grant_type": "refresh_token"});
    let calls = (0..48).map(|n| call(&processes[n % 3].0, TOOL, refresh.clone()));
    let results = futures::future::join_all(calls).await;
    assert_one_rotation_for_all(&results, &emulator, &first, backend.stored());
    for (client, _) in processes {
        client.cancel().await.unwrap();
    }
}

on_each_backend!(
    a_storm_of_stored_pair_refreshes_across_three_processes_rotates_once,
    a_storm_of_stored_pair_refreshes_across_three_processes_on_redis_rotates_once,
    a_storm_on
);

async fn a_storm_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let launch = launch_on(&emulator, &backend.location());
    let mut processes = Vec::new();
    for _ in 0..3 {
        processes.push(stdio_client(&launch).await);
    }
    // A pair fresh from a code never counts as just rotated: the storm's first caller
    // rotates it, and everyone after gets that rotation.
    let first = first_pair(&processes[0].0, &emulator).await;

    // 51 callers over about 150 ms, no upstream delay: many arrive after the first rotation
    // has landed, and still ask for the same logical refresh.
    let refresh = json!({"grant_type": "refresh_token"});
    let calls = (0..51).map(|n| {
        let client = &processes[n % 3].0;
        let refresh = refresh.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(3 * n as u64)).await;
            call(client, TOOL, refresh).await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert_one_rotation_for_all(&results, &emulator, &first, backend.stored());
    for (client, _) in processes {
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_symlinked_store_path_is_refused() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    std::fs::write(dir.file(), br#"{"format":1,"pairs":[]}"#).unwrap();
    std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.0.join("link.json");
    std::os::unix::fs::symlink(dir.file(), &link).unwrap();
    refused_at_start(&launch(&emulator, &link), &["link.json", "symbolic link"]).await;
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_costs_the_store_write_not_the_token() {
    if !prlimit_installed() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prlimit (Debian package util-linux) is required in CI"
        );
        eprintln!("skipped: prlimit not installed (Debian package util-linux)");
        return;
    }
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    // Smaller than any store holding a pair: every write of one raises SIGXFSZ.
    let command = under_file_size_limit(&launch(&emulator, &dir.file()), 64);
    let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Logs::follow(stderr.unwrap());
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let code = authorize_as_user(&emulator.authorize_url(OOB, "state-1")).await;
    let result = call(
        &client,
        TOOL,
        json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
    )
    .await;
    let shown = text(&result);
    assert!(
        shown.contains("refresh_token"),
        "the caller got its pair: {shown}"
    );
    let warning = store_warning(&result);
    assert!(
        warning.contains("could not be written to the token store"),
        "with the warning that it was not stored: {warning}"
    );
    // The process lives on and answers.
    let tools = client.list_all_tools().await;
    assert!(tools.is_ok(), "still serving: {}", logs.text());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_pair_left_in_a_temp_file_by_a_kill_is_recovered() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let first = first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();

    // What a kill between the temp file's fsync and its rename leaves: Procore rotated the
    // pair, the successor is only in the temp file, the store still has the consumed token.
    let old_refresh = field(&first, "refresh_token");
    let rotated = post_token(
        emulator.base_url(),
        &json!({"grant_type": "refresh_token", "client_id": emulator.client_id(),
                "client_secret": emulator.client_secret().expose(),
                "refresh_token": old_refresh}),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let successor: Value = serde_json::from_str(&rotated.text).unwrap();
    let mut contents: Value = serde_json::from_slice(&std::fs::read(dir.file()).unwrap()).unwrap();
    let pair = &mut contents["pairs"][0];
    pair["response"] = Value::String(rotated.text.clone());
    pair["stored_at"] = json!(pair["stored_at"].as_u64().unwrap() + 1);
    // The kill was a while ago: older than a pair that answers a refresh by itself.
    pair["rotated_from"] = json!([{
        "refresh_token_sha256": procore_token_mcp::store::sha256_hex(&old_refresh),
        "at_ms": pair["stored_at"].as_u64().unwrap() * 1000 - 10_000,
    }]);
    let orphan = dir.0.join("tokens.json.tmp.4242.1");
    std::fs::write(&orphan, serde_json::to_vec(&contents).unwrap()).unwrap();
    std::fs::set_permissions(&orphan, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The next server keeps the user signed in: it refreshes with the successor.
    let (client, logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let result = call(&client, TOOL, json!({"grant_type": "refresh_token"})).await;
    assert!(!is_error(&result), "{}\n{}", text(&result), logs.text());
    let next = tokens_of(&result);
    assert_ne!(
        field(&next, "refresh_token"),
        field(&successor, "refresh_token")
    );
    assert_eq!(stored(&dir.file()), next);
    assert!(!orphan.exists(), "the recovered temp file is gone");
    client.cancel().await.unwrap();
}

//! Tokens at rest: with `PROCORE_STORE_KEY`, through the real binary against the emulator, on
//! a store file and on a real Redis. No token, code or secret is readable in the store (nor
//! in Redis's append-only file); a restart with the key serves the stored pair; a wrong key,
//! or none, stops the start naming the variable; a previous key rotates; a plain store is
//! sealed at its next save.

use base64::{Engine, engine::general_purpose::STANDARD};
use procore_emulator::{EmulatorConfig, GrantType, RunningEmulator};
use serde_json::{Value, json};

use crate::{
    access_token::{command, run},
    common::{emulator_flow::*, *},
    token_store::{Backend, call, field, launch_on, refused_at_start, tokens_of},
};

/// Two keys (base64 of 32 bytes), and a third that is not one.
fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

/// The id a key's values are stored with: 8 hex digits of the key's SHA-256.
fn key_id(key: &str) -> String {
    let bytes = STANDARD.decode(key).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref()[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Backend {
    /// Everything the store keeps at rest, as text: the store file (and any temp file
    /// beside it), or every Redis key and value and its append-only file.
    fn at_rest(&self) -> String {
        match self {
            Self::File(dir) => {
                let mut text = String::new();
                for entry in std::fs::read_dir(&dir.0).unwrap().flatten() {
                    if entry.path().is_file() {
                        let bytes = std::fs::read(entry.path()).unwrap();
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                text
            }
            Self::Redis(redis) => redis.everything_at_rest(),
        }
    }

    /// The key id stored beside each pair's response (`None`: plain text).
    fn key_ids(&self) -> Vec<Option<String>> {
        match self {
            Self::File(dir) => {
                let file: Value = serde_json::from_slice(&std::fs::read(dir.file()).unwrap())
                    .unwrap_or_else(|_| panic!("the store file is JSON"));
                file["pairs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| pair["key_id"].as_str().map(str::to_owned))
                    .collect()
            }
            Self::Redis(redis) => redis
                .pair_fields("kid")
                .into_iter()
                .map(|kid| kid.filter(|kid| !kid.is_empty()))
                .collect(),
        }
    }
}

/// The server on `backend`, sealing with `current` (and reading `previous`).
fn launch_with(
    emulator: &RunningEmulator,
    backend: &Backend,
    current: Option<&str>,
    previous: Option<&str>,
) -> Launch {
    let mut launch = launch_on(emulator, &backend.location());
    if let Some(current) = current {
        launch = launch.env("PROCORE_STORE_KEY", current);
    }
    if let Some(previous) = previous {
        launch = launch.env("PROCORE_STORE_KEY_PREVIOUS", previous);
    }
    launch
}

/// A code exchange through the tool: the code and the pair.
async fn sign_in(client: &Client, emulator: &RunningEmulator) -> (String, Value) {
    let code = authorize_as_user(&emulator.authorize_url(OOB, "state-1")).await;
    let result = call(
        client,
        TOOL,
        json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB}),
    )
    .await;
    (code, tokens_of(&result))
}

/// A refresh of the stored pair (no refresh_token given): the new pair.
async fn refresh_stored(client: &Client) -> Value {
    tokens_of(&call(client, TOOL, json!({"grant_type": "refresh_token"})).await)
}

/// A refresh with the refresh token of `pair` (sent upstream: it is not a consumed one).
async fn refresh_after(client: &Client, pair: &Value) -> Value {
    let refresh_token = field(pair, "refresh_token");
    let arguments = json!({"grant_type": "refresh_token", "refresh_token": refresh_token});
    let renewed = tokens_of(&call(client, TOOL, arguments).await);
    assert_ne!(renewed["refresh_token"], pair["refresh_token"], "rotated");
    renewed
}

/// The tokens of `pairs`.
fn tokens(pairs: &[&Value]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|pair| [field(pair, "access_token"), field(pair, "refresh_token")])
        .collect()
}

fn assert_none_at_rest(backend: &Backend, secrets: &[String]) {
    let at_rest = backend.at_rest();
    assert!(!at_rest.is_empty(), "the store holds something");
    for secret in secrets {
        assert!(
            !at_rest.contains(secret.as_str()),
            "{secret} is readable at rest: {at_rest}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_no_token_is_at_rest_in_the_file_and_the_key_rotates() {
    sealed_on(Backend::file()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_no_token_is_at_rest_in_redis_or_its_aof_and_the_key_rotates() {
    if let Some(backend) = Backend::redis() {
        sealed_on(backend).await;
    }
}

async fn sealed_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let (one, two) = (key(1), key(2));
    let secret = emulator.client_secret().expose().to_owned();

    let launch = launch_with(&emulator, &backend, Some(&one), None);
    let (client, logs) = stdio_client(&launch).await;
    let (code, first) = sign_in(&client, &emulator).await;
    let renewed = refresh_stored(&client).await;
    assert_ne!(renewed["refresh_token"], first["refresh_token"]);
    client.cancel().await.unwrap();
    let mut canaries = tokens(&[&first, &renewed]);
    canaries.extend([code, secret.clone()]);
    assert_none_at_rest(&backend, &canaries);
    assert_eq!(backend.key_ids(), vec![Some(key_id(&one))]);
    let logged = logs.until_closed().await;
    assert!(!logged.contains(&one), "the key in a log line: {logged}");
    assert!(
        !logged.contains("plain text"),
        "no plain-text warning: {logged}"
    );

    // Restarted with the same key: the stored pair (rotated a moment ago) is the answer to
    // a refresh of the stored pair, read from the store, nothing sent; then a refresh.
    let (client, _logs) = stdio_client(&launch).await;
    assert_eq!(refresh_stored(&client).await, renewed, "the stored pair");
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    let third = refresh_after(&client, &renewed).await;
    client.cancel().await.unwrap();
    canaries.extend(tokens(&[&third]));
    assert_none_at_rest(&backend, &canaries);

    // Another key, or none: the start is refused, naming the variable, never the key.
    let wrong = launch_with(&emulator, &backend, Some(&two), None);
    refused_at_start(&wrong, &["PROCORE_STORE_KEY", &key_id(&one)]).await;
    let output = wrong.command().output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(&two) && !stderr.contains(&one), "{stderr}");
    let without = launch_with(&emulator, &backend, None, None);
    refused_at_start(&without, &["PROCORE_STORE_KEY", "encrypted"]).await;
    let malformed = launch_with(&emulator, &backend, Some("not-a-key"), None);
    refused_at_start(
        &malformed,
        &["PROCORE_STORE_KEY", "openssl rand -base64 32"],
    )
    .await;

    // Rotation: the new key, the old one as previous. The pair reads, and its next save
    // is under the new key, after which the old key is no longer needed.
    let rotating = launch_with(&emulator, &backend, Some(&two), Some(&one));
    let (client, _logs) = stdio_client(&rotating).await;
    assert_eq!(
        refresh_stored(&client).await,
        third,
        "read with the previous key"
    );
    let fourth = refresh_after(&client, &third).await;
    client.cancel().await.unwrap();
    assert_eq!(backend.key_ids(), vec![Some(key_id(&two))]);
    let rotated = launch_with(&emulator, &backend, Some(&two), None);
    let (client, _logs) = stdio_client(&rotated).await;
    let fifth = refresh_after(&client, &fourth).await;
    client.cancel().await.unwrap();
    canaries.extend(tokens(&[&fourth, &fifth]));
    assert_none_at_rest(&backend, &canaries);
    refused_at_start(
        &launch_with(&emulator, &backend, Some(&one), None),
        &["PROCORE_STORE_KEY", &key_id(&two)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_store_file_opened_with_a_key_is_sealed_at_its_next_save() {
    migrated_on(Backend::file()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_redis_store_opened_with_a_key_is_sealed_at_its_next_save() {
    if let Some(backend) = Backend::redis() {
        migrated_on(backend).await;
    }
}

async fn migrated_on(backend: Backend) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let plain = launch_with(&emulator, &backend, None, None);
    let (client, _logs) = stdio_client(&plain).await;
    let (_, first) = sign_in(&client, &emulator).await;
    client.cancel().await.unwrap();
    assert_eq!(backend.key_ids(), vec![None]);
    let refresh_token = field(&first, "refresh_token");
    assert!(
        backend.at_rest().contains(&refresh_token),
        "without a key the response is plain"
    );

    let sealing = launch_with(&emulator, &backend, Some(&key(3)), None);
    let (client, _logs) = stdio_client(&sealing).await;
    // The plain pair reads: its refresh token, from the store, is the one refreshed.
    let renewed = refresh_stored(&client).await;
    assert_ne!(renewed["refresh_token"], first["refresh_token"]);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    client.cancel().await.unwrap();
    assert_eq!(backend.key_ids(), vec![Some(key_id(&key(3)))]);
    assert_none_at_rest(&backend, &tokens(&[&renewed]));
    // The replaced refresh token is remembered only as a hash.
    let at_rest = backend.at_rest();
    let replaced_hash = {
        let digest = ring::digest::digest(&ring::digest::SHA256, refresh_token.as_bytes());
        digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    assert!(at_rest.contains(&replaced_hash), "its hash is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_reads_the_sealed_store_with_the_key_and_refuses_another() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let backend = Backend::file();
    let Backend::File(dir) = &backend else {
        unreachable!()
    };
    let (client, _logs) =
        stdio_client(&launch_with(&emulator, &backend, Some(&key(4)), None)).await;
    let (_, first) = sign_in(&client, &emulator).await;
    client.cancel().await.unwrap();

    let token =
        run(&command("token", &emulator, &dir.file()).env("PROCORE_STORE_KEY", &key(4))).await;
    assert_eq!(token.code, Some(0), "{}", token.stderr);
    assert_eq!(token.stdout.trim(), field(&first, "access_token"));

    let wrong =
        run(&command("token", &emulator, &dir.file()).env("PROCORE_STORE_KEY", &key(5))).await;
    assert_ne!(wrong.code, Some(0));
    assert!(wrong.stdout.is_empty(), "{}", wrong.stdout);
    assert!(
        wrong.stderr.contains("PROCORE_STORE_KEY"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains(&key(5)) && !wrong.stderr.contains(&key(4)));
    let without = run(&command("token", &emulator, &dir.file())).await;
    assert_ne!(without.code, Some(0));
    assert!(
        without.stderr.contains("PROCORE_STORE_KEY"),
        "{}",
        without.stderr
    );
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        0,
        "nothing sent"
    );
}

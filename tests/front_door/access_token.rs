//! "A working access token": the `get_access_token` tool and the `token` command, through
//! the real binary against the local emulator. A stored token with time left is handed out
//! with no request to the login host; one running short is renewed once however many
//! callers (in however many processes) ask at once; an empty store or an ended sign-in
//! says how to sign in; no refresh token ever comes out, and no token reaches the log.

use std::time::Duration;

use crate::{
    common::{emulator_flow::*, *},
    token_store::{call, delay_refreshes, field, first_pair, launch, stored},
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
    let instructions = client.peer_info().unwrap().instructions.clone().unwrap();
    assert!(instructions.contains(GET), "{instructions}");
    let tools = client.list_all_tools().await.unwrap();
    let tool = find_tool(&tools, GET);
    let annotations = tool.annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
    assert!(tool.output_schema.is_some());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_held_credentials_the_stored_token_is_handed_out_but_not_renewed() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let open = Launch::against(emulator.base_url())
        .arg("--token-store")
        .arg(dir.file().to_str().unwrap());
    let (client, _logs) = stdio_client(&open).await;
    let tools = client.list_all_tools().await.unwrap();
    let description = find_tool(&tools, GET).description.clone().unwrap();
    assert!(
        description.contains("holds no client credentials"),
        "{description}"
    );
    let code = authorize_as_user(&emulator.authorize_url(OOB, "s")).await;
    let first = call(
        &client,
        crate::common::TOOL,
        json!({"grant_type": "authorization_code", "code": code, "redirect_uri": OOB,
               "client_id": emulator.client_id(),
               "client_secret": emulator.client_secret().expose()}),
    )
    .await;
    assert!(!is_error(&first), "{}", text(&first));

    let token = token_of(&call(&client, GET, json!({})).await);
    assert_eq!(token["refreshed"], false, "the only pair stored");
    let short = call(&client, GET, json!({"min_valid_secs": 6000})).await;
    assert!(is_error(&short));
    let message = text(&short);
    assert!(
        message.contains("no client credentials are held"),
        "{message}"
    );
    assert!(
        message.contains("get_or_refresh_an_access_token"),
        "{message}"
    );
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 0);
    client.cancel().await.unwrap();
}

// ───────────────────────────── the `token` and `login` commands ─────────────────────────────

/// `procore-token-mcp SUBCOMMAND` against `emulator`, holding its credentials, on `store`.
pub(crate) fn command(
    subcommand: &str,
    emulator: &procore_emulator::RunningEmulator,
    store: &std::path::Path,
) -> Launch {
    Launch::default()
        .arg(subcommand)
        .arg("--login-url")
        .arg(emulator.base_url())
        .arg("--token-store")
        .arg(store.to_str().unwrap())
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose())
}

/// What a finished command wrote, and how it exited.
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) async fn run(launch: &Launch) -> Ran {
    let mut command = launch.command();
    command.stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends")
        .unwrap();
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_the_stored_token_alone_and_renews_it_when_asked() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let first = first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();
    let before = emulator.stats();

    let token = command("token", &emulator, &dir.file()).env("RUST_LOG", "trace");
    let fresh = run(&token).await;
    assert_eq!(fresh.code, Some(0), "{}", fresh.stderr);
    assert_eq!(fresh.stdout, format!("{}\n", field(&first, "access_token")));
    assert_eq!(emulator.stats(), before, "nothing was sent");

    // A login host that fails is not a sign-in to ask for: exit 1.
    emulator
        .arm(procore_emulator::Fault::Status(
            procore_emulator::StatusFault {
                code: 503,
                retry_after_secs: None,
                times: Some(1),
                grant_type: Some(GrantType::RefreshToken),
            },
        ))
        .unwrap();
    let failed = run(&token.clone().arg("--min-valid-secs").arg("86400")).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert_eq!(failed.stdout, "");
    assert!(failed.stderr.contains("HTTP 503"), "{}", failed.stderr);
    assert_eq!(stored(&dir.file()), first, "the store keeps its pair");

    let renewed = run(&token.clone().arg("--min-valid-secs").arg("6000")).await;
    assert_eq!(renewed.code, Some(0), "{}", renewed.stderr);
    let pair = stored(&dir.file());
    assert_eq!(
        renewed.stdout,
        format!("{}\n", field(&pair, "access_token"))
    );
    assert_ne!(pair["access_token"], first["access_token"]);
    assert_eq!(
        emulator.token_requests(GrantType::RefreshToken),
        2,
        "the failed one, then this one"
    );
    assert_eq!(emulator.successful_refreshes(), 1);
    let info = token_info(emulator.base_url(), renewed.stdout.trim()).await;
    assert_eq!(info.status, 200, "the printed token works: {}", info.text);

    for ran in [&fresh, &renewed, &failed] {
        for secret in [
            field(&first, "access_token"),
            field(&first, "refresh_token"),
            field(&pair, "access_token"),
            field(&pair, "refresh_token"),
            emulator.client_secret().expose().to_owned(),
        ] {
            assert!(
                !ran.stderr.contains(&secret),
                "a secret on stderr:\n{}",
                ran.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_says_what_is_missing_and_exits_2_only_for_a_sign_in() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let empty = run(&command("token", &emulator, &dir.file())).await;
    assert_eq!(empty.code, Some(2), "{}", empty.stderr);
    assert_eq!(empty.stdout, "", "nothing on stdout");
    assert!(
        empty.stderr.contains("a sign-in is needed"),
        "{}",
        empty.stderr
    );
    assert!(
        empty.stderr.contains("procore-token-mcp login"),
        "{}",
        empty.stderr
    );

    let no_store = run(&Launch::default()
        .arg("token")
        .arg("--login-url")
        .arg(emulator.base_url())
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose()))
    .await;
    assert_eq!(no_store.code, Some(1), "{}", no_store.stderr);
    assert!(
        no_store.stderr.contains("--token-store"),
        "{}",
        no_store.stderr
    );
    assert_eq!(no_store.stdout, "");

    let no_credentials = run(&Launch::default()
        .arg("token")
        .arg("--token-store")
        .arg(dir.file().to_str().unwrap()))
    .await;
    assert_eq!(no_credentials.code, Some(1), "{}", no_credentials.stderr);
    assert!(
        no_credentials
            .stderr
            .contains("PROCORE_CLIENT_ID and PROCORE_CLIENT_SECRET"),
        "{}",
        no_credentials.stderr
    );
    assert_eq!(emulator.stats().token_requests.refresh_token, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_and_agents_share_one_refresh() {
    let emulator =
        start_emulator(EmulatorConfig::generated().with_access_ttl(Duration::from_secs(60))).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    first_pair(&client, &emulator).await;

    delay_refreshes(&emulator, 600);
    let token = command("token", &emulator, &dir.file());
    let scripts = futures::future::join_all((0..4).map(|_| run(&token)));
    let agents = futures::future::join_all((0..4).map(|_| call(&client, GET, json!({}))));
    let (scripts, agents) = tokio::join!(scripts, agents);
    assert_eq!(emulator.token_requests(GrantType::RefreshToken), 1);
    let pair = stored(&dir.file());
    for ran in &scripts {
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert_eq!(ran.stdout.trim(), field(&pair, "access_token"));
    }
    for result in &agents {
        assert_eq!(token_of(result)["access_token"], pair["access_token"]);
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_renewal_waits_for_the_answer_and_keeps_the_pair() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let first = first_pair(&client, &emulator).await;
    client.cancel().await.unwrap();

    delay_refreshes(&emulator, 800);
    let mut renewal = command("token", &emulator, &dir.file())
        .arg("--min-valid-secs")
        .arg("6000")
        .command();
    renewal
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = renewal.spawn().unwrap();
    let stdout = Logs::follow(child.stdout.take().unwrap());
    let stderr = Logs::follow(child.stderr.take().unwrap());
    wait_until(
        || emulator.token_requests(GrantType::RefreshToken) == 1,
        || "the refresh reached the emulator".to_owned(),
    )
    .await;
    let pid = child.id().unwrap().to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (stdout.until_closed().await, stderr.until_closed().await);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(stdout, "", "no token after an interruption");
    assert_eq!(emulator.successful_refreshes(), 1);
    let pair = stored(&dir.file());
    assert_ne!(
        field(&pair, "refresh_token"),
        field(&first, "refresh_token"),
        "the rotated pair was stored, not lost"
    );
    let next = run(&command("token", &emulator, &dir.file())).await;
    assert_eq!(next.code, Some(0), "still signed in: {}", next.stderr);
    assert_eq!(next.stdout.trim(), field(&pair, "access_token"));
}

/// `login` running, its stdin open, its stderr followed.
struct Login {
    child: tokio::process::Child,
    stdout: Logs,
    stderr: Logs,
}

impl Login {
    async fn start(launch: &Launch) -> (Self, String) {
        let mut command = launch.clone().arg("--no-browser").command();
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = Logs::follow(child.stdout.take().unwrap());
        let stderr = Logs::follow(child.stderr.take().unwrap());
        let link = stderr.wait_for("/oauth/authorize?").await.trim().to_owned();
        (
            Self {
                child,
                stdout,
                stderr,
            },
            link,
        )
    }

    /// Paste `line`; the exit code, stdout and stderr once it ends.
    async fn paste(mut self, line: &str) -> Ran {
        use tokio::io::AsyncWriteExt;
        let mut stdin = self.child.stdin.take().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("login ends")
            .unwrap();
        Ran {
            code: status.code(),
            stdout: self.stdout.until_closed().await,
            stderr: self.stderr.until_closed().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_out_of_band_signs_in_once_and_token_then_works() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (login, link) = Login::start(&command("login", &emulator, &dir.file())).await;
    assert!(
        link.contains("redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob"),
        "{link}"
    );
    assert!(!link.contains(emulator.client_secret().expose()));
    assert_eq!(emulator.stats().token_requests.authorization_code, 0);
    let code = authorize_as_user(&link).await;
    let ran = login.paste(&code).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let pair = stored(&dir.file());
    let line = ran.stdout.trim();
    assert!(line.starts_with("Signed in as user "), "{line}");
    assert!(
        line.contains(emulator.client_id()) && line.contains("expires"),
        "{line}"
    );
    assert_eq!(ran.stdout.lines().count(), 1, "one line");
    for secret in [
        field(&pair, "access_token"),
        field(&pair, "refresh_token"),
        code,
    ] {
        assert!(!ran.stdout.contains(&secret) && !ran.stderr.contains(&secret));
    }
    assert_eq!(emulator.token_requests(GrantType::AuthorizationCode), 1);

    let token = run(&command("token", &emulator, &dir.file())).await;
    assert_eq!(token.code, Some(0), "{}", token.stderr);
    assert_eq!(token.stdout.trim(), field(&pair, "access_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_a_foreign_state_before_sending_and_takes_the_redirected_address() {
    let callback = "http://localhost/callback";
    let emulator = start_emulator(EmulatorConfig::generated().with_redirect_uri(callback)).await;
    let dir = StoreDir::new();
    let launch = command("login", &emulator, &dir.file())
        .arg("--redirect-uri")
        .arg(callback);

    // Where the browser is sent once the user approves.
    let redirected = |link: String| async move {
        let answer = Answer::from(http().get(&link).send().await.unwrap()).await;
        assert!(answer.status.is_redirection(), "{}", answer.text);
        answer.header("location").unwrap().to_owned()
    };
    let (login, link) = Login::start(&launch).await;
    let address = redirected(link).await;
    assert!(
        address.starts_with(callback) && address.contains("state="),
        "{address}"
    );
    let forged = url::Url::parse_with_params(
        callback,
        url::Url::parse(&address)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "forged".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            }),
    )
    .unwrap();
    let refused = login.paste(forged.as_str()).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("state"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("Nothing was sent"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        emulator.token_requests(GrantType::AuthorizationCode),
        0,
        "nothing sent"
    );
    assert!(!dir.file().exists() || stored_pairs_empty(&dir.file()));

    let (login, link) = Login::start(&launch).await;
    let address = redirected(link).await;
    let ran = login.paste(&address).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(emulator.token_requests(GrantType::AuthorizationCode), 1);
    stored(&dir.file());

    // A code used once is refused by Procore: exit 2, say so.
    let (login, _link) = Login::start(&launch).await;
    let code = url::Url::parse(&address)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let reused = login.paste(&code).await;
    assert_eq!(reused.code, Some(2), "{}", reused.stderr);
    assert!(reused.stderr.contains("invalid_grant"), "{}", reused.stderr);
}

fn stored_pairs_empty(store: &std::path::Path) -> bool {
    crate::token_store::stored_pairs(store).is_empty()
}

//! `sign_in` through the real binary and rmcp's client with an elicitation handler (the
//! user at the client), against the local emulator: the link shown (URL mode, or a form
//! carrying it), the code asked in a form and exchanged once, then `get_access_token` works
//! with no further sign-in; a decline or a cancel at either question, and a pasted address
//! of another sign-in, send nothing; a client without elicitation gets the other way; no
//! code or token in any result or in the trace log.

use std::sync::{Arc, Mutex};

use crate::{
    common::{emulator_flow::*, *},
    token_store::{call, field, launch, stored, stored_pairs},
};
use procore_emulator::{EmulatorConfig, GrantType, RunningEmulator};
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
        ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability,
        FormElicitationCapability, Implementation, UrlElicitationCapability,
    },
    service::{RequestContext, RunningService},
};
use serde_json::{Value, json};

const SIGN_IN: &str = "sign_in";

/// What the user at the client does when asked.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    /// Opens the link, approves, pastes the code.
    Approve,
    /// Declines (or cancels) when shown the link.
    AtLink(ElicitationAction),
    /// Opens the link and approves, then declines (or cancels) when asked for the code.
    AtCode(ElicitationAction),
    /// Pastes an address whose `state` is not this sign-in's.
    ForeignState,
}

/// The user at an MCP client that declares elicitation (form mode, and URL mode if
/// `url_mode`), recording every question the server asked.
#[derive(Clone)]
struct User {
    url_mode: bool,
    answer: Answer,
    asked: Arc<Mutex<Vec<ElicitRequestParams>>>,
    code: Arc<Mutex<Option<String>>>,
}

impl User {
    fn new(url_mode: bool, answer: Answer) -> Self {
        Self {
            url_mode,
            answer,
            asked: Arc::default(),
            code: Arc::default(),
        }
    }

    fn asked(&self) -> Vec<ElicitRequestParams> {
        self.asked.lock().unwrap().clone()
    }

    /// The code the user copied from Procore's page, once they opened the link.
    fn code(&self) -> Option<String> {
        self.code.lock().unwrap().clone()
    }

    async fn open(&self, link: &str) {
        let code = authorize_as_user(link).await;
        *self.code.lock().unwrap() = Some(code);
    }
}

/// The sign-in link a form's message carries (a word of its own).
fn link_in(message: &str) -> String {
    message
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("/oauth/authorize?"))
        .unwrap_or_else(|| panic!("a link in {message:?}"))
        .to_owned()
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        let mut elicitation =
            ElicitationCapability::new().with_form(FormElicitationCapability::new());
        if self.url_mode {
            elicitation = elicitation.with_url(UrlElicitationCapability::new());
        }
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(elicitation);
        ClientConfig::new(capabilities, Implementation::new("sign-in-test-user", "1"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        self.asked.lock().unwrap().push(request.clone());
        let link = match &request {
            ElicitRequestParams::UrlElicitationParams { url, .. } => Some(url.clone()),
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            } if requested_schema.properties.is_empty() => Some(link_in(message)),
            _ => None,
        };
        if let Some(link) = link {
            if let Answer::AtLink(action) = &self.answer {
                return Ok(ElicitResult::new(action.clone()));
            }
            self.open(&link).await;
            return Ok(ElicitResult::new(ElicitationAction::Accept));
        }
        let code = self.code().expect("the code is asked for after the link");
        let pasted = match &self.answer {
            Answer::AtCode(action) => return Ok(ElicitResult::new(action.clone())),
            Answer::ForeignState => format!("http://localhost/cb?code={code}&state=forged"),
            _ => code,
        };
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "code": pasted })))
    }
}

async fn sign_in(client: &RunningService<RoleClient, User>) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(SIGN_IN).with_arguments(args(json!({}))))
        .await
        .expect("tools/call answered")
}

/// The server with a store and held credentials, at trace level, and a client whose user
/// answers `answer`.
async fn signing_in(
    emulator: &RunningEmulator,
    dir: &StoreDir,
    user: User,
) -> (RunningService<RoleClient, User>, Logs) {
    let traced = launch(emulator, &dir.file()).env("RUST_LOG", "trace");
    stdio_client_with(&traced, user).await
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The structured facts of a result, and that they are all it holds.
fn facts(result: &CallToolResult) -> Value {
    let value = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("structured content: {}", text(result)));
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    let mut expected = vec![
        "api_base_url",
        "client_id",
        "environment",
        "login_host",
        "signed_in",
        "status",
    ];
    if value["signed_in"] == true {
        expected.push("expires_at");
        expected.sort_unstable();
    }
    assert_eq!(names, expected, "{value}");
    value
}

async fn accepted(url_mode: bool) {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let user = User::new(url_mode, Answer::Approve);
    let (client, logs) = signing_in(&emulator, &dir, user.clone()).await;

    let result = sign_in(&client).await;
    assert!(!is_error(&result), "{}", text(&result));
    let value = facts(&result);
    assert_eq!(value["signed_in"], true);
    assert_eq!(value["status"], "signed_in");
    assert_eq!(value["client_id"], emulator.client_id());
    assert_eq!(value["environment"], "custom");
    assert_eq!(value["api_base_url"], emulator.base_url());
    let expires_at = value["expires_at"].as_u64().unwrap();
    assert!(expires_at.abs_diff(now_secs() + 5400) <= 60, "{expires_at}");
    assert_eq!(emulator.token_requests(GrantType::AuthorizationCode), 1);

    // What was asked: the link (as a URL elicitation, or a form carrying it), then the code.
    let asked = user.asked();
    assert_eq!(asked.len(), 2, "{asked:?}");
    match (&asked[0], url_mode) {
        (ElicitRequestParams::UrlElicitationParams { url, .. }, true) => {
            assert!(url.starts_with(&format!("{}/oauth/authorize?", emulator.base_url())));
            assert!(url.contains("state="), "{url}");
        }
        (
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            },
            false,
        ) => {
            assert!(requested_schema.properties.is_empty());
            assert!(link_in(message).contains("/oauth/authorize?"), "{message}");
        }
        (other, _) => panic!("the link shown as {other:?} with url_mode {url_mode}"),
    }
    let ElicitRequestParams::FormElicitationParams {
        requested_schema, ..
    } = &asked[1]
    else {
        panic!("the code is asked in a form: {:?}", asked[1]);
    };
    assert!(requested_schema.properties.contains_key("code"));

    // Signed in once: get_access_token hands out the stored token, nothing sent.
    let pair = stored(&dir.file());
    let before = emulator.stats();
    let token = client
        .call_tool(CallToolRequestParams::new("get_access_token").with_arguments(args(json!({}))))
        .await
        .unwrap();
    assert!(!is_error(&token), "{}", text(&token));
    let token = token.structured_content.unwrap();
    assert_eq!(token["access_token"], pair["access_token"]);
    assert_eq!(token["refreshed"], false);
    assert_eq!(emulator.stats(), before, "no further sign-in or request");

    // Neither the code nor a token in the result or the trace log.
    let secrets = [
        user.code().unwrap(),
        field(&pair, "access_token"),
        field(&pair, "refresh_token"),
        emulator.client_secret().expose().to_owned(),
    ];
    let shown = serde_json::to_string(&result).unwrap();
    client.cancel().await.unwrap();
    let log = logs.until_closed().await;
    assert!(log.contains("sign_in"), "the call is logged:\n{log}");
    for secret in &secrets {
        assert!(
            !shown.contains(secret.as_str()),
            "a secret in the result: {shown}"
        );
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_with_a_url_elicitation_signs_in_once_and_get_access_token_then_works() {
    accepted(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_with_forms_only_the_link_comes_in_a_form() {
    accepted(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_or_cancelled_at_either_question_sends_nothing() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    for (answer, status) in [
        (Answer::AtLink(ElicitationAction::Decline), "declined"),
        (Answer::AtLink(ElicitationAction::Cancel), "cancelled"),
        (Answer::AtCode(ElicitationAction::Decline), "declined"),
        (Answer::AtCode(ElicitationAction::Cancel), "cancelled"),
    ] {
        let user = User::new(true, answer.clone());
        let (client, logs) = signing_in(&emulator, &dir, user.clone()).await;
        let result = sign_in(&client).await;
        assert!(!is_error(&result), "{answer:?}: {}", text(&result));
        let value = facts(&result);
        assert_eq!(value["signed_in"], false, "{answer:?}");
        assert_eq!(value["status"], status, "{answer:?}");
        let said = serde_json::to_string(&result.content).unwrap();
        assert!(
            said.contains(&format!("The user {status} the sign-in; nothing was sent")),
            "{said}"
        );
        let questions = if matches!(answer, Answer::AtLink(_)) {
            1
        } else {
            2
        };
        assert_eq!(user.asked().len(), questions, "{answer:?}");
        assert_eq!(
            emulator.stats().token_requests.total,
            0,
            "{answer:?}: nothing sent"
        );
        client.cancel().await.unwrap();
        let log = logs.until_closed().await;
        if let Some(code) = user.code() {
            assert!(!log.contains(&code), "the code in the log:\n{log}");
        }
    }
    assert!(!dir.file().exists() || stored_pairs(&dir.file()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_of_another_sign_in_is_refused_before_anything_is_sent() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let user = User::new(false, Answer::ForeignState);
    let (client, logs) = signing_in(&emulator, &dir, user.clone()).await;
    let result = sign_in(&client).await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("Nothing was sent to Procore"), "{message}");
    assert!(message.contains("state"), "{message}");
    assert_eq!(emulator.stats().token_requests.total, 0, "nothing sent");
    assert!(!dir.file().exists() || stored_pairs(&dir.file()).is_empty());
    client.cancel().await.unwrap();
    let log = logs.until_closed().await;
    let code = user.code().unwrap();
    assert!(!message.contains(&code) && !log.contains(&code), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_elicitation_is_told_the_other_way() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let (client, _logs) = stdio_client(&launch(&emulator, &dir.file())).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = find_tool(&tools, SIGN_IN);
    let annotations = tool.annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
    assert_eq!(annotations.open_world_hint, Some(true));
    assert!(tool.output_schema.is_some());
    let instructions = client.peer_info().unwrap().instructions.clone().unwrap();
    assert!(instructions.contains(SIGN_IN), "{instructions}");

    let result = call(&client, SIGN_IN, json!({})).await;
    assert!(is_error(&result));
    let message = text(&result);
    for needed in [
        "did not declare the elicitation capability",
        "Nothing was sent",
        "grant_app_authorization",
        "get_or_refresh_an_access_token",
    ] {
        assert!(message.contains(needed), "{needed:?} in {message}");
    }
    assert_eq!(emulator.stats().token_requests.total, 0);

    // get_access_token's guidance names sign_in first.
    let empty = call(&client, "get_access_token", json!({})).await;
    assert!(is_error(&empty));
    assert!(text(&empty).contains("Call sign_in"), "{}", text(&empty));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_streamable_http_the_handshake_era_asks_and_the_stateless_era_cannot() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let server = HttpServer::start(&launch(&emulator, &dir.file())).await;

    // 2026-07-28 forbids requests to the client: the other way, nothing asked or sent.
    let user = User::new(true, Answer::Approve);
    let modern = server.modern_client_with(user.clone()).await;
    let refused = sign_in(&modern).await;
    assert!(is_error(&refused));
    let message = text(&refused);
    assert!(message.contains("protocol 2026-07-28"), "{message}");
    assert!(message.contains("grant_app_authorization"), "{message}");
    assert!(user.asked().is_empty(), "{:?}", user.asked());
    assert_eq!(emulator.stats().token_requests.total, 0);
    modern.cancel().await.unwrap();

    // The handshake era: the questions come on the call's own stream.
    let user = User::new(true, Answer::Approve);
    let legacy = server.legacy_client_with(user.clone()).await;
    let result = sign_in(&legacy).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(facts(&result)["signed_in"], true);
    assert_eq!(user.asked().len(), 2);
    assert_eq!(emulator.token_requests(GrantType::AuthorizationCode), 1);
    let pair = stored(&dir.file());
    legacy.cancel().await.unwrap();
    let log = server.stop().await;
    for secret in [
        user.code().unwrap(),
        field(&pair, "access_token"),
        field(&pair, "refresh_token"),
    ] {
        assert!(!log.contains(&secret), "a secret in the log:\n{log}");
    }
}

#[tokio::test]
async fn listed_only_with_held_credentials_and_a_store() {
    let emulator = start_emulator(EmulatorConfig::generated()).await;
    let dir = StoreDir::new();
    let held_only = Launch::against(emulator.base_url())
        .env("PROCORE_CLIENT_ID", emulator.client_id())
        .env("PROCORE_CLIENT_SECRET", emulator.client_secret().expose());
    let store_only = Launch::against(emulator.base_url())
        .arg("--token-store")
        .arg(dir.file().to_str().unwrap());
    for launch in [held_only, store_only] {
        let (client, _logs) = stdio_client(&launch).await;
        let tools = client.list_all_tools().await.unwrap();
        assert!(tools.iter().all(|tool| tool.name != SIGN_IN));
        let unlisted = client
            .call_tool(CallToolRequestParams::new(SIGN_IN).with_arguments(args(json!({}))))
            .await;
        assert!(unlisted.is_err(), "an unknown tool");
        client.cancel().await.unwrap();
    }
}

//! Test support around the local OAuth emulator: a user's browser at the authorize page,
//! plain HTTP calls to its endpoints, and the `emulator` and `demo` subcommands of the real
//! binary with their start-up lines parsed.

use std::{process::Stdio, time::Duration};

use procore_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;
use tokio::process::Child;

use super::{Launch, Logs};

pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

/// An in-process emulator with a generated app on 127.0.0.1.
pub async fn start_emulator(config: EmulatorConfig) -> RunningEmulator {
    super::init();
    Emulator::start(config).await.expect("the emulator starts")
}

/// An HTTP client that does not follow redirects (to look at them).
pub fn http() -> reqwest::Client {
    super::init();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What an HTTP call answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Self {
            status,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("JSON body, got {}: {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    /// The `error` field of an OAuth error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// Assert an RFC 6749 §5.2 error: status, code, a description, and no-store.
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.error(), error, "{}", self.text);
        assert!(
            self.json()["error_description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{}",
            self.text
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert!(
            self.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
}

/// Assert a successful token answer: no-store JSON, a long random bearer token that expires
/// in `expires_in`, `created_at` now, a refresh token iff `with_refresh`, no scope.
pub fn assert_token_response(answer: &Answer, with_refresh: bool, expires_in: u64) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = answer.json();
    let access = body["access_token"].as_str().unwrap();
    assert!(access.len() >= 32, "long random access token");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], expires_in);
    let created = body["created_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(created.abs_diff(now) < 120, "created_at is Unix seconds");
    match body.get("refresh_token") {
        Some(Value::String(refresh)) if with_refresh => {
            assert!(refresh.len() >= 32);
            assert_ne!(refresh, access);
        }
        None if !with_refresh => {}
        other => panic!("refresh_token {other:?}, wanted one: {with_refresh}"),
    }
    assert!(body.get("scope").is_none(), "Procore sends no scope");
}

/// The user opens `authorize_url` in a browser: follow the redirects to the page at
/// `/oauth/authorize/<CODE>` and copy the code shown there.
pub async fn authorize_as_user(authorize_url: &str) -> String {
    super::init();
    let browser = reqwest::Client::new();
    let response = browser.get(authorize_url).send().await.unwrap();
    let final_url = response.url().clone();
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    let path_code = final_url
        .path()
        .strip_prefix("/oauth/authorize/")
        .unwrap_or_else(|| panic!("the browser ends at /oauth/authorize/<CODE>: {final_url}"))
        .to_owned();
    let shown = code_on_page(&page);
    assert_eq!(shown, path_code, "the page shows the code of its URL");
    shown
}

/// The code in the page's `<code id="authorization_code">` element.
pub fn code_on_page(page: &str) -> String {
    let start = page
        .find("id=\"authorization_code\">")
        .unwrap_or_else(|| panic!("no code element in:\n{page}"))
        + "id=\"authorization_code\">".len();
    let end = start + page[start..].find('<').unwrap();
    page[start..end].to_owned()
}

/// `POST {base}/oauth/token` with a JSON body.
pub async fn post_token(base: &str, body: &Value) -> Answer {
    let response = http()
        .post(format!("{base}/oauth/token"))
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// `GET {base}/oauth/token/info` with the bearer token.
pub async fn token_info(base: &str, access_token: &str) -> Answer {
    let response = http()
        .get(format!("{base}/oauth/token/info"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// `POST {base}/oauth/revoke` with a JSON body.
pub async fn revoke(base: &str, body: &Value) -> Answer {
    let response = http()
        .post(format!("{base}/oauth/revoke"))
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// `GET {base}/_emulator/stats` as JSON.
pub async fn stats(base: &str) -> Value {
    let answer = Answer::from(
        http()
            .get(format!("{base}/_emulator/stats"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

/// `POST {base}/_emulator/faults` with `update`.
pub async fn set_faults(base: &str, update: &Value) -> Answer {
    let response = http()
        .post(format!("{base}/_emulator/faults"))
        .json(update)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// The binary with `args` (on the clean environment of [`Launch`], without the emulator's
/// variables either), its stdout and stderr followed.
fn spawn(args: &[&str]) -> (Child, Logs, Logs) {
    let mut command = args
        .iter()
        .fold(Launch::default(), |launch, arg| launch.arg(*arg))
        .command();
    for name in [
        "EMULATOR_LISTEN",
        "EMULATOR_CLIENT_ID",
        "EMULATOR_CLIENT_SECRET",
        "EMULATOR_REDIRECT_URI",
        "EMULATOR_CODE_TTL_SECS",
        "EMULATOR_ACCESS_TTL_SECS",
    ] {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn the binary");
    let stdout = Logs::follow(child.stdout.take().expect("piped stdout"));
    let stderr = Logs::follow(child.stderr.take().expect("piped stderr"));
    (child, stdout, stderr)
}

/// The `emulator` subcommand of the real binary.
pub struct EmulatorProcess {
    pub child: Child,
    pub base: String,
    pub client_id: String,
    /// The printed secret (`(given)` when it came from a flag).
    pub client_secret: String,
    pub authorize_url: String,
    pub stdout: Logs,
    pub logs: Logs,
}

impl EmulatorProcess {
    /// Start `procore-token-mcp emulator --listen 127.0.0.1:0 EXTRA…` and read its banner.
    pub async fn start(extra: &[&str]) -> Self {
        let mut args = vec!["emulator", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (child, stdout, logs) = spawn(&args);
        let listening = stdout.wait_for("emulator listening on ").await;
        let base = listening
            .strip_prefix("emulator listening on ")
            .expect("banner starts the line")
            .trim()
            .to_owned();
        let app = stdout.wait_for("emulator client_id=").await;
        let field = |name: &str| {
            app.split_whitespace()
                .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {app}"))
                .to_owned()
        };
        let client_id = field("client_id");
        let client_secret = field("client_secret");
        let authorize_url = stdout
            .wait_for("emulator authorize_url=")
            .await
            .trim_start_matches("emulator authorize_url=")
            .to_owned();
        Self {
            child,
            base,
            client_id,
            client_secret,
            authorize_url,
            stdout,
            logs,
        }
    }
}

/// The `demo` subcommand of the real binary, with what it printed.
pub struct DemoProcess {
    pub child: Child,
    pub stdout: Logs,
    pub logs: Logs,
    pub mcp_url: String,
    pub sse_url: String,
    pub emulator_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
}

impl DemoProcess {
    pub async fn start() -> Self {
        let (child, stdout, logs) = spawn(&["demo", "--listen", "127.0.0.1:0"]);
        stdout.wait_for("Ctrl-C stops the demo").await;
        let labelled = |label: &str| {
            let text = stdout.text();
            text.lines()
                .find_map(|line| line.trim().strip_prefix(label))
                .unwrap_or_else(|| panic!("{label:?} in:\n{text}"))
                .trim()
                .to_owned()
        };
        let mcp_url = labelled("MCP URL (streamable HTTP):");
        let sse_url = labelled("MCP URL (old HTTP+SSE):");
        let emulator_url = labelled("Emulator (login host):");
        let client_id = labelled("Demo client_id:");
        let client_secret = labelled("Demo client_secret:");
        let authorize_url = stdout
            .text()
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(&format!("{emulator_url}/oauth/authorize?")))
            .expect("an authorize URL on its own line")
            .to_owned();
        Self {
            child,
            stdout,
            logs,
            mcp_url,
            sse_url,
            emulator_url,
            client_id,
            client_secret,
            authorize_url,
        }
    }
}

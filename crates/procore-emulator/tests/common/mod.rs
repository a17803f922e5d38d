//! Test support: an in-process emulator on 127.0.0.1, a user's browser at the authorize
//! page, and plain HTTP calls to the emulator's endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use procore_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;

/// reqwest's TLS has no built-in crypto provider here (see this crate's dev-dependencies):
/// install rustls' ring provider before the first client is built. Plain HTTP never uses it.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

/// An in-process emulator with a generated app on 127.0.0.1.
pub async fn start_emulator(config: EmulatorConfig) -> RunningEmulator {
    init();
    Emulator::start(config).await.expect("the emulator starts")
}

/// An HTTP client that does not follow redirects (to look at them).
pub fn http() -> reqwest::Client {
    init();
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

/// The user opens `authorize_url` in a browser: follow the redirects to the page at
/// `/oauth/authorize/<CODE>` and copy the code shown there.
pub async fn authorize_as_user(authorize_url: &str) -> String {
    init();
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

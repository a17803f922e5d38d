//! `ProcoreClient`: one shared HTTP client, one attempt per request, raw answers out.

use std::{error::Error as _, time::Duration};

use bytes::{Bytes, BytesMut};
use reqwest::{Method, StatusCode, header};
use tokio::{sync::OnceCell, time::Instant};

use super::{LoginBase, REVOKE_PATH, TOKEN_INFO_PATH, TOKEN_PATH, TokenRequest};
use crate::oauth::{AccessToken, ClientId, ClientSecret, RevocableToken};

/// Largest upstream body read before the answer is cut off and reported.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

const USER_AGENT: &str = concat!(
    env!("CARGO_PKG_NAME"),
    "/",
    env!("CARGO_PKG_VERSION"),
    " (MCP server; +https://github.com/procore-token-mcp/procore-token-mcp)"
);

/// How long an answer already on its way is still read once the timeout has passed.
pub const LATE_ANSWER_GRACE: Duration = Duration::from_millis(250);

/// The login host client. Cheap to share behind an `Arc`; the HTTP client inside is built
/// at the first request (start-up stays fast) and then reused for every request.
#[derive(Debug)]
pub struct ProcoreClient {
    base: LoginBase,
    timeout: Duration,
    max_response_bytes: usize,
    encoding: RequestEncoding,
    /// What the login host is called in messages.
    host_name: &'static str,
    http: OnceCell<reqwest::Client>,
}

/// How the body of `POST /oauth/token` is encoded. Procore's reference documents a JSON
/// body; its guides send form fields. `/oauth/revoke` is always form-encoded, as Procore
/// documents it (and RFC 7009 asks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestEncoding {
    #[default]
    Json,
    Form,
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// What the login host answered, untouched.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub body: Bytes,
    /// `Retry-After`, when present (429 and 503 answers).
    pub retry_after: Option<String>,
    /// `Location`, when present (a redirect, which is never followed).
    pub location: Option<String>,
    pub elapsed: Duration,
}

impl UpstreamResponse {
    /// A 2xx answer whose body is a JSON object with a string `access_token`.
    pub fn is_token_response(&self) -> bool {
        self.status.is_success()
            && serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .is_some_and(|body| body.get("access_token").is_some_and(|t| t.is_string()))
    }

    /// An error answer whose body says `invalid_grant`: the grant is spent, revoked or
    /// unknown.
    pub fn is_invalid_grant(&self) -> bool {
        !self.status.is_success()
            && serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .is_some_and(|body| {
                    body.get("error").and_then(serde_json::Value::as_str) == Some("invalid_grant")
                })
    }
}

/// Why no complete answer came back. None of these texts contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Nothing reached the login host: connecting (or resolving its name) failed.
    #[error("could not connect to {origin} ({detail}) after {elapsed:.1?}")]
    Connect {
        origin: String,
        detail: String,
        elapsed: Duration,
    },
    /// The whole exchange took longer than the timeout.
    #[error("no complete answer from {origin} within {timeout:?} (gave up after {elapsed:.1?})")]
    Timeout {
        origin: String,
        timeout: Duration,
        elapsed: Duration,
        /// Whether the connection was established, so the request may have been processed.
        connected: bool,
    },
    /// The connection failed after the request was sent (reset, closed mid-body, …).
    #[error("the connection to {origin} failed after {elapsed:.1?}: {detail}")]
    Transfer {
        origin: String,
        detail: String,
        elapsed: Duration,
    },
    /// The answer was larger than the limit; reading stopped there.
    #[error(
        "{origin} answered HTTP {status} with a body over the {limit}-byte limit; \
         reading stopped after {elapsed:.1?}"
    )]
    TooLarge {
        origin: String,
        status: StatusCode,
        limit: usize,
        elapsed: Duration,
    },
    /// The HTTP client could not be set up (TLS configuration); nothing was sent.
    #[error("the HTTP client could not be set up: {0}")]
    Setup(String),
}

impl UpstreamError {
    /// Whether the login host may have received and processed the request.
    pub fn may_have_reached_upstream(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Setup(_) => false,
            Self::Timeout { connected, .. } => *connected,
            Self::Transfer { .. } | Self::TooLarge { .. } => true,
        }
    }

    /// A short label for the log line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect_failed",
            Self::Timeout { .. } => "timeout",
            Self::Transfer { .. } => "transfer_failed",
            Self::TooLarge { .. } => "body_too_large",
            Self::Setup(_) => "client_setup_failed",
        }
    }
}

impl ProcoreClient {
    pub fn new(base: LoginBase, timeout: Duration) -> Self {
        Self {
            base,
            timeout,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            encoding: RequestEncoding::Json,
            host_name: "Procore's login host",
            http: OnceCell::new(),
        }
    }

    /// Call the login host `name` in messages (the demo's is "the local emulator").
    pub fn with_host_name(mut self, name: &'static str) -> Self {
        self.host_name = name;
        self
    }

    /// What the login host is called in messages: "Procore's login host" unless set.
    pub fn host_name(&self) -> &'static str {
        self.host_name
    }

    /// Encode token requests as `encoding`.
    pub fn with_request_encoding(mut self, encoding: RequestEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Set the largest body read from the login host.
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    pub fn base(&self) -> &LoginBase {
        &self.base
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST /oauth/token`, its body encoded as configured. Sent once, never retried.
    pub async fn request_token(
        &self,
        request: &TokenRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let body = match self.encoding {
            RequestEncoding::Json => (request.to_json(), JSON),
            RequestEncoding::Form => (request.to_form(), FORM),
        };
        self.send(Method::POST, TOKEN_PATH, Some(body), None).await
    }

    /// `GET /oauth/token/info` with the access token as bearer.
    pub async fn token_info(
        &self,
        access_token: &AccessToken,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send(
            Method::GET,
            TOKEN_INFO_PATH,
            None,
            Some(access_token.expose()),
        )
        .await
    }

    /// `POST /oauth/revoke`: revokes the token and its pair. Sent once.
    pub async fn revoke(
        &self,
        token: &RevocableToken,
        client_id: &ClientId,
        client_secret: &ClientSecret,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token.expose())
            .append_pair("client_id", client_id.as_str())
            .append_pair("client_secret", client_secret.expose())
            .finish();
        self.send(
            Method::POST,
            REVOKE_PATH,
            Some((body.into_bytes(), FORM)),
            None,
        )
        .await
    }

    /// Send one request to the login host and read the answer, bounded in time and size.
    /// `body` is the bytes and their content type; `bearer` goes into `Authorization`.
    ///
    /// The timeout is this client's own deadline, not the HTTP client's: when it passes,
    /// an answer that has already arrived is still read for [`LATE_ANSWER_GRACE`]. A process
    /// that was stalled (stopped, swapped out, its VM paused) past the deadline while
    /// Procore's answer waited in its socket would otherwise throw away a rotated pair,
    /// the only copy there is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
        bearer: Option<&str>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let exchange = self.exchange(method, path, body, bearer, started);
        tokio::pin!(exchange);
        if let Ok(answer) = tokio::time::timeout(self.timeout, &mut exchange).await {
            return answer;
        }
        match tokio::time::timeout(LATE_ANSWER_GRACE, &mut exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(UpstreamError::Timeout {
                origin: self.base.origin(),
                timeout: self.timeout,
                elapsed: started.elapsed(),
                // Connecting has its own timeout, as long as this one: had it not
                // connected, that error would have come first.
                connected: true,
            }),
        }
    }

    /// One request and its whole answer, unbounded in time (see [`Self::send`]).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
        bearer: Option<&str>,
        started: Instant,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let http = self.http().await?;
        let mut builder = http
            .request(method, self.base.endpoint(path))
            .header(header::ACCEPT, "application/json");
        if let Some((body, content_type)) = body {
            builder = builder
                .header(header::CONTENT_TYPE, content_type)
                .body(body);
        }
        if let Some(token) = bearer {
            let mut value =
                header::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    UpstreamError::Setup("the token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|error| self.classify(&error, started, false))?;
        let status = response.status();
        let headers = response.headers();
        let header_text = |name| {
            headers
                .get(name)
                .and_then(|value: &header::HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header_text(header::RETRY_AFTER);
        let location = header_text(header::LOCATION);
        if response
            .content_length()
            .is_some_and(|length| length > self.max_response_bytes as u64)
        {
            return Err(self.too_large(status, started));
        }
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_response_bytes {
                        return Err(self.too_large(status, started));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return Err(self.classify(&error, started, true)),
            }
        }
        Ok(UpstreamResponse {
            status,
            body: body.freeze(),
            retry_after,
            location,
            elapsed: started.elapsed(),
        })
    }

    async fn http(&self) -> Result<&reqwest::Client, UpstreamError> {
        self.http
            .get_or_try_init(|| async {
                crate::tls::install_crypto_provider();
                reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.timeout)
                    .https_only(self.base.origin().starts_with("https:"))
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|error| UpstreamError::Setup(describe(&error)))
            })
            .await
    }

    fn too_large(&self, status: StatusCode, started: Instant) -> UpstreamError {
        UpstreamError::TooLarge {
            origin: self.base.origin(),
            status,
            limit: self.max_response_bytes,
            elapsed: started.elapsed(),
        }
    }

    fn classify(&self, error: &reqwest::Error, started: Instant, in_body: bool) -> UpstreamError {
        let origin = self.base.origin();
        let elapsed = started.elapsed();
        if error.is_timeout() {
            UpstreamError::Timeout {
                origin,
                timeout: self.timeout,
                elapsed,
                connected: in_body || !error.is_connect(),
            }
        } else if error.is_connect() && !in_body {
            UpstreamError::Connect {
                origin,
                detail: describe(error),
                elapsed,
            }
        } else {
            UpstreamError::Transfer {
                origin,
                detail: describe(error),
                elapsed,
            }
        }
    }
}

/// The innermost causes of a reqwest error, without the URL (which carries no secret, but
/// is already named by the caller).
fn describe(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|seen: &String| seen.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A loopback login host whose one connection gets `reply` (after reading the request);
    /// `None` keeps the connection open without a word.
    async fn login_host(reply: Option<&'static [u8]>) -> ProcoreClient {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            match reply {
                Some(bytes) => {
                    let _ = stream.write_all(bytes).await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_millis(500))
            .with_max_response_bytes(1024)
    }

    /// A loopback login host that answers one request with 200 `{}` and hands its raw
    /// text (head and body) to the test.
    async fn recording_host() -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tell, told) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head and body arrive together from reqwest for these small requests; read
            // until the declared length is in.
            loop {
                let read = stream.read(&mut chunk).await.unwrap();
                seen.extend_from_slice(&chunk[..read]);
                let text = String::from_utf8_lossy(&seen).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .and_then(|value| value.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if read == 0 {
                    break;
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
            let _ = tell.send(String::from_utf8_lossy(&seen).into_owned());
        });
        (url, told)
    }

    #[tokio::test]
    async fn token_requests_are_json_or_form_as_configured_and_revocations_form() {
        let mut refresh = request();
        refresh.grant_type = super::super::GrantType::RefreshToken;
        refresh.refresh_token = Some("rt a+b".into());
        for (encoding, content_type, body) in [
            (
                RequestEncoding::Json,
                "content-type: application/json",
                r#"{"grant_type":"refresh_token","client_id":"cid","client_secret":"secret","refresh_token":"rt a+b"}"#,
            ),
            (
                RequestEncoding::Form,
                "content-type: application/x-www-form-urlencoded",
                "grant_type=refresh_token&client_id=cid&client_secret=secret&refresh_token=rt+a%2Bb",
            ),
        ] {
            let (url, told) = recording_host().await;
            let client =
                ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(2))
                    .with_request_encoding(encoding);
            client.request_token(&refresh).await.unwrap();
            let seen = told.await.unwrap();
            assert!(seen.starts_with("POST /oauth/token "), "{seen}");
            assert!(seen.contains(content_type), "{seen}");
            assert!(seen.ends_with(body), "{seen}");
        }
        let (url, told) = recording_host().await;
        let client = ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(2));
        client
            .revoke(&"at&x".into(), &"cid".into(), &"s=1".into())
            .await
            .unwrap();
        let seen = told.await.unwrap();
        assert!(seen.starts_with("POST /oauth/revoke "), "{seen}");
        assert!(
            seen.contains("content-type: application/x-www-form-urlencoded"),
            "{seen}"
        );
        assert!(
            seen.ends_with("token=at%26x&client_id=cid&client_secret=s%3D1"),
            "{seen}"
        );
    }

    fn request() -> TokenRequest {
        TokenRequest {
            grant_type: super::super::GrantType::ClientCredentials,
            client_id: "cid".into(),
            client_secret: "secret".into(),
            code: None,
            redirect_uri: None,
            refresh_token: None,
        }
    }

    #[tokio::test]
    async fn a_refused_connection_reached_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = ProcoreClient::new(LoginBase::parse(&url).unwrap(), Duration::from_secs(2));
        let error = client.request_token(&request()).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Connect { .. }), "{error:?}");
        assert!(!error.may_have_reached_upstream());
        assert_eq!(error.kind(), "connect_failed");
    }

    #[tokio::test]
    async fn silence_after_connecting_is_a_timeout_that_may_have_reached_procore() {
        let client = login_host(None).await;
        let error = client.request_token(&request()).await.unwrap_err();
        assert!(
            matches!(
                error,
                UpstreamError::Timeout {
                    connected: true,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.may_have_reached_upstream());
    }

    #[tokio::test]
    async fn an_answer_that_arrived_while_the_process_stood_still_past_the_timeout_is_kept() {
        // The login host runs on its own thread, so it answers while this test's one
        // runtime thread is blocked, as a stopped or paused process would be.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (arrived, arrived_rx) = std::sync::mpsc::channel();
        let (answer, answer_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0u8; 4096]).unwrap();
            arrived.send(()).unwrap();
            answer_rx.recv().unwrap();
            let body = br#"{"access_token":"late","refresh_token":"r2"}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body).unwrap();
            std::thread::sleep(Duration::from_secs(5));
        });
        let client = std::sync::Arc::new(ProcoreClient::new(
            LoginBase::parse(&url).unwrap(),
            Duration::from_millis(300),
        ));
        let sending = client.clone();
        let request = tokio::spawn(async move { sending.request_token(&request()).await });
        while arrived_rx.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The answer is sent while the whole process stands still (this runtime's one
        // thread is blocked), well past the timeout, so it waits unread in the socket.
        answer.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert!(response.is_token_response());
        assert!(response.elapsed > Duration::from_millis(800));
    }

    #[test]
    fn only_an_error_answer_saying_invalid_grant_is_a_refused_grant() {
        let answer = |status: u16, body: &'static str| UpstreamResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from_static(body.as_bytes()),
            retry_after: None,
            location: None,
            elapsed: Duration::ZERO,
        };
        assert!(answer(400, r#"{"error":"invalid_grant"}"#).is_invalid_grant());
        assert!(
            answer(401, r#"{"error":"invalid_grant","error_description":"x"}"#).is_invalid_grant()
        );
        assert!(!answer(400, r#"{"error":"invalid_client"}"#).is_invalid_grant());
        assert!(!answer(400, "invalid_grant").is_invalid_grant());
        assert!(!answer(200, r#"{"error":"invalid_grant"}"#).is_invalid_grant());
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_transfer_failure() {
        let client = login_host(Some(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"access",
        ))
        .await;
        let error = client.request_token(&request()).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Transfer { .. }), "{error:?}");
        assert!(error.may_have_reached_upstream());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_unread_and_a_redirect_is_not_followed() {
        let client = login_host(Some(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n",
        ))
        .await;
        let error = client.request_token(&request()).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::TooLarge { limit: 1024, .. }),
            "{error:?}"
        );
        let client = login_host(Some(
            b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/x\r\ncontent-length: 0\r\n\r\n",
        ))
        .await;
        let response = client.request_token(&request()).await.unwrap();
        assert_eq!(response.status, StatusCode::FOUND);
        assert_eq!(response.location.as_deref(), Some("http://127.0.0.1:9/x"));
        assert!(!response.is_token_response());
    }
}

//! Hand-made requests to the HTTP endpoints, for what a polite client never sends: a raw
//! streamable HTTP session (initialize, then any body at all), raw posts to `/message`, and
//! the JSON-RPC messages inside an answer (plain JSON or server-sent events).

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;

use super::{HttpServer, sse_events::SseParser};

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// One HTTP answer, read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The JSON-RPC messages in the body: the body itself, or each SSE `message` event.
    pub fn messages(&self) -> Vec<Value> {
        let is_sse = self
            .headers
            .get("content-type")
            .is_some_and(|value| value.to_str().unwrap().starts_with("text/event-stream"));
        if is_sse {
            let mut parser = SseParser::default();
            parser
                .feed(format!("{}\n\n", self.body).as_bytes())
                .into_iter()
                .filter(|event| event.event == "message" && !event.data.is_empty())
                .filter_map(|event| serde_json::from_str(&event.data).ok())
                .collect()
        } else {
            serde_json::from_str(&self.body).into_iter().collect()
        }
    }

    /// The one JSON-RPC message of the answer.
    pub fn message(&self) -> Value {
        let messages = self.messages();
        assert_eq!(messages.len(), 1, "one message in {self:?}");
        messages.into_iter().next().unwrap()
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// A streamable HTTP session opened by hand.
pub struct RawSession {
    pub http: reqwest::Client,
    pub url: String,
    pub id: String,
    pub token: Option<String>,
}

impl RawSession {
    /// `initialize` + `notifications/initialized`; panics unless both are accepted.
    pub async fn open(server: &HttpServer, token: Option<&str>) -> Self {
        Self::open_at(&server.mcp_url(), token).await
    }

    /// [`Self::open`] on the `/mcp` at `url` (a load balancer, say).
    pub async fn open_at(url: &str, token: Option<&str>) -> Self {
        let http = reqwest::Client::new();
        let url = url.to_owned();
        let answer = post_mcp(&http, &url, None, token, INITIALIZE).await;
        assert_eq!(answer.status, StatusCode::OK, "initialize: {answer:?}");
        let id = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let session = Self {
            http,
            url,
            id,
            token: token.map(str::to_owned),
        };
        let answer = session.post(INITIALIZED).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        session
    }

    /// POST `body` in this session.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> Answer {
        post_mcp(
            &self.http,
            &self.url,
            Some(&self.id),
            self.token.as_deref(),
            body,
        )
        .await
    }

    pub async fn delete(&self) -> StatusCode {
        let mut request = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", &self.id);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status()
    }
}

/// POST `body` to `/mcp` as a streamable HTTP client would (both Accept types, JSON).
pub async fn post_mcp(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

/// POST `body` to the old transport's `/message` endpoint of session `id`.
pub async fn post_message(server: &HttpServer, id: &str, body: impl Into<reqwest::Body>) -> Answer {
    post_message_as(server, id, None, body).await
}

/// [`post_message`] with a bearer token.
pub async fn post_message_with_token(
    server: &HttpServer,
    id: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    post_message_as(server, id, Some(token), body).await
}

async fn post_message_as(
    server: &HttpServer,
    id: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}/message?sessionId={id}", server.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

/// An old-SSE session opened by hand: the event stream and its session id.
pub struct RawSseSession {
    pub id: String,
    events: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    pending: std::collections::VecDeque<Value>,
}

impl RawSseSession {
    /// GET /sse and wait for the `endpoint` event; `Err` carries a refusal's status.
    pub async fn open(server: &HttpServer) -> Result<Self, Answer> {
        Self::open_as(server, None).await
    }

    /// [`RawSseSession::open`] with a bearer token; panics on a refusal.
    pub async fn open_with_token(server: &HttpServer, token: &str) -> Self {
        Self::open_as(server, Some(token)).await.unwrap()
    }

    async fn open_as(server: &HttpServer, token: Option<&str>) -> Result<Self, Answer> {
        let mut request = reqwest::Client::new()
            .get(server.sse_url())
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        if response.status() != StatusCode::OK {
            return Err(read(response).await);
        }
        let mut session = Self {
            id: String::new(),
            events: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            pending: Default::default(),
        };
        loop {
            use futures::StreamExt;
            let chunk = session.events.next().await.unwrap().unwrap();
            for event in session.parser.feed(&chunk) {
                if event.event == "endpoint" {
                    session.id = event.data.split("sessionId=").nth(1).unwrap().to_owned();
                }
            }
            if !session.id.is_empty() {
                return Ok(session);
            }
        }
    }

    /// The next JSON-RPC message on the stream, or `None` when the stream ends.
    pub async fn next_message(&mut self) -> Option<Value> {
        use futures::StreamExt;
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Some(message);
            }
            let chunk = self.events.next().await?.ok()?;
            for event in self.parser.feed(&chunk) {
                if event.event == "message" {
                    self.pending
                        .push_back(serde_json::from_str(&event.data).unwrap());
                }
            }
        }
    }

    /// `initialize` + `notifications/initialized` through `/message`.
    pub async fn initialize(&mut self, server: &HttpServer) {
        self.initialize_as(server, None).await;
    }

    /// [`RawSseSession::initialize`] with a bearer token.
    pub async fn initialize_with_token(&mut self, server: &HttpServer, token: &str) {
        self.initialize_as(server, Some(token)).await;
    }

    async fn initialize_as(&mut self, server: &HttpServer, token: Option<&str>) {
        let answer = post_message_as(server, &self.id, token, INITIALIZE).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        let reply = self.next_message().await.expect("initialize answered");
        assert!(reply["result"]["serverInfo"].is_object(), "{reply}");
        let answer = post_message_as(server, &self.id, token, INITIALIZED).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    }
}

/// The binary over stdio, driven line by line, its stderr kept.
pub struct RawStdio {
    pub child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl RawStdio {
    pub fn spawn(launch: &super::Launch) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut command = launch.command();
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            text
        });
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Write `line` and a newline.
    pub async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }

    /// The next line on stdout, as text; panics after 10 s of silence.
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.stdout.next_line())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .expect("stdout open")
    }

    /// The next line on stdout, as JSON.
    pub async fn next_reply(&mut self) -> Value {
        serde_json::from_str(&self.next_line().await).unwrap()
    }

    /// Close stdin, wait for the exit; the exit code and everything written to stderr.
    pub async fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait())
            .await
            .expect("exits after stdin closes")
            .unwrap();
        (status.code(), self.stderr.await.unwrap())
    }
}

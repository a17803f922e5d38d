//! A client for the 2024-11-05 HTTP+SSE transport, handed to rmcp as a (Sink, Stream) pair:
//! GET the stream, wait for its `endpoint` event, POST each outgoing message there.

use futures::{SinkExt, StreamExt, channel::mpsc};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};

use super::sse_events::{SseEvent, SseParser};

/// Open the event stream at `sse_url`; return rmcp's transport halves.
pub async fn connect(
    sse_url: &str,
) -> (
    mpsc::Sender<ClientJsonRpcMessage>,
    mpsc::Receiver<ServerJsonRpcMessage>,
) {
    connect_with_token(sse_url, None).await
}

/// [`connect`], sending `Authorization: Bearer <token>` on every request when given.
pub async fn connect_with_token(
    sse_url: &str,
    token: Option<&str>,
) -> (
    mpsc::Sender<ClientJsonRpcMessage>,
    mpsc::Receiver<ServerJsonRpcMessage>,
) {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let response = http
        .get(sse_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(response.status(), 200, "GET /sse status");
    let mut bytes = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut pending = Vec::new();
    let endpoint = 'found: loop {
        let chunk = bytes.next().await.expect("stream open").expect("chunk");
        for event in parser.feed(&chunk) {
            if event.event == "endpoint" {
                break 'found event.data;
            }
            pending.push(event);
        }
    };
    let base = reqwest::Url::parse(sse_url).unwrap();
    let post_url = base.join(&endpoint).expect("endpoint URL").to_string();

    let (mut to_rmcp, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
    tokio::spawn(async move {
        let deliver = |event: SseEvent| {
            if event.event == "message" {
                serde_json::from_str::<ServerJsonRpcMessage>(&event.data).ok()
            } else {
                None
            }
        };
        for event in pending {
            if let Some(message) = deliver(event) {
                let _ = to_rmcp.send(message).await;
            }
        }
        while let Some(Ok(chunk)) = bytes.next().await {
            for event in parser.feed(&chunk) {
                if let Some(message) = deliver(event)
                    && to_rmcp.send(message).await.is_err()
                {
                    return;
                }
            }
        }
    });

    let (to_server, mut outgoing) = mpsc::channel::<ClientJsonRpcMessage>(64);
    tokio::spawn(async move {
        while let Some(message) = outgoing.next().await {
            let response = http
                .post(&post_url)
                .json(&message)
                .send()
                .await
                .expect("POST /message");
            assert_eq!(response.status(), 202, "POST /message status");
        }
    });
    (to_server, from_server)
}

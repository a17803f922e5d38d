//! The stdio transport: JSON-RPC on stdin/stdout, one message per line, nothing else on
//! stdout.
//!
//! Lines are read here rather than by rmcp so that a request the server cannot read gets
//! the same JSON-RPC error, with its id, as over HTTP (`jsonrpc_gate`); rmcp's own reader
//! answers such requests with a null id or not at all. A line that is not JSON at all (a
//! truncated request, say) gets -32700 with `id: null`, as over HTTP, so the client is not
//! left waiting for ever; the next line is served as usual. No reply is ever sent to a
//! well-formed response or notification, so two peers cannot trade error replies forever.
//! No line is longer than [`MAX_LINE_BYTES`] in memory.

use futures::{SinkExt, StreamExt, channel::mpsc};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use tokio_util::sync::CancellationToken;

use super::jsonrpc_gate::{self, PARSE_ERROR, Rejection};
use crate::tools::ProcoreTokenServer;

/// Longest line read; a longer one is dropped whole (rmcp's own limit).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

const CHANNEL_CAPACITY: usize = 32;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Serve one client on stdin/stdout until stdin closes or `shutdown` is cancelled.
pub async fn serve(server: ProcoreTokenServer, shutdown: CancellationToken) -> anyhow::Result<()> {
    // rmcp's pipes use the non-blocking reactor when stdin/stdout are FIFOs.
    let (input, output) = rmcp::transport::stdio_pipes();
    serve_on(server, input, output, shutdown).await
}

/// Serve one client on any byte pipe (stdin/stdout, or an in-memory pipe in tests) until
/// `input` ends or `shutdown` is cancelled.
pub async fn serve_on(
    server: ProcoreTokenServer,
    input: impl AsyncRead + Send + Unpin + 'static,
    output: impl AsyncWrite + Send + Unpin + 'static,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    let writing = tokio::spawn(write_lines(from_server, output));
    let reading = tokio::spawn(read_lines(
        BufReader::new(input),
        to_server,
        to_client.clone(),
    ));

    match server
        .serve_with_ct((to_client, from_client), shutdown)
        .await
    {
        Ok(running) => {
            let reason = running.waiting().await;
            tracing::debug!(ok = reason.is_ok(), "stdio session ended");
        }
        Err(error) => {
            // The error may quote the offending message; log only its kind.
            tracing::info!(
                reason = initialize_failure_kind(&error),
                "stdio session ended before it was initialized"
            );
        }
    }
    reading.abort();
    let _ = writing.await;
    Ok(())
}

/// Each line of `input` to rmcp, or its JSON-RPC error straight back to the client.
async fn read_lines(
    mut input: impl AsyncBufRead + Unpin,
    mut to_server: mpsc::Sender<ClientJsonRpcMessage>,
    mut to_client: mpsc::Sender<ServerJsonRpcMessage>,
) {
    let mut line = Vec::new();
    loop {
        match read_line(&mut input, &mut line).await {
            Line::End => return,
            Line::TooLong => {
                tracing::warn!("dropped an incoming line over {MAX_LINE_BYTES} bytes");
                continue;
            }
            Line::Read => {}
        }
        let text = line.strip_prefix(UTF8_BOM).unwrap_or(&line);
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match jsonrpc_gate::parse(text) {
            Ok(message) => {
                if to_server.send(message).await.is_err() {
                    return;
                }
            }
            Err(rejection) => {
                let Some(reply) = reply_to(text, rejection) else {
                    continue;
                };
                if to_client.send(reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The error reply for a refused line, if one is due: none for what was meant as a
/// notification or a response (JSON-RPC answers neither). A line that is not JSON cannot
/// say what it meant, so it gets the parse error with a null id (JSON-RPC 2.0, section 5).
fn reply_to(text: &[u8], rejection: Rejection) -> Option<ServerJsonRpcMessage> {
    if rejection.code == PARSE_ERROR {
        tracing::debug!("answered an incoming line that is not JSON with a parse error");
    } else if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(text) {
        let has_id = object.get("id").is_some_and(|id| !id.is_null());
        let notification = object.contains_key("method") && !has_id;
        let response = !object.contains_key("method")
            && (object.contains_key("result") || object.contains_key("error"));
        if notification || response {
            tracing::debug!("dropped an unreadable notification or response");
            return None;
        }
    }
    let error = json!({"code": rejection.code, "message": rejection.message});
    serde_json::from_value(json!({"jsonrpc": "2.0", "id": rejection.id, "error": error}))
        .or_else(|_| {
            // An id rmcp cannot carry (a fraction, say): the spec's null id then.
            serde_json::from_value(json!({"jsonrpc": "2.0", "id": null, "error": error}))
        })
        .ok()
}

/// Every outgoing message as one line on `output`.
async fn write_lines(
    mut messages: mpsc::Receiver<ServerJsonRpcMessage>,
    mut output: impl AsyncWrite + Unpin,
) {
    while let Some(message) = messages.next().await {
        let Ok(mut line) = serde_json::to_vec(&message) else {
            tracing::error!("an outgoing message could not be serialized");
            continue;
        };
        line.push(b'\n');
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            tracing::debug!("stdout closed");
            return;
        }
    }
}

enum Line {
    Read,
    TooLong,
    End,
}

/// Read up to and including the next `\n` into `line`, never holding more than
/// [`MAX_LINE_BYTES`]: a longer line is consumed and dropped.
async fn read_line(input: &mut (impl AsyncBufRead + Unpin), line: &mut Vec<u8>) -> Line {
    line.clear();
    let mut too_long = false;
    loop {
        let available = match input.fill_buf().await {
            Ok(available) => available,
            Err(error) => {
                tracing::debug!("reading stdin failed: {error}");
                return Line::End;
            }
        };
        if available.is_empty() {
            return if line.is_empty() || too_long {
                Line::End
            } else {
                Line::Read
            };
        }
        let newline = available.iter().position(|byte| *byte == b'\n');
        let take = newline.map_or(available.len(), |index| index + 1);
        if !too_long {
            if line.len() + take > MAX_LINE_BYTES {
                too_long = true;
                *line = Vec::new();
            } else {
                line.extend_from_slice(available.get(..take).unwrap_or_default());
            }
        }
        input.consume(take);
        if newline.is_some() {
            return if too_long { Line::TooLong } else { Line::Read };
        }
    }
}

fn initialize_failure_kind(error: &rmcp::service::ServerInitializeError) -> &'static str {
    use rmcp::service::ServerInitializeError as E;
    match error {
        E::ConnectionClosed(_) => "stdin closed",
        E::ExpectedInitializeRequest(_) => "the first message was not a request",
        E::InitializeFailed(_) => "initialize failed",
        E::TransportError { .. } => "transport error",
        E::Cancelled => "cancelled",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_dropped_and_reading_goes_on() {
        let mut text = vec![b'x'; MAX_LINE_BYTES + 10];
        text.extend_from_slice(b"\n{\"a\":1}\n{\"b\":2}");
        let mut input = BufReader::new(&text[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut input, &mut line).await,
            Line::TooLong
        ));
        assert!(matches!(read_line(&mut input, &mut line).await, Line::Read));
        assert_eq!(line, b"{\"a\":1}\n");
        assert!(matches!(read_line(&mut input, &mut line).await, Line::Read));
        assert_eq!(line, b"{\"b\":2}");
        assert!(matches!(read_line(&mut input, &mut line).await, Line::End));
    }

    #[test]
    fn replies_only_to_requests_and_shapeless_json() {
        let reply = |text: &str| {
            let rejection = jsonrpc_gate::parse(text.as_bytes()).unwrap_err();
            reply_to(text.as_bytes(), rejection).map(|m| serde_json::to_value(m).unwrap())
        };
        let answer = reply(r#"{"jsonrpc":"2.0","id":7,"method":"ping","params":"x"}"#).unwrap();
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], jsonrpc_gate::INVALID_PARAMS);
        let answer = reply("[1,2]").unwrap();
        assert!(answer["id"].is_null());
        let answer = reply("{not json").unwrap();
        assert!(answer["id"].is_null(), "{answer}");
        assert_eq!(answer["error"]["code"], PARSE_ERROR);
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}"#),
            None
        );
        let answer = reply(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping","params":"x"}"#).unwrap();
        assert!(answer["id"].is_null(), "{answer}");
    }
}

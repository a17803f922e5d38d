//! Request body limits for every HTTP endpoint: a POST body over the limit gets 413, and a
//! body that does not arrive in full within the read timeout gets 408; either way the
//! connection is closed. The body is read here, once, and handed on in memory.
//!
//! Never buffers more than the limit, and never waits on a client longer than the timeout.
//! (Slow headers are hyper's part: see `header_read_timeout` in `transport::http`.)

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::time::Instant;

/// How much of an oversized body is read and thrown away before answering 413, so the
/// client (still writing) sees the answer rather than a reset connection.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// The body limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
}

enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Axum middleware: read a POST body within the limits, or refuse it.
pub async fn read_body(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let (parts, body) = request.into_parts();
    let deadline = Instant::now() + limits.read_timeout;
    let limit = limits.max_body_bytes;
    let read = match declared {
        Some(length) if length > limit.saturating_add(DRAIN_LIMIT) as u64 => {
            Err(BodyError::TooLarge)
        }
        Some(length) if length > limit as u64 => {
            drain(body, deadline).await;
            Err(BodyError::TooLarge)
        }
        _ => collect(body, limit, deadline).await,
    };
    match read {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(BodyError::TooLarge) => {
            tracing::warn!(
                path = parts.uri.path(),
                limit = limits.max_body_bytes,
                "refused request: body over the limit"
            );
            closing(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Payload Too Large: request bodies are limited to {} bytes \
                     (--max-request-bytes)",
                    limits.max_body_bytes
                ),
            )
        }
        Err(BodyError::TimedOut) => {
            tracing::warn!(
                path = parts.uri.path(),
                timeout_secs = limits.read_timeout.as_secs(),
                "refused request: body not received in time"
            );
            closing(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "Request Timeout: the body did not arrive within {} s \
                     (--read-timeout-secs)",
                    limits.read_timeout.as_secs()
                ),
            )
        }
        Err(BodyError::Broken) => closing(
            StatusCode::BAD_REQUEST,
            "Bad Request: the request body could not be read".to_owned(),
        ),
    }
}

/// The whole body, or why not. An oversized body is drained (a bounded amount, within
/// the deadline) so the client reads the 413 instead of a reset.
async fn collect(mut body: Body, limit: usize, deadline: Instant) -> Result<Bytes, BodyError> {
    let mut collected = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => return Ok(collected.freeze()),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len().saturating_add(data.len()) > limit {
            drop(collected);
            drain(body, deadline).await;
            return Err(BodyError::TooLarge);
        }
        collected.extend_from_slice(&data);
    }
}

/// Read and discard up to [`DRAIN_LIMIT`] bytes, until the body ends or the deadline.
async fn drain(mut body: Body, deadline: Instant) {
    let mut drained = 0usize;
    while drained <= DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                drained += frame.data_ref().map_or(0, |data| data.len());
            }
            _ => return,
        }
    }
}

fn closing(status: StatusCode, message: String) -> Response {
    let mut response = (status, message).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

//! The door of the HTTP message endpoints (`POST /mcp`, `POST /message`): a body that is
//! not one JSON-RPC 2.0 message gets HTTP 400 with the proper JSON-RPC error (-32700 parse
//! error, -32600 invalid request, -32602 invalid params), and an `initialize` that would
//! open a session beyond the cap gets 503, as does a request the shared session store
//! (Redis) cannot serve now. Behind access tokens, a request naming a session another user
//! opened gets 404, as for an unknown one.
//!
//! Each body is parsed once, by rmcp; only a body rmcp refuses is parsed here, to answer
//! in JSON-RPC's terms.
//!
//! Error texts say where and what kind, never what: no part of the input (which may hold a
//! secret) is echoed, unlike serde's own messages.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

use super::mcp_sessions::{BoundedSessions, BoundedSessionsError, Refusal, noting_refusals};
use crate::tools::Caller;

const SESSION_HEADER: &str = "mcp-session-id";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// A body refused before it reaches a session: a JSON-RPC error object for the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: i64,
    pub message: String,
    /// The request's id when it could be read, else `null`.
    pub id: Value,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message},
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// One client message, or the JSON-RPC error that refuses it.
pub fn parse(body: &[u8]) -> Result<ClientJsonRpcMessage, Rejection> {
    match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
        Ok(message) => Ok(message),
        Err(error) if error.is_syntax() || error.is_eof() => Err(Rejection {
            code: PARSE_ERROR,
            message: format!(
                "Parse error: the body is not valid JSON, or nests deeper than 128 levels \
                 (line {}, column {})",
                error.line(),
                error.column()
            ),
            id: Value::Null,
        }),
        Err(_) => Err(match serde_json::from_slice::<Value>(body) {
            Ok(value) => classify_wrong_shape(&value),
            // Valid for one parser but not the other (should not happen): still a parse error.
            Err(_) => Rejection {
                code: PARSE_ERROR,
                message: "Parse error: the body is not valid JSON".to_owned(),
                id: Value::Null,
            },
        }),
    }
}

/// Valid JSON that is not a message this server takes: say which rule it breaks.
fn classify_wrong_shape(value: &Value) -> Rejection {
    let invalid = |message: &str, id: Value| Rejection {
        code: INVALID_REQUEST,
        message: format!("Invalid Request: {message}"),
        id,
    };
    let Value::Object(object) = value else {
        let what = if value.is_array() {
            "batches are not supported; send one JSON-RPC message per request"
        } else {
            "a JSON-RPC message is a JSON object"
        };
        return invalid(what, Value::Null);
    };
    let id = match object.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        None | Some(Value::Null) => Value::Null,
        Some(_) => return invalid("\"id\" must be a string or a number", Value::Null),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be \"2.0\"", id);
    }
    match object.get("method") {
        Some(Value::String(_)) => Rejection {
            code: INVALID_PARAMS,
            message: "Invalid params: \"params\" does not have the shape this method takes"
                .to_owned(),
            id,
        },
        Some(_) => invalid("\"method\" must be a string", id),
        None if object.contains_key("result") || object.contains_key("error") => invalid(
            "a response must carry the id of a request this server sent, and a result or an \
             error of the right shape",
            id,
        ),
        None => invalid("a request needs a \"method\"", id),
    }
}

/// Axum middleware in front of rmcp's `/mcp` service: answer non-JSON-RPC bodies with a
/// JSON-RPC error, and a session-opening `initialize` with 503 when the sessions are full.
/// Bodies that do not claim to be JSON are left to rmcp (which answers 415). With a user
/// principal on the request, the session it names must be that user's; a session it opens
/// becomes that user's.
pub async fn check_mcp(
    State(sessions): State<Arc<BoundedSessions>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(caller) = request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.principal.clone())
    else {
        return check_body(&sessions, request, next).await;
    };
    let named = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &named {
        match sessions.may_use(id, &caller).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("refused a request naming another user's streamable HTTP session");
                return (
                    StatusCode::NOT_FOUND,
                    "Not Found: no such session; open a new one with initialize",
                )
                    .into_response();
            }
            Err(error) => return store_unavailable(&error),
        }
    }
    let response = check_body(&sessions, request, next).await;
    if named.is_none()
        && let Some(opened) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
    {
        sessions.record_owner(opened.to_owned(), caller).await;
    }
    response
}

async fn check_body(sessions: &BoundedSessions, request: Request, next: Next) -> Response {
    let is_json_post = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
            });
    if !is_json_post {
        return serve(sessions, next, request).await;
    }
    let (parts, body) = request.into_parts();
    // The body was read (and bounded) by `request_limits`; this only takes it out.
    let Ok(collected) = body.collect().await else {
        return (
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )
            .into_response();
    };
    let bytes = collected.to_bytes();
    // rmcp parses the body (once, for every request); only when it refuses it is the body
    // parsed here again, to say why in JSON-RPC's terms instead of rmcp's 415 (whose text is
    // serde's, which can echo the input). rmcp answers 406 for a bad `Accept` before it reads
    // the body: a malformed body is still the first thing to report.
    let response = serve(
        sessions,
        next,
        Request::from_parts(parts, Body::from(bytes.clone())),
    )
    .await;
    if !matches!(
        response.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::NOT_ACCEPTABLE
    ) {
        return response;
    }
    match parse(&bytes) {
        Err(rejection) => rejection.into_response(),
        Ok(_) if response.status() == StatusCode::NOT_ACCEPTABLE => response,
        // A body serde reads in one pass and not in the other (should not happen).
        Ok(_) => Rejection {
            code: INVALID_REQUEST,
            message: "Invalid Request: the body is not a JSON-RPC message this server takes"
                .to_owned(),
            id: Value::Null,
        }
        .into_response(),
    }
}

/// rmcp serving `request`. rmcp answers a session manager's or session store's error with
/// 500 and its text; the two that are not faults of this server become 503 with
/// `Retry-After`: the cap reached by a racing `initialize`, and the shared session store not
/// answering.
async fn serve(sessions: &BoundedSessions, next: Next, request: Request) -> Response {
    let (response, refusal) = noting_refusals(next.run(request)).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    match refusal {
        Some(Refusal::Full) => {
            tracing::warn!(
                max = sessions.max(),
                "refused a new streamable HTTP session: the server holds its maximum"
            );
            too_many_sessions(sessions.max())
        }
        Some(Refusal::StoreDown) => session_store_down(),
        None => response,
    }
}

/// 503 with `Retry-After`, for a session that cannot be opened now.
pub fn too_many_sessions(max: usize) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "Service Unavailable: the server already holds its maximum of {max} sessions \
             (--max-sessions); retry when one has ended or expired"
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// 503 for a request whose session could not be looked up in the shared session store.
fn store_unavailable(error: &BoundedSessionsError) -> Response {
    tracing::warn!(%error, "a streamable HTTP session could not be looked up");
    session_store_down()
}

/// 503: the shared session store does not answer (the reason is in the log).
fn session_store_down() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
        "Service Unavailable: the session store does not answer; retry shortly",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(body: &str) -> Rejection {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn messages_pass() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"no/such/method","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}"#,
        ] {
            assert!(parse(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn each_fault_has_its_code_and_no_echo() {
        let cases = [
            ("{", PARSE_ERROR, Value::Null),
            ("not json cs-canary", PARSE_ERROR, Value::Null),
            ("", PARSE_ERROR, Value::Null),
            ("[]", INVALID_REQUEST, Value::Null),
            ("42", INVALID_REQUEST, Value::Null),
            (r#"{"foo":"cs-canary"}"#, INVALID_REQUEST, Value::Null),
            (
                r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#,
                INVALID_REQUEST,
                json!(7),
            ),
            (
                r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":"x","method":5}"#,
                INVALID_REQUEST,
                json!("x"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":"cs-canary"}"#,
                INVALID_PARAMS,
                json!(5),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}"#,
                INVALID_PARAMS,
                Value::Null,
            ),
        ];
        for (body, code, id) in cases {
            let rejection = rejected(body);
            assert_eq!(rejection.code, code, "{body}: {rejection:?}");
            assert_eq!(rejection.id, id, "{body}");
            assert!(!rejection.message.contains("cs-canary"), "{rejection:?}");
        }
        let deep = "[".repeat(100_000);
        assert_eq!(rejected(&deep).code, PARSE_ERROR);
    }
}

//! Limits of the HTTP transport, through the real binary: request bodies over the limit get
//! 413 on `/mcp` and `/message`; clients too slow with their headers or body are cut off
//! (proven with raw TCP clients); sessions of both transports are bounded (503 beyond) and
//! expire when idle, after which their ids get 404. Small limits keep the tests fast.

use std::time::{Duration, Instant};

use crate::common::{
    raw_mcp::{self, RawSession, RawSseSession},
    *,
};
use reqwest::StatusCode;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A JSON-RPC ping padded to exactly `size` bytes.
fn ping_of_size(size: usize) -> String {
    let empty =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": ""}}})
            .to_string();
    let pad = "x".repeat(size - empty.len());
    json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": pad}}})
        .to_string()
}

/// The same bytes as a chunked body with no `Content-Length`.
fn streamed(body: String) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(1000)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

async fn limited_server(extra: &[&str]) -> (Upstream, HttpServer) {
    init();
    let upstream = Upstream::start().await;
    let mut launch = Launch::against(&upstream.url);
    for arg in extra {
        launch = launch.arg(*arg);
    }
    let server = HttpServer::start(&launch).await;
    (upstream, server)
}

async fn assert_still_serving(server: &HttpServer) {
    let client = server.legacy_client().await;
    let result = call_token(&client, client_credentials()).await;
    assert!(!is_error(&result), "{}", text(&result));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_on_mcp_and_message() {
    let (_upstream, server) = limited_server(&["--max-request-bytes", "4096"]).await;
    let session = RawSession::open(&server, None).await;
    let mut sse = RawSseSession::open(&server).await.unwrap();
    sse.initialize(&server).await;

    // At the limit: served.
    let answer = session.post(ping_of_size(4096)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.message()["id"], 1);
    let answer = raw_mcp::post_message(&server, &sse.id, ping_of_size(4096)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    assert_eq!(sse.next_message().await.unwrap()["id"], 1);

    // One byte over, announced or streamed: 413, and the body is never handed on.
    for body in [
        reqwest::Body::from(ping_of_size(4097)),
        streamed(ping_of_size(4097)),
        reqwest::Body::from(ping_of_size(3 * 1024 * 1024)),
        streamed(ping_of_size(3 * 1024 * 1024)),
    ] {
        let answer = session.post(body).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
        assert!(answer.body.contains("4096 bytes"), "{}", answer.body);
        assert_eq!(answer.headers["cache-control"], "no-store");
    }
    for body in [
        reqwest::Body::from(ping_of_size(4097)),
        streamed(ping_of_size(4097)),
    ] {
        let answer = raw_mcp::post_message(&server, &sse.id, body).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
    }
    // Both sessions still work.
    assert_eq!(session.post(ping_of_size(200)).await.message()["id"], 1);
    let answer = raw_mcp::post_message(&server, &sse.id, ping_of_size(200)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(sse.next_message().await.unwrap()["id"], 1);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn the_default_body_limit_is_1_mib() {
    let (_upstream, server) = limited_server(&[]).await;
    let session = RawSession::open(&server, None).await;
    let answer = session.post(ping_of_size(1024 * 1024)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = session.post(ping_of_size(1024 * 1024 + 1)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.body.contains("1048576 bytes"), "{}", answer.body);
}

/// Read until the server closes the connection; what it said before closing.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server did not cut the slow client off: {}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

fn address(server: &HttpServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn clients_too_slow_with_their_headers_are_cut_off() {
    let (_upstream, server) = limited_server(&["--read-timeout-secs", "1"]).await;
    // Headers started but never finished.
    let mut partial = TcpStream::connect(address(&server)).await.unwrap();
    partial
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
        .await
        .unwrap();
    // Headers trickled one byte at a time, each well within the timeout.
    let mut trickle = TcpStream::connect(address(&server)).await.unwrap();
    let trickling = tokio::spawn(async move {
        for byte in b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa" {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickle.write_all(&[*byte]).await.is_err() {
                return (trickle, true);
            }
        }
        (trickle, false)
    });
    // Nothing at all.
    let mut silent = TcpStream::connect(address(&server)).await.unwrap();

    let started = Instant::now();
    read_until_closed(&mut partial).await;
    read_until_closed(&mut silent).await;
    let (mut trickle, _) = trickling.await.unwrap();
    read_until_closed(&mut trickle).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn clients_too_slow_with_their_body_get_408() {
    let (_upstream, server) = limited_server(&["--read-timeout-secs", "1"]).await;
    let session = RawSession::open(&server, None).await;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n\
         Content-Length: 100\r\n\r\n",
        session.id
    );
    // Part of the body, then silence.
    let mut stalled = TcpStream::connect(address(&server)).await.unwrap();
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(br#"{"jsonrpc":"2.0","#).await.unwrap();
    // The body one byte every 100 ms: each read is quick, the whole is too slow.
    let mut trickle = TcpStream::connect(address(&server)).await.unwrap();
    trickle.write_all(head.as_bytes()).await.unwrap();
    let trickling = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickle.write_all(b" ").await.is_err() {
                break;
            }
        }
        trickle
    });

    let answer = read_until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    // The other client keeps being served meanwhile.
    assert_eq!(session.post(ping_of_size(100)).await.message()["id"], 1);
    let mut trickle = trickling.await.unwrap();
    let answer = read_until_closed(&mut trickle).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn streamable_http_sessions_are_bounded() {
    let (_upstream, server) = limited_server(&["--max-sessions", "2"]).await;
    let first = RawSession::open(&server, None).await;
    let _second = RawSession::open(&server, None).await;
    let http = reqwest::Client::new();
    let refused =
        raw_mcp::post_mcp(&http, &server.mcp_url(), None, None, raw_mcp::INITIALIZE).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refused:?}"
    );
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused.body.contains("maximum of 2 sessions"),
        "{}",
        refused.body
    );
    // Stateless 2026-07-28 requests need no session and are still served.
    let modern = server.modern_client().await;
    assert!(!is_error(&call_token(&modern, client_credentials()).await));
    modern.cancel().await.unwrap();
    // Ending a session frees its place.
    assert!(first.delete().await.is_success());
    assert_eq!(
        first.post(ping_of_size(100)).await.status,
        StatusCode::NOT_FOUND
    );
    let third = RawSession::open(&server, None).await;
    assert_eq!(third.post(ping_of_size(100)).await.message()["id"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initializes_racing_for_the_last_place_open_one_session_and_the_rest_get_the_same_503() {
    let (_upstream, server) = limited_server(&["--max-sessions", "1"]).await;
    let http = reqwest::Client::new();
    let url = server.mcp_url();
    let answers = futures::future::join_all(
        (0..16).map(|_| raw_mcp::post_mcp(&http, &url, None, None, raw_mcp::INITIALIZE)),
    )
    .await;
    let opened: Vec<_> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::OK)
        .collect();
    assert_eq!(opened.len(), 1, "{answers:?}");
    assert!(opened[0].headers.contains_key("mcp-session-id"));
    for refused in answers
        .iter()
        .filter(|answer| answer.status != StatusCode::OK)
    {
        assert_eq!(
            refused.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{refused:?}"
        );
        assert_eq!(refused.headers["retry-after"], "5", "{refused:?}");
        assert!(
            refused
                .body
                .contains("maximum of 1 sessions (--max-sessions)"),
            "{}",
            refused.body
        );
    }
}

#[tokio::test]
async fn old_sse_sessions_are_bounded() {
    let (_upstream, server) = limited_server(&["--max-sessions", "2"]).await;
    let first = RawSseSession::open(&server).await.unwrap();
    let mut second = RawSseSession::open(&server).await.unwrap();
    let refused = RawSseSession::open(&server).await.err().unwrap();
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused.body.contains("maximum of 2 sessions"),
        "{}",
        refused.body
    );
    // Closing a stream frees its place once the server notices.
    let first_id = first.id.clone();
    drop(first);
    let mut third = None;
    for _ in 0..100 {
        if let Ok(session) = RawSseSession::open(&server).await {
            third = Some(session);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut third = third.expect("a place freed after a stream closed");
    let gone = raw_mcp::post_message(&server, &first_id, ping_of_size(100)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    for session in [&mut second, &mut third] {
        session.initialize(&server).await;
    }
}

#[tokio::test]
async fn idle_streamable_http_sessions_expire_and_their_ids_get_404() {
    let (_upstream, server) = limited_server(&["--session-idle-secs", "1"]).await;
    let busy = RawSession::open(&server, None).await;
    let idle = RawSession::open(&server, None).await;
    // Traffic keeps a session alive well past the idle time.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(busy.post(ping_of_size(100)).await.message()["id"], 1);
    }
    let expired = idle.post(ping_of_size(100)).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND, "{expired:?}");
    // An id the server never issued.
    let http = reqwest::Client::new();
    let unknown = raw_mcp::post_mcp(
        &http,
        &server.mcp_url(),
        Some("no-such-session"),
        None,
        ping_of_size(100),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn idle_old_sse_sessions_expire_and_their_ids_get_404() {
    let (_upstream, server) = limited_server(&["--session-idle-secs", "1"]).await;
    let mut busy = RawSseSession::open(&server).await.unwrap();
    busy.initialize(&server).await;
    let mut idle = RawSseSession::open(&server).await.unwrap();
    idle.initialize(&server).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = raw_mcp::post_message(&server, &busy.id, ping_of_size(100)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(busy.next_message().await.unwrap()["id"], 1);
    }
    // The idle stream was closed by the server, and its id is gone.
    let ended = tokio::time::timeout(Duration::from_secs(10), idle.next_message()).await;
    assert_eq!(ended.expect("the idle stream ended"), None);
    let expired = raw_mcp::post_message(&server, &idle.id, ping_of_size(100)).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    assert!(
        expired.body.contains("unknown or expired"),
        "{}",
        expired.body
    );
    let unknown = raw_mcp::post_message(&server, "no-such-session", ping_of_size(100)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_still_serving(&server).await;
}

/// A POST of `initialize` to `/mcp` whose head carries one header of `pad` bytes.
fn initialize_with_header(pad: usize) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nX-Pad: {}\r\n\
         Content-Length: {}\r\n\r\n{}",
        "a".repeat(pad),
        raw_mcp::INITIALIZE.len(),
        raw_mcp::INITIALIZE
    )
    .into_bytes()
}

#[tokio::test]
async fn a_200_kb_header_is_refused_and_a_small_one_served() {
    let (_upstream, server) = limited_server(&[]).await;
    // An ordinary head, through the same raw client: served.
    let mut small = TcpStream::connect(address(&server)).await.unwrap();
    small.write_all(&initialize_with_header(100)).await.unwrap();
    let mut head = [0u8; 12];
    small.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // A 200 KB header: 431, or the connection is closed; never served.
    let mut large = TcpStream::connect(address(&server)).await.unwrap();
    // The server may stop reading (and reset) before all of it is written.
    let _ = large.write_all(&initialize_with_header(200 * 1024)).await;
    let answer = read_until_closed(&mut large).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.chars().take(200).collect::<String>()
    );
    assert_still_serving(&server).await;
}

/// Resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn unfinished_large_heads_do_not_grow_the_server() {
    const CONNECTIONS: usize = 300;
    const HEAD: usize = 380 * 1024;
    const BOUND_KIB: u64 = 64 * 1024;
    // Long timeouts, so unfinished heads are held for the whole test unless refused.
    let (_upstream, server) = limited_server(&["--read-timeout-secs", "120"]).await;
    let pid = server.child.id().unwrap();
    let before = resident_kib(pid);
    let mut unfinished = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".to_vec();
    unfinished.resize(HEAD, b'a');
    let unfinished = std::sync::Arc::new(unfinished);
    let streams = futures::future::join_all((0..CONNECTIONS).map(|_| {
        let unfinished = unfinished.clone();
        let address = address(&server);
        async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            // Refused heads end in a reset: the writes may fail, and that is the point.
            let _ = stream.write_all(&unfinished).await;
            stream
        }
    }))
    .await;
    // Sample for a while with every connection still open on this side.
    let mut peak = 0;
    let sampling = Instant::now();
    while sampling.elapsed() < Duration::from_secs(3) {
        peak = peak.max(resident_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        peak < BOUND_KIB,
        "the server grew from {before} KiB to {peak} KiB with {CONNECTIONS} unfinished \
         {HEAD}-byte heads"
    );
    drop(streams);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_open_ones_served() {
    let (_upstream, server) =
        limited_server(&["--max-connections", "3", "--read-timeout-secs", "120"]).await;
    // A client already connected: its pooled connection is one of the three.
    let session = RawSession::open(&server, None).await;
    let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
    assert_eq!(session.post(ping).await.message()["id"], 7);
    // Six idle connections: at most two find a place, the others get 503 and are closed.
    const IDLE: usize = 6;
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(address(&server)).await.unwrap());
    }
    let (done, mut refusals) = tokio::sync::mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for mut stream in idle {
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut received = Vec::new();
            let mut buffer = [0u8; 1024];
            while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                received.extend_from_slice(&buffer[..read]);
            }
            let _ = done.send(String::from_utf8_lossy(&received).into_owned());
        }));
    }
    for _ in 0..IDLE - 2 {
        let refusal = tokio::time::timeout(Duration::from_secs(10), refusals.recv())
            .await
            .expect("connections beyond the cap are closed")
            .unwrap();
        assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
        assert!(refusal.contains("retry-after"), "{refusal}");
    }
    // The connected client is still answered, with the server full.
    let ping = r#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#;
    assert_eq!(session.post(ping).await.message()["id"], 8);
    assert!(server.logs.text().contains("--max-connections"));
    // Once the idle ones go, places come back.
    for reader in readers {
        reader.abort();
    }
    drop(session);
    let http = reqwest::Client::new();
    let mut reopened = false;
    for _ in 0..100 {
        // A connection refused before its request was read fails to send: retry.
        let sent = http
            .post(server.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(raw_mcp::INITIALIZE)
            .send()
            .await;
        if sent.is_ok_and(|response| response.status() == StatusCode::OK) {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "a new connection after the others closed");
}

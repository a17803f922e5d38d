//! rmcp clients of every HTTP transport that send `Authorization: Bearer <token>`.

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::ProtocolVersion,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use super::{Client, HttpServer, sse_client};

fn transport(server: &HttpServer, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url()).auth_header(token),
    )
}

/// Streamable HTTP, `initialize` handshake (protocol ≤ 2025-11-25).
pub async fn legacy_client(server: &HttpServer, token: &str) -> Client {
    ().serve(transport(server, token))
        .await
        .expect("initialize over streamable HTTP with a token")
}

/// Streamable HTTP, stateless 2026-07-28 requests.
pub async fn modern_client(server: &HttpServer, token: &str) -> Client {
    ().serve_with_lifecycle(
        transport(server, token),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("discover over streamable HTTP with a token")
}

/// The old HTTP+SSE transport.
pub async fn sse_client(server: &HttpServer, token: &str) -> Client {
    let transport = sse_client::connect_with_token(&server.sse_url(), Some(token)).await;
    ().serve(transport)
        .await
        .expect("initialize over HTTP+SSE with a token")
}

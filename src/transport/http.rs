//! One HTTP listener: streamable HTTP at `/mcp` (rmcp's service: legacy sessions and
//! 2026-07-28 stateless requests) and the old HTTP+SSE pair at `/sse` + `/message`, all
//! behind the same Host/Origin guard.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router, middleware,
    routing::{get, post},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{
    host_guard::{self, HostGuard},
    sse::{self, MESSAGE_PATH, SSE_PATH, SseSessions},
};
use crate::{config::HttpConfig, tools::ProcoreTokenServer};

/// Path of the streamable HTTP endpoint.
pub const MCP_PATH: &str = "/mcp";

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The whole HTTP application, ready to serve.
pub fn router(
    server: ProcoreTokenServer,
    config: &HttpConfig,
    shutdown: &CancellationToken,
) -> Router {
    let guard = HostGuard::new(&config.allowed_hosts);
    let mcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.iter().cloned())
        .with_cancellation_token(shutdown.child_token());
    let mcp_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(mcp_server.clone()),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let sse_sessions = SseSessions::new(server, shutdown.child_token());
    Router::new()
        .nest_service(MCP_PATH, mcp)
        .route(SSE_PATH, get(sse::open))
        .route(MESSAGE_PATH, post(sse::message))
        .with_state(sse_sessions)
        .layer(middleware::from_fn_with_state(guard, host_guard::check))
}

/// Bind, serve until `shutdown` is cancelled, then drain for a few seconds at most.
pub async fn serve(
    server: ProcoreTokenServer,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = bind(config).await?;
    serve_on(listener, server, config, shutdown).await
}

/// Bind the listen address of `config` (to learn the real port before serving).
pub async fn bind(config: &HttpConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", config.listen))
}

/// [`serve`] on a listener already bound.
pub async fn serve_on(
    listener: TcpListener,
    server: ProcoreTokenServer,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    announce(address);
    let app = router(server, config, &shutdown);
    let stopped = shutdown.clone();
    let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
        stopped.cancelled().await;
    });
    let mut serving = std::pin::pin!(serving.into_future());
    tokio::select! {
        result = &mut serving => result?,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them"),
    }
    Ok(())
}

fn announce(address: SocketAddr) {
    tracing::info!(
        "listening: streamable HTTP at http://{address}{MCP_PATH}, HTTP+SSE (2024-11-05) at \
         http://{address}{SSE_PATH}"
    );
}

//! One HTTP listener: streamable HTTP at `/mcp` (rmcp's service: legacy sessions and
//! 2026-07-28 stateless requests) and the old HTTP+SSE pair at `/sse` + `/message`, all
//! behind the same layers: Host/Origin guard, bearer token or access token, body limits,
//! header timeout. `/.well-known/` answers beside them (metadata or 404), unauthenticated.
//!
//! Never serves a request that skipped a layer, never waits on a slow client forever, never
//! holds more than [`MAX_HEAD_BYTES`] of one request's head (431 beyond), and never holds
//! more than `--max-connections` connections (a further one gets 503 and is closed).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::SessionStore,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use super::{
    access_tokens,
    bearer_auth::{self, BearerAuth},
    host_guard::{self, HostGuard},
    jsonrpc_gate,
    mcp_sessions::{BoundedSessions, NotingStore},
    request_limits::{self, RequestLimits},
    sse::{self, MESSAGE_PATH, SSE_PATH, SseLimits, SseSessions},
};
use crate::{
    resource_server::{DiscoveryError, ResourceServer},
    tools::ProcoreTokenServer,
    transport::http_config::HttpConfig,
};

/// Path of the streamable HTTP endpoint.
pub const MCP_PATH: &str = "/mcp";

/// Path of the readiness check for load balancers: 200 while the token store answers, 503
/// otherwise. Outside the Host/Origin guard and the bearer token (a probe carries neither),
/// so it says nothing but ready or not.
pub const HEALTH_PATH: &str = "/healthz";

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The most of a request's head (request line and headers) held while it is read; a longer
/// head gets 431 and the connection is closed. hyper's own default is about 400 KiB, which
/// a flood of unfinished heads turns into hundreds of megabytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a connection beyond `--max-connections` reads before it is closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\n\
content-length: 80\r\n\r\n\
Service Unavailable: the server holds its maximum of connections; retry shortly\n";

/// Pause after a failed `accept` (out of file descriptors, say) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The whole HTTP application without a resource server (for `config`s without
/// `--auth-issuer`), ready to serve.
pub fn router(
    server: ProcoreTokenServer,
    config: &HttpConfig,
    shutdown: &CancellationToken,
) -> Router {
    router_with(server, config, shutdown, None)
}

/// The resource server of `config`, its issuer discovered; `None` without `--auth-issuer`.
pub async fn resource_server(
    config: &HttpConfig,
) -> Result<Option<Arc<ResourceServer>>, DiscoveryError> {
    match &config.resource_server {
        Some(settings) => Ok(Some(Arc::new(
            ResourceServer::discover(settings.as_ref().clone()).await?,
        ))),
        None => Ok(None),
    }
}

/// The whole HTTP application, every MCP endpoint behind `resource` when there is one (then
/// each tool call is its user's, and a call without a user is refused).
pub fn router_with(
    server: ProcoreTokenServer,
    config: &HttpConfig,
    shutdown: &CancellationToken,
    resource: Option<Arc<ResourceServer>>,
) -> Router {
    if resource.is_some() {
        server.require_users();
    }
    let guard = HostGuard::new(&config.allowed_hosts);
    let auth = BearerAuth::new(config.auth_token.as_ref());
    let limits = RequestLimits {
        max_body_bytes: config.max_request_bytes,
        read_timeout: config.read_timeout,
    };
    let shared = server.shared_sessions(config.session_idle);
    // Stateless 2026-07-28 requests whose answer is one message get it as plain JSON rather
    // than a one-event stream (rmcp falls back to a stream when a handler sends anything
    // first); the harness's A/B measured 15 µs less server CPU per call. Legacy sessions
    // always stream, as rmcp serves them.
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_allowed_hosts(config.allowed_hosts.iter().cloned())
        .with_max_request_body_bytes(config.max_request_bytes)
        .with_cancellation_token(shutdown.child_token());
    // rmcp keeps each session's `initialize` there and replays it on a replica that does
    // not hold the session.
    mcp_config.session_store = shared
        .clone()
        .map(|shared| Arc::new(NotingStore(shared)) as Arc<dyn SessionStore>);
    let mcp_sessions = Arc::new(BoundedSessions::new(
        config.max_sessions,
        config.session_idle,
        shared,
    ));
    let mcp_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(mcp_server.clone()),
        mcp_sessions.clone(),
        mcp_config,
    );
    let mcp = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            mcp_sessions,
            jsonrpc_gate::check_mcp,
        ))
        .service(mcp);
    let health_server = server.clone();
    let sse_sessions = SseSessions::new(
        server,
        SseLimits {
            max_sessions: config.max_sessions,
            idle: config.session_idle,
        },
        shutdown.child_token(),
    );
    let app = Router::new()
        .nest_service(MCP_PATH, mcp)
        .route(SSE_PATH, get(sse::open))
        .route(MESSAGE_PATH, post(sse::message))
        // Its own fallback, so that it stays behind the authentication layers once the
        // well-known routes are merged in: an unknown path is 401 before it is 404.
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .with_state(sse_sessions)
        .layer(DefaultBodyLimit::max(config.max_request_bytes))
        .layer(middleware::from_fn_with_state(
            limits,
            request_limits::read_body,
        ));
    // Without a token the check would pass every request; leave the layer (and its cost on
    // every request) out.
    let app = match &resource {
        Some(resource) => app.layer(middleware::from_fn_with_state(
            resource.clone(),
            access_tokens::check,
        )),
        None if auth.enabled() => {
            app.layer(middleware::from_fn_with_state(auth, bearer_auth::check))
        }
        None => app,
    };
    // Outside the authentication layers: a client probing for OAuth gets metadata or 404.
    let app = app
        .merge(access_tokens::well_known(resource))
        .layer(middleware::from_fn_with_state(guard, host_guard::check));
    Router::new()
        .route(HEALTH_PATH, get(health))
        .with_state(health_server)
        .merge(app)
}

/// `GET /healthz`: ready when the token store (if any) answers. The reason stays in the log.
async fn health(
    axum::extract::State(server): axum::extract::State<ProcoreTokenServer>,
) -> (axum::http::StatusCode, &'static str) {
    match server.ready().await {
        Ok(()) => (axum::http::StatusCode::OK, "ready\n"),
        Err(error) => {
            tracing::warn!(%error, "readiness check: not ready");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the token store does not answer\n",
            )
        }
    }
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
    let resource = resource_server(config).await.map_err(|error| {
        anyhow::anyhow!("the OAuth issuer (--auth-issuer) cannot be used: {error}")
    })?;
    warn_if_unauthenticated(config);
    announce(address);
    let app = router_with(server, config, &shutdown, resource);

    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connections = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(config.max_connections));
    let mut refusing = false;
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Accepted and refused at once (rather than left in the backlog) so a flood costs
        // one small write per connection, and its clients learn why.
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if !refusing {
                tracing::warn!(
                    max = config.max_connections,
                    "refusing new HTTP connections: the server holds its maximum \
                     (--max-connections); open ones are still served"
                );
                refusing = true;
            }
            refuse(stream).await;
            continue;
        };
        refusing = false;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = connections.watch(http1.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // The place is given back when the connection ends, however it ends.
            let _permit = permit;
            if let Err(error) = connection.await {
                tracing::debug!("connection ended: {error}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
    Ok(())
}

/// Tell a connection beyond the cap why it is closed, without ever waiting on it: what the
/// socket buffer does not take at once is not sent.
async fn refuse(mut stream: TcpStream) {
    let _ = stream.try_write(TOO_MANY_CONNECTIONS);
    let _ = stream.shutdown().await;
}

fn warn_if_unauthenticated(config: &HttpConfig) {
    if !config.allow_unauthenticated {
        return;
    }
    if config.auth_token.is_some() || config.resource_server.is_some() {
        tracing::warn!(
            "--allow-unauthenticated is set but has no effect: MCP_AUTH_TOKEN or \
             --auth-issuer is set, so every request must carry a bearer token"
        );
    } else {
        tracing::warn!(
            listen = %config.listen,
            "serving HTTP WITHOUT AUTHENTICATION (--allow-unauthenticated): anyone who can \
             reach this address can call the tools; set MCP_AUTH_TOKEN unless something in \
             front of this server authenticates callers"
        );
    }
}

fn announce(address: SocketAddr) {
    tracing::info!(
        "listening: streamable HTTP at http://{address}{MCP_PATH}, HTTP+SSE (2024-11-05) at \
         http://{address}{SSE_PATH}"
    );
}

//! The stdio transport: JSON-RPC on stdin/stdout, nothing else on stdout.

use rmcp::{ServiceExt, transport::stdio_pipes};
use tokio_util::sync::CancellationToken;

use crate::tools::ProcoreTokenServer;

/// Serve one client on stdin/stdout until stdin closes or `shutdown` is cancelled.
pub async fn serve(server: ProcoreTokenServer, shutdown: CancellationToken) -> anyhow::Result<()> {
    let running = match server.serve_with_ct(stdio_pipes(), shutdown).await {
        Ok(running) => running,
        Err(error) => {
            // The error may quote the offending message; log only its kind.
            tracing::info!(
                reason = initialize_failure_kind(&error),
                "stdio session ended before it was initialized"
            );
            return Ok(());
        }
    };
    let reason = running.waiting().await;
    tracing::debug!(ok = reason.is_ok(), "stdio session ended");
    Ok(())
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

//! Entry point: parse the configuration, start logging, pick the transport, run.

use std::process::ExitCode;

use clap::Parser;
use procore_token_mcp::{
    config::{Cli, Config, TransportConfig},
    logging,
    procore::ProcoreClient,
    tools::ProcoreTokenServer,
    transport,
};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let config = match Config::resolve(&cli.serve, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("procore-token-mcp: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("procore-token-mcp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("procore-token-mcp: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        login_host = %config.login.origin(),
        environment = config.environment,
        credentials_held = config.held.is_some(),
        "procore-token-mcp starting"
    );
    let procore = ProcoreClient::new(config.login.clone(), config.timeout)
        .with_max_response_bytes(config.max_response_bytes);
    let server = ProcoreTokenServer::new(procore, config.held.clone());
    match &config.transport {
        TransportConfig::Stdio => transport::stdio::serve(server).await,
        TransportConfig::Http(http) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            transport::http::serve(server, http, shutdown).await
        }
    }
}

/// Cancel `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

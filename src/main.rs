//! Entry point: parse the configuration, start logging, pick the transport, run.

use std::process::ExitCode;

use clap::Parser;
use procore_token_mcp::{
    config::{Cli, Command, Config, TransportConfig},
    demo, emulator,
    exchange::{StoreSettings, TokenExchange},
    logging,
    procore::ProcoreClient,
    store::TokenStore,
    tools::ProcoreTokenServer,
    transport,
};
use tokio_util::sync::CancellationToken;

/// What to run, once the command line is understood.
enum Job {
    Serve(Box<Config>, Option<StoreSettings>),
    Emulator {
        config: emulator::EmulatorConfig,
        secret_given: bool,
    },
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let job = match cli.command {
        Some(Command::Emulator(args)) => match args.config() {
            Ok(config) => Job::Emulator {
                config,
                secret_given: args.client_secret.is_some(),
            },
            Err(error) => {
                eprintln!("procore-token-mcp emulator: {error}");
                return ExitCode::from(2);
            }
        },
        Some(Command::Demo(args)) => Job::Demo(args),
        None => match serve_job(&cli.serve) {
            Ok(job) => job,
            Err(error) => {
                eprintln!("procore-token-mcp: {error}");
                return ExitCode::from(2);
            }
        },
    };
    // The server runs on one thread, whatever the transport. A token call that hops between
    // worker threads (the HTTP connection, rmcp's session worker, the exchange task, the
    // upstream connection) pays a wake-up for each hand-off; on one thread there are none.
    // Measured with the harness on two cores: less added latency on both transports, a
    // lower p99 and less memory, for about 2 % of throughput (the figures: README,
    // "Performance"). Blocking file work (the token store's fsync) goes to tokio's
    // blocking pool so it never stalls other clients. The emulator and the demo, which
    // stand in for a whole login service, keep the multi-threaded runtime.
    let mut builder = if matches!(job, Job::Serve(..)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("procore-token-mcp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match job {
            Job::Serve(config, store) => run(*config, store).await,
            Job::Emulator {
                config,
                secret_given,
            } => emulator::settings::run(config, secret_given, signal_token()).await,
            Job::Demo(args) => demo::run(args, signal_token()).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("procore-token-mcp: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's configuration and its token store, checked before anything starts.
fn serve_job(args: &procore_token_mcp::config::ServeArgs) -> anyhow::Result<Job> {
    let config = Config::resolve(args, |name| std::env::var(name).ok())?;
    let store = match &config.token_store {
        Some(path) => Some(StoreSettings {
            store: TokenStore::open(path)?,
            reuse_window: config.reuse_window,
        }),
        None => None,
    };
    Ok(Job::Serve(Box::new(config), store))
}

async fn run(config: Config, store: Option<StoreSettings>) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        login_host = %config.login.origin(),
        environment = config.environment,
        credentials_held = config.held.is_some(),
        token_store = store.as_ref().map(|s| s.store.path().display().to_string()),
        "procore-token-mcp starting"
    );
    let procore = ProcoreClient::new(config.login.clone(), config.timeout)
        .with_max_response_bytes(config.max_response_bytes);
    let exchange = TokenExchange::new(procore, store);
    let server = ProcoreTokenServer::new(exchange, config.held.clone());
    let served = match &config.transport {
        TransportConfig::Stdio => transport::stdio::serve(server.clone(), signal_token()).await,
        TransportConfig::Http(http) => {
            transport::http::serve(server.clone(), http, signal_token()).await
        }
    };
    server.drain().await;
    served
}

/// A token cancelled on SIGINT or SIGTERM.
fn signal_token() -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    shutdown
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

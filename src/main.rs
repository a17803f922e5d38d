//! Entry point: parse the configuration, start logging, pick the transport, run.

use std::process::ExitCode;

use procore_token_mcp::{
    cli::{Cli, Command},
    commands::{self, login, token},
    config::{Config, TransportConfig},
    demo,
    exchange::{StoreSettings, TokenExchange},
    logging,
    procore::ProcoreClient,
    tools::ProcoreTokenServer,
    transport,
};
use tokio_util::sync::CancellationToken;

/// What to run, once the command line is understood.
enum Job {
    Serve(Box<Config>, Option<StoreSettings>),
    Emulator {
        config: procore_emulator::EmulatorConfig,
        secret_given: bool,
    },
    Demo(demo::DemoArgs),
    Token(token::TokenArgs),
    Login(login::LoginArgs),
}

impl Job {
    /// The server and the commands that use its store run on one thread and may write the
    /// store; the emulator and the demo stand in for a whole login service.
    fn is_the_server_or_its_commands(&self) -> bool {
        matches!(self, Self::Serve(..) | Self::Token(_) | Self::Login(_))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from_env();
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
        Some(Command::Token(args)) => Job::Token(args),
        Some(Command::Login(args)) => Job::Login(args),
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
    // `--worker-threads N` above 1 trades that for throughput on N cores.
    let mut builder = match &job {
        Job::Serve(config, _) if config.worker_threads > 1 => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(config.worker_threads);
            builder
        }
        job if job.is_the_server_or_its_commands() => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("procore-token-mcp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Before the token store is touched (start-up may already write it): a file-size limit
    // below the store's size must make the write fail with EFBIG, reported like a full
    // disk, not kill the process with SIGXFSZ after Procore rotated the pair.
    let file_size_signal = if job.is_the_server_or_its_commands() {
        runtime.block_on(async { ignore_file_size_signal() })
    } else {
        None
    };
    let job = match job {
        Job::Serve(config, _) => match runtime.block_on(commands::open_store(&config)) {
            Ok(store) => Job::Serve(config, store),
            Err(error) => {
                eprintln!("procore-token-mcp: {error}");
                return ExitCode::from(2);
            }
        },
        other => other,
    };
    if let Some(signal) = file_size_signal {
        runtime.spawn(report_file_size_signals(signal));
    }
    let env = |name: &str| std::env::var(name).ok();
    let outcome = runtime.block_on(async {
        match job {
            Job::Token(args) => Ok(Some(token::run(&args, env).await)),
            Job::Login(args) => Ok(Some(login::run(&args, env).await)),
            Job::Serve(config, store) => run(*config, store).await.map(|()| None),
            Job::Emulator {
                config,
                secret_given,
            } => procore_emulator::settings::run(config, secret_given, signal_token())
                .await
                .map(|()| None)
                .map_err(anyhow::Error::from),
            Job::Demo(args) => demo::run(args, signal_token()).await.map(|()| None),
        }
    });
    match outcome {
        Ok(Some(code)) => code,
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("procore-token-mcp: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's configuration, checked before anything starts (the store is opened once
/// the runtime is up: see [`commands::open_store`]).
fn serve_job(args: &procore_token_mcp::config::ServeArgs) -> anyhow::Result<Job> {
    let config = Config::resolve(args, |name| std::env::var(name).ok())?;
    Ok(Job::Serve(Box::new(config), None))
}

/// SIGXFSZ, sent when a write would exceed `RLIMIT_FSIZE`.
#[cfg(target_os = "linux")]
const SIGXFSZ: i32 = 25;

/// Replace SIGXFSZ's default action (kill the process) with a handler, so an over-limit
/// write fails with EFBIG instead. Registering through tokio keeps `unsafe` out of this
/// crate; the handler stays installed for the life of the process.
#[cfg(target_os = "linux")]
fn ignore_file_size_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::from_raw(SIGXFSZ)) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot catch SIGXFSZ; a file-size limit may stop the server");
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn ignore_file_size_signal() -> Option<()> {
    None
}

/// Log each SIGXFSZ: the write that raised it fails and says why.
#[cfg(target_os = "linux")]
async fn report_file_size_signals(mut signal: tokio::signal::unix::Signal) {
    while signal.recv().await.is_some() {
        tracing::warn!("a write exceeded the file-size limit (RLIMIT_FSIZE)");
    }
}

#[cfg(not(target_os = "linux"))]
async fn report_file_size_signals(_signal: ()) {}

async fn run(config: Config, store: Option<StoreSettings>) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        login_host = %config.login.origin(),
        environment = config.environment,
        credentials_held = config.held.is_some(),
        token_store = store.as_ref().map(|s| s.store.location()),
        "procore-token-mcp starting"
    );
    let procore = ProcoreClient::new(config.login.clone(), config.timeout)
        .with_max_response_bytes(config.max_response_bytes)
        .with_request_encoding(config.request_encoding);
    let exchange = TokenExchange::new(procore, store);
    let server = ProcoreTokenServer::new(exchange, config.held.clone())?
        .with_environment(config.environment);
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

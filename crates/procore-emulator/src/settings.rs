//! `procore-token-mcp emulator`: its flags, and running it from the command line with a
//! start-up banner on stdout that scripts can parse:
//!
//! ```text
//! emulator listening on http://127.0.0.1:8723
//! emulator client_id=demo-… client_secret=… redirect_uri=urn:ietf:wg:oauth:2.0:oob
//! emulator authorize_url=http://127.0.0.1:8723/oauth/authorize?response_type=code&…
//! ```
//!
//! A client secret given by flag or environment is never printed (the banner says
//! `client_secret=(given)`); only a generated one is.

use std::{io::Write, net::SocketAddr, time::Duration};

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::{
    DelayFault, DropAfterRefreshFault, Emulator, EmulatorConfig, EmulatorError, Fault, GrantType,
    OOB_REDIRECT_URI, RunningEmulator, Secret, StatusFault,
};

/// Where the emulator listens unless told otherwise.
pub const DEFAULT_EMULATOR_LISTEN: &str = "127.0.0.1:8723";

/// Flags of `procore-token-mcp emulator`.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Address (IP:PORT) to listen on; port 0 picks a free one (the banner shows it).
    #[arg(long, env = "EMULATOR_LISTEN", default_value = DEFAULT_EMULATOR_LISTEN)]
    pub listen: SocketAddr,

    /// Client id of the registered application (default: generated, printed at start-up).
    #[arg(long, env = "EMULATOR_CLIENT_ID")]
    pub client_id: Option<String>,

    /// Client secret of the registered application (default: generated, printed at
    /// start-up; a given one is never printed).
    #[arg(long, env = "EMULATOR_CLIENT_SECRET", hide_env_values = true,
          value_parser = Secret::parse_trimmed)]
    pub client_secret: Option<Secret>,

    /// The registered redirect URI; urn:ietf:wg:oauth:2.0:oob is always accepted as well.
    #[arg(long, env = "EMULATOR_REDIRECT_URI", default_value = OOB_REDIRECT_URI)]
    pub redirect_uri: String,

    /// Seconds an authorization code stays exchangeable.
    #[arg(long, env = "EMULATOR_CODE_TTL_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub code_ttl_secs: u64,

    /// Seconds an access token lives (the expires_in of token responses).
    #[arg(long, env = "EMULATOR_ACCESS_TTL_SECS", default_value_t = 5400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub access_ttl_secs: u64,

    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Faults armed from start-up (all off by default). The control endpoint
/// `/_emulator/faults` changes them at run time.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Faults (for tests; all off by default)")]
pub struct FaultArgs {
    /// Hold each token answer back this many milliseconds (after processing the request).
    #[arg(long, value_name = "MS")]
    pub fault_delay_ms: Option<u64>,

    /// Answer token requests with this status (429 or 500-599) without processing them.
    #[arg(long, value_name = "CODE",
          value_parser = clap::value_parser!(u16).range(429..=599))]
    pub fault_status: Option<u16>,

    /// Retry-After seconds sent with --fault-status.
    #[arg(long, value_name = "SECS", requires = "fault_status")]
    pub fault_retry_after_secs: Option<u64>,

    /// After each successful refresh, close the connection without answering: the old
    /// refresh token is consumed and the new pair is lost.
    #[arg(long)]
    pub fault_drop_after_refresh: bool,

    /// Apply each fault above to this many matching token requests only (default: all).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub fault_times: Option<u32>,

    /// Apply --fault-delay-ms and --fault-status only to this grant type.
    #[arg(long, value_name = "GRANT",
          value_parser = ["authorization_code", "refresh_token", "client_credentials"])]
    pub fault_grant_type: Option<String>,
}

impl FaultArgs {
    /// The faults these flags arm.
    pub fn faults(&self) -> Vec<Fault> {
        let grant_type = self.fault_grant_type.as_deref().and_then(GrantType::parse);
        let times = self.fault_times;
        let mut faults = Vec::new();
        if let Some(ms) = self.fault_delay_ms {
            faults.push(Fault::Delay(DelayFault {
                ms,
                times,
                grant_type,
            }));
        }
        if let Some(code) = self.fault_status {
            faults.push(Fault::Status(StatusFault {
                code,
                retry_after_secs: self.fault_retry_after_secs,
                times,
                grant_type,
            }));
        }
        if self.fault_drop_after_refresh {
            faults.push(Fault::DropAfterRefresh(DropAfterRefreshFault { times }));
        }
        faults
    }
}

impl EmulatorArgs {
    /// The configuration these flags describe, checked. Missing credentials are generated.
    pub fn config(&self) -> Result<EmulatorConfig, EmulatorError> {
        let mut config = EmulatorConfig::generated()
            .with_listen(self.listen)
            .with_redirect_uri(self.redirect_uri.trim())
            .with_code_ttl(Duration::from_secs(self.code_ttl_secs))
            .with_access_ttl(Duration::from_secs(self.access_ttl_secs));
        if let Some(client_id) = &self.client_id {
            config.client_id = client_id.trim().to_owned();
        }
        if let Some(secret) = &self.client_secret {
            config.client_secret = secret.clone();
        }
        for fault in self.faults.faults() {
            config = config.with_fault(fault)?;
        }
        config.validate()?;
        Ok(config)
    }
}

/// The banner lines printed at start-up (stdout).
pub fn banner(emulator: &RunningEmulator, secret_given: bool) -> Vec<String> {
    let secret = if secret_given {
        "(given)"
    } else {
        emulator.client_secret().expose()
    };
    vec![
        format!("emulator listening on {}", emulator.base_url()),
        format!(
            "emulator client_id={} client_secret={secret} redirect_uri={}",
            emulator.client_id(),
            emulator.redirect_uri()
        ),
        format!(
            "emulator authorize_url={}",
            emulator.authorize_url(OOB_REDIRECT_URI, "emulator")
        ),
    ]
}

/// Run the emulator of `config` (from [`EmulatorArgs::config`]) until `shutdown` is
/// cancelled. `secret_given`: the secret came from the user, so the banner hides it.
pub async fn run(
    config: EmulatorConfig,
    secret_given: bool,
    shutdown: CancellationToken,
) -> Result<(), EmulatorError> {
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "the emulator listens beyond loopback; its control endpoint still answers \
             loopback peers only"
        );
    }
    let faults = config.faults.clone();
    let emulator = Emulator::start(config).await?;
    // Written, not `println!`ed: a closed stdout (`| head -1`) must not stop the emulator.
    let mut stdout = std::io::stdout().lock();
    for line in banner(&emulator, secret_given) {
        if writeln!(stdout, "{line}").is_err() {
            break;
        }
    }
    let _ = stdout.flush();
    drop(stdout);
    if !faults.is_empty() {
        tracing::info!(
            faults = %serde_json::to_string(&faults).unwrap_or_default(),
            "emulator faults armed from the command line"
        );
    }
    tracing::info!(
        "local OAuth emulator for tests and demos, not Procore; state is in memory; \
         Ctrl-C stops it"
    );
    shutdown.cancelled().await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    fn parse(argv: &[&str]) -> Result<EmulatorArgs, clap::Error> {
        let mut full = vec!["emulator"];
        full.extend_from_slice(argv);
        Wrapper::try_parse_from(full).map(|wrapper| wrapper.args)
    }

    #[test]
    fn defaults_generate_an_app_on_loopback() {
        let config = parse(&[]).unwrap().config().unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_EMULATOR_LISTEN);
        assert!(config.client_id.starts_with("demo-"));
        assert_eq!(config.client_secret.expose().len(), 64);
        assert_eq!(config.redirect_uri, OOB_REDIRECT_URI);
        assert_eq!(config.code_ttl, Duration::from_secs(600));
        assert_eq!(config.access_ttl, Duration::from_secs(5400));
        assert!(config.faults.is_empty());
    }

    #[test]
    fn fault_flags_arm_faults() {
        let config = parse(&[
            "--fault-status",
            "503",
            "--fault-retry-after-secs",
            "9",
            "--fault-delay-ms",
            "250",
            "--fault-drop-after-refresh",
            "--fault-times",
            "2",
            "--fault-grant-type",
            "refresh_token",
        ])
        .unwrap()
        .config()
        .unwrap();
        let status = config.faults.status.unwrap();
        assert_eq!(status.code, 503);
        assert_eq!(status.retry_after_secs, Some(9));
        assert_eq!(status.times, Some(2));
        assert_eq!(status.grant_type, Some(GrantType::RefreshToken));
        assert_eq!(config.faults.delay.unwrap().ms, 250);
        assert_eq!(config.faults.drop_after_refresh.unwrap().times, Some(2));
    }

    #[test]
    fn a_given_secret_is_trimmed_and_stays_out_of_debug_output() {
        let args = parse(&["--client-secret", " given-secret-canary \n"]).unwrap();
        let shown = format!("{args:?}");
        assert!(!shown.contains("given-secret-canary"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let config = args.config().unwrap();
        assert_eq!(config.client_secret.expose(), "given-secret-canary");
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--fault-status", "404"]).is_err());
        assert!(parse(&["--fault-retry-after-secs", "3"]).is_err());
        assert!(parse(&["--fault-times", "0"]).is_err());
        assert!(parse(&["--code-ttl-secs", "0"]).is_err());
        assert!(parse(&["--fault-grant-type", "password"]).is_err());
        let bad_uri = parse(&["--redirect-uri", "not a url"]).unwrap().config();
        assert!(matches!(bad_uri, Err(EmulatorError::Config(_))));
        let empty_id = parse(&["--client-id", " "]).unwrap().config();
        assert!(matches!(empty_id, Err(EmulatorError::Config(_))));
        // 429..=599 lets 430-499 through clap; the fault check refuses them.
        let odd = parse(&["--fault-status", "450"]).unwrap().config();
        assert!(matches!(odd, Err(EmulatorError::Fault(_))));
    }
}

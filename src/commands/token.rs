//! `procore-token-mcp token`: print a working access token from the store (renewed first
//! when it has less than `--min-valid-secs` left), alone and with a newline, on stdout, so
//! `curl -H "Authorization: Bearer $(procore-token-mcp token)" …` works.
//!
//! Exit 0 with the token; exit 2, with what to do on stderr and nothing on stdout, when a
//! sign-in is needed; exit 1 on any other failure.

use std::{io::Write, process::ExitCode, time::Duration};

use clap::Args;

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SIGN_IN, Setup, ended, fail, unless_interrupted};
use crate::{
    config::ServeArgs,
    exchange::Principal,
    oauth::ClientId,
    valid_token::{DEFAULT_MIN_VALID, NoValidToken, valid_token},
};

/// Flags of `procore-token-mcp token`: its own, then the server's.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Whose stored pair: the app's Client ID (default: PROCORE_CLIENT_ID's, or the only
    /// pair stored for the login host).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// Seconds the printed token must stay valid at least; a stored token with less left
    /// is renewed first.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_VALID.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub min_valid_secs: u64,

    #[command(flatten)]
    pub serve: ServeArgs,
}

const NAME: &str = "token";

/// Run the command with the process environment `env`.
pub async fn run(args: &TokenArgs, env: impl Fn(&str) -> Option<String>) -> ExitCode {
    let setup = match Setup::open(&args.serve, env).await {
        Ok(setup) => setup,
        Err(error) => return fail(NAME, EXIT_FAILED, &error.to_string()),
    };
    let client_id = args
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(ClientId::new);
    let exchange = &setup.exchange;
    let min_valid = Duration::from_secs(args.min_valid_secs);
    let work = valid_token(
        exchange,
        &Principal::Local,
        Some(&setup.held),
        client_id.as_ref(),
        min_valid,
    );
    let Some(outcome) = unless_interrupted(exchange, work).await else {
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    let token = match outcome {
        Ok(token) => token,
        Err(NoValidToken::SignIn(reason)) => {
            return fail(
                NAME,
                EXIT_SIGN_IN,
                &format!(
                    "a sign-in is needed: {reason}. Run `procore-token-mcp login` with the same \
                     settings (flags and environment) to sign in, or have an agent call the \
                     server's sign_in tool."
                ),
            );
        }
        Err(NoValidToken::Refresh(outcome)) => {
            return fail(
                NAME,
                EXIT_FAILED,
                &format!(
                    "the stored token could not be renewed: {}",
                    ended(exchange, &outcome)
                ),
            );
        }
        Err(error) => return fail(NAME, EXIT_FAILED, &error.to_string()),
    };
    if let Some(error) = &token.unstored {
        eprintln!(
            "procore-token-mcp token: warning: the renewed pair could not be written to the \
             token store ({error}); this token works until it expires, then a new sign-in is \
             needed"
        );
    }
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{}", token.access_token.expose()).and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(
            NAME,
            EXIT_FAILED,
            &format!("cannot write to stdout: {error}"),
        ),
    }
}

//! `procore-token-mcp login`: sign in once, the way `gh auth login` does. Prints the sign-in
//! link on stderr (and opens a browser when there is one and `--no-browser` is not given),
//! reads the code, or the whole address the browser was sent to, from stdin, and hands it
//! to [`crate::sign_in`] (the `state` check, the one exchange, the store); then prints one
//! line of confirmation without any token.
//!
//! A `state` that does not match is refused before anything is sent.

use std::{
    io::Write,
    process::{ExitCode, Stdio},
};

use clap::Args;
use tokio::io::AsyncBufReadExt;

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SIGN_IN, Setup, ended, fail, unless_interrupted};
use crate::{
    config::ServeArgs,
    exchange::{Outcome, Principal},
    oauth::RedirectUri,
    procore::OOB_REDIRECT_URI,
    sign_in::{NotSignedIn, SignInLink, pasted_code, redeem},
};

/// Flags of `procore-token-mcp login`: its own, then the server's.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The redirect URI registered for the app. With the default, Procore shows the code
    /// on its page; with a web one, paste the whole address the browser lands on.
    #[arg(long, value_name = "URI", default_value = OOB_REDIRECT_URI)]
    pub redirect_uri: String,

    /// Only print the sign-in link; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,

    #[command(flatten)]
    pub serve: ServeArgs,
}

const NAME: &str = "login";

/// Run the command with the process environment `env`, reading the answer from stdin.
pub async fn run(args: &LoginArgs, env: impl Fn(&str) -> Option<String>) -> ExitCode {
    let browser = browser_command(&env);
    let setup = match Setup::open(&args.serve, env).await {
        Ok(setup) => setup,
        Err(error) => return fail(NAME, EXIT_FAILED, &error.to_string()),
    };
    let redirect_uri = match RedirectUri::parse(args.redirect_uri.trim()) {
        Ok(uri) => uri,
        Err(error) => return fail(NAME, EXIT_FAILED, &error.to_string()),
    };
    let client_id = &setup.held.client_id;
    let exchange = &setup.exchange;
    let link = SignInLink::new(exchange, client_id, &redirect_uri);
    let environment = setup.config.environment;
    let login_host = exchange.login_host();
    let paste = if redirect_uri.as_str() == OOB_REDIRECT_URI {
        "the code the page shows"
    } else {
        "the whole address your browser lands on"
    };
    eprintln!(
        "Sign in to Procore ({environment}, {login_host}) as client {client_id}: open\n\n  \
         {}\n\nthen paste {paste} here and press Enter.",
        link.url
    );
    if !args.no_browser
        && let Some(program) = browser
    {
        open_browser(&program, link.url.as_str());
    }
    let mut line = String::new();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    if let Err(error) = stdin.read_line(&mut line).await {
        return fail(NAME, EXIT_FAILED, &format!("cannot read stdin: {error}"));
    }
    let code = match pasted_code(&line, &link.state) {
        Ok(code) => code,
        Err(error) => {
            return fail(
                NAME,
                EXIT_SIGN_IN,
                &format!("{error}. Nothing was sent to Procore; run login again."),
            );
        }
    };
    // From here on a signal waits for the exchange: the code is spent once it is sent.
    let redeemed = redeem(exchange, &Principal::Local, &setup.held, code, redirect_uri);
    let Some(redeemed) = unless_interrupted(exchange, redeemed).await else {
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    let signed_in = match redeemed {
        Ok(signed_in) => signed_in,
        Err(NotSignedIn::Unstored(error)) => {
            return fail(
                NAME,
                EXIT_FAILED,
                &format!(
                    "Procore issued a token pair, but it could not be written to the token \
                     store ({error}); fix the store and run login again"
                ),
            );
        }
        Err(NotSignedIn::Ended(outcome)) => {
            let refused = matches!(
                outcome.as_ref(),
                Outcome::Answered { response, .. } if response.status.is_client_error()
            );
            if refused {
                return fail(
                    NAME,
                    EXIT_SIGN_IN,
                    &format!(
                        "the code was refused: {}. Codes work once, for 10 minutes, with the \
                         redirect URI of their link; run login again.",
                        ended(exchange, &outcome)
                    ),
                );
            }
            return fail(NAME, EXIT_FAILED, &ended(exchange, &outcome));
        }
    };
    let who = signed_in.resource_owner(exchange).await;
    let who = who.map_or_else(String::new, |id| format!(" as user {id}"));
    let line = format!(
        "Signed in{who} to Procore ({environment}, {login_host}) with client {client_id}; \
         the access token expires {} (in {} min) and is renewed from the store.",
        utc(signed_in.expires_at),
        signed_in.expires_at.saturating_sub(signed_in.now) / 60
    );
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(
            NAME,
            EXIT_FAILED,
            &format!("cannot write to stdout: {error}"),
        ),
    }
}

/// The program that opens a link: `$BROWSER` (its first entry), else the desktop's opener
/// when there is a desktop (`open` on macOS; `xdg-open` under X11 or Wayland).
fn browser_command(env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if let Some(browser) = set("BROWSER") {
        return browser
            .split(':')
            .next()
            .map(str::trim)
            .filter(|first| !first.is_empty())
            .map(str::to_owned);
    }
    if cfg!(target_os = "macos") {
        return Some("open".to_owned());
    }
    (set("DISPLAY").is_some() || set("WAYLAND_DISPLAY").is_some()).then(|| "xdg-open".to_owned())
}

/// Start `program` on `link` and leave it running; a failure is only mentioned.
fn open_browser(program: &str, link: &str) {
    let started = std::process::Command::new(program)
        .arg(link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(error) = started {
        eprintln!("(could not start {program} to open the link: {error}; open it yourself)");
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_is_the_variable_or_a_desktop_opener() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(
            browser_command(&env(&[("BROWSER", "firefox:chromium")])).as_deref(),
            Some("firefox")
        );
        if !cfg!(target_os = "macos") {
            assert_eq!(browser_command(&env(&[])), None);
            assert_eq!(browser_command(&env(&[("DISPLAY", " ")])), None);
            assert_eq!(
                browser_command(&env(&[("WAYLAND_DISPLAY", "wayland-0")])).as_deref(),
                Some("xdg-open")
            );
        }
    }

    #[test]
    fn unix_seconds_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_354_100), "2026-12-04 03:15 UTC");
    }
}

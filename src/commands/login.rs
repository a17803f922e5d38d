//! `procore-token-mcp login`: sign in once, the way `gh auth login` does. Prints the sign-in
//! link on stderr (and opens a browser when there is one and `--no-browser` is not given),
//! reads the code, or the whole address the browser was sent to, from stdin, checks
//! `state`, exchanges the code once through the exchange (so the pair is stored before
//! anything is printed), and prints one line of confirmation without any token.
//!
//! A `state` that does not match is refused before anything is sent.

use std::{
    io::Write,
    process::{ExitCode, Stdio},
};

use clap::Args;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SIGN_IN, Setup, ended, fail, unless_interrupted};
use crate::{
    config::ServeArgs,
    exchange::{Outcome, Principal},
    oauth::{AccessToken, AuthorizationCode, RedirectUri},
    procore::{GrantType, OOB_REDIRECT_URI, TokenRequest, authorize_url},
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

/// Why a pasted answer cannot be used. Nothing is sent for any of them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error("nothing was pasted")]
    Empty,
    #[error(
        "the address's state is not this sign-in's: it belongs to another sign-in, or was \
         tampered with"
    )]
    ForeignState,
    #[error("the address carries no state to check against this sign-in's")]
    NoState,
    #[error("the sign-in was not approved: {0}")]
    Declined(String),
    #[error("the address holds no code")]
    NoCode,
}

/// The code in what the user pasted: a bare code (as Procore's out-of-band page shows
/// it), the address of that page (`…/oauth/authorize/<CODE>`), or the address a web
/// redirect URI received (`…?code=…&state=…`, whose `state` must be `expected`).
pub fn pasted_code(pasted: &str, expected: &str) -> Result<AuthorizationCode, PasteError> {
    let pasted = pasted.trim();
    if pasted.is_empty() {
        return Err(PasteError::Empty);
    }
    let query = match url::Url::parse(pasted) {
        Ok(url) if url.has_host() => {
            if let Some(code) = url
                .path()
                .rsplit_once("/oauth/authorize/")
                .map(|(_, code)| code)
                .filter(|code| !code.is_empty() && !code.contains('/'))
                && url.query().is_none()
            {
                return Ok(AuthorizationCode::new(code));
            }
            url.query().unwrap_or_default().to_owned()
        }
        _ if pasted.contains('=') => pasted
            .split_once('?')
            .map_or(pasted, |(_, query)| query)
            .to_owned(),
        _ => return Ok(AuthorizationCode::new(pasted)),
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if let Some(error) = get("error") {
        // Procore's error code only: a description is free text.
        let shown: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(PasteError::Declined(shown));
    }
    let code = get("code")
        .filter(|code| !code.trim().is_empty())
        .ok_or(PasteError::NoCode)?;
    match get("state") {
        Some(state) if state == expected => Ok(AuthorizationCode::new(code)),
        Some(_) => Err(PasteError::ForeignState),
        None => Err(PasteError::NoState),
    }
}

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
    let state = uuid::Uuid::new_v4().simple().to_string();
    let client_id = &setup.held.client_id;
    let link = authorize_url(
        setup.exchange.procore().base(),
        client_id,
        redirect_uri.as_str(),
        &state,
    );
    let environment = setup.config.environment;
    let login_host = setup.exchange.login_host();
    let paste = if redirect_uri.as_str() == OOB_REDIRECT_URI {
        "the code the page shows"
    } else {
        "the whole address your browser lands on"
    };
    eprintln!(
        "Sign in to Procore ({environment}, {login_host}) as client {client_id}: open\n\n  \
         {link}\n\nthen paste {paste} here and press Enter."
    );
    if !args.no_browser
        && let Some(program) = browser
    {
        open_browser(&program, link.as_str());
    }
    let mut line = String::new();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    if let Err(error) = stdin.read_line(&mut line).await {
        return fail(NAME, EXIT_FAILED, &format!("cannot read stdin: {error}"));
    }
    let code = match pasted_code(&line, &state) {
        Ok(code) => code,
        Err(error) => {
            return fail(
                NAME,
                EXIT_SIGN_IN,
                &format!("{error}. Nothing was sent to Procore; run login again."),
            );
        }
    };
    let request = TokenRequest {
        grant_type: GrantType::AuthorizationCode,
        client_id: client_id.clone(),
        client_secret: setup.held.client_secret.clone(),
        code: Some(code),
        redirect_uri: Some(redirect_uri),
        refresh_token: None,
    };
    let exchange = &setup.exchange;
    // From here on a signal waits for the exchange: the code is spent once it is sent.
    let Some(outcome) =
        unless_interrupted(exchange, exchange.exchange(&Principal::Local, request)).await
    else {
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    let (body, store_error) = match outcome.as_ref() {
        Outcome::Answered {
            response,
            store_error,
            ..
        } if response.is_token_response() => (
            String::from_utf8_lossy(&response.body).into_owned(),
            store_error.as_ref().map(ToString::to_string),
        ),
        Outcome::Answered { response, .. } if response.status.is_client_error() => {
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
        other => return fail(NAME, EXIT_FAILED, &ended(exchange, other)),
    };
    if let Some(error) = store_error {
        return fail(
            NAME,
            EXIT_FAILED,
            &format!(
                "Procore issued a token pair, but it could not be written to the token store \
                 ({error}); fix the store and run login again"
            ),
        );
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .map(AccessToken::new);
    let now = exchange.now_ms() / 1000;
    let expires_at = body
        .get("created_at")
        .and_then(Value::as_u64)
        .unwrap_or(now)
        .saturating_add(body.get("expires_in").and_then(Value::as_u64).unwrap_or(0));
    let who = match &access_token {
        Some(token) => resource_owner(exchange, token).await,
        None => None,
    };
    let who = who.map_or_else(String::new, |id| format!(" as user {id}"));
    let line = format!(
        "Signed in{who} to Procore ({environment}, {login_host}) with client {client_id}; \
         the access token expires {} (in {} min) and is renewed from the store.",
        utc(expires_at),
        expires_at.saturating_sub(now) / 60
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

/// Who the token acts for (`resource_owner_id` of the token info), if Procore says.
async fn resource_owner(
    exchange: &crate::exchange::TokenExchange,
    token: &AccessToken,
) -> Option<String> {
    let response = exchange.token_info(token).await.ok()?;
    if !response.status.is_success() {
        return None;
    }
    let info: Value = serde_json::from_slice(&response.body).ok()?;
    match info.get("resource_owner_id")? {
        Value::Number(id) => Some(id.to_string()),
        Value::String(id) if !id.is_empty() => Some(id.chars().take(64).collect()),
        _ => None,
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
    fn a_bare_code_or_the_out_of_band_page_is_taken_as_is() {
        for pasted in [
            "  4f9a0c3e7b21d8a6 \n",
            "https://login.procore.com/oauth/authorize/4f9a0c3e7b21d8a6",
        ] {
            assert_eq!(
                pasted_code(pasted, "s1").unwrap().expose(),
                "4f9a0c3e7b21d8a6",
                "{pasted}"
            );
        }
    }

    #[test]
    fn a_redirected_address_needs_this_sign_ins_state() {
        let good = "http://localhost/cb?code=c-1&state=s1";
        assert_eq!(pasted_code(good, "s1").unwrap().expose(), "c-1");
        assert_eq!(
            pasted_code("?code=c-1&state=s1", "s1").unwrap().expose(),
            "c-1"
        );
        assert_eq!(
            pasted_code("http://localhost/cb?code=c-1&state=s2", "s1").unwrap_err(),
            PasteError::ForeignState
        );
        assert_eq!(
            pasted_code("http://localhost/cb?code=c-1", "s1").unwrap_err(),
            PasteError::NoState
        );
        assert_eq!(
            pasted_code("http://localhost/cb?state=s1", "s1").unwrap_err(),
            PasteError::NoCode
        );
        assert_eq!(
            pasted_code(
                "http://localhost/cb?error=access_denied&error_description=<b>x</b>&state=s1",
                "s1"
            )
            .unwrap_err(),
            PasteError::Declined("access_denied".into())
        );
        assert_eq!(pasted_code(" \n", "s1").unwrap_err(), PasteError::Empty);
    }

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

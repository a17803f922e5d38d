//! The command line: the server's flags, or a subcommand (`emulator`, `demo`). Used by
//! `main` only; what the flags mean is [`crate::config`]'s.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use procore_emulator::settings::EmulatorArgs;

use crate::{
    commands::{login::LoginArgs, token::TokenArgs},
    config::ServeArgs,
    demo::DemoArgs,
};

const HELP_FOOTER: &str = "\
Server-held credentials (environment only, never on the command line):
  PROCORE_CLIENT_ID      the application's client id
  PROCORE_CLIENT_SECRET  the application's client secret
  When both are set, callers may omit client_id and client_secret and the secret never
  passes through the model.

Token store encryption at rest (environment only, never on the command line):
  PROCORE_STORE_KEY           base64 of 32 random bytes (`openssl rand -base64 32`): every
                              stored token response is encrypted with it (AES-256-GCM)
  PROCORE_STORE_KEY_PREVIOUS  the key before it, still read while rotating; values are
                              rewritten under PROCORE_STORE_KEY at their next save

Logging goes to stderr; RUST_LOG sets the level (default: info). No secret is ever logged.

Examples:
  procore-token-mcp                                  stdio, production login host
  procore-token-mcp --procore-env sandbox            stdio, developer sandbox
  procore-token-mcp --transport http --listen 127.0.0.1:8722
                                                     streamable HTTP at /mcp, old SSE at /sse
  procore-token-mcp demo                             try it all locally, no credentials
  PROCORE_TOKEN_STORE=~/.procore/tokens.json procore-token-mcp login
                                                     sign in once (PROCORE_CLIENT_ID/_SECRET set)
  curl -H \"Authorization: Bearer $(procore-token-mcp token)\" …
                                                     a working token for scripts (same store)
  procore-token-mcp emulator --listen 127.0.0.1:0    a local OAuth emulator for tests
  MCP_AUTH_TOKEN=… procore-token-mcp --transport http --listen 0.0.0.0:8722
                                                     every interface; callers send
                                                     Authorization: Bearer <the token>
  procore-token-mcp --transport http --auth-issuer https://id.example.com/realms/team \\
    --public-url https://mcp.example.com/mcp        a team: each user signs in with the
                                                     issuer; each user's tokens are theirs";

/// `procore-token-mcp`: an MCP server that obtains and renews Procore OAuth 2.0 access tokens.
#[derive(Debug, Parser)]
#[command(
    name = "procore-token-mcp",
    version,
    about = "MCP server that obtains and renews Procore OAuth 2.0 access tokens",
    long_about = "An MCP server whose tool get_or_refresh_an_access_token forwards the \
                  token request to the Procore login host's /oauth/token and returns \
                  Procore's token JSON as received; grant_app_authorization, get_token_info \
                  and revoke_token build the sign-in link, check a token and revoke one. \
                  Token requests are never retried: authorization codes and refresh tokens \
                  are single-use.",
    after_help = HELP_FOOTER,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands; without one, the server runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run a local emulator of Procore's OAuth endpoints (for tests, CI and demos; it is
    /// not Procore). Prints its URL and its application's credentials at start-up.
    Emulator(EmulatorArgs),
    /// Start the local OAuth emulator and this server's HTTP transport pointed at it, both
    /// on loopback, and print how to try the whole token flow. Runs until Ctrl-C.
    Demo(DemoArgs),
    /// Print a working access token from the token store (renewed first when it has less
    /// than --min-valid-secs left) and a newline on stdout. Exit 2, with what to do on
    /// stderr, when a sign-in is needed. Takes the server's flags and environment.
    Token(TokenArgs),
    /// Sign in once: print the sign-in link, read the code (or the redirected address)
    /// from stdin, check state, exchange the code and store the pair. Prints no token.
    /// Takes the server's flags and environment.
    Login(LoginArgs),
}

impl Cli {
    /// Parse the process's arguments and environment, reading a variable that is set but
    /// empty (or only spaces) as unset: registry installers and bundles pass an empty string
    /// for an optional field the user skipped, and that must mean "the default", not an
    /// error. Exits with clap's message (code 2) on bad input, as `Parser::parse` does.
    pub fn parse_from_env() -> Self {
        let command = without_empty_env(Self::command(), &|name| std::env::var_os(name));
        let matches = command.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// `command` with the `env` of every argument (of every subcommand too) whose variable
/// `lookup` finds set but blank taken off, so clap treats it as absent.
fn without_empty_env(
    command: clap::Command,
    lookup: &dyn Fn(&std::ffi::OsStr) -> Option<std::ffi::OsString>,
) -> clap::Command {
    let blank = |arg: &clap::Arg| {
        arg.get_env()
            .and_then(lookup)
            .is_some_and(|value| value.to_string_lossy().trim().is_empty())
    };
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let mut command = command.mut_args(|arg| {
        if blank(&arg) {
            arg.env(None::<&str>)
        } else {
            arg
        }
    });
    for name in names {
        command = command.mut_subcommand(name, |sub| without_empty_env(sub, lookup));
    }
    command
}

#[cfg(test)]
mod tests {
    use std::ffi::{OsStr, OsString};

    use super::*;

    fn env_of<'a>(command: &'a clap::Command, id: &str) -> Option<&'a OsStr> {
        command
            .get_arguments()
            .find(|arg| arg.get_id() == id)
            .and_then(clap::Arg::get_env)
    }

    #[test]
    fn a_blank_variable_is_read_as_unset_and_a_set_one_is_kept() {
        let lookup = |name: &OsStr| match name.to_str() {
            Some("PROCORE_ENV") => Some(OsString::from("")),
            Some("PROCORE_TOKEN_STORE") => Some(OsString::from("  ")),
            Some("EMULATOR_CLIENT_ID") => Some(OsString::from("")),
            Some("MCP_TRANSPORT") => Some(OsString::from("http")),
            _ => None,
        };
        let command = without_empty_env(Cli::command(), &lookup);
        assert_eq!(env_of(&command, "procore_env"), None);
        assert_eq!(env_of(&command, "token_store"), None);
        assert_eq!(
            env_of(&command, "transport"),
            Some(OsStr::new("MCP_TRANSPORT"))
        );
        assert_eq!(
            env_of(&command, "timeout_secs"),
            Some(OsStr::new("PROCORE_TIMEOUT_SECS")),
            "an unset variable keeps its env"
        );
        let emulator = command.find_subcommand("emulator").unwrap();
        let client_id = emulator
            .get_arguments()
            .find(|arg| arg.get_long() == Some("client-id"))
            .unwrap();
        assert_eq!(client_id.get_env(), None, "subcommands too");
    }
}

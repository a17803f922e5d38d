//! The OAuth client for Procore's login host: token requests go out, raw status and body
//! come back.
//!
//! This module knows hosts, encodings and timeouts, and nothing of MCP. It never retries a
//! request (codes and refresh tokens are single-use), never follows a redirect (a secret
//! must not be re-sent to another host) and never rebuilds a response body.

mod client;
mod login_base;
mod token_request;

pub use client::{ProcoreClient, UpstreamError, UpstreamResponse};
pub use login_base::{LoginBase, LoginBaseError};
pub use token_request::{GrantType, TokenRequest};

/// The token endpoint (Procore's "Get Or Refresh An Access Token").
pub const TOKEN_PATH: &str = "/oauth/token";
/// The redirect URI for installed and headless applications: the code is shown to the user.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

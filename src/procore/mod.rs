//! The OAuth client for Procore's login host: token requests go out, raw status and body
//! come back.
//!
//! This module knows hosts, encodings and timeouts, and nothing of MCP. It never retries a
//! request (codes and refresh tokens are single-use), never follows a redirect (a secret
//! must not be re-sent to another host) and never rebuilds a response body.

mod client;
mod login_base;
mod token_request;

pub use client::{ProcoreClient, RequestEncoding, UpstreamError, UpstreamResponse};
pub use login_base::{LoginBase, LoginBaseError};
pub use token_request::{GrantType, TokenRequest};

use crate::oauth::{ClientId, ClientSecret};

/// The sign-in link a user opens (`GET /oauth/authorize`); nothing is sent.
pub fn authorize_url(
    login: &LoginBase,
    client_id: &ClientId,
    redirect_uri: &str,
    state: &str,
) -> url::Url {
    let mut url = login.endpoint(AUTHORIZE_PATH);
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id.as_str())
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    url
}

/// The application's credentials, held by the server so callers need not pass them.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
}

/// The token endpoint (Procore's "Get Or Refresh An Access Token").
pub const TOKEN_PATH: &str = "/oauth/token";
/// Procore's "Get Token Info".
pub const TOKEN_INFO_PATH: &str = "/oauth/token/info";
/// Procore's "Revoke Token".
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// Procore's "Grant App Authorization" (opened by the user's browser, never by this server).
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The redirect URI for installed and headless applications: the code is shown to the user.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

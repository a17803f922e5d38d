//! Fixed values the tests send and look for: the token tool's name, the token response the
//! login hosts answer, and canary secrets, values no log line and no error text may ever
//! contain. Tests push them through the server and search everything it wrote for them.

/// The tool that asks the login host for a token.
pub const TOOL: &str = "get_or_refresh_an_access_token";

/// A token response as Procore formats it, with an extra field and odd spacing so a test
/// can tell a verbatim copy from a re-serialized one. Its tokens are [`ACCESS_OUT`] and
/// [`REFRESH_OUT`].
pub const TOKEN_BODY: &str = "{\"access_token\":\"at-canary-7f3a\", \"token_type\":\"bearer\",\n \"expires_in\":5400,\"refresh_token\":\"rt-canary-91bc\",\"created_at\":1484786897,\"zz_extra\":{\"b\":1,\"a\":2}}";

/// The client secret a caller passes.
pub const CLIENT_SECRET: &str = "cs-canary-5e1d";
/// The client secret the server holds (`PROCORE_CLIENT_SECRET`).
pub const HELD_SECRET: &str = "held-secret-canary";
/// An authorization code.
pub const CODE: &str = "code-canary-3c2b";
/// A refresh token a caller sends.
pub const REFRESH_IN: &str = "rt-in-canary-a1f0";
/// The access token the login host issues (in [`TOKEN_BODY`]).
pub const ACCESS_OUT: &str = "at-canary-7f3a";
/// The refresh token the login host issues (in [`TOKEN_BODY`]).
pub const REFRESH_OUT: &str = "rt-canary-91bc";

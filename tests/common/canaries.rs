//! Canary secrets: values no log line and no error text may ever contain. Tests push them
//! through the server and search everything it wrote for them.

/// The client secret a caller passes.
pub const CLIENT_SECRET: &str = "cs-canary-5e1d";
/// The client secret the server holds (`PROCORE_CLIENT_SECRET`).
pub const HELD_SECRET: &str = "held-secret-canary";
/// An authorization code.
pub const CODE: &str = "code-canary-3c2b";
/// A refresh token a caller sends.
pub const REFRESH_IN: &str = "rt-in-canary-a1f0";
/// The access token the login host issues (in `TOKEN_BODY`).
pub const ACCESS_OUT: &str = "at-canary-7f3a";
/// The refresh token the login host issues (in `TOKEN_BODY`).
pub const REFRESH_OUT: &str = "rt-canary-91bc";

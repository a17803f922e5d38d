//! procore-token-mcp: an MCP server that obtains and renews Procore OAuth 2.0 access tokens.
//!
//! A request walks one line: transport (stdio, streamable HTTP, old HTTP+SSE) → tool
//! (schema, validation, result mapping) → Procore client (hosts, encoding, timeouts, no
//! retries) → the Procore login host. Each step knows only the next one.
//!
//! Beside that line, the `procore-emulator` crate of this workspace is a local stand-in for
//! the login host (for tests, CI and [`demo`]); the server reaches it only when pointed at
//! it, never by default.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod exchange;
pub mod logging;
pub mod oauth;
pub mod procore;
pub mod resource_server;
pub mod secret;
pub mod sign_in;
pub mod store;
pub mod tls;
pub mod tools;
pub mod transport;
pub mod valid_token;

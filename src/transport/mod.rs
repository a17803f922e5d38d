//! How MCP messages reach the server: stdio, or one HTTP listener serving streamable HTTP
//! (`/mcp`) beside the 2024-11-05 HTTP+SSE transport (`/sse` + `/message`).
//!
//! Knows framing, sessions, limits and who may connect (one shared token, or access tokens
//! judged by [`crate::resource_server`], whose principal it hands to the tools); knows
//! nothing of Procore's OAuth.

pub mod access_tokens;
pub mod bearer_auth;
pub mod host_guard;
pub mod http;
pub mod http_config;
pub mod jsonrpc_gate;
pub mod mcp_sessions;
pub mod request_limits;
pub mod sse;
pub mod stdio;

//! How MCP messages reach the server: stdio, or one HTTP listener serving streamable HTTP
//! (`/mcp`) beside the 2024-11-05 HTTP+SSE transport (`/sse` + `/message`).
//!
//! Knows framing, sessions, limits and who may connect; knows nothing of OAuth.

pub mod bearer_auth;
pub mod host_guard;
pub mod http;
pub mod http_config;
pub mod jsonrpc_gate;
pub mod mcp_sessions;
pub mod request_limits;
pub mod sse;
pub mod stdio;

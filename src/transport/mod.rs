//! How MCP messages reach the server: stdio, or one HTTP listener serving streamable HTTP
//! (`/mcp`) beside the 2024-11-05 HTTP+SSE transport (`/sse` + `/message`).
//!
//! Knows framing, sessions and who may connect; knows nothing of OAuth.

pub mod host_guard;
pub mod http;
pub mod sse;
pub mod stdio;

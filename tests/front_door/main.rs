//! The front door: every test here drives the built binary (stdio, streamable HTTP, the old
//! HTTP+SSE endpoints, its subcommands) through real clients, against a real login host on
//! 127.0.0.1: a recording upstream, a misbehaving one, or the local emulator. One module per
//! behaviour; one test binary, so the dependency tree is linked once.
//!
//! `cargo test --test front_door` runs them all; `cargo test --test front_door token_store::`
//! runs one module.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;

mod access_token;
mod at_rest;
mod end_to_end;
mod forwarding;
mod hostile_clients;
mod http_access;
mod http_limits;
mod load_balancer;
mod replicas;
mod resource_server;
mod secrets;
mod sign_in;
mod startup;
mod token_store;
mod tool_list;
mod transports;
mod upstream_faults;

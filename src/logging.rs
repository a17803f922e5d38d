//! Logging: `tracing` to stderr, level from `RUST_LOG` (default `info`).
//!
//! rmcp prints whole JSON-RPC messages (tool arguments, token responses) in its debug and
//! trace events, so its events above `info` are dropped whatever `RUST_LOG` says: no secret
//! may reach a log line at any level.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, filter_fn},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Crates whose verbose events may quote message payloads.
const PAYLOAD_LOGGING_TARGETS: [&str; 1] = ["rmcp"];

/// Install the subscriber. Call once, first thing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .with_filter(filter.and(filter_fn(payload_free)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

fn payload_free(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let payload_crate = PAYLOAD_LOGGING_TARGETS
        .iter()
        .any(|name| target == *name || target.starts_with(&format!("{name}::")));
    !payload_crate || *metadata.level() <= Level::INFO
}

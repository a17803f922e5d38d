//! Logging: `tracing` to stderr, level from `RUST_LOG` (default `info`): a level
//! (`debug`), or comma-separated `target=level` directives (`info,procore_token_mcp=trace`).
//!
//! rmcp prints whole JSON-RPC messages (tool arguments, token responses) in its debug and
//! trace events, so its events above `info` are dropped whatever `RUST_LOG` says: no secret
//! may reach a log line at any level.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::{
    Layer,
    filter::{FilterExt, LevelFilter, Targets, filter_fn},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Crates whose verbose events may quote message payloads.
const PAYLOAD_LOGGING_TARGETS: [&str; 1] = ["rmcp"];

/// Install the subscriber. Call once, first thing.
pub fn init() {
    let (filter, refused) = directives(std::env::var("RUST_LOG").ok().as_deref());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .with_filter(filter.and(filter_fn(payload_free)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
    if refused {
        tracing::warn!("RUST_LOG is not a level or target=level list; logging at info");
    }
}

/// The filter `RUST_LOG` asks for (`info` when unset or empty), and whether it was refused.
fn directives(rust_log: Option<&str>) -> (Targets, bool) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => (info, false),
        Some(text) => match text.parse::<Targets>() {
            Ok(targets) => (targets, false),
            Err(_) => (info, true),
        },
    }
}

fn payload_free(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let payload_crate = PAYLOAD_LOGGING_TARGETS
        .iter()
        .any(|name| target == *name || target.starts_with(&format!("{name}::")));
    !payload_crate || *metadata.level() <= Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives() {
        let (info, refused) = directives(None);
        assert!(!refused);
        assert!(info.would_enable("procore_token_mcp", &Level::INFO));
        assert!(!info.would_enable("procore_token_mcp", &Level::DEBUG));

        let (mixed, _) = directives(Some("warn,procore_token_mcp=trace"));
        assert!(mixed.would_enable("procore_token_mcp::tools", &Level::TRACE));
        assert!(!mixed.would_enable("hyper", &Level::INFO));

        let (fallback, refused) = directives(Some("=[{nonsense"));
        assert!(refused);
        assert!(fallback.would_enable("x", &Level::INFO));
    }
}

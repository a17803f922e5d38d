//! Logging: `tracing` to stderr, level from `RUST_LOG` (default `info`): a level
//! (`debug`), or comma-separated `target=level` directives (`info,procore_token_mcp=trace`).
//!
//! No log line may carry what a peer sent: rmcp prints whole JSON-RPC messages in its debug
//! and trace events, and even at `info` and `warn` it echoes a received notification whole
//! (a `tools/call` sent without an `id` is one, arguments and all), the free-text `reason`
//! of a cancellation, the client's `initialize` parameters, and a peer's error responses.
//! So an rmcp event is kept only when it is a warning or an error and every field it carries
//! is one of a few that hold our own state (transport and I/O errors, counts), never a
//! message's content, whatever `RUST_LOG` says.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::{
    Layer,
    filter::{FilterExt, LevelFilter, Targets, filter_fn},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Crates whose events may quote message payloads.
const PAYLOAD_LOGGING_TARGETS: [&str; 1] = ["rmcp"];

/// The fields an event of those crates may carry and still be printed. Each is produced by
/// the server itself (an I/O or transport error, a limit), never copied from a message.
/// Everything else rmcp attaches (`notification`, `reason`, `peer_info`, `id` beside a
/// peer's error text, …) may quote what a client sent.
const PAYLOAD_FREE_FIELDS: [&str; 4] = ["message", "error", "e", "max_line_length"];

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

/// Whether an event (or span) can be printed without quoting a peer's message. Decided
/// from its static metadata alone, so the decision is made once per call site.
fn payload_free(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let payload_crate = PAYLOAD_LOGGING_TARGETS.iter().any(|name| {
        target
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    if !payload_crate {
        return true;
    }
    // Spans are never printed by this subscriber's format (no span fields in events), but
    // they are refused too so a later format change cannot bring their fields back.
    metadata.is_event()
        && *metadata.level() <= Level::WARN
        && metadata
            .fields()
            .iter()
            .all(|field| PAYLOAD_FREE_FIELDS.contains(&field.name()))
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

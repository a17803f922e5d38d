//! Server-sent events, parsed incrementally from a byte stream: what the old HTTP+SSE
//! transport and streamable HTTP's event-stream answers carry.

/// One parsed server-sent event.
#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Incremental SSE parser over a byte stream.
#[derive(Default)]
pub struct SseParser {
    buffer: String,
    current: SseEvent,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.current.data.is_empty() || !self.current.event.is_empty() {
                    let mut event = std::mem::take(&mut self.current);
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    events.push(event);
                }
            } else if let Some(value) = line.strip_prefix("event:") {
                self.current.event = value.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.current.data.is_empty() {
                    self.current.data.push('\n');
                }
                self.current
                    .data
                    .push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        events
    }
}

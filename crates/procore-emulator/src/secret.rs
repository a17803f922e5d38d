//! `Secret`: the emulator's own redacting string, for its client secret, the codes and the
//! tokens it issues, and every value a request sends it.
//!
//! `Debug` and `Display` print `[redacted]`; the value is reachable only through
//! [`Secret::expose`], and it is zeroed when dropped. It is the emulator's type, not the
//! server's, so the emulator shares no code with the client it checks.

use std::{convert::Infallible, fmt};

use zeroize::Zeroizing;

/// What `Debug` and `Display` print in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// A secret string. Compare with [`Secret::expose`]; print it never.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// clap's value parser for a secret given by flag or environment: the value, trimmed.
    pub fn parse_trimmed(value: &str) -> Result<Self, Infallible> {
        Ok(Self::new(value.trim()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("canary-value-123");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "canary-value-123");
    }

    #[test]
    fn the_value_parser_trims() {
        assert_eq!(
            Secret::parse_trimmed("  given-secret \n").map(|s| s.expose().to_owned()),
            Ok("given-secret".to_owned())
        );
    }
}

//! `Secret`: a string that must never reach a log line, an error text or a `Debug` dump.
//!
//! Client secrets, authorization codes, access tokens and refresh tokens are held in this
//! type from the moment they are parsed. `Debug` and `Display` print `[redacted]`; the
//! value is reachable only through [`Secret::expose`], and it is zeroed when dropped.

use std::fmt;

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

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
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

/// Secrets shorter than this are not scrubbed from quoted text: they would match ordinary
/// words of the body, and no Procore client secret, code or token is anywhere near as short.
pub const SCRUB_MIN_CHARS: usize = 8;

/// The secrets one request sent upstream, to scrub from anything quoted back from the
/// answer: an upstream that echoes its request (a debug endpoint, a misconfigured proxy)
/// must not hand the client secret or a refresh token to the model through an error text.
#[derive(Clone, Default)]
pub struct SentSecrets(Vec<Secret>);

impl fmt::Debug for SentSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentSecrets({} values)", self.0.len())
    }
}

impl SentSecrets {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        Self(secrets.into_iter().cloned().collect())
    }

    /// `text` with every sent secret replaced by [`REDACTED`]: as sent, as it reads inside
    /// a JSON string, and form-encoded, longest first so no part of one survives another.
    pub fn scrub(&self, text: &str) -> String {
        let mut forms: Vec<Zeroizing<String>> = Vec::new();
        for secret in &self.0 {
            let raw = secret.expose();
            if raw.chars().count() < SCRUB_MIN_CHARS {
                continue;
            }
            forms.push(Zeroizing::new(raw.to_owned()));
            if let Ok(quoted) = serde_json::to_string(raw) {
                let inner = quoted
                    .strip_prefix('"')
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or(&quoted);
                forms.push(Zeroizing::new(inner.to_owned()));
            }
            let form_encoded: String =
                url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
            forms.push(Zeroizing::new(form_encoded));
        }
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.dedup();
        let mut scrubbed = text.to_owned();
        for form in &forms {
            if scrubbed.contains(form.as_str()) {
                scrubbed = scrubbed.replace(form.as_str(), REDACTED);
            }
        }
        scrubbed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_form_of_a_sent_secret_and_nothing_else() {
        let secret = Secret::new("s3cr\"et/+ value");
        let token = Secret::new("refresh-token-0123");
        let short = Secret::new("abc");
        let sent = SentSecrets::new([&secret, &token, &short]);
        let body = r#"{"echo":{"client_secret":"s3cr\"et/+ value","refresh_token":"refresh-token-0123"},"raw":"s3cr"et/+ value","form":"client_secret=s3cr%22et%2F%2B+value","error":"abc"}"#;
        let scrubbed = sent.scrub(body);
        assert_eq!(
            scrubbed,
            r#"{"echo":{"client_secret":"[redacted]","refresh_token":"[redacted]"},"raw":"[redacted]","form":"client_secret=[redacted]","error":"abc"}"#
        );
        assert_eq!(SentSecrets::default().scrub(body), body);
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("canary-value-123");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "canary-value-123");
    }
}

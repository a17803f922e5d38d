//! The one application registered with the emulator: its client id and secret, its redirect
//! URI (the out-of-band URI is always accepted too), and client authentication.
//!
//! Secrets are compared in constant time and never printed.

use super::request_body::ClientCredentials;
use crate::{OOB_REDIRECT_URI, Secret};

/// A registered OAuth application.
#[derive(Debug, Clone)]
pub struct Application {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
}

impl Application {
    /// Whether `uri` may be used in authorize and code requests: the registered URI,
    /// character for character, or the out-of-band URI.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        uri == OOB_REDIRECT_URI || uri == self.redirect_uri
    }

    /// Whether `client_id` names this application.
    pub fn is(&self, client_id: &str) -> bool {
        client_id == self.client_id
    }

    /// Whether the credentials are this application's.
    pub fn authenticates(&self, credentials: &ClientCredentials) -> bool {
        let id_ok = self.is(&credentials.client_id);
        let secret_ok = same_bytes(
            credentials.client_secret.expose().as_bytes(),
            self.client_secret.expose().as_bytes(),
        );
        id_ok & secret_ok
    }
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter()
        .zip(b)
        .fold(0u8, |difference, (x, y)| difference | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Application {
        Application {
            client_id: "app".into(),
            client_secret: Secret::new("s3cret"),
            redirect_uri: "https://app.example/callback".into(),
        }
    }

    fn credentials(id: &str, secret: &str) -> ClientCredentials {
        ClientCredentials {
            client_id: id.into(),
            client_secret: Secret::new(secret),
        }
    }

    #[test]
    fn authenticates_only_the_exact_pair() {
        let app = app();
        assert!(app.authenticates(&credentials("app", "s3cret")));
        assert!(!app.authenticates(&credentials("app", "s3cres")));
        assert!(!app.authenticates(&credentials("app", "s3cret ")));
        assert!(!app.authenticates(&credentials("other", "s3cret")));
    }

    #[test]
    fn accepts_the_registered_and_the_oob_redirect_only() {
        let app = app();
        assert!(app.accepts_redirect("https://app.example/callback"));
        assert!(app.accepts_redirect(OOB_REDIRECT_URI));
        assert!(!app.accepts_redirect("https://app.example/callback/"));
        assert!(!app.accepts_redirect("https://evil.example/callback"));
    }
}

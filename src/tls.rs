//! TLS set-up for outgoing HTTPS: the `ring` crypto provider for rustls, installed once.

/// Install `ring` as the process's rustls provider. Safe to call any number of times; the
/// first provider installed stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

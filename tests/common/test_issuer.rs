//! An OAuth authorization server written for the tests, on 127.0.0.1: its metadata (RFC
//! 8414, or only OpenID discovery), a JWKS that counts its fetches, and access tokens minted
//! on demand — good ones, and every kind of bad one, signed by `ring`. The RSA key is a
//! fixed test key (`test_issuer_rsa.pk8.b64`, since `ring` cannot generate RSA keys); the
//! P-256 keys are generated per issuer.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ring::{
    hmac,
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair},
};
use serde_json::{Value, json};

const RSA_PKCS8_B64: &str = include_str!("test_issuer_rsa.pk8.b64");

/// A key the issuer signs with.
#[derive(Clone)]
pub enum SigningKey {
    Rs256 {
        kid: String,
        pair: Arc<RsaKeyPair>,
    },
    Es256 {
        kid: String,
        pair: Arc<EcdsaKeyPair>,
    },
}

impl SigningKey {
    /// The fixed RSA test key, as `kid`.
    pub fn rsa(kid: &str) -> Self {
        let der = STANDARD
            .decode(RSA_PKCS8_B64.split_whitespace().collect::<String>())
            .unwrap();
        Self::Rs256 {
            kid: kid.into(),
            pair: Arc::new(RsaKeyPair::from_pkcs8(&der).unwrap()),
        }
    }

    /// A new P-256 key, as `kid`.
    pub fn p256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::Es256 {
            kid: kid.into(),
            pair: Arc::new(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()),
        }
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Rs256 { kid, .. } | Self::Es256 { kid, .. } => kid,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rs256 { .. } => "RS256",
            Self::Es256 { .. } => "ES256",
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            Self::Rs256 { kid, pair } => {
                let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": b64(&public.n), "e": b64(&public.e),
                })
            }
            Self::Es256 { kid, pair } => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256", "kid": kid,
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
        }
    }

    /// The public key's bytes (what an HMAC confusion attack uses as the secret).
    pub fn public_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rs256 { pair, .. } => pair.public().as_ref().to_vec(),
            Self::Es256 { pair, .. } => pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Rs256 { pair, .. } => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .unwrap();
                signature
            }
            Self::Es256 { pair, .. } => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
        }
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `header.claims.signature` with `signature` as given.
pub fn compact(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// HS256 over `message` with `secret`.
pub fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// Where the issuer publishes its metadata.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// RFC 8414 `/.well-known/oauth-authorization-server`.
    OAuth,
    /// Only OpenID Connect's `/.well-known/openid-configuration`.
    OpenIdOnly,
}

struct IssuerState {
    url: String,
    /// The `issuer` the metadata names (the real one unless a test lies).
    named_issuer: Mutex<String>,
    discovery: Discovery,
    published: Mutex<Vec<SigningKey>>,
    jwks_fetches: AtomicUsize,
}

/// The issuer, serving until dropped.
pub struct TestIssuer {
    pub url: String,
    state: Arc<IssuerState>,
    task: tokio::task::JoinHandle<()>,
    /// The key tokens are signed with unless a test picks another.
    pub key: SigningKey,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIssuer {
    /// An RFC 8414 issuer publishing the RSA key `rsa-1` and a P-256 key `ec-1`.
    pub async fn start() -> Self {
        Self::start_with(Discovery::OAuth).await
    }

    pub async fn start_with(discovery: Discovery) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKey::rsa("rsa-1");
        let state = Arc::new(IssuerState {
            url: url.clone(),
            named_issuer: Mutex::new(url.clone()),
            discovery,
            published: Mutex::new(vec![key.clone(), SigningKey::p256("ec-1")]),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(|State(state): State<Arc<IssuerState>>| async move {
                    if state.discovery == Discovery::OAuth {
                        Json(metadata(&state)).into_response()
                    } else {
                        StatusCode::NOT_FOUND.into_response()
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(|State(state): State<Arc<IssuerState>>| async move { Json(metadata(&state)) }),
            )
            .route(
                "/jwks",
                get(|State(state): State<Arc<IssuerState>>| async move {
                    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    let keys: Vec<Value> = state
                        .published
                        .lock()
                        .unwrap()
                        .iter()
                        .map(SigningKey::jwk)
                        .collect();
                    Json(json!({ "keys": keys }))
                }),
            )
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            state,
            task,
            key,
        }
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The keys the JWKS publishes now.
    pub fn published(&self) -> Vec<SigningKey> {
        self.state.published.lock().unwrap().clone()
    }

    /// Publish `keys` instead of the current ones (a key rotation).
    pub fn publish(&self, keys: Vec<SigningKey>) {
        *self.state.published.lock().unwrap() = keys;
    }

    /// Make the metadata name another issuer.
    pub fn name_issuer(&self, issuer: &str) {
        *self.state.named_issuer.lock().unwrap() = issuer.into();
    }

    /// Claims of a good token for `subject`, meant for `audience`, valid for five minutes.
    pub fn claims(&self, subject: &str, audience: &str) -> Value {
        json!({
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now(),
            "exp": now() + 300,
            "scope": "openid procore.tokens",
            "client_id": "test-client",
        })
    }

    /// `claims` signed by `key`, with its `kid`.
    pub fn mint_with(&self, key: &SigningKey, claims: &Value) -> String {
        let header = json!({"alg": key.alg(), "typ": "at+jwt", "kid": key.kid()});
        compact(&header, claims, |input| key.sign(input))
    }

    /// `claims` signed by the issuer's RSA key.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_with(&self.key, claims)
    }
}

fn metadata(state: &IssuerState) -> Value {
    json!({
        "issuer": *state.named_issuer.lock().unwrap(),
        "jwks_uri": format!("{}/jwks", state.url),
        "authorization_endpoint": format!("{}/authorize", state.url),
        "token_endpoint": format!("{}/token", state.url),
        "response_types_supported": ["code"],
    })
}

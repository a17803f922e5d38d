//! The issuer's signing keys (a JWKS) as `ring` public keys, each with the algorithms it may
//! verify: the allow-list of a token's `alg` comes from the keys, never from the token.
//!
//! Only asymmetric signature algorithms exist here: `none` and HMAC (`HS*`) cannot be
//! named, so a token that names them matches no key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// A JWS signature algorithm this server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Rs256,
    Algorithm::Rs384,
    Algorithm::Rs512,
    Algorithm::Ps256,
    Algorithm::Ps384,
    Algorithm::Ps512,
];

impl Algorithm {
    /// The algorithm a JOSE `alg` names, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }
}

/// The public material of one key.
#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed P-256 or P-384 point, or an Ed25519 key.
    Point(Vec<u8>),
}

/// One signing key of the issuer.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: PublicKey,
}

impl VerifyingKey {
    pub fn allows(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    /// Whether `signature` over `message` is this key's, by `algorithm` (which the key
    /// must allow).
    pub fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.allows(algorithm) {
            return false;
        }
        let rsa = |parameters: &'static signature::RsaParameters| match &self.key {
            PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(parameters, message, signature)
                .is_ok(),
            PublicKey::Point(_) => false,
        };
        let point = |verification: &'static dyn signature::VerificationAlgorithm| match &self.key {
            PublicKey::Point(point) => UnparsedPublicKey::new(verification, point)
                .verify(message, signature)
                .is_ok(),
            PublicKey::Rsa { .. } => false,
        };
        match algorithm {
            Algorithm::Rs256 => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::Rs384 => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::Rs512 => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::Ps256 => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            Algorithm::Ps384 => rsa(&signature::RSA_PSS_2048_8192_SHA384),
            Algorithm::Ps512 => rsa(&signature::RSA_PSS_2048_8192_SHA512),
            Algorithm::Es256 => point(&signature::ECDSA_P256_SHA256_FIXED),
            Algorithm::Es384 => point(&signature::ECDSA_P384_SHA384_FIXED),
            Algorithm::EdDsa => point(&signature::ED25519),
        }
    }
}

/// The usable signing keys of a JWKS document. Keys this server cannot use (encryption
/// keys, symmetric keys, unknown types or curves, malformed members) are skipped.
pub fn parse_jwks(document: &Value) -> Vec<VerifyingKey> {
    document
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(parse_jwk).collect())
        .unwrap_or_default()
}

fn parse_jwk(jwk: &Value) -> Option<VerifyingKey> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|value| URL_SAFE_NO_PAD.decode(value).ok());
    if text("use").is_some_and(|usage| usage != "sig") {
        return None;
    }
    let (key, algorithms) = match (text("kty")?, text("crv")) {
        ("RSA", _) => {
            let n = bytes("n")?;
            let e = bytes("e")?;
            (PublicKey::Rsa { n, e }, RSA_ALGORITHMS.to_vec())
        }
        ("EC", Some(curve)) => {
            let (algorithm, length) = match curve {
                "P-256" => (Algorithm::Es256, 32),
                "P-384" => (Algorithm::Es384, 48),
                _ => return None,
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != length || y.len() != length {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * length);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (PublicKey::Point(point), vec![algorithm])
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            (PublicKey::Point(x), vec![Algorithm::EdDsa])
        }
        _ => return None,
    };
    // A key that names its algorithm verifies that one only.
    let algorithms = match text("alg") {
        Some(name) => {
            let named = Algorithm::from_name(name)?;
            if !algorithms.contains(&named) {
                return None;
            }
            vec![named]
        }
        None => algorithms,
    };
    Some(VerifyingKey {
        kid: text("kid").map(str::to_owned),
        algorithms,
        key,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_asymmetric_signing_keys_are_kept() {
        let keys = parse_jwks(&json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc", "kid": "enc"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "HS256", "kid": "lying"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "ES256", "kid": "mismatch"},
            {"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB", "kid": "short"},
            {"kty": "EC", "crv": "secp256k1", "x": "AQAB", "y": "AQAB", "kid": "curve"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256", "kid": "rs256"},
        ]}));
        let kids: Vec<_> = keys.iter().filter_map(|key| key.kid.as_deref()).collect();
        assert_eq!(kids, ["rsa", "rs256"]);
        assert!(keys.iter().all(|key| key.allows(Algorithm::Rs256)));
        assert!(!keys.iter().any(|key| key.allows(Algorithm::Es256)));
        let rs256 = keys.iter().find(|key| key.kid.as_deref() == Some("rs256"));
        assert!(!rs256.is_some_and(|key| key.allows(Algorithm::Ps256)));
        for refused in ["none", "HS256", "HS512", "rs256", ""] {
            assert_eq!(Algorithm::from_name(refused), None, "{refused}");
        }
    }
}

//! A JWT access token taken apart and judged: the signature against the issuer's keys, then
//! `iss`, `aud`, `exp`, `nbf` and `sub`. Pure logic; the keys and the clock are given.
//!
//! Never echoes a token or any part of it in an error: the reasons name what failed only.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use super::keys::{Algorithm, VerifyingKey};

/// The most of a token read; a longer one is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Clock skew forgiven on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: f64 = 60.0;

/// Why a token is refused. The texts contain nothing of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is not a signed JWT")]
    Malformed,
    #[error("the token's signature algorithm is not one the issuer's keys use")]
    Algorithm,
    #[error("the token names critical header extensions this server does not understand")]
    Critical,
    #[error("no key of the issuer matches the token's key id")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is not meant for this server (audience)")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has no expiry")]
    NoExpiry,
    #[error("the token names no subject")]
    NoSubject,
}

/// The parts of a token before its signature is checked.
pub struct Unverified {
    pub algorithm: Algorithm,
    pub kid: Option<String>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    claims: serde_json::Map<String, Value>,
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub scopes: Vec<String>,
}

/// What a token must say to be accepted.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Unix seconds now.
    pub now: f64,
}

fn decode_json(part: &str) -> Result<serde_json::Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Rejection::Malformed),
    }
}

impl Unverified {
    /// Split and decode a compact JWS (`header.claims.signature`).
    pub fn parse(token: &str) -> Result<Self, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let header_json = decode_json(header)?;
        let algorithm = header_json
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .ok_or(Rejection::Algorithm)?;
        if header_json.contains_key("crit") {
            return Err(Rejection::Critical);
        }
        let kid = match header_json.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(Rejection::Malformed),
        };
        let claims_json = decode_json(claims)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Rejection::Malformed)?;
        let signing_input_length = header.len() + 1 + claims.len();
        let signing_input = token
            .get(..signing_input_length)
            .ok_or(Rejection::Malformed)?
            .as_bytes()
            .to_vec();
        Ok(Self {
            algorithm,
            kid,
            signing_input,
            signature,
            claims: claims_json,
        })
    }

    /// The keys that may have signed this token: by key id when it names one, else every
    /// key that allows its algorithm.
    pub fn candidates<'k>(&self, keys: &'k [VerifyingKey]) -> Vec<&'k VerifyingKey> {
        keys.iter()
            .filter(|key| key.allows(self.algorithm))
            .filter(|key| match &self.kid {
                Some(kid) => key.kid.as_deref() == Some(kid),
                None => true,
            })
            .collect()
    }

    /// Whether the keys may be out of date for this token: it names a key id none of them
    /// has (or, naming none, no key allows its algorithm). A known key id with another
    /// algorithm is a bad token, not a reason to fetch.
    pub fn names_unknown_key(&self, keys: &[VerifyingKey]) -> bool {
        match &self.kid {
            Some(kid) => !keys.iter().any(|key| key.kid.as_deref() == Some(kid)),
            None => self.candidates(keys).is_empty(),
        }
    }

    /// The claims, once one of `candidates` verifies the signature and the claims meet
    /// `expected`.
    pub fn verify(
        self,
        candidates: &[&VerifyingKey],
        expected: &Expectations<'_>,
    ) -> Result<Claims, Rejection> {
        if candidates.is_empty() {
            return Err(Rejection::UnknownKey);
        }
        let signed = candidates
            .iter()
            .any(|key| key.verifies(self.algorithm, &self.signing_input, &self.signature));
        if !signed {
            return Err(Rejection::Signature);
        }
        check_claims(&self.claims, expected)
    }
}

fn check_claims(
    claims: &serde_json::Map<String, Value>,
    expected: &Expectations<'_>,
) -> Result<Claims, Rejection> {
    let issuer = claims.get("iss").and_then(Value::as_str);
    if issuer != Some(expected.issuer) {
        return Err(Rejection::Issuer);
    }
    let audience_matches = match claims.get("aud") {
        Some(Value::String(audience)) => audience == expected.audience,
        Some(Value::Array(audiences)) => audiences
            .iter()
            .any(|audience| audience.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_matches {
        return Err(Rejection::Audience);
    }
    let expiry = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(Rejection::NoExpiry)?;
    if expected.now > expiry + LEEWAY_SECS {
        return Err(Rejection::Expired);
    }
    match claims.get("nbf") {
        None => {}
        Some(not_before) => {
            let not_before = not_before.as_f64().ok_or(Rejection::Malformed)?;
            if not_before > expected.now + LEEWAY_SECS {
                return Err(Rejection::NotYetValid);
            }
        }
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|subject| !subject.is_empty())
        .ok_or(Rejection::NoSubject)?;
    Ok(Claims {
        issuer: expected.issuer.to_owned(),
        subject: subject.to_owned(),
        scopes: scopes(claims),
    })
}

/// The token's scopes: `scope` (RFC 9068, space-separated) or `scp` (a list or a string, as
/// Entra and Okta send it).
fn scopes(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    let words = |text: &str| {
        text.split_ascii_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(scope)), _) => words(scope),
        (_, Some(Value::String(scp))) => words(scp),
        (_, Some(Value::Array(scp))) => scp
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => unreachable!(),
        }
    }

    const EXPECTED: Expectations<'static> = Expectations {
        issuer: "https://issuer.example",
        audience: "https://mcp.example/mcp",
        now: 1_000_000.0,
    };

    #[test]
    fn claims_are_judged_with_a_minute_of_leeway() {
        let base = json!({
            "iss": "https://issuer.example",
            "aud": ["other", "https://mcp.example/mcp"],
            "exp": 1_000_000 - 59,
            "nbf": 1_000_000 + 59,
            "sub": "alice",
            "scp": ["tokens", "read"],
        });
        let ok = check_claims(&claims(base.clone()), &EXPECTED).unwrap();
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.scopes, ["tokens", "read"]);
        let with = |key: &str, value: Value| {
            let mut changed = claims(base.clone());
            changed.insert(key.to_owned(), value);
            check_claims(&changed, &EXPECTED)
        };
        assert_eq!(with("exp", json!(1_000_000 - 61)), Err(Rejection::Expired));
        assert_eq!(
            with("nbf", json!(1_000_000 + 61)),
            Err(Rejection::NotYetValid)
        );
        assert_eq!(with("exp", json!("soon")), Err(Rejection::NoExpiry));
        assert_eq!(
            with("iss", json!("https://issuer.example/")),
            Err(Rejection::Issuer)
        );
        assert_eq!(
            with("aud", json!("https://mcp.example/mcp/")),
            Err(Rejection::Audience)
        );
        assert_eq!(with("aud", json!(["other"])), Err(Rejection::Audience));
        assert_eq!(with("sub", json!("")), Err(Rejection::NoSubject));
        assert_eq!(
            with("scope", json!("a  b")).unwrap().scopes,
            ["a", "b"],
            "scope wins over scp"
        );
    }

    #[test]
    fn only_three_base64url_parts_with_a_known_algorithm_parse() {
        let header = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let body = URL_SAFE_NO_PAD.encode("{}");
        for (token, why) in [
            (
                format!("{}.{body}.", header(json!({"alg": "none"}))),
                Rejection::Algorithm,
            ),
            (
                format!("{}.{body}.AA", header(json!({"alg": "HS256"}))),
                Rejection::Algorithm,
            ),
            (
                format!("{}.{body}.AA", header(json!({}))),
                Rejection::Algorithm,
            ),
            (
                format!(
                    "{}.{body}.AA",
                    header(json!({"alg": "RS256", "crit": ["x"]}))
                ),
                Rejection::Critical,
            ),
            (
                format!("{}.{body}", header(json!({"alg": "RS256"}))),
                Rejection::Malformed,
            ),
            (
                format!("{}.{body}.AA.AA", header(json!({"alg": "RS256"}))),
                Rejection::Malformed,
            ),
            (
                format!("{}.{body}.A=", header(json!({"alg": "RS256"}))),
                Rejection::Malformed,
            ),
            ("garbage".to_owned(), Rejection::Malformed),
        ] {
            assert_eq!(Unverified::parse(&token).err(), Some(why), "{token}");
        }
        let fine = format!("{}.{body}.AA", header(json!({"alg": "ES256", "kid": "k"})));
        let parsed = Unverified::parse(&fine).unwrap();
        assert_eq!(parsed.kid.as_deref(), Some("k"));
        assert_eq!(parsed.algorithm, Algorithm::Es256);
    }
}

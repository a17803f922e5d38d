//! Token responses at rest: sealed with AES-256-GCM under `PROCORE_STORE_KEY` in either
//! backend, with the key's id stored beside each value so the key can be rotated
//! (`PROCORE_STORE_KEY_PREVIOUS` reads what the previous key sealed).
//!
//! A value is `base64(nonce ‖ ciphertext ‖ tag)`, a fresh random 96-bit nonce per write, and
//! the pair key as associated data, so a value moved to another pair does not open. A value
//! without a key id is plain text (a store written before a key was set). No key, nor any
//! part of one, ever reaches an error or a log line: only key ids (8 hex digits of the key's
//! SHA-256) are named.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

use super::{PairKey, Principal};
use crate::secret::Secret;

/// The environment variable of the current key.
pub const STORE_KEY_VAR: &str = "PROCORE_STORE_KEY";
/// The environment variable of the previous key, read during a rotation.
pub const STORE_KEY_PREVIOUS_VAR: &str = "PROCORE_STORE_KEY_PREVIOUS";

/// Why a key cannot be used or a stored value cannot be read. No message holds a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    #[error(
        "{var} is not base64 of exactly 32 bytes ({why}); make one with `openssl rand -base64 32`"
    )]
    MalformedKey { var: &'static str, why: String },
    #[error(
        "the stored token response of {pair} is encrypted (key id {key_id}) but \
         {STORE_KEY_VAR} is not set; set {STORE_KEY_VAR} to the key that encrypted the store"
    )]
    NoKey { pair: String, key_id: String },
    #[error(
        "the stored token response of {pair} was encrypted under key id {key_id}, which is \
         neither {STORE_KEY_VAR} ({current}) nor {STORE_KEY_PREVIOUS_VAR} ({previous}); set \
         {STORE_KEY_VAR} to the key that encrypted the store (or that key as \
         {STORE_KEY_PREVIOUS_VAR} while rotating)"
    )]
    WrongKey {
        pair: String,
        key_id: String,
        current: String,
        previous: String,
    },
    #[error(
        "the stored token response of {pair} does not decrypt under key id {key_id} (tampered \
         with, or moved from another pair); check {STORE_KEY_VAR}, and restore the store from \
         a backup or sign in again"
    )]
    Undecryptable { pair: String, key_id: String },
    #[error("the system's random number generator failed; nothing was stored")]
    Random,
    #[error("a token response could not be encrypted; nothing was stored")]
    Unsealable,
}

/// One AES-256-GCM key and its id.
struct StoreKey {
    id: String,
    key: LessSafeKey,
}

impl StoreKey {
    /// The key `encoded` (base64 of 32 bytes) read from `var`.
    fn parse(var: &'static str, encoded: &Secret) -> Result<Self, AtRestError> {
        let malformed = |why: &str| AtRestError::MalformedKey {
            var,
            why: why.to_owned(),
        };
        let bytes = zeroize::Zeroizing::new(
            STANDARD
                .decode(encoded.expose().trim())
                .map_err(|_| malformed("not base64"))?,
        );
        if bytes.len() != 32 {
            return Err(malformed(&format!("{} bytes", bytes.len())));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| malformed("rejected"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let id = digest
            .as_ref()
            .iter()
            .take(4)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self {
            id,
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The keys a store seals and opens token responses with: none (plain text), the current
/// one, and a previous one still read during a rotation.
pub struct StoreKeys {
    current: Option<StoreKey>,
    previous: Option<StoreKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKeys")
            .field("current", &self.current_id())
            .field("previous", &self.previous.as_ref().map(|key| &key.id))
            .finish()
    }
}

/// A token response as stored: the value and, when sealed, the id of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: Option<String>,
    pub value: String,
}

impl StoreKeys {
    /// No key: token responses are stored in plain text.
    pub fn plain() -> Self {
        Self {
            current: None,
            previous: None,
            random: SystemRandom::new(),
        }
    }

    /// The keys of `PROCORE_STORE_KEY` and `PROCORE_STORE_KEY_PREVIOUS` as read through
    /// `env` (empty values count as unset). A previous key without a current one is refused:
    /// it would leave new values in plain text while old ones are sealed.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<Self, AtRestError> {
        let read = |var: &'static str| {
            env(var)
                .filter(|value| !value.trim().is_empty())
                .map(|value| StoreKey::parse(var, &Secret::new(value)))
                .transpose()
        };
        let current = read(STORE_KEY_VAR)?;
        let previous = read(STORE_KEY_PREVIOUS_VAR)?;
        if current.is_none() && previous.is_some() {
            return Err(AtRestError::MalformedKey {
                var: STORE_KEY_VAR,
                why: format!("unset while {STORE_KEY_PREVIOUS_VAR} is set"),
            });
        }
        Ok(Self {
            current,
            previous,
            random: SystemRandom::new(),
        })
    }

    /// Whether token responses are sealed when written.
    pub fn seals(&self) -> bool {
        self.current.is_some()
    }

    /// The current key's id, if any.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|key| key.id.as_str())
    }

    /// `response` of `pair` as it is to be stored: sealed under the current key, or plain
    /// without one.
    pub fn seal(&self, pair: &PairKey, response: &Secret) -> Result<Sealed, AtRestError> {
        let Some(key) = &self.current else {
            return Ok(Sealed {
                key_id: None,
                value: response.expose().to_owned(),
            });
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| AtRestError::Random)?;
        let mut sealed = zeroize::Zeroizing::new(response.expose().as_bytes().to_vec());
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(pair)),
                &mut *sealed,
            )
            .map_err(|_| AtRestError::Unsealable)?;
        let mut envelope = nonce.to_vec();
        envelope.extend_from_slice(&sealed);
        Ok(Sealed {
            key_id: Some(key.id.clone()),
            value: STANDARD.encode(envelope),
        })
    }

    /// The token response of `pair` from its stored form (`key_id` beside `value`).
    pub fn open(
        &self,
        pair: &PairKey,
        key_id: Option<&str>,
        value: &str,
    ) -> Result<Secret, AtRestError> {
        let Some(key_id) = key_id.filter(|id| !id.is_empty()) else {
            return Ok(Secret::new(value));
        };
        let key = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|key| key.id == key_id);
        let Some(key) = key else {
            if self.current.is_none() {
                return Err(AtRestError::NoKey {
                    pair: pair.to_string(),
                    key_id: key_id.to_owned(),
                });
            }
            let id = |key: &Option<StoreKey>| {
                key.as_ref()
                    .map_or_else(|| "unset".to_owned(), |key| format!("key id {}", key.id))
            };
            return Err(AtRestError::WrongKey {
                pair: pair.to_string(),
                key_id: key_id.to_owned(),
                current: id(&self.current),
                previous: id(&self.previous),
            });
        };
        let undecryptable = || AtRestError::Undecryptable {
            pair: pair.to_string(),
            key_id: key_id.to_owned(),
        };
        let mut envelope =
            zeroize::Zeroizing::new(STANDARD.decode(value).map_err(|_| undecryptable())?);
        if envelope.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, sealed) = envelope.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let opened = key
            .key
            .open_in_place(nonce, Aad::from(associated_data(pair)), sealed)
            .map_err(|_| undecryptable())?;
        let text = std::str::from_utf8(opened).map_err(|_| undecryptable())?;
        Ok(Secret::new(text))
    }
}

/// What binds a sealed value to its pair: the principal, login host and client id, each on
/// its own line (none of them holds a newline a caller chose).
fn associated_data(pair: &PairKey) -> Vec<u8> {
    let principal = match &pair.principal {
        Principal::Local => "-".to_owned(),
        Principal::User(subject) => format!("user:{subject}"),
    };
    format!(
        "ptm-pair-v1\n{principal}\n{}\n{}",
        pair.login_host, pair.client_id
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn keys(current: Option<&str>, previous: Option<&str>) -> Result<StoreKeys, AtRestError> {
        StoreKeys::from_env(&|var: &str| match var {
            STORE_KEY_VAR => current.map(str::to_owned),
            STORE_KEY_PREVIOUS_VAR => previous.map(str::to_owned),
            _ => None,
        })
    }

    fn pair_key(client_id: &str) -> PairKey {
        PairKey::local("https://login.procore.com", client_id)
    }

    const RESPONSE: &str = r#"{"access_token":"at-canary","refresh_token":"rt-canary"}"#;

    #[test]
    fn a_sealed_value_opens_only_for_its_own_pair_and_hides_the_tokens() {
        let keys = keys(Some(KEY), None).unwrap();
        let a = pair_key("a");
        let sealed = keys.seal(&a, &Secret::new(RESPONSE)).unwrap();
        assert_eq!(sealed.key_id.as_deref(), keys.current_id());
        assert!(!sealed.value.contains("canary"), "{}", sealed.value);
        let again = keys.seal(&a, &Secret::new(RESPONSE)).unwrap();
        assert_ne!(sealed.value, again.value, "a fresh nonce per write");
        let opened = keys.open(&a, sealed.key_id.as_deref(), &sealed.value);
        assert_eq!(opened.unwrap().expose(), RESPONSE);

        // Moved to another pair (another client, or another principal): refused.
        let moved = keys.open(&pair_key("b"), sealed.key_id.as_deref(), &sealed.value);
        assert!(matches!(moved, Err(AtRestError::Undecryptable { .. })));
        let mut user = a.clone();
        user.principal = Principal::user("-");
        let moved = keys.open(&user, sealed.key_id.as_deref(), &sealed.value);
        assert!(matches!(moved, Err(AtRestError::Undecryptable { .. })));
    }

    #[test]
    fn a_tampered_value_is_refused_naming_the_key_variable() {
        let keys = keys(Some(KEY), None).unwrap();
        let a = pair_key("a");
        let sealed = keys.seal(&a, &Secret::new(RESPONSE)).unwrap();
        let mut bytes = STANDARD.decode(&sealed.value).unwrap();
        for at in [0, NONCE_LEN, bytes.len() - 1] {
            let mut tampered = bytes.clone();
            tampered[at] ^= 1;
            let error = keys
                .open(&a, sealed.key_id.as_deref(), &STANDARD.encode(&tampered))
                .unwrap_err();
            assert!(matches!(error, AtRestError::Undecryptable { .. }));
            assert!(error.to_string().contains(STORE_KEY_VAR), "{error}");
        }
        bytes.truncate(NONCE_LEN + 3);
        let short = keys.open(&a, sealed.key_id.as_deref(), &STANDARD.encode(&bytes));
        assert!(matches!(short, Err(AtRestError::Undecryptable { .. })));
        let not_base64 = keys.open(&a, sealed.key_id.as_deref(), "%%%");
        assert!(matches!(not_base64, Err(AtRestError::Undecryptable { .. })));
    }

    #[test]
    fn another_key_is_refused_and_the_previous_key_still_reads() {
        let a = pair_key("a");
        let old = keys(Some(OTHER), None).unwrap();
        let sealed = old.seal(&a, &Secret::new(RESPONSE)).unwrap();
        let kid = sealed.key_id.as_deref();

        let wrong = keys(Some(KEY), None).unwrap();
        let error = wrong.open(&a, kid, &sealed.value).unwrap_err();
        assert!(matches!(error, AtRestError::WrongKey { .. }));
        let message = error.to_string();
        assert!(message.contains(STORE_KEY_VAR), "{message}");
        assert!(
            !message.contains(KEY) && !message.contains(OTHER),
            "{message}"
        );

        let none = StoreKeys::plain();
        let error = none.open(&a, kid, &sealed.value).unwrap_err();
        assert!(matches!(error, AtRestError::NoKey { .. }), "{error}");
        assert!(error.to_string().contains(STORE_KEY_VAR));

        let rotating = keys(Some(KEY), Some(OTHER)).unwrap();
        let opened = rotating.open(&a, kid, &sealed.value).unwrap();
        assert_eq!(opened.expose(), RESPONSE);
        let resealed = rotating.seal(&a, &opened).unwrap();
        assert_eq!(resealed.key_id.as_deref(), wrong.current_id());
        assert_ne!(
            resealed.key_id.as_deref(),
            kid,
            "rewritten under the current key"
        );
    }

    #[test]
    fn plain_values_read_as_they_are_and_without_a_key_nothing_is_sealed() {
        let a = pair_key("a");
        let with_key = keys(Some(KEY), None).unwrap();
        assert_eq!(
            with_key.open(&a, None, RESPONSE).unwrap().expose(),
            RESPONSE
        );
        assert_eq!(
            with_key.open(&a, Some(""), RESPONSE).unwrap().expose(),
            RESPONSE
        );
        let plain = StoreKeys::plain();
        assert!(!plain.seals());
        let stored = plain.seal(&a, &Secret::new(RESPONSE)).unwrap();
        assert_eq!(
            stored,
            Sealed {
                key_id: None,
                value: RESPONSE.to_owned()
            }
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_echoing_them() {
        for bad in ["not-a-key!!", "c2hvcnQ=", &STANDARD.encode([7u8; 33])] {
            let error = keys(Some(bad), None).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(STORE_KEY_VAR), "{message}");
            assert!(!message.contains(bad), "{message}");
        }
        let error = keys(Some(KEY), Some("c2hvcnQ=")).unwrap_err();
        assert!(error.to_string().contains(STORE_KEY_PREVIOUS_VAR));
        assert!(keys(None, Some(KEY)).is_err(), "a previous key alone");
        assert!(!keys(Some(" "), None).unwrap().seals(), "empty is unset");
        let debug = format!("{:?}", keys(Some(KEY), None).unwrap());
        assert!(!debug.contains(KEY), "{debug}");
    }
}

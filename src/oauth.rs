//! OAuth values as types, one per role, so that no call can take a client secret where a
//! token belongs: `revoke(&RevocableToken, &ClientId, &ClientSecret)` does not compile with
//! two of them swapped.
//!
//! The secret ones wrap [`Secret`]: `Debug` names the role and prints `[redacted]`, there is
//! no `Display`, the value is reachable only through `expose`, and it is zeroed on drop.

use std::fmt;

use crate::secret::Secret;

/// A secret OAuth value of one role.
macro_rules! secret_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Secret);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(Secret::new(value))
            }

            /// The value itself, for the one place that must send it.
            pub fn expose(&self) -> &str {
                self.0.expose()
            }

            /// The value as a plain [`Secret`], for scrubbing it out of quoted text.
            pub fn as_secret(&self) -> &Secret {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }
    };
}

secret_value!(
    /// The application's client secret.
    ClientSecret
);
secret_value!(
    /// A one-use authorization code from `/oauth/authorize`.
    AuthorizationCode
);
secret_value!(
    /// A one-use refresh token.
    RefreshToken
);
secret_value!(
    /// A bearer access token for Procore's API.
    AccessToken
);
secret_value!(
    /// A token to revoke: an access token or a refresh token (Procore ends the pair either
    /// way, and the caller need not say which it is).
    RevocableToken
);

impl From<&AccessToken> for RevocableToken {
    fn from(token: &AccessToken) -> Self {
        Self(token.0.clone())
    }
}

impl RevocableToken {
    /// Whether this is `token` (an access token of a stored pair, say).
    pub fn is_access_token(&self, token: &AccessToken) -> bool {
        self.expose() == token.expose()
    }

    pub fn is_refresh_token(&self, token: &RefreshToken) -> bool {
        self.expose() == token.expose()
    }
}

/// The application's client id. Not a secret: it is printed in messages and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ClientId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for ClientId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A redirect URI: an absolute URI, such as `urn:ietf:wg:oauth:2.0:oob` or the registered
/// `https://` address of a web app. Kept as given, since Procore compares it byte for byte
/// with the one used when authorizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// Why a redirect URI cannot be used. Names no value: what was given might be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect_uri must be an absolute URI (such as urn:ietf:wg:oauth:2.0:oob or https://…)")]
pub struct RedirectUriError;

impl RedirectUri {
    pub fn parse(value: &str) -> Result<Self, RedirectUriError> {
        match url::Url::parse(value) {
            Ok(_) if !value.chars().any(char::is_whitespace) => Ok(Self(value.to_owned())),
            _ => Err(RedirectUriError),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_name_their_role_and_hide_their_value() {
        let secret = ClientSecret::new("cs-canary-1234");
        assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
        assert_eq!(secret.expose(), "cs-canary-1234");
        let token = RefreshToken::new("rt-canary-5678");
        assert_eq!(
            format!("{:?}", Some(&token)),
            "Some(RefreshToken([redacted]))"
        );
        let revocable = RevocableToken::new("rt-canary-5678");
        assert!(revocable.is_refresh_token(&token));
        assert!(!revocable.is_access_token(&AccessToken::new("at-other")));
    }

    #[test]
    fn a_redirect_uri_is_an_absolute_uri_kept_as_given() {
        for good in [
            "urn:ietf:wg:oauth:2.0:oob",
            "https://app.example.com/callback?x=1",
            "http://localhost:8080/cb",
        ] {
            assert_eq!(RedirectUri::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "callback",
            "/relative/path",
            "https://a b.example",
            " urn:x:y",
        ] {
            assert_eq!(RedirectUri::parse(bad), Err(RedirectUriError), "{bad:?}");
        }
    }
}

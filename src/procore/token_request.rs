//! The body of `POST /oauth/token`, as Procore documents it.

use serde_json::{Map, Value};

use crate::{
    oauth::{AuthorizationCode, ClientId, ClientSecret, RedirectUri, RefreshToken},
    secret::SentSecrets,
};

/// The three grants Procore's token endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// Exchange a one-use authorization code for the first token pair.
    AuthorizationCode,
    /// Exchange a one-use refresh token for a new pair.
    RefreshToken,
    /// A service account (DMSA) asks for an access token; no user, no refresh token.
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == value)
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete token request: the fields that go into the JSON body, nothing else.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant_type: GrantType,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    pub code: Option<AuthorizationCode>,
    pub redirect_uri: Option<RedirectUri>,
    pub refresh_token: Option<RefreshToken>,
}

impl TokenRequest {
    /// The JSON body, in the documented field order. The only place secrets are exposed.
    pub fn to_json(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("grant_type".into(), self.grant_type.as_str().into());
        body.insert("client_id".into(), self.client_id.as_str().into());
        body.insert("client_secret".into(), self.client_secret.expose().into());
        if let Some(code) = &self.code {
            body.insert("code".into(), code.expose().into());
        }
        if let Some(redirect_uri) = &self.redirect_uri {
            body.insert("redirect_uri".into(), redirect_uri.as_str().into());
        }
        if let Some(refresh_token) = &self.refresh_token {
            body.insert("refresh_token".into(), refresh_token.expose().into());
        }
        Value::Object(body).to_string().into_bytes()
    }

    /// The secrets this request sends, to scrub from whatever is quoted back.
    pub fn secrets(&self) -> SentSecrets {
        SentSecrets::new(
            std::iter::once(self.client_secret.as_secret())
                .chain(self.code.as_ref().map(AuthorizationCode::as_secret))
                .chain(self.refresh_token.as_ref().map(RefreshToken::as_secret)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_holds_exactly_the_given_fields() {
        let request = TokenRequest {
            grant_type: GrantType::RefreshToken,
            client_id: "id".into(),
            client_secret: "sec".into(),
            code: None,
            redirect_uri: None,
            refresh_token: Some("rt".into()),
        };
        let body: Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"grant_type":"refresh_token","client_id":"id","client_secret":"sec","refresh_token":"rt"})
        );
        assert!(!format!("{request:?}").contains("sec\""));
        assert!(!format!("{request:?}").contains("rt\""));
    }

    #[test]
    fn grant_types_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
        assert_eq!(GrantType::parse("password"), None);
    }
}

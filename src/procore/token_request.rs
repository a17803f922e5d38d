//! The body of `POST /oauth/token`, as Procore documents it.

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
    /// The JSON body, its fields in the order of Procore's documented table. The only
    /// place secrets are exposed, with [`Self::to_form`].
    pub fn to_json(&self) -> Vec<u8> {
        /// Fields serialize in declaration order (a `serde_json::Map` would sort them).
        #[derive(serde::Serialize)]
        struct Body<'a> {
            grant_type: &'a str,
            client_id: &'a str,
            client_secret: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            code: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            redirect_uri: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token: Option<&'a str>,
        }
        let body = Body {
            grant_type: self.grant_type.as_str(),
            client_id: self.client_id.as_str(),
            client_secret: self.client_secret.expose(),
            code: self.code.as_ref().map(AuthorizationCode::expose),
            redirect_uri: self.redirect_uri.as_ref().map(RedirectUri::as_str),
            refresh_token: self.refresh_token.as_ref().map(RefreshToken::expose),
        };
        // A struct of strings always serializes.
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The same fields, in the same order, form-encoded.
    pub fn to_form(&self) -> Vec<u8> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant_type.as_str())
            .append_pair("client_id", self.client_id.as_str())
            .append_pair("client_secret", self.client_secret.expose());
        if let Some(code) = &self.code {
            form.append_pair("code", code.expose());
        }
        if let Some(redirect_uri) = &self.redirect_uri {
            form.append_pair("redirect_uri", redirect_uri.as_str());
        }
        if let Some(refresh_token) = &self.refresh_token {
            form.append_pair("refresh_token", refresh_token.expose());
        }
        form.finish().into_bytes()
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
    use serde_json::Value;

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
        assert_eq!(
            String::from_utf8(request.to_json()).unwrap(),
            r#"{"grant_type":"refresh_token","client_id":"id","client_secret":"sec","refresh_token":"rt"}"#,
            "in the documented order"
        );
        assert_eq!(
            String::from_utf8(request.to_form()).unwrap(),
            "grant_type=refresh_token&client_id=id&client_secret=sec&refresh_token=rt"
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

//! The grant types Procore's token endpoint accepts, spelled out here from Procore's
//! documentation rather than taken from the server, so a misspelling in the client is
//! refused by the emulator instead of agreed with.

/// The three grants `POST /oauth/token` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// A one-use authorization code for the first token pair.
    AuthorizationCode,
    /// A one-use refresh token for a new pair.
    RefreshToken,
    /// A service account's access token; no user, no refresh token.
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The `grant_type` value of a token request.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant a `grant_type` value names, exactly (no case folding, no trimming).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == value)
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_names_and_nothing_else() {
        assert_eq!(
            GrantType::ALL.map(GrantType::as_str),
            ["authorization_code", "refresh_token", "client_credentials"]
        );
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
        for other in ["password", "Refresh_Token", " refresh_token", ""] {
            assert_eq!(GrantType::parse(other), None, "{other:?}");
        }
    }
}

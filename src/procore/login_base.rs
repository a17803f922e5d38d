//! `LoginBase`: the validated base URL of a Procore login host.

use std::net::IpAddr;

use url::Url;

/// Base URL of the login host, e.g. `https://login.procore.com`: HTTPS, or plain HTTP on a
/// loopback host (a local emulator or test upstream). No credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginBase {
    url: Url,
}

/// Why a login URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginBaseError {
    #[error("{0:?} is not an absolute URL")]
    NotAUrl(String),
    #[error(
        "{0} uses plain http:// on a host that is not loopback; tokens and secrets would \
         travel unencrypted. Use https://"
    )]
    PlainHttp(String),
    #[error("{0} has scheme {1:?}; use https:// (or http:// for a loopback host)")]
    Scheme(String, String),
    #[error("the login URL must not contain a user name, password, query or fragment")]
    Extras,
}

impl LoginBase {
    pub fn parse(input: &str) -> Result<Self, LoginBaseError> {
        let mut url =
            Url::parse(input.trim()).map_err(|_| LoginBaseError::NotAUrl(input.to_owned()))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(LoginBaseError::Extras);
        }
        let host = url
            .host_str()
            .ok_or_else(|| LoginBaseError::NotAUrl(input.to_owned()))?
            .to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(LoginBaseError::PlainHttp(
                    url.origin().ascii_serialization(),
                ));
            }
            other => {
                return Err(LoginBaseError::Scheme(
                    url.origin().ascii_serialization(),
                    other.to_owned(),
                ));
            }
        }
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// The URL of an endpoint below this base, e.g. `endpoint("/oauth/token")`.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let joined = format!("{}{}", self.url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url
    }

    /// `scheme://host[:port]`, for messages and logs.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The API host that accepts this login host's tokens, as Procore documents the pairs
    /// (production, developer sandbox, monthly sandbox, federal zone); for any other login
    /// host (a local emulator, a proxy) the login URL itself, the only host known to work.
    pub fn api_base_url(&self) -> String {
        let origin = self.origin();
        let documented = API_HOSTS
            .iter()
            .find(|(login, _)| *login == origin)
            .map(|(_, api)| *api);
        match documented {
            Some(api) if self.url.path().trim_end_matches('/').is_empty() => api.to_owned(),
            _ => format!("{origin}{}", self.url.path().trim_end_matches('/')),
        }
    }

    /// The host name alone, for messages.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

/// Procore's login hosts and the API host of each (`PROCORE-OAUTH.md`, "Hosts").
const API_HOSTS: [(&str, &str); 4] = [
    ("https://login.procore.com", "https://api.procore.com"),
    (
        "https://login-sandbox.procore.com",
        "https://sandbox.procore.com",
    ),
    (
        "https://login-sandbox-monthly.procore.com",
        "https://api-monthly.procore.com",
    ),
    ("https://login.procoregov.com", "https://api.procoregov.com"),
];

/// `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_below_the_base() {
        let base = LoginBase::parse("https://login.procore.com/").unwrap();
        assert_eq!(
            base.endpoint("/oauth/token").as_str(),
            "https://login.procore.com/oauth/token"
        );
        let prefixed = LoginBase::parse("http://127.0.0.1:9000/procore").unwrap();
        assert_eq!(
            prefixed.endpoint("/oauth/token").as_str(),
            "http://127.0.0.1:9000/procore/oauth/token"
        );
        assert_eq!(prefixed.origin(), "http://127.0.0.1:9000");
    }

    #[test]
    fn each_documented_login_host_has_its_api_host_and_others_are_their_own() {
        for (login, api) in [
            ("https://login.procore.com/", "https://api.procore.com"),
            (
                "https://login-sandbox.procore.com",
                "https://sandbox.procore.com",
            ),
            (
                "https://login-sandbox-monthly.procore.com",
                "https://api-monthly.procore.com",
            ),
            ("https://login.procoregov.com", "https://api.procoregov.com"),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
            (
                "http://127.0.0.1:9000/procore",
                "http://127.0.0.1:9000/procore",
            ),
            (
                "https://login.procore.com/proxy",
                "https://login.procore.com/proxy",
            ),
        ] {
            assert_eq!(
                LoginBase::parse(login).unwrap().api_base_url(),
                api,
                "{login}"
            );
        }
    }

    #[test]
    fn refuses_unsafe_or_odd_urls() {
        assert!(matches!(
            LoginBase::parse("http://login.procore.com"),
            Err(LoginBaseError::PlainHttp(_))
        ));
        assert!(matches!(
            LoginBase::parse("ftp://login.procore.com"),
            Err(LoginBaseError::Scheme(..))
        ));
        assert!(matches!(
            LoginBase::parse("login.procore.com"),
            Err(LoginBaseError::NotAUrl(_))
        ));
        assert_eq!(
            LoginBase::parse("https://u:p@login.procore.com"),
            Err(LoginBaseError::Extras)
        );
        assert_eq!(
            LoginBase::parse("https://login.procore.com/?a=b"),
            Err(LoginBaseError::Extras)
        );
        assert!(LoginBase::parse("http://127.0.0.2:1").is_ok());
        assert!(LoginBase::parse("http://[::1]:1").is_ok());
    }
}

//! The server as an OAuth 2.1 resource server (`--auth-issuer`): the issuer's metadata and
//! keys, discovered and cached, and the judgement of one access token against them.
//!
//! Knows nothing of HTTP requests to this server (the transport asks and answers) and
//! nothing of Procore. Never logs, stores or echoes an access token.

mod jwt;
mod keys;

use std::{
    sync::{Arc, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::BytesMut;
use serde_json::{Value, json};
use tokio::{sync::Mutex, time::Instant};
use url::Url;

pub use self::jwt::{Claims, Rejection};
use self::{
    jwt::{Expectations, Unverified},
    keys::VerifyingKey,
};
use crate::procore::LoginBase;

/// The least time between two fetches of the keys asked for by unknown key ids: a flood of
/// made-up `kid`s costs the issuer one request per this interval.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Bounds on how long fetched keys are used before they are fetched again (the response's
/// `Cache-Control: max-age`, else [`DEFAULT_KEYS_MAX_AGE`]).
pub const KEYS_MAX_AGE_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 3600));
pub const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Redirects followed within one origin when fetching metadata or keys.
const MAX_REDIRECTS: usize = 3;

/// What `--auth-issuer` and its companions configure, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServerConfig {
    /// The issuer exactly as configured: tokens' `iss` must equal it.
    pub issuer: String,
    /// The canonical URL of the MCP endpoint: the resource identifier.
    pub public_url: Url,
    /// What tokens' `aud` must contain.
    pub audience: String,
    /// Scopes every token must carry.
    pub scopes: Vec<String>,
    /// The scope a token must carry for service-account (`client_credentials`) tokens.
    pub service_scope: Option<String>,
    /// Time for one fetch of the issuer's metadata or keys.
    pub fetch_timeout: Duration,
    /// Largest metadata or key document read.
    pub max_response_bytes: usize,
}

impl ResourceServerConfig {
    /// The URL of the protected resource metadata (RFC 9728 §3.1): the well-known path
    /// inserted between the public URL's origin and its path.
    pub fn metadata_url(&self) -> String {
        let path = self.public_url.path().trim_end_matches('/');
        format!(
            "{}/.well-known/oauth-protected-resource{path}",
            self.public_url.origin().ascii_serialization()
        )
    }

    /// The protected resource metadata document (RFC 9728 §2).
    pub fn metadata(&self) -> Value {
        let mut document = json!({
            "resource": self.public_url.as_str(),
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
        });
        let mut scopes = self.scopes.clone();
        scopes.extend(
            self.service_scope
                .iter()
                .filter(|scope| !self.scopes.contains(scope))
                .cloned(),
        );
        if !scopes.is_empty()
            && let Some(map) = document.as_object_mut()
        {
            map.insert("scopes_supported".into(), json!(scopes));
        }
        document
    }
}

/// Why the issuer could not be used. The texts name URLs and what was wrong, never a token.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("fetching {url} failed: {detail}")]
    Fetch { url: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered with more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} did not answer a JSON object")]
    NotJson { url: String },
    #[error(
        "the issuer's metadata at {url} names issuer {found:?}, not the configured {expected:?}"
    )]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error("the issuer's metadata at {url} has no usable jwks_uri: {detail}")]
    JwksUri { url: String, detail: String },
    #[error("no metadata found for issuer {issuer}: {detail}")]
    NoMetadata { issuer: String, detail: String },
    #[error("the HTTP client could not be set up: {0}")]
    Setup(String),
}

/// A fetched key set and how long it may be used.
struct KeySet {
    keys: Vec<VerifyingKey>,
    fetched: Instant,
    max_age: Duration,
}

/// The issuer's keys, and the judge of access tokens.
pub struct ResourceServer {
    config: ResourceServerConfig,
    jwks_uri: Url,
    http: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last fetched on a validation's behalf (a stale set or an unknown
    /// key id); held while fetching, so concurrent validations wait for one fetch.
    last_refetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("issuer", &self.config.issuer)
            .field("jwks_uri", &self.jwks_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// The outcome of judging a presented token.
#[derive(Debug, PartialEq, Eq)]
pub enum Judgement {
    Valid(Claims),
    Invalid(Rejection),
    /// Valid, but without these required scopes.
    MissingScopes(Vec<String>),
}

impl ResourceServer {
    /// Discover the issuer's metadata, check its `issuer`, and fetch its keys.
    pub async fn discover(config: ResourceServerConfig) -> Result<Self, DiscoveryError> {
        let http = http_client(&config)?;
        let (metadata_url, metadata) = fetch_metadata(&http, &config).await?;
        let found = metadata.get("issuer").and_then(Value::as_str).unwrap_or("");
        if found != config.issuer {
            return Err(DiscoveryError::IssuerMismatch {
                url: metadata_url,
                found: found.chars().take(200).collect(),
                expected: config.issuer.clone(),
            });
        }
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| DiscoveryError::JwksUri {
                url: metadata_url.clone(),
                detail: "missing".into(),
            })?;
        LoginBase::parse(jwks_uri).map_err(|error| DiscoveryError::JwksUri {
            url: metadata_url.clone(),
            detail: error.to_string(),
        })?;
        let jwks_uri = Url::parse(jwks_uri).map_err(|error| DiscoveryError::JwksUri {
            url: metadata_url.clone(),
            detail: error.to_string(),
        })?;
        let keys = fetch_keys(&http, &jwks_uri, config.max_response_bytes).await?;
        tracing::info!(
            issuer = %config.issuer,
            metadata = %metadata_url,
            jwks_uri = %jwks_uri,
            keys = keys.keys.len(),
            "OAuth resource server: issuer discovered"
        );
        Ok(Self {
            config,
            jwks_uri,
            http,
            keys: RwLock::new(Arc::new(keys)),
            last_refetch: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &ResourceServerConfig {
        &self.config
    }

    fn current_keys(&self) -> Option<Arc<KeySet>> {
        self.keys.read().ok().map(|keys| keys.clone())
    }

    /// Fetch the keys again, unless a validation did so less than [`REFETCH_INTERVAL`] ago
    /// (or is doing so now: then wait for that fetch). Whether a new set was installed.
    async fn refetch(&self, fetched_before: Instant) -> bool {
        let mut last = self.last_refetch.lock().await;
        // Someone else refetched while this one waited: use theirs.
        if self
            .current_keys()
            .is_some_and(|keys| keys.fetched > fetched_before)
        {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        match fetch_keys(&self.http, &self.jwks_uri, self.config.max_response_bytes).await {
            Ok(keys) => {
                tracing::info!(keys = keys.keys.len(), "fetched the issuer's keys again");
                if let Ok(mut current) = self.keys.write() {
                    *current = Arc::new(keys);
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, "fetching the issuer's keys again failed; keeping the old ones");
                false
            }
        }
    }

    /// Judge a presented access token: signature, issuer, audience, times, subject, scopes.
    pub async fn judge(&self, token: &str) -> Judgement {
        let unverified = match Unverified::parse(token) {
            Ok(unverified) => unverified,
            Err(rejection) => return Judgement::Invalid(rejection),
        };
        let Some(mut keys) = self.current_keys() else {
            return Judgement::Invalid(Rejection::UnknownKey);
        };
        let stale = keys.fetched.elapsed() > keys.max_age;
        if (stale || unverified.names_unknown_key(&keys.keys))
            && self.refetch(keys.fetched).await
            && let Some(fresh) = self.current_keys()
        {
            keys = fresh;
        }
        let candidates = unverified.candidates(&keys.keys);
        let expected = Expectations {
            issuer: &self.config.issuer,
            audience: &self.config.audience,
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64()),
        };
        match unverified.verify(&candidates, &expected) {
            Ok(claims) => {
                let missing: Vec<String> = self
                    .config
                    .scopes
                    .iter()
                    .filter(|scope| !claims.scopes.contains(scope))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    Judgement::Valid(claims)
                } else {
                    Judgement::MissingScopes(missing)
                }
            }
            Err(rejection) => Judgement::Invalid(rejection),
        }
    }
}

impl Claims {
    /// The stable identity of the bearer: issuer and subject, joined by `#` (which an
    /// issuer identifier cannot contain, RFC 8414 §2), so no two pairs of them collide.
    pub fn principal_id(&self) -> String {
        format!("{}#{}", self.issuer, self.subject)
    }
}

/// The client for the issuer: the login host's rules (bounded time, bounded size), https
/// only unless the issuer is on loopback, redirects followed only within one origin.
fn http_client(config: &ResourceServerConfig) -> Result<reqwest::Client, DiscoveryError> {
    crate::tls::install_crypto_provider();
    let https_only = config.issuer.starts_with("https:");
    reqwest::Client::builder()
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .connect_timeout(config.fetch_timeout)
        .timeout(config.fetch_timeout)
        .https_only(https_only)
        .build()
        .map_err(|error| DiscoveryError::Setup(error.to_string()))
}

/// The metadata URLs to try, in order: RFC 8414 (the well-known path inserted before the
/// issuer's path, then appended to it) and OpenID Connect discovery.
fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = Vec::new();
    if let Ok(url) = Url::parse(trimmed) {
        let path = url.path().trim_end_matches('/');
        urls.push(format!(
            "{}/.well-known/oauth-authorization-server{path}",
            url.origin().ascii_serialization()
        ));
    }
    for suffix in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let url = format!("{trimmed}{suffix}");
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

async fn fetch_metadata(
    http: &reqwest::Client,
    config: &ResourceServerConfig,
) -> Result<(String, Value), DiscoveryError> {
    let mut failures = Vec::new();
    for url in metadata_urls(&config.issuer) {
        match fetch_json(http, &url, config.max_response_bytes).await {
            Ok((document, _)) => return Ok((url, document)),
            // Only "not there" moves on to the next URL; anything else is an answer.
            Err(DiscoveryError::Status { status: 404, .. }) => {
                failures.push(format!("{url}: 404"));
            }
            Err(error) => return Err(error),
        }
    }
    Err(DiscoveryError::NoMetadata {
        issuer: config.issuer.clone(),
        detail: failures.join(", "),
    })
}

async fn fetch_keys(
    http: &reqwest::Client,
    jwks_uri: &Url,
    limit: usize,
) -> Result<KeySet, DiscoveryError> {
    let (document, max_age) = fetch_json(http, jwks_uri.as_str(), limit).await?;
    let (least, most) = KEYS_MAX_AGE_BOUNDS;
    Ok(KeySet {
        keys: keys::parse_jwks(&document),
        fetched: Instant::now(),
        max_age: max_age.unwrap_or(DEFAULT_KEYS_MAX_AGE).clamp(least, most),
    })
}

/// GET `url` as JSON, read up to `limit` bytes; the object and its `max-age`, if any.
async fn fetch_json(
    http: &reqwest::Client,
    url: &str,
    limit: usize,
) -> Result<(Value, Option<Duration>), DiscoveryError> {
    let failed = |error: reqwest::Error| DiscoveryError::Fetch {
        url: url.to_owned(),
        detail: error.to_string(),
    };
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .and_then(max_age);
    let too_large = || DiscoveryError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice(&body) {
        Ok(document @ Value::Object(_)) => Ok((document, max_age)),
        _ => Err(DiscoveryError::NotJson {
            url: url.to_owned(),
        }),
    }
}

/// The `max-age` of a `Cache-Control` value; `no-store`/`no-cache` read as zero.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return Some(Duration::ZERO);
        }
        directive
            .strip_prefix("max-age=")
            .and_then(|secs| secs.trim_matches('"').parse().ok())
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public_url: &str) -> ResourceServerConfig {
        ResourceServerConfig {
            issuer: "https://id.example/realms/team".into(),
            public_url: Url::parse(public_url).unwrap(),
            audience: public_url.into(),
            scopes: vec![],
            service_scope: None,
            fetch_timeout: Duration::from_secs(5),
            max_response_bytes: 1024,
        }
    }

    #[test]
    fn the_metadata_url_is_path_aware() {
        assert_eq!(
            config("https://mcp.example/mcp").metadata_url(),
            "https://mcp.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            config("https://mcp.example").metadata_url(),
            "https://mcp.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn issuer_metadata_is_looked_for_where_both_standards_put_it() {
        assert_eq!(
            metadata_urls("https://id.example/realms/team"),
            [
                "https://id.example/.well-known/oauth-authorization-server/realms/team",
                "https://id.example/realms/team/.well-known/oauth-authorization-server",
                "https://id.example/realms/team/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://id.example/"),
            [
                "https://id.example/.well-known/oauth-authorization-server",
                "https://id.example/.well-known/openid-configuration",
            ]
        );
    }

    /// A loopback server: `/same` redirects to `/doc` on its own origin, `/other` to the
    /// same port under another host name (another origin), `/big` answers 2 KiB, `/slow`
    /// waits 3 s.
    async fn documents() -> String {
        use axum::{Router, http::header, response::IntoResponse, routing::get};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let redirect = |to: String| {
            move || {
                let to = to.clone();
                async move {
                    (axum::http::StatusCode::FOUND, [(header::LOCATION, to)], "").into_response()
                }
            }
        };
        let app = Router::new()
            .route("/doc", get(|| async { r#"{"issuer":"x"}"# }))
            .route("/same", get(redirect("/doc".into())))
            .route(
                "/other",
                get(redirect(format!("http://localhost:{port}/doc"))),
            )
            .route(
                "/big",
                get(|| async { format!(r#"{{"a":"{}"}}"#, "x".repeat(2048)) }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "{}"
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn the_issuer_is_fetched_under_the_login_hosts_rules() {
        let base = documents().await;
        let mut settings = config("https://mcp.example/mcp");
        settings.issuer = base.clone();
        settings.fetch_timeout = Duration::from_secs(1);
        let http = http_client(&settings).unwrap();
        let fetch = |path: &str| {
            let (http, url) = (&http, format!("{base}{path}"));
            async move { fetch_json(http, &url, 1024).await }
        };
        assert_eq!(fetch("/doc").await.unwrap().0["issuer"], "x");
        assert_eq!(
            fetch("/same").await.unwrap().0["issuer"],
            "x",
            "same origin"
        );
        assert!(
            matches!(
                fetch("/other").await,
                Err(DiscoveryError::Status { status: 302, .. })
            ),
            "a redirect to another origin is not followed"
        );
        assert!(matches!(
            fetch("/big").await,
            Err(DiscoveryError::TooLarge { .. })
        ));
        assert!(matches!(
            fetch("/slow").await,
            Err(DiscoveryError::Fetch { .. })
        ));
    }

    #[test]
    fn cache_control_sets_the_keys_age() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}

//! Reading an OAuth request's parameters as Procore's token and revoke endpoints take them:
//! a JSON object, `application/x-www-form-urlencoded` or `multipart/form-data`, with the
//! client's credentials in the body or in HTTP Basic (RFC 6749 §2.3.1).
//!
//! Error texts name parameters, never their values.

use axum::http::{HeaderMap, header};
use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::Value;

use super::multipart;
use crate::Secret;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    fields: Vec<(String, Secret)>,
    basic: Option<ClientCredentials>,
}

/// A client's id and secret, from wherever the request carried them.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// Why the request's parameters cannot be read. Every text is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "unsupported Content-Type {0:?}: send application/json, \
         application/x-www-form-urlencoded or multipart/form-data"
    )]
    ContentType(String),
    #[error("the JSON body is not an object")]
    NotAnObject,
    #[error("the body is not valid JSON")]
    Json,
    #[error("the form body is not UTF-8")]
    FormEncoding,
    #[error("{0}")]
    Multipart(#[from] multipart::MultipartError),
    #[error("parameter `{0}` must be a string")]
    NotAString(String),
    #[error("parameter `{0}` is given more than once")]
    Repeated(String),
    #[error(
        "the client authenticated in both the Authorization header and the body; use one \
         method"
    )]
    TwoClientAuthentications,
}

/// Why the `Authorization: Basic` header is unusable (answered `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Authorization: Basic header is not base64 of client_id:client_secret")]
pub struct BasicError;

/// Read the body according to its `Content-Type`, and the Basic credentials if any.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Result<Params, BodyError>, BasicError> {
    let basic = basic_credentials(headers)?;
    Ok(parse_body(headers, body).map(|fields| Params { fields, basic }))
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, Secret)>, BodyError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .trim();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let pairs: Vec<(String, String)> = match essence.as_str() {
        _ if body.is_empty() && essence.is_empty() => Vec::new(),
        "application/json" => json_fields(body)?,
        "application/x-www-form-urlencoded" => {
            if std::str::from_utf8(body).is_err() {
                return Err(BodyError::FormEncoding);
            }
            url::form_urlencoded::parse(body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect()
        }
        "multipart/form-data" => multipart::fields(content_type, body)?,
        _ => {
            let shown: String = essence.chars().take(80).collect();
            return Err(BodyError::ContentType(shown));
        }
    };
    let mut fields: Vec<(String, Secret)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if fields.iter().any(|(seen, _)| *seen == name) {
            return Err(BodyError::Repeated(shown_name(&name)));
        }
        fields.push((name, Secret::new(value)));
    }
    Ok(fields)
}

fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| BodyError::Json)?;
    let Value::Object(object) = value else {
        return Err(BodyError::NotAnObject);
    };
    let mut pairs = Vec::with_capacity(object.len());
    for (name, value) in object {
        match value {
            Value::Null => {}
            Value::String(text) => pairs.push((name, text)),
            _ => return Err(BodyError::NotAString(shown_name(&name))),
        }
    }
    Ok(pairs)
}

fn shown_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`, when present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<ClientCredentials>, BasicError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| BasicError)?.trim();
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = Secret::new(
        String::from_utf8(
            BASE64_STANDARD
                .decode(encoded.trim())
                .map_err(|_| BasicError)?,
        )
        .map_err(|_| BasicError)?,
    );
    let (id, secret) = decoded.expose().split_once(':').ok_or(BasicError)?;
    let client_id = form_decode(id).ok_or(BasicError)?;
    let client_secret = Secret::new(form_decode(secret).ok_or(BasicError)?);
    Ok(Some(ClientCredentials {
        client_id,
        client_secret,
    }))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

impl Params {
    /// A parameter's value; empty values read as absent.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.fields
            .iter()
            .find(|(field, value)| field == name && !value.expose().is_empty())
            .map(|(_, value)| value)
    }

    /// A parameter that is not a secret (`grant_type`, `redirect_uri`, `client_id`).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(Secret::expose)
    }

    /// The client's credentials: from Basic or from `client_id` + `client_secret` in the
    /// body, never both. `Ok(None)` when the request carries none (or only an id).
    pub fn client(&self) -> Result<Option<ClientCredentials>, BodyError> {
        let in_body = self.get("client_secret").is_some();
        match &self.basic {
            Some(_) if in_body => Err(BodyError::TwoClientAuthentications),
            Some(basic) => Ok(Some(basic.clone())),
            None => Ok(self.text("client_id").zip(self.get("client_secret")).map(
                |(client_id, client_secret)| ClientCredentials {
                    client_id: client_id.to_owned(),
                    client_secret: client_secret.clone(),
                },
            )),
        }
    }

    /// Whether the request tried HTTP Basic.
    pub fn used_basic(&self) -> bool {
        self.basic.is_some()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(content_type: &str, authorization: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        if let Some(value) = authorization {
            map.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn params(content_type: &str, body: &str) -> Result<Params, BodyError> {
        parse(&headers(content_type, None), body.as_bytes()).unwrap()
    }

    #[test]
    fn json_and_form_bodies_read_alike() {
        for (content_type, body) in [
            (
                "application/json",
                r#"{"grant_type":"client_credentials","client_id":"a b","client_secret":"s+1","code":null}"#,
            ),
            (
                "application/x-www-form-urlencoded; charset=utf-8",
                "grant_type=client_credentials&client_id=a+b&client_secret=s%2B1&code=",
            ),
        ] {
            let params = params(content_type, body).unwrap();
            assert_eq!(params.text("grant_type"), Some("client_credentials"));
            assert_eq!(params.get("code"), None, "{content_type}");
            let client = params.client().unwrap().unwrap();
            assert_eq!(client.client_id, "a b");
            assert_eq!(client.client_secret.expose(), "s+1");
            assert!(!params.used_basic());
        }
    }

    #[test]
    fn refuses_odd_bodies_without_echoing_values() {
        assert_eq!(
            params("text/plain", "x").unwrap_err(),
            BodyError::ContentType("text/plain".into())
        );
        assert_eq!(
            params("application/json", "[1]").unwrap_err(),
            BodyError::NotAnObject
        );
        assert_eq!(
            params("application/json", r#"{"client_secret": 5}"#).unwrap_err(),
            BodyError::NotAString("client_secret".into())
        );
        let repeated = params("application/x-www-form-urlencoded", "code=a1&code=b2").unwrap_err();
        assert_eq!(repeated, BodyError::Repeated("code".into()));
        assert!(!repeated.to_string().contains("a1"));
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_exclusive() {
        let encoded = BASE64_STANDARD.encode("my%20id:p%40ss+word");
        let map = headers(
            "application/x-www-form-urlencoded",
            Some(&format!("Basic {encoded}")),
        );
        let params = parse(&map, b"grant_type=client_credentials")
            .unwrap()
            .unwrap();
        let client = params.client().unwrap().unwrap();
        assert_eq!(client.client_id, "my id");
        assert_eq!(client.client_secret.expose(), "p@ss word");
        assert!(params.used_basic());

        let both = parse(&map, b"client_id=x&client_secret=y")
            .unwrap()
            .unwrap();
        assert_eq!(
            both.client().unwrap_err(),
            BodyError::TwoClientAuthentications
        );

        let broken = headers("application/json", Some("Basic !!!"));
        assert_eq!(parse(&broken, b"{}").unwrap_err(), BasicError);
        let bearer = headers("application/json", Some("Bearer abc"));
        assert!(
            parse(&bearer, b"{}")
                .unwrap()
                .unwrap()
                .client()
                .unwrap()
                .is_none()
        );
    }
}

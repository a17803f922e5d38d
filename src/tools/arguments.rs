//! Reading a tool's JSON arguments by hand, because rmcp does not validate them against
//! the input schema. Error texts name fields and JSON types, never values.

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::{
    oauth::{ClientId, ClientSecret},
    procore::ClientCredentials,
};

/// A tool's arguments, checked against the names the tool accepts.
pub struct Arguments<'a> {
    object: Option<&'a JsonObject>,
}

/// Why the arguments cannot be used. Shown to the caller as a tool error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgumentError {
    #[error("unknown argument `{0}`; this tool accepts only: {1}")]
    Unknown(String, String),
    #[error("argument `{0}` must be a string, not {1}")]
    NotAString(&'static str, &'static str),
    #[error("argument `{0}` must be a whole number of at least 0, not {1}")]
    NotAnInteger(&'static str, &'static str),
    #[error("{0}")]
    Invalid(String),
}

impl<'a> Arguments<'a> {
    /// Accept `object` if every key in it is one of `accepted`.
    pub fn check(object: Option<&'a JsonObject>, accepted: &[&str]) -> Result<Self, ArgumentError> {
        if let Some(unknown) = object
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|key| !accepted.contains(&key.as_str()))
        {
            let shown: String = unknown.chars().take(64).collect();
            return Err(ArgumentError::Unknown(shown, accepted.join(", ")));
        }
        Ok(Self { object })
    }

    /// A string argument; absent, `null` and empty strings all read as `None`.
    pub fn string(&self, name: &'static str) -> Result<Option<String>, ArgumentError> {
        match self.object.and_then(|o| o.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(ArgumentError::NotAString(name, json_type(other))),
        }
    }

    /// A whole, non-negative number; absent and `null` read as `None`. A string of digits
    /// is accepted too, as some clients send every argument as a string.
    pub fn integer(&self, name: &'static str) -> Result<Option<u64>, ArgumentError> {
        match self.object.and_then(|o| o.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_u64()
                .or_else(|| {
                    number
                        .as_f64()
                        .filter(|float| float.fract() == 0.0 && *float >= 0.0 && *float < 1e15)
                        .map(|float| float as u64)
                })
                .map(Some)
                .ok_or(ArgumentError::NotAnInteger(
                    name,
                    "a negative or fractional number",
                )),
            Some(Value::String(text)) if !text.trim().is_empty() => text
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ArgumentError::NotAnInteger(name, "a string of other characters")),
            Some(other) => Err(ArgumentError::NotAnInteger(name, json_type(other))),
        }
    }

    /// A string argument that is a secret of role `T`; read like [`Arguments::string`].
    pub fn secret<T: From<String>>(&self, name: &'static str) -> Result<Option<T>, ArgumentError> {
        Ok(self.string(name)?.map(T::from))
    }

    /// `client_id`, or the one the server holds.
    pub fn client_id(
        &self,
        held: Option<&ClientCredentials>,
    ) -> Result<Option<ClientId>, ArgumentError> {
        Ok(self
            .string("client_id")?
            .map(ClientId::from)
            .or_else(|| held.map(|h| h.client_id.clone())))
    }

    /// `client_id` and `client_secret`, each given or else held by the server.
    pub fn client_credentials(
        &self,
        held: Option<&ClientCredentials>,
    ) -> Result<(ClientId, ClientSecret), ArgumentError> {
        let client_id = self.client_id(held)?;
        let client_secret = self
            .secret::<ClientSecret>("client_secret")?
            .or_else(|| held.map(|h| h.client_secret.clone()));
        match (client_id, client_secret) {
            (Some(client_id), Some(client_secret)) => Ok((client_id, client_secret)),
            _ => Err(ArgumentError::Invalid(
                "client_id and client_secret are required: this server holds no credentials \
                 (set PROCORE_CLIENT_ID and PROCORE_CLIENT_SECRET in its environment to hold \
                 them)"
                    .into(),
            )),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn reads_strings_and_treats_null_and_empty_as_absent() {
        let args = object(json!({"a": "x", "b": null, "c": "  "}));
        let read = Arguments::check(Some(&args), &["a", "b", "c", "d"]).unwrap();
        assert_eq!(read.string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(read.string("b").unwrap(), None);
        assert_eq!(read.string("c").unwrap(), None);
        assert_eq!(read.string("d").unwrap(), None);
    }

    #[test]
    fn reads_whole_numbers_and_refuses_the_rest_without_echoing_them() {
        let args = object(json!({
            "n": 300, "f": 600.0, "s": " 900 ", "null": null, "neg": -1, "frac": 1.5,
            "word": "secret-canary", "list": [1]
        }));
        let read = Arguments::check(
            Some(&args),
            &[
                "n", "f", "s", "null", "neg", "frac", "word", "list", "absent",
            ],
        )
        .unwrap();
        assert_eq!(read.integer("n").unwrap(), Some(300));
        assert_eq!(read.integer("f").unwrap(), Some(600));
        assert_eq!(read.integer("s").unwrap(), Some(900));
        assert_eq!(read.integer("null").unwrap(), None);
        assert_eq!(read.integer("absent").unwrap(), None);
        for name in ["neg", "frac", "word", "list"] {
            let error = read.integer(name).unwrap_err().to_string();
            assert!(error.contains("whole number"), "{name}: {error}");
            assert!(!error.contains("secret-canary"), "{error}");
        }
    }

    #[test]
    fn refuses_unknown_names_and_wrong_types_without_echoing_values() {
        let args = object(json!({"scope": "x"}));
        let err = Arguments::check(Some(&args), &["a"]).err().unwrap();
        assert_eq!(err, ArgumentError::Unknown("scope".into(), "a".into()));

        let args = object(json!({"a": {"nested": "top-secret"}}));
        let err = Arguments::check(Some(&args), &["a"])
            .unwrap()
            .secret::<ClientSecret>("a")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument `a` must be a string, not an object"
        );
    }
}

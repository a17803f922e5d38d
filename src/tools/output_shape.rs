//! A tool's published `outputSchema`, compiled once into a checker, so that no success result
//! contradicts it: a client that checks structured content against the schema (the official
//! Python SDK does) would otherwise reject the result, refresh token and all.
//!
//! The checker knows the part of JSON Schema these tools' own schemas use (`type`,
//! `properties`, `required`, `items`, `anyOf`, `additionalProperties`) and refuses to compile
//! anything else, so it can never wave through what it does not understand. A general
//! validator crate would cost this binary a third more size and a millisecond of start-up;
//! the unit tests hold this one to the `jsonschema` crate's verdicts instead.

use rmcp::model::Tool;
use serde_json::Value;

/// A tool's output schema, ready to check bodies against.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputShape(Shape);

/// A tool's `outputSchema` that this checker cannot compile: a defect of this server, found
/// at start-up.
#[derive(Debug, thiserror::Error)]
#[error("the outputSchema of {tool} does not compile: {reason}")]
pub struct ShapeError {
    tool: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Any JSON value (a schema without a type).
    Any,
    /// One of these JSON types.
    Types(Vec<Kind>),
    Object {
        properties: Vec<(String, Shape)>,
        required: Vec<String>,
        closed: bool,
    },
    Array(Box<Shape>),
    AnyOf(Vec<Shape>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Null,
    Object,
    Array,
}

impl Kind {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "null" => Self::Null,
            "object" => Self::Object,
            "array" => Self::Array,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Null => "null",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    /// JSON Schema's reading: an integer is any number without a fractional part.
    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Self::String, Value::String(_))
            | (Self::Boolean, Value::Bool(_))
            | (Self::Null, Value::Null)
            | (Self::Object, Value::Object(_))
            | (Self::Array, Value::Array(_))
            | (Self::Number, Value::Number(_)) => true,
            (Self::Integer, Value::Number(number)) => {
                number.is_i64()
                    || number.is_u64()
                    || number.as_f64().is_some_and(|float| float.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// The keywords a schema here may use; any other is refused at compile time.
const KNOWN: [&str; 8] = [
    "type",
    "properties",
    "required",
    "items",
    "anyOf",
    "additionalProperties",
    "description",
    "title",
];

impl OutputShape {
    pub fn of(tool: &Tool) -> Result<Self, ShapeError> {
        let error = |reason: String| ShapeError {
            tool: tool.name.to_string(),
            reason,
        };
        let schema = tool
            .output_schema
            .as_ref()
            .ok_or_else(|| error("the tool has none".into()))?;
        compile(&Value::Object(schema.as_ref().clone()), "")
            .map(Self)
            .map_err(error)
    }

    /// How `value` breaks the schema, if it does: where, and which rule (never the value);
    /// the first few violations, joined.
    pub fn violation(&self, value: &Value) -> Option<String> {
        let mut found = Vec::new();
        check(&self.0, value, "", &mut found);
        found.truncate(4);
        (!found.is_empty()).then(|| found.join("; "))
    }
}

fn compile(schema: &Value, at: &str) -> Result<Shape, String> {
    let Value::Object(map) = schema else {
        return Err(format!("the schema at {at:?} is not an object"));
    };
    if let Some(unknown) = map.keys().find(|key| !KNOWN.contains(&key.as_str())) {
        return Err(format!("keyword {unknown:?} at {at:?} is not supported"));
    }
    if let Some(choices) = map.get("anyOf") {
        let Value::Array(choices) = choices else {
            return Err(format!("anyOf at {at:?} is not an array"));
        };
        let shapes = choices
            .iter()
            .map(|choice| compile(choice, at))
            .collect::<Result<_, _>>()?;
        return Ok(Shape::AnyOf(shapes));
    }
    let kinds: Vec<Kind> = match map.get("type") {
        None => return Ok(Shape::Any),
        Some(Value::String(name)) => vec![Kind::parse(name).ok_or(format!("type {name:?}"))?],
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| name.as_str().and_then(Kind::parse))
            .collect::<Option<_>>()
            .ok_or(format!("the types at {at:?}"))?,
        Some(_) => return Err(format!("the type at {at:?}")),
    };
    match kinds.as_slice() {
        [Kind::Object] => {
            let mut properties = Vec::new();
            if let Some(declared) = map.get("properties") {
                let Value::Object(declared) = declared else {
                    return Err(format!("properties at {at:?} is not an object"));
                };
                for (name, schema) in declared {
                    properties.push((name.clone(), compile(schema, &format!("{at}/{name}"))?));
                }
            }
            let required = match map.get("required") {
                None => Vec::new(),
                Some(Value::Array(names)) => names
                    .iter()
                    .map(|name| name.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or(format!("required at {at:?}"))?,
                Some(_) => return Err(format!("required at {at:?} is not an array")),
            };
            let closed = match map.get("additionalProperties") {
                None | Some(Value::Bool(true)) => false,
                Some(Value::Bool(false)) => true,
                Some(_) => return Err(format!("additionalProperties at {at:?}")),
            };
            Ok(Shape::Object {
                properties,
                required,
                closed,
            })
        }
        [Kind::Array] => Ok(Shape::Array(Box::new(match map.get("items") {
            None => Shape::Any,
            Some(items) => compile(items, &format!("{at}/items"))?,
        }))),
        _ if map.contains_key("properties") || map.contains_key("items") => Err(format!(
            "properties or items at {at:?} beside a type that is not object or array"
        )),
        _ => Ok(Shape::Types(kinds)),
    }
}

fn not_of_type(kinds: &[Kind]) -> String {
    match kinds {
        [one] => format!("value is not of type \"{}\"", one.name()),
        many => {
            let names: Vec<String> = many.iter().map(|k| format!("\"{}\"", k.name())).collect();
            format!("value is not of types {}", names.join(", "))
        }
    }
}

/// Add to `found` every way `value`, at JSON pointer `at`, breaks `shape`.
fn check(shape: &Shape, value: &Value, at: &str, found: &mut Vec<String>) {
    let place = |rule: String| {
        if at.is_empty() {
            rule
        } else {
            format!("at {at}: {rule}")
        }
    };
    match shape {
        Shape::Any => {}
        Shape::Types(kinds) => {
            if !kinds.iter().any(|kind| kind.admits(value)) {
                found.push(place(not_of_type(kinds)));
            }
        }
        Shape::AnyOf(choices) => {
            let fits = choices.iter().any(|choice| {
                let mut inner = Vec::new();
                check(choice, value, at, &mut inner);
                inner.is_empty()
            });
            if !fits {
                found.push(place(
                    "value is not valid under any of the schemas listed in the 'anyOf' keyword"
                        .to_owned(),
                ));
            }
        }
        Shape::Array(items) => match value {
            Value::Array(elements) => {
                for (index, element) in elements.iter().enumerate() {
                    check(items, element, &format!("{at}/{index}"), found);
                }
            }
            _ => found.push(place(not_of_type(&[Kind::Array]))),
        },
        Shape::Object {
            properties,
            required,
            closed,
        } => {
            let Value::Object(object) = value else {
                found.push(place(not_of_type(&[Kind::Object])));
                return;
            };
            for name in required {
                if !object.contains_key(name) {
                    found.push(place(format!("\"{name}\" is a required property")));
                }
            }
            for (name, shape) in properties {
                if let Some(field) = object.get(name) {
                    check(shape, field, &format!("{at}/{}", escape(name)), found);
                }
            }
            if *closed {
                let extra: Vec<&str> = object
                    .keys()
                    .filter(|key| !properties.iter().any(|(name, _)| name == *key))
                    .map(String::as_str)
                    .collect();
                if !extra.is_empty() {
                    found.push(place(format!(
                        "additional properties are not allowed ({} unexpected)",
                        extra.len()
                    )));
                }
            }
        }
    }
}

/// A property name as a JSON pointer segment (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::tools::{Capabilities, authorize, revoke, token, token_info};

    fn published(capabilities: Capabilities) -> Vec<Tool> {
        vec![
            authorize::definition(capabilities),
            token::definition(capabilities),
            token_info::definition(capabilities),
            revoke::definition(capabilities),
        ]
    }

    #[test]
    fn every_published_output_schema_compiles() {
        for token_store in [false, true] {
            for tool in published(Capabilities {
                credentials_held: false,
                token_store,
            }) {
                assert!(OutputShape::of(&tool).is_ok(), "{}", tool.name);
            }
        }
    }

    #[test]
    fn what_it_cannot_check_it_refuses_to_compile() {
        let mut tool = token::definition(Capabilities::default());
        let mut schema = tool.output_schema.as_deref().cloned().unwrap();
        schema.insert("pattern".into(), json!("^a"));
        tool.output_schema = Some(std::sync::Arc::new(schema));
        let error = OutputShape::of(&tool).unwrap_err().to_string();
        assert!(error.contains("\"pattern\""), "{error}");
    }

    #[test]
    fn violations_name_the_place_and_the_rule() {
        let shape = OutputShape::of(&token::definition(Capabilities::default())).unwrap();
        assert_eq!(
            shape.violation(&json!({"access_token": 12345})).unwrap(),
            "\"token_type\" is a required property; at /access_token: value is not of type \"string\""
        );
        assert_eq!(
            shape.violation(&json!(["access_token"])).unwrap(),
            "value is not of type \"object\""
        );
        assert!(
            shape
                .violation(&json!({"access_token": "a", "token_type": "bearer", "expires_in": 5400.0, "x": {}}))
                .is_none(),
            "5400.0 is an integer, and other fields are allowed"
        );
        let info = OutputShape::of(&token_info::definition(Capabilities::default())).unwrap();
        assert_eq!(
            info.violation(
                &json!({"scopes": ["a", 1], "application": {"uid": 2}, "resource_owner_id": "x"})
            )
            .unwrap(),
            "at /resource_owner_id: value is not valid under any of the schemas listed in the \
             'anyOf' keyword; at /scopes/1: value is not of type \"string\"; at \
             /application/uid: value is not of type \"string\""
        );
    }

    /// A JSON value near what the login host sends: each field of the token response or the
    /// token info absent, of the right type, or of a wrong one.
    fn near_miss() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            (-1000.0f64..1000.0).prop_map(Value::from),
            Just(json!(7.0)),
            "[a-z]{0,6}".prop_map(Value::from),
            Just(json!(["read", "write"])),
            Just(json!(["read", 3])),
            Just(json!({"uid": "abc"})),
            Just(json!({"uid": 5})),
        ];
        let fields = [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "created_at",
            "resource_owner_id",
            "scopes",
            "expires_in_seconds",
            "application",
            "revoked",
            "response",
        ];
        prop_oneof![
            9 => prop::collection::vec(prop::option::of(leaf.clone()), fields.len()).prop_map(
                move |values| {
                    let mut object = serde_json::Map::new();
                    for (name, value) in fields.iter().zip(values) {
                        if let Some(value) = value {
                            object.insert((*name).to_owned(), value);
                        }
                    }
                    Value::Object(object)
                }
            ),
            1 => leaf,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The checker and the `jsonschema` crate agree on every body, for every output
        /// schema this server publishes.
        #[test]
        fn agrees_with_the_jsonschema_crate(value in near_miss()) {
            for tool in published(Capabilities { credentials_held: false, token_store: true }) {
                let schema = Value::Object(tool.output_schema.as_deref().cloned().unwrap());
                let reference = jsonschema::validator_for(&schema).unwrap();
                let ours = OutputShape::of(&tool).unwrap();
                prop_assert_eq!(
                    ours.violation(&value).is_none(),
                    reference.is_valid(&value),
                    "{} on {}: {:?}", tool.name, value, ours.violation(&value)
                );
            }
        }
    }
}

//! A minimal JSON value for policy documents: keeps object keys in document
//! order and rejects duplicate keys.
//!
//! `serde_json::Value` silently keeps the last of two equal keys, so
//! `{"Effect": "Deny", "Effect": "Allow"}` would quietly become an Allow.
//! Policies are security documents, so a duplicate key is an error here, and
//! syntax errors carry serde_json's line and column.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::PolicyError;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number as written (normalised by serde_json's formatting).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Keys in document order, no duplicates.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A short name of the value's JSON type, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Parses `text` as one JSON value (trailing non-whitespace is an error).
pub(crate) fn parse(text: &str) -> Result<Json, PolicyError> {
    serde_json::from_str::<Json>(text).map_err(|e| {
        let msg = e.to_string();
        // serde_json appends " at line L column C"; we move it into the path.
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        PolicyError::new(format!("line {}, column {}", e.line(), e.column()), format!("invalid JSON: {msg}"))
    })
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Json>()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
            }
            let v = map.next_value::<Json>()?;
            out.push((key, v));
        }
        Ok(Json::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_types() {
        let v = parse(r#"{"b": [1, -2, 1.5, true, null], "a": "x"}"#).unwrap();
        let Json::Object(kv) = v else { panic!() };
        assert_eq!(kv[0].0, "b");
        assert_eq!(kv[1], ("a".to_string(), Json::String("x".into())));
        assert_eq!(
            kv[0].1,
            Json::Array(vec![
                Json::Number("1".into()),
                Json::Number("-2".into()),
                Json::Number("1.5".into()),
                Json::Bool(true),
                Json::Null
            ])
        );
    }

    #[test]
    fn duplicate_key_is_an_error_with_position() {
        let e = parse("{\n \"Effect\": \"Deny\",\n \"Effect\": \"Allow\"}").unwrap_err();
        assert!(e.path.starts_with("line 3, column"), "{e}");
        assert!(e.message.contains("duplicate key \"Effect\""), "{e}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}").unwrap_err();
        assert_eq!(e.path, "line 4, column 1");
        assert!(e.message.starts_with("invalid JSON: "), "{e}");
        assert!(!e.message.contains(" at line "), "{e}");
        let e = parse("{} x").unwrap_err();
        assert!(e.message.contains("trailing characters"), "{e}");
    }
}

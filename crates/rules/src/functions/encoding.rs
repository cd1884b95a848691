//! `encode` and `decode` (base64 only, as in AWS).
//!
//! `encode(*, 'base64')` encodes the raw payload bytes, JSON or not; any
//! other value is converted to a string first. `decode` returns the decoded
//! JSON value when the decoded text is JSON, the text itself otherwise, and
//! `Null` when the input is not valid base64 or does not decode to UTF-8.

use base64::Engine;

use crate::ast::Expr;
use crate::eval::Scope;
use crate::value::Value;

fn is_base64(scheme: &Value) -> bool {
    matches!(scheme, Value::String(s) if s.eq_ignore_ascii_case("base64"))
}

/// `encode(value, scheme)`.
pub(super) fn encode(scope: &Scope<'_>, args: &[Expr]) -> Value {
    let (Some(value), Some(scheme)) = (args.first(), args.get(1)) else { return Value::Undefined };
    if !is_base64(&scope.eval(scheme)) {
        return Value::Undefined;
    }
    let engine = base64::engine::general_purpose::STANDARD;
    if matches!(value, Expr::Star) && scope.top_level {
        // At the top level `*` is the payload as it arrived.
        return Value::String(engine.encode(scope.input.payload));
    }
    match scope.eval(value).to_sql_string() {
        Some(s) => Value::String(engine.encode(s.as_bytes())),
        None => Value::Undefined,
    }
}

/// `decode(value, scheme)`.
pub(super) fn decode(value: &Value, scheme: &Value) -> Value {
    if !is_base64(scheme) {
        return Value::Undefined;
    }
    let Some(text) = value.to_sql_string() else { return Value::Undefined };
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(bytes) = engine.decode(text.trim_end_matches(['\n', '\r'])) else { return Value::Null };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(j) => Value::from_json_owned(j),
        Err(_) => String::from_utf8(bytes).map_or(Value::Null, Value::String),
    }
}

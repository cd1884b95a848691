//! Collection, context and lookup functions.
//!
//! Decisions: `get` on an array or string converts the index to an `Int`
//! rounding down; `transform('enrichArray', obj, arr)` skips elements of
//! `arr` that are not objects and lets `obj`'s attributes win over an
//! element's on a clash; `topic()` leaves out the Basic Ingest prefix
//! `$aws/rules/<rule>/`, as AWS documents; `get_thing_shadow` ignores the
//! role ARN (the caller's `Env` decides access).

use crate::eval::Scope;
use crate::value::Value;

/// `get(collection, key)`.
pub(super) fn get(collection: &Value, key: &Value) -> Value {
    match collection {
        Value::Array(items) => key
            .to_int_floor()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| items.get(i).cloned())
            .unwrap_or_default(),
        Value::String(s) => key
            .to_int_floor()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| s.chars().nth(i))
            .map_or(Value::Undefined, |c| Value::String(c.to_string())),
        Value::Object(m) => match key {
            Value::String(k) => m.get(k).cloned().unwrap_or_default(),
            _ => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}

/// `transform(mode, object, array)`.
pub(super) fn transform(mode: &Value, object: &Value, array: &Value) -> Value {
    match (mode, object, array) {
        (Value::String(m), Value::Object(attrs), Value::Array(items)) if m == "enrichArray" => Value::Array(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(o) => {
                        let mut merged = o.clone();
                        merged.extend(attrs.iter().map(|(k, v)| (k.clone(), v.clone())));
                        Some(Value::Object(merged))
                    }
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Undefined,
    }
}

/// `get_thing_shadow(thing, [shadow,] roleArn)`, answered by the `Env`.
pub(super) fn get_thing_shadow(scope: &Scope<'_>, args: &[Value]) -> Value {
    let (thing, shadow) = match args {
        [Value::String(t), _role] => (t, None),
        [Value::String(t), Value::String(s), _role] => (t, Some(s.as_str())),
        _ => return Value::Undefined,
    };
    scope.env.get_thing_shadow(thing, shadow).map_or(Value::Undefined, Value::from_json_owned)
}

/// The topic as rules see it: without a Basic Ingest prefix.
pub(crate) fn rule_topic(topic: &str) -> &str {
    if let Some(rest) = topic.strip_prefix("$aws/rules/") {
        if let Some((_rule, inner)) = rest.split_once('/') {
            return inner;
        }
    }
    topic
}

/// `topic()` and `topic(n)`.
pub(super) fn topic(topic: &str, level: Option<&Value>) -> Value {
    let topic = rule_topic(topic);
    match level {
        None => Value::from(topic),
        Some(n) => match n.to_int_floor() {
            Some(n) if n >= 1 => topic.split('/').nth((n - 1) as usize).map_or(Value::Undefined, Value::from),
            _ => Value::Undefined,
        },
    }
}

//! The delta: what `desired` asks for that `reported` does not show.
//!
//! AWS's rules ("Delta state"; "/update/delta" message body details):
//!
//! * walk `desired`; a key absent from `reported`, or with a different value,
//!   is in the delta; keys only in `reported` never are;
//! * when both sides hold objects the comparison recurses and the delta keeps
//!   the path from the root (`{"lights":{"color":{"g":255}}}`);
//! * arrays compare as whole values: a differing array goes in whole;
//! * the delta's metadata is the desired metadata of the keys it holds.
//!
//! Numbers compare by value (`1` equals `1.0`), so a device echoing a desired
//! number in another notation clears its delta, as on AWS.
//!
//! When the delta is published: after every accepted update whose resulting
//! document has a non-empty delta, carrying the whole delta. The MQTT topics
//! page says the message "contains all of these attributes, regardless of
//! whether these attributes were contained in the current update message or
//! were already stored", and that an attribute "deleted from the `reported`
//! section but still exists in the `desired` section" is included, which
//! only a reported-only update can cause; AWS's Greengrass shadow manager
//! publishes on the same rule. So a `reported` update that leaves a
//! difference re-sends the delta (with the new version); an update after
//! which desired and reported agree sends none.

use serde_json::{Number, Value};

use crate::{Map, Shadow};

/// The current delta of a shadow, `None` when desired and reported agree
/// (or there is no desired state).
pub fn delta(shadow: &Shadow) -> Option<Map> {
    let desired = shadow.state_desired.as_ref()?;
    let d = delta_of(desired, shadow.state_reported.as_ref());
    (!d.is_empty()).then_some(d)
}

/// The current delta and its metadata (taken from the desired metadata).
pub fn delta_with_metadata(shadow: &Shadow) -> Option<(Map, Map)> {
    let d = delta(shadow)?;
    let md = delta_metadata(&d, shadow.metadata_desired.as_ref());
    Some((d, md))
}

/// The delta of `desired` against `reported`.
pub fn delta_of(desired: &Map, reported: Option<&Map>) -> Map {
    let mut out = Map::new();
    for (key, want) in desired {
        match reported.and_then(|r| r.get(key)) {
            None => {
                out.insert(key.clone(), want.clone());
            }
            Some(have) => match (want, have) {
                (Value::Object(w), Value::Object(h)) => {
                    let sub = delta_of(w, Some(h));
                    if !sub.is_empty() {
                        out.insert(key.clone(), Value::Object(sub));
                    }
                }
                _ => {
                    if !json_eq(want, have) {
                        out.insert(key.clone(), want.clone());
                    }
                }
            },
        }
    }
    out
}

/// The metadata of a delta: for each key of the delta, the desired metadata
/// at the same path (whole subtrees for whole values, recursing where the
/// delta recursed).
pub fn delta_metadata(delta: &Map, desired_metadata: Option<&Map>) -> Map {
    let mut out = Map::new();
    for (key, value) in delta {
        let Some(md) = desired_metadata.and_then(|m| m.get(key)) else { continue };
        match (value, md) {
            (Value::Object(sub), Value::Object(mds)) => {
                out.insert(key.clone(), Value::Object(delta_metadata(sub, Some(mds))));
            }
            _ => {
                out.insert(key.clone(), md.clone());
            }
        }
    }
    out
}

/// JSON equality with numbers compared by value (`1 == 1.0`), recursively.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    if a.is_f64() || b.is_f64() {
        return a.as_f64() == b.as_f64();
    }
    false // one negative, one above i64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn aws_flat_example() {
        let d = delta_of(
            &map(json!({"color": "RED", "state": "STOP"})),
            Some(&map(json!({"color": "GREEN", "engine": "ON"}))),
        );
        assert_eq!(Value::Object(d), json!({"color": "RED", "state": "STOP"}));
    }

    #[test]
    fn aws_nested_example_keeps_path() {
        let d = delta_of(
            &map(json!({"lights": {"color": {"r": 255, "g": 255, "b": 255}}})),
            Some(&map(json!({"lights": {"color": {"r": 255, "g": 0, "b": 255}}}))),
        );
        assert_eq!(Value::Object(d), json!({"lights": {"color": {"g": 255}}}));
    }

    #[test]
    fn arrays_are_whole_values() {
        let d = delta_of(&map(json!({"c": [1, 2, 3]})), Some(&map(json!({"c": [1, 2, 4]}))));
        assert_eq!(Value::Object(d), json!({"c": [1, 2, 3]}));
        let d = delta_of(&map(json!({"c": [1, 2, 3]})), Some(&map(json!({"c": [1, 2, 3]}))));
        assert!(d.is_empty());
    }

    #[test]
    fn type_change_puts_whole_desired_value() {
        let d = delta_of(&map(json!({"a": {"x": 1}})), Some(&map(json!({"a": 5}))));
        assert_eq!(Value::Object(d), json!({"a": {"x": 1}}));
    }

    #[test]
    fn numbers_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!json_eq(&json!(1), &json!(2)));
        assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(1), &json!("1")));
    }

    #[test]
    fn metadata_follows_desired() {
        let d = map(json!({"lights": {"color": {"g": 255}}, "list": [1]}));
        let md = map(json!({
            "lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 2}}},
            "list": [{"timestamp": 3}],
            "other": {"timestamp": 4}
        }));
        assert_eq!(
            Value::Object(delta_metadata(&d, Some(&md))),
            json!({"lights": {"color": {"g": {"timestamp": 2}}}, "list": [{"timestamp": 3}]})
        );
    }
}

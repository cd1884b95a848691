//! Metadata: the tree of timestamps that mirrors a state tree.
//!
//! Every leaf of the state gets `{"timestamp": epochSeconds}`; objects mirror
//! objects key by key; an array gets an array of per-element metadata, as in
//! AWS's `ColorRGB` example:
//!
//! ```text
//! state:    {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}
//! metadata: {"ID": {"timestamp": 1591140517},
//!            "ColorRGB": [{"timestamp": 1591140517}, {"timestamp": 1591140517}, {"timestamp": 1591140517}]}
//! ```
//!
//! The same mirroring builds the metadata of an `/update/accepted` response
//! from the request's state, where a `null` (a removal) is a leaf too: the
//! live service answers `{"state": null}` with `"metadata": {"timestamp": …}`.

use serde_json::{json, Value};

use crate::Map;

/// Metadata for `value` with every leaf stamped `ts`.
pub fn stamp(value: &Value, ts: i64) -> Value {
    match value {
        Value::Object(m) => Value::Object(stamp_map(m, ts)),
        Value::Array(a) => Value::Array(a.iter().map(|v| stamp(v, ts)).collect()),
        _ => leaf(ts),
    }
}

/// Metadata for an object with every leaf stamped `ts`.
pub fn stamp_map(map: &Map, ts: i64) -> Map {
    map.iter().map(|(k, v)| (k.clone(), stamp(v, ts))).collect()
}

/// The metadata of one leaf: `{"timestamp": ts}`.
pub fn leaf(ts: i64) -> Value {
    json!({ "timestamp": ts })
}

/// Whether `metadata` has exactly the shape [`stamp`] gives `state`: objects
/// with the same keys, arrays of the same length, `{"timestamp": <integer>}`
/// at every leaf. The stored shadow keeps this invariant.
pub fn mirrors(state: &Value, metadata: &Value) -> bool {
    match (state, metadata) {
        (Value::Object(s), Value::Object(m)) => {
            s.len() == m.len() && s.iter().all(|(k, v)| m.get(k).is_some_and(|mv| mirrors(v, mv)))
        }
        (Value::Array(s), Value::Array(m)) => s.len() == m.len() && s.iter().zip(m).all(|(a, b)| mirrors(a, b)),
        (Value::Object(_) | Value::Array(_), _) => false,
        (_, Value::Object(m)) => m.len() == 1 && m.get("timestamp").is_some_and(|t| t.is_i64() || t.is_u64()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_leaves_objects_and_arrays() {
        let state = json!({"ID": "SmartLamp21", "ColorRGB": [128, 128, 128], "n": {"a": 1, "b": [{"x": true}]}});
        let md = stamp(&state, 5);
        assert_eq!(
            md,
            json!({
                "ID": {"timestamp": 5},
                "ColorRGB": [{"timestamp": 5}, {"timestamp": 5}, {"timestamp": 5}],
                "n": {"a": {"timestamp": 5}, "b": [{"x": {"timestamp": 5}}]}
            })
        );
        assert!(mirrors(&state, &md));
    }

    #[test]
    fn null_is_a_leaf() {
        assert_eq!(stamp(&Value::Null, 9), json!({"timestamp": 9}));
        assert_eq!(stamp(&json!({"color": null}), 9), json!({"color": {"timestamp": 9}}));
    }

    #[test]
    fn empty_containers_mirror_empty() {
        assert_eq!(stamp(&json!([]), 1), json!([]));
        assert_eq!(stamp(&json!({}), 1), json!({}));
    }

    #[test]
    fn mirror_detects_mismatch() {
        let state = json!({"a": [1, 2]});
        assert!(!mirrors(&state, &json!({"a": [{"timestamp": 1}]})));
        assert!(!mirrors(&state, &json!({"a": {"timestamp": 1}})));
        assert!(!mirrors(&state, &json!({"a": [{"timestamp": 1}, {"timestamp": 1}], "b": {"timestamp": 1}})));
        assert!(mirrors(&state, &json!({"a": [{"timestamp": 1}, {"timestamp": 2}]})));
    }
}

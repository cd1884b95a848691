//! Update: merge a request state document into a shadow and build the
//! `/update/accepted`, `/update/documents` and `/update/delta` payloads.
//!
//! Merge rules (AWS "Updating a shadow", "Deleting data", "Empty shadow
//! document properties", "Array values"):
//!
//! * objects merge recursively; scalars and arrays replace whole values;
//! * a key set to `null` is removed, with its metadata; `"desired": null`
//!   removes the section; `"state": null` removes both but keeps the shadow;
//! * an object whose last member is removed disappears, and so does an
//!   empty section. An object patch that carries no value at all (`{}` or
//!   only `null`s) never creates or replaces anything: over a missing key or
//!   a scalar it changes nothing;
//! * every leaf written gets `{"timestamp": now}` in the metadata; the
//!   metadata of untouched keys keeps its timestamps;
//! * every accepted update, even one that changes nothing, increments the
//!   version by one. A request `version` must equal the current version
//!   (409 otherwise). With no shadow the current version is 0, or the
//!   tombstone's version if the shadow was deleted within
//!   [`Limits::version_retention_secs`].
//!
//! Responses: `/update/accepted` echoes the request's `state` node as sent
//! (nulls included) with metadata stamped for each leaf sent, plus
//! `version`, `timestamp` and `clientToken`; `/update/documents` carries the
//! previous (`null` when the shadow did not exist) and current documents;
//! `/update/delta` is described in [`mod@crate::delta`].

use serde_json::Value;

use crate::delta::delta_with_metadata;
use crate::metadata::{stamp, stamp_map};
use crate::request::parse_update;
use crate::{Limits, Map, Shadow, ShadowError};

/// What an accepted update produces.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The new stored shadow.
    pub shadow: Shadow,
    /// The `/update/accepted` payload (also the HTTP response body).
    pub accepted: Value,
    /// The `/update/documents` payload.
    pub documents: Value,
    /// The `/update/delta` payload; `None` when desired and reported agree.
    pub delta: Option<Value>,
}

/// Apply an update request.
///
/// `current` is the stored shadow, a tombstone, or `None`; `now` is the time
/// in epoch seconds.
pub fn apply_update(
    current: Option<&Shadow>,
    request: &[u8],
    now: i64,
    limits: &Limits,
) -> Result<UpdateOutcome, ShadowError> {
    let req = parse_update(request, limits)?;
    let live = Shadow::live(current);
    let base_version = match current {
        Some(s) if !s.is_tombstone() => s.version,
        Some(t) if within_retention(t, now, limits) => t.version,
        _ => 0,
    };
    if req.version.is_some_and(|v| v != base_version) {
        return Err(ShadowError::version_conflict());
    }
    let version = base_version.checked_add(1).ok_or_else(ShadowError::internal)?;

    let mut shadow = Shadow {
        state_desired: None,
        state_reported: None,
        metadata_desired: None,
        metadata_reported: None,
        version,
        timestamp: now,
        deleted_at: None,
    };
    if let Some(patch) = &req.state {
        // The two sections are members of one root object, so `"desired": null`
        // and an emptied section follow the same rules as any other key.
        let mut state = Map::new();
        let mut meta = Map::new();
        if let Some(old) = live {
            for (key, s, m) in [
                ("desired", &old.state_desired, &old.metadata_desired),
                ("reported", &old.state_reported, &old.metadata_reported),
            ] {
                if let Some(s) = s {
                    state.insert(key.into(), Value::Object(s.clone()));
                    let m = m.clone().unwrap_or_else(|| stamp_map(s, old.timestamp));
                    meta.insert(key.into(), Value::Object(m));
                }
            }
        }
        merge(&mut state, &mut meta, patch, now);
        shadow.state_desired = take_object(&mut state, "desired");
        shadow.state_reported = take_object(&mut state, "reported");
        shadow.metadata_desired = shadow.state_desired.as_ref().and(take_object(&mut meta, "desired"));
        shadow.metadata_reported = shadow.state_reported.as_ref().and(take_object(&mut meta, "reported"));
    }
    if shadow.state_bytes() > limits.max_state_bytes {
        return Err(ShadowError::payload_too_large());
    }

    let state_sent = req.state_value();
    let mut accepted = Map::new();
    accepted.insert("metadata".into(), stamp(&state_sent, now));
    accepted.insert("state".into(), state_sent);
    accepted.insert("version".into(), version.into());
    accepted.insert("timestamp".into(), now.into());

    let mut documents = Map::new();
    documents.insert("previous".into(), live.map_or(Value::Null, Shadow::document_value));
    documents.insert("current".into(), shadow.document_value());
    documents.insert("timestamp".into(), now.into());

    let delta = delta_with_metadata(&shadow).map(|(d, md)| {
        let mut m = Map::new();
        m.insert("state".into(), Value::Object(d));
        m.insert("metadata".into(), Value::Object(md));
        m.insert("version".into(), version.into());
        m.insert("timestamp".into(), now.into());
        m
    });

    let with_token = |mut m: Map| {
        if let Some(t) = &req.client_token {
            m.insert("clientToken".into(), Value::String(t.clone()));
        }
        Value::Object(m)
    };
    Ok(UpdateOutcome {
        accepted: with_token(accepted),
        documents: with_token(documents),
        delta: delta.map(with_token),
        shadow,
    })
}

fn within_retention(tombstone: &Shadow, now: i64, limits: &Limits) -> bool {
    tombstone.deleted_at.is_some_and(|d| now.saturating_sub(d) <= limits.version_retention_secs)
}

fn take_object(m: &mut Map, key: &str) -> Option<Map> {
    match m.remove(key) {
        Some(Value::Object(o)) if !o.is_empty() => Some(o),
        _ => None,
    }
}

/// Merge `patch` into `state`, keeping `meta` (the mirror of `state`) in step.
fn merge(state: &mut Map, meta: &mut Map, patch: &Map, now: i64) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                state.remove(key);
                meta.remove(key);
            }
            Value::Object(sub) => {
                if let Some(Value::Object(existing)) = state.get_mut(key) {
                    let mut sub_meta = match meta.remove(key) {
                        Some(Value::Object(m)) => m,
                        _ => stamp_map(existing, now), // repair a metadata tree that lost its shape
                    };
                    merge(existing, &mut sub_meta, sub, now);
                    if existing.is_empty() {
                        state.remove(key);
                    } else {
                        meta.insert(key.clone(), Value::Object(sub_meta));
                    }
                } else {
                    let pruned = prune(sub);
                    if !pruned.is_empty() {
                        meta.insert(key.clone(), Value::Object(stamp_map(&pruned, now)));
                        state.insert(key.clone(), Value::Object(pruned));
                    }
                }
            }
            _ => {
                meta.insert(key.clone(), stamp(value, now));
                state.insert(key.clone(), value.clone());
            }
        }
    }
}

/// An object patch as it is stored where nothing was: nulls dropped, empty
/// objects collapsed.
fn prune(patch: &Map) -> Map {
    patch
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::Object(o) => {
                let p = prune(o);
                (!p.is_empty()).then(|| (k.clone(), Value::Object(p)))
            }
            _ => Some((k.clone(), v.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map {
        v.as_object().cloned().expect("object")
    }

    fn merged(state: Value, patch: Value) -> (Value, Value) {
        let mut s = map(state.clone());
        let mut m = stamp_map(&s, 1);
        merge(&mut s, &mut m, &map(patch), 2);
        (Value::Object(s), Value::Object(m))
    }

    #[test]
    fn merge_recurses_and_stamps_only_written_leaves() {
        let (s, m) = merged(json!({"a": {"x": 1, "y": 2}, "b": 3}), json!({"a": {"x": 9}}));
        assert_eq!(s, json!({"a": {"x": 9, "y": 2}, "b": 3}));
        assert_eq!(m, json!({"a": {"x": {"timestamp": 2}, "y": {"timestamp": 1}}, "b": {"timestamp": 1}}));
    }

    #[test]
    fn nulls_remove_and_empty_objects_collapse() {
        let (s, m) = merged(json!({"a": {"x": 1}, "b": 3}), json!({"a": {"x": null}}));
        assert_eq!(s, json!({"b": 3}));
        assert_eq!(m, json!({"b": {"timestamp": 1}}));
    }

    #[test]
    fn object_replaces_scalar_and_scalar_replaces_object() {
        let (s, m) = merged(json!({"a": 1, "b": {"x": 1}}), json!({"a": {"x": 2, "y": null}, "b": [1, 2]}));
        assert_eq!(s, json!({"a": {"x": 2}, "b": [1, 2]}));
        assert_eq!(m, json!({"a": {"x": {"timestamp": 2}}, "b": [{"timestamp": 2}, {"timestamp": 2}]}));
    }

    #[test]
    fn valueless_object_patches_change_nothing() {
        let (s, _) = merged(json!({"a": 1}), json!({"a": {"z": null}, "n": {}, "m": {"k": {}}}));
        assert_eq!(s, json!({"a": 1}));
        let (s, _) = merged(json!({"a": {"x": 1}}), json!({"a": {}}));
        assert_eq!(s, json!({"a": {"x": 1}}));
    }

    #[test]
    fn prune_drops_nulls_and_empties() {
        assert_eq!(
            Value::Object(prune(&map(json!({"a": null, "b": {"c": null}, "d": {"e": 1, "f": {}}, "g": []})))),
            json!({"d": {"e": 1}, "g": []})
        );
    }
}

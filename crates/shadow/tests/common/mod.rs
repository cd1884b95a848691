//! Helpers shared by the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use shadow::{apply_update, Limits, Shadow, UpdateOutcome};

/// Apply an update that must be accepted.
pub fn update(current: Option<&Shadow>, request: Value, now: i64) -> UpdateOutcome {
    apply_update(current, request.to_string().as_bytes(), now, &Limits::default())
        .unwrap_or_else(|e| panic!("update {request} rejected: {e}"))
}

/// Apply an update that must be rejected; returns (code, message).
pub fn reject(current: Option<&Shadow>, request: &str, now: i64) -> (u16, String) {
    reject_with(current, request, now, &Limits::default())
}

/// Apply an update under `limits` that must be rejected; returns (code, message).
pub fn reject_with(current: Option<&Shadow>, request: &str, now: i64, limits: &Limits) -> (u16, String) {
    match apply_update(current, request.as_bytes(), now, limits) {
        Ok(o) => panic!("update {request} accepted: {}", o.accepted),
        Err(e) => (e.code, e.message),
    }
}

/// A shadow built by a sequence of accepted updates, one second apart.
pub fn build(updates: &[Value]) -> Shadow {
    let mut cur: Option<Shadow> = None;
    for (i, u) in updates.iter().enumerate() {
        cur = Some(update(cur.as_ref(), u.clone(), 1000 + i as i64).shadow);
    }
    cur.expect("at least one update")
}

/// The object inside a JSON value.
pub fn obj(v: Value) -> shadow::Map {
    v.as_object().cloned().expect("object")
}

//! Version numbers: +1 per accepted update, optimistic locking, and
//! continuity across a delete within the retention window.

mod common;

use common::{build, reject, update};
use serde_json::json;
use shadow::{apply_update, delete, get_response, Limits};

const HOUR: i64 = 3600;

#[test]
fn every_accepted_update_increments() {
    let mut cur = None;
    for v in 1..=5u64 {
        let out = update(cur.as_ref(), json!({"state": {"reported": {"n": v}}}), v as i64);
        assert_eq!(out.shadow.version, v);
        assert_eq!(out.accepted["version"], v);
        cur = Some(out.shadow);
    }
    // A no-op update still counts.
    let out = update(cur.as_ref(), json!({"state": {}}), 10);
    assert_eq!(out.shadow.version, 6);
}

#[test]
fn rejected_updates_do_not_count() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    reject(Some(&doc), r#"{"state":{"desired":1}}"#, 5);
    let out = update(Some(&doc), json!({"state": {}, "version": 1}), 6);
    assert_eq!(out.shadow.version, 2);
}

#[test]
fn version_of_a_new_shadow_is_zero() {
    assert_eq!(update(None, json!({"state": {}, "version": 0}), 1).shadow.version, 1);
    assert_eq!(reject(None, r#"{"state":{},"version":1}"#, 1).0, 409);
}

#[test]
fn delete_keeps_the_version_within_the_window() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}}), json!({"state": {"reported": {"a": 2}}})]);
    assert_eq!(doc.version, 2);
    let (tomb, accepted) = delete(Some(&doc), br#"{"clientToken":"del"}"#, 5000, None).unwrap();
    assert_eq!(accepted, json!({"version": 2, "timestamp": 5000, "clientToken": "del"}));
    assert!(tomb.is_tombstone());
    assert_eq!((tomb.version, tomb.deleted_at), (2, Some(5000)));
    assert_eq!(tomb.state_value(), json!({}));

    // Recreated within 48 hours: continues at 3; the old version is the base.
    let again = update(Some(&tomb), json!({"state": {"desired": {"b": 1}}}), 5000 + 48 * HOUR);
    assert_eq!(again.shadow.version, 3);
    assert_eq!(again.documents["previous"], serde_json::Value::Null, "the deleted state is gone");
    assert_eq!(again.shadow.state_value(), json!({"desired": {"b": 1}}));
    assert_eq!(reject(Some(&tomb), r#"{"state":{},"version":0}"#, 5001).0, 409);
    assert_eq!(update(Some(&tomb), json!({"state": {}, "version": 2}), 5001).shadow.version, 3);
}

#[test]
fn after_the_window_numbering_restarts() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}}), json!({"state": {"reported": {"a": 2}}})]);
    let (tomb, _) = delete(Some(&doc), b"", 5000, None).unwrap();
    let later = update(Some(&tomb), json!({"state": {"reported": {"a": 3}}}), 5000 + 48 * HOUR + 1);
    assert_eq!(later.shadow.version, 1);
    assert_eq!(reject(Some(&tomb), r#"{"state":{},"version":2}"#, 5000 + 49 * HOUR).0, 409);
}

#[test]
fn retention_window_is_configurable() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    let (tomb, _) = delete(Some(&doc), b"", 100, None).unwrap();
    let l = Limits { version_retention_secs: 10, ..Limits::default() };
    let req = br#"{"state":{"reported":{"a":1}}}"#;
    assert_eq!(apply_update(Some(&tomb), req, 110, &l).unwrap().shadow.version, 2);
    assert_eq!(apply_update(Some(&tomb), req, 111, &l).unwrap().shadow.version, 1);
}

#[test]
fn tombstones_are_not_shadows() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    let (tomb, _) = delete(Some(&doc), b"", 5, Some("s")).unwrap();
    assert_eq!(get_response(Some(&tomb), b"", 6, Some("s")).unwrap_err().code, 404);
    assert_eq!(delete(Some(&tomb), b"", 6, Some("s")).unwrap_err().code, 404);
}

#[test]
fn version_overflow_is_an_internal_error() {
    let mut doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    doc.version = u64::MAX;
    assert_eq!(reject(Some(&doc), r#"{"state":{}}"#, 5).0, 500);
}

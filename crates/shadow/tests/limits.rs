//! The configurable limits: state size, nesting depth, client token length.

mod common;

use common::{build, reject, reject_with, update};
use serde_json::json;
use shadow::{apply_update, Limits};

/// A reported state whose compact JSON is exactly `n` bytes.
fn state_of_size(n: usize) -> String {
    // {"blob":"…"} is 11 bytes plus the string.
    format!(r#"{{"state":{{"reported":{{"blob":"{}"}}}}}}"#, "x".repeat(n - 11))
}

#[test]
fn state_size_limit_is_inclusive() {
    let l = Limits::default();
    let out = apply_update(None, state_of_size(8192).as_bytes(), 1, &l).unwrap();
    assert_eq!(out.shadow.state_bytes(), 8192);
    assert_eq!(reject(None, &state_of_size(8193), 1).0, 413);
}

#[test]
fn metadata_does_not_count() {
    // Thousands of leaves: metadata is far bigger than the state, which fits.
    let items: Vec<u8> = vec![1; 2000];
    let out = update(None, json!({"state": {"reported": {"items": items}}}), 1);
    assert!(out.shadow.state_bytes() < 8192);
    assert!(serde_json::to_string(&out.shadow.metadata_value()).unwrap().len() > 8192);
}

#[test]
fn size_counts_the_merged_document() {
    // Each update is small, but the stored shadow grows past the limit.
    let half = "y".repeat(4100);
    let doc = build(&[json!({"state": {"desired": {"a": half}}})]);
    let req = json!({"state": {"reported": {"b": half}}}).to_string();
    assert_eq!(reject(Some(&doc), &req, 5), (413, "The payload exceeds the maximum size allowed".into()));
    // Removing data while adding keeps it under.
    let ok = update(Some(&doc), json!({"state": {"desired": null, "reported": {"b": half}}}), 5);
    assert!(ok.shadow.state_bytes() <= 8192);
}

#[test]
fn size_limit_is_configurable() {
    let l = Limits { max_state_bytes: 20, ..Limits::default() };
    assert!(apply_update(None, br#"{"state":{"reported":{"a":"123456"}}}"#, 1, &l).is_ok()); // 14 bytes
    assert_eq!(reject_with(None, r#"{"state":{"reported":{"a":"1234567890123"}}}"#, 1, &l).0, 413);
}

fn nested(levels: usize) -> String {
    // The section object is level 1; each further object adds one.
    let mut inner = "1".to_string();
    for i in (1..levels).rev() {
        inner = format!(r#"{{"k{i}":{inner}}}"#);
    }
    format!(r#"{{"state":{{"desired":{{"k0":{inner}}}}}}}"#)
}

#[test]
fn depth_limit() {
    assert!(apply_update(None, nested(6).as_bytes(), 1, &Limits::default()).is_ok());
    assert_eq!(reject(None, &nested(7), 1), (400, "JSON contains too many levels of nesting; maximum is 6".into()));
    // Arrays count as levels too.
    assert!(apply_update(None, br#"{"state":{"reported":{"a":[[[[[1]]]]]}}}"#, 1, &Limits::default()).is_ok());
    assert_eq!(reject(None, r#"{"state":{"reported":{"a":[[[[[[1]]]]]]}}}"#, 1).0, 400);
}

#[test]
fn depth_limit_is_configurable() {
    let l = Limits { max_depth: 8, ..Limits::default() };
    assert!(apply_update(None, nested(8).as_bytes(), 1, &l).is_ok());
    assert_eq!(
        reject_with(None, &nested(9), 1, &l),
        (400, "JSON contains too many levels of nesting; maximum is 8".into())
    );
}

#[test]
fn client_token_limit() {
    let at = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "t".repeat(64));
    let over = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "t".repeat(65));
    let out = apply_update(None, at.as_bytes(), 1, &Limits::default()).unwrap();
    assert_eq!(out.accepted["clientToken"].as_str().map(str::len), Some(64));
    assert_eq!(reject(None, &over, 1), (400, "Invalid clientToken".into()));
    let l = Limits { max_client_token: 128, ..Limits::default() };
    assert!(apply_update(None, over.as_bytes(), 1, &l).is_ok());
}

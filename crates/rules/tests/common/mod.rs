//! Shared helpers for the integration tests.
#![allow(dead_code)]

use rules::{Env, Input, Output, Rule};
use serde_json::Value as Json;

pub const TOPIC: &str = "topic/subtopic";
pub const TS: i64 = 1_481_825_251_155;

/// A deterministic environment.
pub struct TestEnv;

impl Env for TestEnv {
    fn new_uuid(&self) -> String {
        "123a4567-b89c-12d3-e456-789012345000".to_string()
    }
    fn trace_id(&self) -> String {
        "12345678-1234-1234-1234-123456789012".to_string()
    }
    fn get_thing_shadow(&self, thing: &str, shadow: Option<&str>) -> Option<Json> {
        match (thing, shadow) {
            ("MyThing", None) => Some(serde_json::json!({"state": {"reported": {"alarm": "ON"}}})),
            ("MyThing", Some("MyThingShadow")) => Some(serde_json::json!({"state": {"reported": {"alarm": "OFF"}}})),
            _ => None,
        }
    }
    fn account_id(&self) -> Option<String> {
        Some("123456789012".to_string())
    }
}

pub fn input<'a>(topic: &'a str, payload: &'a [u8]) -> Input<'a> {
    Input { topic, payload, client_id: Some("client-1"), principal: Some("ba67293af50b"), timestamp_ms: TS }
}

/// Runs `sql` on `payload` published to `topic/subtopic`.
pub fn run(sql: &str, payload: &str) -> Option<Output> {
    run_on(sql, TOPIC, payload.as_bytes())
}

pub fn run_on(sql: &str, topic: &str, payload: &[u8]) -> Option<Output> {
    let rule = Rule::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    rule.evaluate(&input(topic, payload), &TestEnv)
}

/// The JSON output of `sql` on `payload` (panics when there is none).
pub fn json(sql: &str, payload: &str) -> Json {
    match run(sql, payload) {
        Some(Output::Json(j)) => j,
        other => panic!("{sql}: expected JSON output, got {other:?}"),
    }
}

/// The value of one expression (`None` for `Undefined`), on `payload`.
pub fn eval_on(expr: &str, payload: &str) -> Option<Json> {
    match run(&format!("SELECT VALUE {expr} FROM '#'"), payload) {
        Some(Output::Json(j)) => Some(j),
        Some(Output::Bytes(b)) if b.is_empty() => None,
        other => panic!("{expr}: unexpected {other:?}"),
    }
}

/// The value of one expression on an empty payload.
pub fn eval(expr: &str) -> Option<Json> {
    eval_on(expr, "{}")
}

/// Asserts that `expr` evaluates to the JSON `expected` (`null` literal
/// means JSON null; use `assert_undefined` for Undefined).
#[track_caller]
pub fn check(expr: &str, expected: Json) {
    assert_eq!(eval(expr), Some(expected), "{expr}");
}

#[track_caller]
pub fn check_undefined(expr: &str) {
    assert_eq!(eval(expr), None, "{expr}");
}

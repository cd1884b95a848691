//! Condition operators and their IAM semantics.

mod common;

use std::collections::HashMap;

use common::policy;
use policy::{CompiledPolicies, Decision, VarValue};

/// An Allow-everything-if policy with one `Condition` block.
fn cond(block: &str) -> CompiledPolicies {
    cond_with_vars(block, &[])
}

fn cond_with_vars(block: &str, kv: &[(&str, &str)]) -> CompiledPolicies {
    policy(&format!(r#"{{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": {block}}}"#), kv)
}

/// Request context with one key.
fn one(k: &str, v: &str) -> HashMap<String, VarValue> {
    HashMap::from([(k.to_string(), VarValue::from(v))])
}

fn many(k: &str, vs: &[&str]) -> HashMap<String, VarValue> {
    HashMap::from([(k.to_string(), VarValue::Many(vs.iter().map(|s| s.to_string()).collect()))])
}

fn none() -> HashMap<String, VarValue> {
    HashMap::new()
}

fn ok(p: &CompiledPolicies, ctx: &HashMap<String, VarValue>) -> bool {
    let d = p.evaluate("iot:Connect", "arn:aws:iot:eu-west-1:1:client/c", ctx);
    let e = p.explain("iot:Connect", "arn:aws:iot:eu-west-1:1:client/c", ctx);
    assert_eq!(d, e.decision);
    assert_ne!(d, Decision::ExplicitDeny);
    d == Decision::Allowed
}

/// (operator, policy value, request value, expected) — key "k".
fn table(rows: &[(&str, &str, &str, bool)]) {
    for (op, pv, rv, want) in rows {
        let p = cond(&format!(r#"{{"{op}": {{"k": "{pv}"}}}}"#));
        assert_eq!(ok(&p, &one("k", rv)), *want, "{op} {pv:?} vs request {rv:?}");
    }
}

#[test]
fn string_operators() {
    table(&[
        ("StringEquals", "abc", "abc", true),
        ("StringEquals", "abc", "ABC", false),
        ("StringEquals", "a*", "abc", false),
        ("StringEquals", "a*", "a*", true),
        ("StringNotEquals", "abc", "abc", false),
        ("StringNotEquals", "abc", "abd", true),
        ("StringEqualsIgnoreCase", "abc", "ABC", true),
        ("StringEqualsIgnoreCase", "ÄBC", "äbc", true),
        ("StringEqualsIgnoreCase", "abc", "abd", false),
        ("StringNotEqualsIgnoreCase", "abc", "ABC", false),
        ("StringNotEqualsIgnoreCase", "abc", "x", true),
        ("StringLike", "dev-*", "dev-12", true),
        ("StringLike", "dev-*", "prod-12", false),
        ("StringLike", "dev-??", "dev-12", true),
        ("StringLike", "dev-??", "dev-123", false),
        ("StringLike", "Dev-*", "dev-1", false),
        ("StringNotLike", "dev-*", "dev-12", false),
        ("StringNotLike", "dev-*", "prod", true),
    ]);
}

#[test]
fn numeric_operators() {
    table(&[
        ("NumericEquals", "10", "10", true),
        ("NumericEquals", "10", "10.0", true),
        ("NumericEquals", "10", "11", false),
        ("NumericEquals", "10", "ten", false),
        ("NumericNotEquals", "10", "11", true),
        ("NumericNotEquals", "10", "10", false),
        ("NumericLessThan", "10", "9.5", true),
        ("NumericLessThan", "10", "10", false),
        ("NumericLessThanEquals", "10", "10", true),
        ("NumericLessThanEquals", "10", "11", false),
        ("NumericGreaterThan", "10", "11", true),
        ("NumericGreaterThan", "10", "10", false),
        ("NumericGreaterThanEquals", "10", "10", true),
        ("NumericGreaterThanEquals", "-1.5", "-2", false),
    ]);
    // JSON numbers are accepted as policy values.
    let p = cond(r#"{"NumericLessThan": {"k": 5}}"#);
    assert!(ok(&p, &one("k", "4")));
    assert!(!ok(&p, &one("k", "5")));
}

#[test]
fn date_operators() {
    table(&[
        ("DateLessThan", "2024-05-01T00:00:00Z", "2024-04-30T23:59:59Z", true),
        ("DateLessThan", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z", false),
        ("DateLessThan", "2024-05-01", "1714521599", true),
        ("DateLessThanEquals", "2024-05-01", "2024-05-01T00:00:00Z", true),
        ("DateGreaterThan", "2024-05-01", "2024-05-01T00:00:01Z", true),
        ("DateGreaterThan", "2024-05-01", "2024-04-01", false),
        ("DateGreaterThanEquals", "2024-05-01", "2024-05-01T02:00:00+02:00", true),
        ("DateEquals", "2024-05-01T12:00:00Z", "1714564800", true),
        ("DateNotEquals", "2024-05-01T12:00:00Z", "1714564800", false),
        ("DateLessThan", "2024-05-01", "not a date", false),
    ]);
}

#[test]
fn bool_operator() {
    table(&[
        ("Bool", "true", "true", true),
        ("Bool", "true", "TRUE", true),
        ("Bool", "true", "false", false),
        ("Bool", "false", "false", true),
        ("Bool", "true", "yes", false),
    ]);
    let p = cond(r#"{"Bool": {"k": true}}"#);
    assert!(ok(&p, &one("k", "true")));
}

#[test]
fn arn_operators() {
    let a = "arn:aws:iot:eu-west-1:123456789012:thing/t1";
    table(&[
        ("ArnEquals", a, a, true),
        ("ArnEquals", a, "arn:aws:iot:eu-west-1:123456789012:thing/t2", false),
        ("ArnLike", "arn:aws:iot:*:123456789012:thing/*", a, true),
        ("ArnLike", "arn:aws:iot:*:999:thing/*", a, false),
        ("ArnLike", "arn:aws:iot:*:*:thing/t?", a, true),
        ("ArnLike", "*", a, true),
        ("ArnLike", "arn:aws:iot:*:*:*", "not-an-arn", false),
        // `*` stays inside its component
        ("ArnLike", "arn:aws:iot:*:1:thing/t1", "arn:aws:iot:eu:west:1:thing/t1", false),
        ("ArnLike", "arn:aws:iot:*:*:thing/t1", "arn:aws:iot:eu:1:2:thing/t1", false),
        ("ArnNotEquals", a, a, false),
        ("ArnNotLike", "arn:aws:iot:*:*:thing/*", a, false),
        ("ArnNotLike", "arn:aws:iot:*:*:client/*", a, true),
    ]);
}

#[test]
fn ip_operators() {
    table(&[
        ("IpAddress", "10.0.0.0/8", "10.20.30.40", true),
        ("IpAddress", "10.0.0.0/8", "11.0.0.1", false),
        ("IpAddress", "203.0.113.7", "203.0.113.7", true),
        ("IpAddress", "203.0.113.0/24", "203.0.114.1", false),
        ("IpAddress", "2001:db8::/32", "2001:db8::1", true),
        ("IpAddress", "2001:db8::/32", "10.0.0.1", false),
        ("IpAddress", "10.0.0.0/8", "::ffff:10.0.0.1", true),
        ("IpAddress", "10.0.0.0/8", "garbage", false),
        ("NotIpAddress", "10.0.0.0/8", "10.1.1.1", false),
        ("NotIpAddress", "10.0.0.0/8", "192.168.1.1", true),
    ]);
    let p = cond(r#"{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}"#);
    assert!(ok(&p, &one("aws:SourceIp", "192.168.4.4")));
    assert!(!ok(&p, &one("aws:SourceIp", "172.16.0.1")));
    // From the connection's variables.
    let p = cond_with_vars(r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, &[("aws:SourceIp", "10.9.9.9")]);
    assert!(ok(&p, &none()));
}

#[test]
fn missing_keys() {
    // Positive operators: false. Negated: true (IAM).
    for (op, want) in [
        ("StringEquals", false),
        ("StringLike", false),
        ("NumericLessThan", false),
        ("Bool", false),
        ("IpAddress", false),
        ("ArnLike", false),
        ("DateLessThan", false),
        ("StringNotEquals", true),
        ("StringNotLike", true),
        ("NumericNotEquals", true),
        ("NotIpAddress", true),
        ("ArnNotLike", true),
        ("DateNotEquals", true),
    ] {
        let v = match op {
            "NumericLessThan" | "NumericNotEquals" => "1",
            "Bool" => "true",
            "IpAddress" | "NotIpAddress" => "10.0.0.0/8",
            "ArnLike" | "ArnNotLike" => "*",
            "DateLessThan" | "DateNotEquals" => "2024-01-01",
            _ => "x",
        };
        let p = cond(&format!(r#"{{"{op}": {{"k": "{v}"}}}}"#));
        assert_eq!(ok(&p, &none()), want, "{op}");
        // IfExists: an absent key is true.
        let p = cond(&format!(r#"{{"{op}IfExists": {{"k": "{v}"}}}}"#));
        assert!(ok(&p, &none()), "{op}IfExists");
    }
    // IfExists still tests a present key.
    let p = cond(r#"{"StringEqualsIfExists": {"k": "x"}}"#);
    assert!(ok(&p, &one("k", "x")));
    assert!(!ok(&p, &one("k", "y")));
    // An empty list is absent.
    let p = cond(r#"{"StringNotEquals": {"k": "x"}}"#);
    assert!(ok(&p, &many("k", &[])));
}

#[test]
fn null_operator() {
    let p = cond(r#"{"Null": {"k": "true"}}"#);
    assert!(ok(&p, &none()));
    assert!(!ok(&p, &one("k", "v")));
    assert!(ok(&p, &many("k", &[])));
    let p = cond(r#"{"Null": {"k": "false"}}"#);
    assert!(!ok(&p, &none()));
    assert!(ok(&p, &one("k", "v")));
    // Presence through the connection's variables counts.
    let p = cond_with_vars(
        r#"{"Null": {"iot:Connection.Thing.ThingName": "false"}}"#,
        &[("iot:Connection.Thing.ThingName", "t")],
    );
    assert!(ok(&p, &none()));
    // Null is not reported as a missing context value.
    let p = cond(r#"{"Null": {"k": "true"}}"#);
    let e = p.explain("iot:Connect", "x", &none());
    assert!(e.missing_context_keys.is_empty());
}

#[test]
fn set_operators() {
    let attrs = |vs: &[&str]| many("iot:ConnectAttributes", vs);
    // ForAnyValue: some request value in the list; absent → false.
    let p = cond(r#"{"ForAnyValue:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect", "LastWill"]}}"#);
    assert!(ok(&p, &attrs(&["CleanSession", "LastWill"])));
    assert!(!ok(&p, &attrs(&["CleanSession"])));
    assert!(!ok(&p, &attrs(&[])));
    assert!(!ok(&p, &none()));
    // ForAllValues: every request value in the list; absent → true.
    let p = cond(r#"{"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect", "LastWill"]}}"#);
    assert!(ok(&p, &attrs(&["PersistentConnect", "LastWill"])));
    assert!(ok(&p, &attrs(&["LastWill"])));
    assert!(!ok(&p, &attrs(&["LastWill", "CleanSession"])));
    assert!(ok(&p, &attrs(&[])));
    assert!(ok(&p, &none()));
    // ForAnyValue with a negated operator: some value outside the list.
    let p = cond(r#"{"ForAnyValue:StringNotEquals": {"iot:ConnectAttributes": "LastWill"}}"#);
    assert!(ok(&p, &attrs(&["LastWill", "CleanSession"])));
    assert!(!ok(&p, &attrs(&["LastWill"])));
    assert!(!ok(&p, &none()));
    // ForAllValues with a negated operator: no value in the list.
    let p = cond(r#"{"ForAllValues:StringNotLike": {"iot:ConnectAttributes": "Last*"}}"#);
    assert!(ok(&p, &attrs(&["CleanSession"])));
    assert!(!ok(&p, &attrs(&["CleanSession", "LastWill"])));
    assert!(ok(&p, &none()));
    // ForAnyValue + IfExists
    let p = cond(r#"{"ForAnyValue:StringEqualsIfExists": {"iot:ConnectAttributes": "LastWill"}}"#);
    assert!(ok(&p, &none()));
    assert!(!ok(&p, &attrs(&["CleanSession"])));
    // Without a set operator a multi-valued key: any (positive) / none (negated).
    let p = cond(r#"{"StringEquals": {"iot:ConnectAttributes": "LastWill"}}"#);
    assert!(ok(&p, &attrs(&["CleanSession", "LastWill"])));
    let p = cond(r#"{"StringNotEquals": {"iot:ConnectAttributes": "LastWill"}}"#);
    assert!(!ok(&p, &attrs(&["CleanSession", "LastWill"])));
    assert!(ok(&p, &attrs(&["CleanSession"])));
}

#[test]
fn values_or_keys_and_operators_and() {
    // Several values: OR.
    let p = cond(r#"{"StringEquals": {"k": ["a", "b"]}}"#);
    assert!(ok(&p, &one("k", "a")));
    assert!(ok(&p, &one("k", "b")));
    assert!(!ok(&p, &one("k", "c")));
    // Negated with several values: NOR.
    let p = cond(r#"{"StringNotEquals": {"k": ["a", "b"]}}"#);
    assert!(!ok(&p, &one("k", "a")));
    assert!(!ok(&p, &one("k", "b")));
    assert!(ok(&p, &one("k", "c")));
    // Several keys: AND.
    let p = cond(r#"{"StringEquals": {"k": "a", "j": "b"}}"#);
    let mut both = one("k", "a");
    both.insert("j".into(), "b".into());
    assert!(ok(&p, &both));
    assert!(!ok(&p, &one("k", "a")));
    // Several operators: AND.
    let p = cond(r#"{"StringEquals": {"k": "a"}, "StringLike": {"j": "b*"}}"#);
    assert!(ok(&p, &both));
    both.insert("j".into(), "c".into());
    assert!(!ok(&p, &both));
}

#[test]
fn request_context_overrides_variables() {
    let p = cond_with_vars(r#"{"StringEquals": {"iot:ClientId": "from-request"}}"#, &[("iot:ClientId", "from-vars")]);
    assert!(!ok(&p, &none()));
    assert!(ok(&p, &one("iot:ClientId", "from-request")));
    // Condition keys are canonicalised: any spelling finds the key.
    let p = cond(r#"{"StringEquals": {"IOT:LASTWILLTOPIC": "t/will"}}"#);
    assert!(ok(&p, &one("iot:LastWillTopic", "t/will")));
    // Unknown keys are passed through as written.
    let p = cond(r#"{"StringEquals": {"custom:Thing": "x"}}"#);
    assert!(ok(&p, &one("custom:Thing", "x")));
    assert!(!ok(&p, &one("custom:thing", "x")));
}

#[test]
fn variables_in_condition_values() {
    let p = cond_with_vars(
        r#"{"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}"#,
        &[("iot:Connection.Thing.ThingName", "t1"), ("iot:ClientId", "t1")],
    );
    assert!(ok(&p, &none()));
    let p = cond_with_vars(
        r#"{"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}"#,
        &[("iot:Connection.Thing.ThingName", "t1"), ("iot:ClientId", "t2")],
    );
    assert!(!ok(&p, &none()));
    let p = cond_with_vars(
        r#"{"NumericLessThan": {"k": "${iot:Connection.Thing.Attributes[max]}"}}"#,
        &[("iot:Connection.Thing.Attributes[max]", "10")],
    );
    assert!(ok(&p, &one("k", "9")));
    assert!(!ok(&p, &one("k", "10")));
}

#[test]
fn explain_reports_missing_keys() {
    let p = cond(
        r#"{"StringEquals": {"iot:LastWillTopic": "x"}, "ForAnyValue:StringEquals": {"iot:ConnectAttributes": "LastWill"}, "StringEqualsIfExists": {"other": "x"}}"#,
    );
    let e = p.explain("iot:Connect", "x", &none());
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.missing_context_keys, ["iot:LastWillTopic", "iot:ConnectAttributes"]);
    // Statements for other actions are not consulted.
    let e = p.explain("iot:Publish", "x", &none());
    assert!(e.missing_context_keys.is_empty());
}

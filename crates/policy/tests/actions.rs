//! Action matching: every known action, wildcards, case-insensitivity,
//! NotAction, and actions outside the known list.

mod common;

use common::{allowed, eval, policy};
use policy::{Decision, KNOWN_ACTIONS};

const ANY: &str = "arn:aws:iot:eu-west-1:123456789012:topic/x";

fn allow(actions: &str) -> policy::CompiledPolicies {
    policy(&format!(r#"{{"Effect": "Allow", "Action": {actions}, "Resource": "*"}}"#), &[])
}

#[test]
fn each_known_action_allows_itself_only() {
    for a in KNOWN_ACTIONS {
        let p = allow(&format!("\"{a}\""));
        for b in KNOWN_ACTIONS {
            assert_eq!(allowed(&p, b, ANY), a == b, "policy {a}, request {b}");
        }
    }
}

#[test]
fn action_names_are_case_insensitive() {
    let p = allow(r#""IOT:publish""#);
    assert!(allowed(&p, "iot:Publish", ANY));
    assert!(allowed(&p, "iot:PUBLISH", ANY));
    assert!(allowed(&p, "Iot:publish", ANY));
    assert!(!allowed(&p, "iot:Subscribe", ANY));
    let p = allow(r#""iot:pub*""#);
    assert!(allowed(&p, "IOT:PUBLISH", ANY));
}

#[test]
fn wildcards() {
    let p = allow(r#""iot:*""#);
    for a in KNOWN_ACTIONS {
        assert_eq!(allowed(&p, a, ANY), a.starts_with("iot:"), "{a}");
    }
    let p = allow(r#""*""#);
    for a in KNOWN_ACTIONS {
        assert!(allowed(&p, a, ANY), "{a}");
    }
    let p = allow(r#""iot:*ThingShadow""#);
    let got: Vec<&str> = KNOWN_ACTIONS.iter().copied().filter(|a| allowed(&p, a, ANY)).collect();
    assert_eq!(got, ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"]);
    let p = allow(r#""iot:Pub*""#);
    assert!(allowed(&p, "iot:Publish", ANY));
    assert!(!allowed(&p, "iot:RetainPublish", ANY));
    let p = allow(r#""iot:?ublish""#);
    assert!(allowed(&p, "iot:Publish", ANY));
    assert!(!allowed(&p, "iot:RetainPublish", ANY));
    let p = allow(r#"["s3:*Object", "thingport:*"]"#);
    assert!(allowed(&p, "s3:GetObject", ANY));
    assert!(allowed(&p, "s3:PutObject", ANY));
    assert!(!allowed(&p, "s3:ListBucket", ANY));
    assert!(allowed(&p, "thingport:GenerateDataKey", ANY));
    assert!(allowed(&p, "thingport:Decrypt", ANY));
    assert!(!allowed(&p, "iot:Connect", ANY));
}

#[test]
fn wildcard_matching_no_known_action_is_accepted() {
    let p = allow(r#"["iot:Nothing*", "iot:Connect"]"#);
    assert!(allowed(&p, "iot:Connect", ANY));
    assert!(!allowed(&p, "iot:Publish", ANY));
    // It still applies to an action outside the known list.
    assert!(allowed(&p, "iot:NothingYet", ANY));
}

#[test]
fn multiple_actions_or() {
    let p = allow(r#"["iot:Publish", "iot:Receive"]"#);
    assert!(allowed(&p, "iot:Publish", ANY));
    assert!(allowed(&p, "iot:Receive", ANY));
    assert!(!allowed(&p, "iot:Subscribe", ANY));
}

#[test]
fn not_action() {
    let p = policy(r#"{"Effect": "Allow", "NotAction": ["iot:Publish", "s3:*"], "Resource": "*"}"#, &[]);
    assert!(!allowed(&p, "iot:Publish", ANY));
    assert!(!allowed(&p, "s3:GetObject", ANY));
    assert!(allowed(&p, "iot:Subscribe", ANY));
    assert!(allowed(&p, "thingport:Decrypt", ANY));
    assert!(allowed(&p, "iot:SomethingNew", ANY));
    // Deny with NotAction: everything except Connect is denied.
    let p = policy(
        r#"{"Effect": "Allow", "Action": "*", "Resource": "*"},
           {"Effect": "Deny", "NotAction": "iot:connect", "Resource": "*"}"#,
        &[],
    );
    assert_eq!(eval(&p, "iot:Connect", ANY), Decision::Allowed);
    assert_eq!(eval(&p, "iot:Publish", ANY), Decision::ExplicitDeny);
}

#[test]
fn unknown_request_actions_use_the_slow_path() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
           {"Effect": "Deny", "Action": "iot:Forbidden*", "Resource": "*"}"#,
        &[],
    );
    assert_eq!(eval(&p, "iot:Whatever", ANY), Decision::Allowed);
    assert_eq!(eval(&p, "IOT:FORBIDDENTHING", ANY), Decision::ExplicitDeny);
    assert_eq!(eval(&p, "s3:Whatever", ANY), Decision::ImplicitDeny);
    assert_eq!(eval(&p, "", ANY), Decision::ImplicitDeny);
}

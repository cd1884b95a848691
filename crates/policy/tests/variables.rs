//! Policy variables: each one substitutes, a missing one never matches,
//! certificate values with wildcards are not substituted, substituted text is
//! literal, escapes, derived `.List` / `.N` forms.

mod common;

use std::collections::HashMap;

use common::{allowed, compile, doc, eval, parse, policy, thing, topic, vars};
use policy::{Decision, NoRequestContext, VarValue};

fn publish_to(var: &str) -> String {
    format!(
        r#"{{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/v/${{{var}}}"}}"#
    )
}

const DN: &[&str] = &[
    "Country",
    "Organization",
    "OrganizationalUnit",
    "DistinguishedNameQualifier",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
];
const SAN: &[&str] = &["RFC822Name", "DNSName", "DirectoryName", "UniformResourceIdentifier", "IPAddress"];

fn all_variables() -> Vec<String> {
    let mut v: Vec<String> = [
        "iot:ClientId",
        "iot:Domain",
        "iot:DomainName",
        "aws:SourceIp",
        "iot:Connection.Thing.ThingName",
        "iot:Connection.Thing.ThingTypeName",
        "iot:Connection.Thing.IsAttached",
        "iot:Connection.Thing.Attributes[color]",
        "iot:Connection.Thing.Attributes[serial_no]",
        "iot:Certificate.SerialNumber",
        "iot:Certificate.Id",
        "iot:Certificate.AvailableKeys",
        "iot:Certificate.Validity.NotBefore",
        "iot:Certificate.Validity.NotAfter",
        "cognito-identity.amazonaws.com:sub",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for side in ["Subject", "Issuer"] {
        for a in DN {
            v.push(format!("iot:Certificate.{side}.{a}"));
        }
        for a in SAN {
            v.push(format!("iot:Certificate.{side}.AlternativeName.{a}"));
        }
    }
    v
}

#[test]
fn every_variable_substitutes_and_missing_never_matches() {
    for var in all_variables() {
        let value = "v-1_x.y";
        let p = policy(&publish_to(&var), &[(&var, value)]);
        assert!(allowed(&p, "iot:Publish", &topic(&format!("v/{value}"))), "{var}");
        assert!(!allowed(&p, "iot:Publish", &topic("v/other")), "{var}");
        // Missing: the statement allows nothing, not even the literal text.
        let p = policy(&publish_to(&var), &[]);
        assert!(!allowed(&p, "iot:Publish", &topic(&format!("v/{value}"))), "{var}");
        assert!(!allowed(&p, "iot:Publish", &topic(&format!("v/${{{var}}}"))), "{var}");
        assert!(!allowed(&p, "iot:Publish", &topic("v/")), "{var}");
        assert_eq!(p.missing_variables(), [var.as_str()]);
    }
}

#[test]
fn variable_names_are_case_insensitive() {
    let p = policy(&publish_to("IOT:connection.thing.thingname"), &[("iot:Connection.Thing.ThingName", "t1")]);
    assert!(allowed(&p, "iot:Publish", &topic("v/t1")));
}

#[test]
fn certificate_values_with_wildcards_are_not_substituted() {
    let var = "iot:Certificate.Subject.CommonName";
    for bad in ["*", "dev*", "a+b", "a/#", "a?", "$aws", &"x".repeat(1025)] {
        let p = policy(&publish_to(var), &[(var, bad)]);
        for t in ["v/dev1", "v/anything", &format!("v/{bad}"), "v/"] {
            assert!(!allowed(&p, "iot:Publish", &topic(t)), "{bad} vs {t}");
        }
    }
    let ok = "x".repeat(1024);
    let p = policy(&publish_to(var), &[(var, &ok)]);
    assert!(allowed(&p, "iot:Publish", &topic(&format!("v/{ok}"))));
}

#[test]
fn substituted_values_are_literal() {
    // A client id of "a*" is not a wildcard once substituted.
    let p = policy(&publish_to("iot:ClientId"), &[("iot:ClientId", "a*")]);
    assert!(allowed(&p, "iot:Publish", &topic("v/a*")));
    assert!(!allowed(&p, "iot:Publish", &topic("v/abc")));
    let p = policy(&publish_to("iot:ClientId"), &[("iot:ClientId", "?")]);
    assert!(allowed(&p, "iot:Publish", &topic("v/?")));
    assert!(!allowed(&p, "iot:Publish", &topic("v/x")));
    // In StringLike condition values too.
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"StringLike": {"iot:ClientId": "${iot:Connection.Thing.ThingName}-*"}}}"#,
        &[("iot:Connection.Thing.ThingName", "t*")],
    );
    let ctx = |c: &str| HashMap::from([("iot:ClientId".to_string(), VarValue::from(c))]);
    assert_eq!(p.evaluate("iot:Connect", "x", &ctx("t*-1")), Decision::Allowed);
    assert_eq!(p.evaluate("iot:Connect", "x", &ctx("tx-1")), Decision::ImplicitDeny);
}

#[test]
fn escapes() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/a${*}b${?}c${$}d/*"}"#,
        &[],
    );
    assert!(allowed(&p, "iot:Publish", &topic("a*b?c$d/x")));
    assert!(!allowed(&p, "iot:Publish", &topic("aXbYc$d/x")));
    assert!(!allowed(&p, "iot:Publish", &topic("a*b?c$")));
    assert!(p.missing_variables().is_empty());
}

#[test]
fn allow_with_a_missing_variable_allows_nothing() {
    // Even the entries without variables are off: the statement is dropped.
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": [
              "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Connection.Thing.ThingName}",
              "arn:aws:iot:eu-west-1:123456789012:topic/public"]},
           {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*"}"#,
        &[],
    );
    assert!(!allowed(&p, "iot:Publish", &topic("public")));
    assert!(allowed(&p, "iot:Subscribe", &topic("public")));
    // NotResource with a missing variable must not become "everything".
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "NotResource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:ClientId}"}"#,
        &[],
    );
    assert!(!allowed(&p, "iot:Publish", &topic("anything")));
}

#[test]
fn deny_with_a_missing_variable_fails_closed() {
    let base = r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}"#;
    // Deny Resource with a missing variable: that pattern matches nothing.
    let p = policy(
        &format!(
            r#"{base}, {{"Effect": "Deny", "Action": "iot:Publish", "Resource": [
                "arn:aws:iot:eu-west-1:123456789012:topic/${{iot:ClientId}}/secret",
                "arn:aws:iot:eu-west-1:123456789012:topic/admin"]}}"#
        ),
        &[],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("x/secret")), Decision::Allowed);
    assert_eq!(eval(&p, "iot:Publish", &topic("admin")), Decision::ExplicitDeny);
    // Deny NotResource with a missing variable: it excludes nothing, so the
    // Deny covers everything ("publish only to your own topic").
    let p = policy(
        &format!(
            r#"{base}, {{"Effect": "Deny", "Action": "iot:Publish", "NotResource":
                "arn:aws:iot:eu-west-1:123456789012:topic/${{iot:Connection.Thing.ThingName}}/*"}}"#
        ),
        &[],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("t1/x")), Decision::ExplicitDeny);
    let p2 = policy(
        &format!(
            r#"{base}, {{"Effect": "Deny", "Action": "iot:Publish", "NotResource":
                "arn:aws:iot:eu-west-1:123456789012:topic/${{iot:Connection.Thing.ThingName}}/*"}}"#
        ),
        &[("iot:Connection.Thing.ThingName", "t1")],
    );
    assert_eq!(eval(&p2, "iot:Publish", &topic("t1/x")), Decision::Allowed);
    assert_eq!(eval(&p2, "iot:Publish", &topic("t2/x")), Decision::ExplicitDeny);
    // Deny with a negated condition on a missing variable: the deny applies.
    let p = policy(
        &format!(
            r#"{base}, {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*",
                "Condition": {{"StringNotEquals": {{"iot:ClientId": "${{iot:Connection.Thing.ThingName}}"}}}}}}"#
        ),
        &[("iot:ClientId", "c1")],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("x")), Decision::ExplicitDeny);
    let p = policy(
        &format!(
            r#"{base}, {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*",
                "Condition": {{"StringNotEquals": {{"iot:ClientId": "${{iot:Connection.Thing.ThingName}}"}}}}}}"#
        ),
        &[("iot:ClientId", "c1"), ("iot:Connection.Thing.ThingName", "c1")],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("x")), Decision::Allowed);
}

#[test]
fn missing_variables_in_conditions_disable_allow() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"StringNotEquals": {"iot:ClientId": "${iot:Connection.Thing.Attributes[blocked]}"}}}"#,
        &[("iot:ClientId", "c1")],
    );
    assert_eq!(eval(&p, "iot:Connect", "x"), Decision::ImplicitDeny);
    let e = p.explain("iot:Connect", "x", &NoRequestContext);
    assert_eq!(e.missing_context_keys, ["iot:Connection.Thing.Attributes[blocked]"]);
    // A value that is invalid once substituted also disables an Allow.
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"NumericNotEquals": {"k": "${iot:Connection.Thing.Attributes[limit]}"}}}"#,
        &[("iot:Connection.Thing.Attributes[limit]", "lots")],
    );
    let ctx = HashMap::from([("k".to_string(), VarValue::from("3"))]);
    assert_eq!(p.evaluate("iot:Connect", "x", &ctx), Decision::ImplicitDeny);
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"NumericNotEquals": {"k": "${iot:Connection.Thing.Attributes[limit]}"}}}"#,
        &[("iot:Connection.Thing.Attributes[limit]", "4")],
    );
    assert_eq!(p.evaluate("iot:Connect", "x", &ctx), Decision::Allowed);
}

#[test]
fn multi_valued_certificate_fields() {
    let orgs = VarValue::Many(vec!["Org A".into(), "OrgB".into(), "OrgC".into()]);
    let mut v: HashMap<String, VarValue> = HashMap::new();
    v.insert("iot:Certificate.Subject.Organization".into(), orgs);
    let d = parse(&doc(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Certificate.Subject.Organization}/*"},
           {"Effect": "Allow", "Action": "iot:Receive", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Certificate.Subject.Organization.2}/*"},
           {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Certificate.Subject.Organization.3}/*"},
           {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"iot:Certificate.Subject.Organization.List": ["Org A", "OrgB", "OrgC", "OrgD"]}}},
           {"Effect": "Allow", "Action": "iot:GetThingShadow", "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"iot:Certificate.Subject.Organization.List": ["Org A", "OrgB"]}}},
           {"Effect": "Allow", "Action": "iot:UpdateThingShadow", "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"iot:Certificate.Subject.Organization.List": "*C"}}}"#,
    ));
    let p = compile(&[&d], &v);
    // The bare name is the first value.
    assert!(allowed(&p, "iot:Publish", &topic("Org A/x")));
    assert!(!allowed(&p, "iot:Publish", &topic("OrgB/x")));
    // `.N` is the N-th (zero-based); beyond the end is missing.
    assert!(allowed(&p, "iot:Receive", &topic("OrgC/x")));
    assert!(!allowed(&p, "iot:Subscribe", &topic("OrgC/x")));
    // `.List` in ForAllValues / ForAnyValue conditions.
    assert!(allowed(&p, "iot:Connect", "x"));
    assert!(!allowed(&p, "iot:GetThingShadow", "x"));
    assert!(allowed(&p, "iot:UpdateThingShadow", "x"));
}

#[test]
fn attributes_and_thing_variables() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:UpdateThingShadow",
            "Resource": "arn:aws:iot:eu-west-1:123456789012:thing/${iot:Connection.Thing.ThingName}",
            "Condition": {"StringEquals": {"iot:Connection.Thing.Attributes[color]": "red",
                                           "iot:Connection.Thing.ThingTypeName": "lamp"},
                          "Bool": {"iot:Connection.Thing.IsAttached": "true"}}}"#,
        &[
            ("iot:Connection.Thing.ThingName", "l1"),
            ("iot:Connection.Thing.Attributes[color]", "red"),
            ("iot:Connection.Thing.ThingTypeName", "lamp"),
            ("iot:Connection.Thing.IsAttached", "true"),
        ],
    );
    assert!(allowed(&p, "iot:UpdateThingShadow", &thing("l1")));
    assert!(!allowed(&p, "iot:UpdateThingShadow", &thing("l2")));
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:UpdateThingShadow", "Resource": "*",
            "Condition": {"StringEquals": {"iot:Connection.Thing.Attributes[color]": "red"}}}"#,
        &[("iot:Connection.Thing.Attributes[color]", "blue")],
    );
    assert!(!allowed(&p, "iot:UpdateThingShadow", &thing("l1")));
}

#[test]
fn vars_helper_sanity() {
    assert_eq!(vars(&[("a", "b")]).get("a"), Some(&VarValue::One("b".into())));
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use policy::{CompiledPolicies, Decision, NoRequestContext, ParseOptions, PolicyDocument, VarValue};

pub const ARN: &str = "arn:aws:iot:eu-west-1:123456789012";

pub fn parse(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text, &ParseOptions::default()).unwrap_or_else(|e| panic!("policy should parse: {e}\n{text}"))
}

/// The error of a document that must not parse, as displayed.
pub fn err(text: &str) -> String {
    match PolicyDocument::parse(text, &ParseOptions::default()) {
        Ok(_) => panic!("policy should not parse:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A 2012-10-17 document with the given statements (JSON array body).
pub fn doc(statements: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#)
}

pub fn vars(kv: &[(&str, &str)]) -> HashMap<String, VarValue> {
    kv.iter().map(|(k, v)| (k.to_string(), VarValue::One(v.to_string()))).collect()
}

pub fn compile(docs: &[&PolicyDocument], vars: &HashMap<String, VarValue>) -> CompiledPolicies {
    let named: Vec<(String, String, &PolicyDocument)> =
        docs.iter().enumerate().map(|(i, d)| (format!("policy{i}"), "1".to_string(), *d)).collect();
    CompiledPolicies::compile(&named, vars)
}

/// Compiles the statements (JSON array body) with `vars`.
pub fn policy(statements: &str, kv: &[(&str, &str)]) -> CompiledPolicies {
    let d = parse(&doc(statements));
    compile(&[&d], &vars(kv))
}

pub fn topic(t: &str) -> String {
    format!("{ARN}:topic/{t}")
}
pub fn topicfilter(t: &str) -> String {
    format!("{ARN}:topicfilter/{t}")
}
pub fn client(c: &str) -> String {
    format!("{ARN}:client/{c}")
}
pub fn thing(t: &str) -> String {
    format!("{ARN}:thing/{t}")
}

pub fn eval(p: &CompiledPolicies, action: &str, resource: &str) -> Decision {
    let d = p.evaluate(action, resource, &NoRequestContext);
    assert_eq!(d, p.explain(action, resource, &NoRequestContext).decision, "evaluate and explain disagree");
    d
}

pub fn allowed(p: &CompiledPolicies, action: &str, resource: &str) -> bool {
    eval(p, action, resource) == Decision::Allowed
}

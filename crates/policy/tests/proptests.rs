//! Property tests: the glob against a reference implementation, evaluation
//! invariants over random policies, and a parser that never panics.

mod common;

use std::collections::HashMap;

use policy::{resource_matches, CompiledPolicies, Decision, ParseOptions, PolicyDocument, VarValue};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------- glob

/// Plain backtracking over chars: the obviously-correct glob.
fn reference(p: &[char], v: &[char]) -> bool {
    match p.split_first() {
        None => v.is_empty(),
        Some(('*', rest)) => (0..=v.len()).any(|i| reference(rest, &v[i..])),
        Some(('?', rest)) => !v.is_empty() && reference(rest, &v[1..]),
        Some((c, rest)) => v.first() == Some(c) && reference(rest, &v[1..]),
    }
}

fn ref_matches(p: &str, v: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let v: Vec<char> = v.chars().collect();
    reference(&p, &v)
}

/// A value built to match `pattern`: each `*` becomes a short run, each `?`
/// one character.
fn matching_value(pattern: String) -> impl Strategy<Value = (String, String)> {
    let n = pattern.chars().filter(|c| *c == '*' || *c == '?').count();
    prop::collection::vec("[ab/+#é]{0,3}", n).prop_map(move |fills| {
        let mut fills = fills.into_iter();
        let mut v = String::new();
        for c in pattern.chars() {
            match c {
                '*' => v.push_str(&fills.next().unwrap()),
                '?' => v.push(fills.next().unwrap().chars().next().unwrap_or('x')),
                c => v.push(c),
            }
        }
        (pattern.clone(), v)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn glob_agrees_with_reference(p in "[ab/*?+#é]{0,10}", v in "[ab/+#é*?]{0,14}") {
        prop_assert_eq!(resource_matches(&p, &v), ref_matches(&p, &v), "pattern {:?} value {:?}", p, v);
    }

    #[test]
    fn glob_matches_generated_values((p, v) in "[ab/*?+#é]{0,10}".prop_flat_map(matching_value)) {
        prop_assert!(ref_matches(&p, &v));
        prop_assert!(resource_matches(&p, &v), "pattern {:?} value {:?}", p, v);
    }
}

// ---------------------------------------------------------------- random policies

const ARN: &str = "arn:aws:iot:eu-west-1:123456789012";

const ACTIONS: &[&str] = &[
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:Connect",
    "iot:*",
    "*",
    "iot:Pub*",
    "iot:?eceive",
    "iot:GetThingShadow",
    "s3:GetObject",
    "thingport:Decrypt",
    "iot:Nothing*",
];

fn resources() -> Vec<String> {
    vec![
        "*".into(),
        format!("{ARN}:topic/a/*"),
        format!("{ARN}:topic/${{iot:ClientId}}/*"),
        format!("{ARN}:topicfilter/a/#"),
        format!("{ARN}:client/${{iot:Connection.Thing.ThingName}}"),
        format!("{ARN}:topic/?/x"),
        format!("{ARN}:thing/${{iot:Certificate.Subject.CommonName}}"),
        "arn:aws:iot:*:*:topic/b*".into(),
        format!("{ARN}:topic/a${{*}}"),
        format!("{ARN}:topic/*/x"),
    ]
}

/// (operator, key, value)
const CONDITIONS: &[(&str, &str, &str)] = &[
    ("StringEquals", "iot:ClientId", "a"),
    ("StringNotEquals", "iot:ClientId", "b"),
    ("StringLike", "iot:ClientId", "${iot:Connection.Thing.ThingName}*"),
    ("ForAnyValue:StringLike", "iot:ConnectAttributes", "Last*"),
    ("ForAllValues:StringEquals", "iot:ConnectAttributes", "CleanSession"),
    ("Null", "iot:LastWillTopic", "true"),
    ("NumericLessThan", "n", "5"),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8"),
    ("NotIpAddress", "aws:SourceIp", "10.1.0.0/16"),
    ("Bool", "iot:Connection.Thing.IsAttached", "true"),
    ("StringLikeIfExists", "iot:LastWillTopic", "${iot:ClientId}/*"),
    ("StringNotEqualsIgnoreCase", "iot:Certificate.Subject.CommonName", "X"),
];

const REQ_ACTIONS: &[&str] = &[
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:Connect",
    "iot:GetThingShadow",
    "s3:GetObject",
    "thingport:Decrypt",
    "iot:Other",
    "IOT:PUBLISH",
];

fn req_resources() -> Vec<String> {
    vec![
        format!("{ARN}:topic/a/x"),
        format!("{ARN}:topic/b"),
        format!("{ARN}:topic/a*"),
        format!("{ARN}:topicfilter/a/#"),
        format!("{ARN}:client/a"),
        format!("{ARN}:client/b"),
        format!("{ARN}:thing/x"),
        format!("{ARN}:topic/?/x"),
        format!("{ARN}:topic/c/x"),
        "arn:aws:iot:us-east-1:1:topic/bz".into(),
        String::new(),
    ]
}

#[derive(Debug, Clone)]
struct St {
    allow: bool,
    not_action: bool,
    actions: Vec<usize>,
    not_resource: bool,
    resources: Vec<usize>,
    conditions: Vec<usize>,
}

fn statement() -> impl Strategy<Value = St> {
    (
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..ACTIONS.len(), 1..3),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..10usize, 1..3),
        prop::collection::vec(0..CONDITIONS.len(), 0..3),
    )
        .prop_map(|(allow, not_action, actions, not_resource, resources, conditions)| St {
            allow,
            not_action,
            actions,
            not_resource,
            resources,
            conditions,
        })
}

fn to_json(sts: &[St]) -> String {
    let res = resources();
    let stmts: Vec<Value> = sts
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("Effect".into(), json!(if s.allow { "Allow" } else { "Deny" }));
            let acts: Vec<&str> = s.actions.iter().map(|&i| ACTIONS[i]).collect();
            o.insert(if s.not_action { "NotAction" } else { "Action" }.into(), json!(acts));
            let rs: Vec<&str> = s.resources.iter().map(|&i| res[i].as_str()).collect();
            o.insert(if s.not_resource { "NotResource" } else { "Resource" }.into(), json!(rs));
            if !s.conditions.is_empty() {
                let mut c = Map::new();
                for &i in &s.conditions {
                    let (op, k, v) = CONDITIONS[i];
                    let e = c.entry(op).or_insert_with(|| Value::Object(Map::new()));
                    e.as_object_mut().unwrap().insert(k.into(), json!(v));
                }
                o.insert("Condition".into(), Value::Object(c));
            }
            Value::Object(o)
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": stmts}).to_string()
}

fn big() -> ParseOptions {
    ParseOptions { max_len_without_whitespace: 1 << 20 }
}

fn var_map() -> impl Strategy<Value = HashMap<String, VarValue>> {
    (
        prop::option::of(prop::sample::select(vec!["a", "b", "a*"])),
        prop::option::of(prop::sample::select(vec!["a", "b"])),
        prop::option::of(prop::sample::select(vec!["x", "*", "X"])),
        prop::option::of(prop::sample::select(vec!["true", "false"])),
    )
        .prop_map(|(c, t, cn, att)| {
            let mut m = HashMap::new();
            let mut put = |k: &str, v: Option<&str>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), VarValue::from(v));
                }
            };
            put("iot:ClientId", c);
            put("iot:Connection.Thing.ThingName", t);
            put("iot:Certificate.Subject.CommonName", cn);
            put("iot:Connection.Thing.IsAttached", att);
            m
        })
}

fn req_ctx() -> impl Strategy<Value = HashMap<String, VarValue>> {
    (
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["LastWill", "CleanSession", "PersistentConnect"]),
            0..3,
        )),
        prop::option::of(prop::sample::select(vec!["a/will", "b/will"])),
        prop::option::of(prop::sample::select(vec!["3", "7", "x"])),
        prop::option::of(prop::sample::select(vec!["10.1.2.3", "10.2.0.1", "192.168.0.1", "bad"])),
    )
        .prop_map(|(attrs, will, n, ip)| {
            let mut m = HashMap::new();
            if let Some(a) = attrs {
                m.insert(
                    "iot:ConnectAttributes".to_string(),
                    VarValue::Many(a.into_iter().map(String::from).collect()),
                );
            }
            if let Some(w) = will {
                m.insert("iot:LastWillTopic".to_string(), VarValue::from(w));
            }
            if let Some(n) = n {
                m.insert("n".to_string(), VarValue::from(n));
            }
            if let Some(ip) = ip {
                m.insert("aws:SourceIp".to_string(), VarValue::from(ip));
            }
            m
        })
}

fn compile_all(docs: &[PolicyDocument], vars: &HashMap<String, VarValue>) -> CompiledPolicies {
    let named: Vec<(String, String, &PolicyDocument)> =
        docs.iter().enumerate().map(|(i, d)| (format!("p{i}"), "1".to_string(), d)).collect();
    CompiledPolicies::compile(&named, vars)
}

fn request() -> impl Strategy<Value = (usize, usize)> {
    (0..REQ_ACTIONS.len(), 0..11usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn evaluation_never_panics_and_explain_agrees(
        sts in prop::collection::vec(statement(), 1..6),
        vars in var_map(),
        ctx in req_ctx(),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        let doc = PolicyDocument::parse(&to_json(&sts), &big()).expect("generated policies are valid");
        let p = compile_all(&[doc], &vars);
        let rr = req_resources();
        for (a, r) in reqs {
            let d = p.evaluate(REQ_ACTIONS[a], &rr[r], &ctx);
            let e = p.explain(REQ_ACTIONS[a], &rr[r], &ctx);
            prop_assert_eq!(d, e.decision);
            prop_assert_eq!(d == Decision::ExplicitDeny, !e.denied_by.is_empty());
            prop_assert_eq!(d == Decision::Allowed, e.denied_by.is_empty() && !e.allowed_by.is_empty());
            prop_assert_eq!(d == Decision::ImplicitDeny, e.policies.is_empty());
        }
    }

    #[test]
    fn allow_only_policies_never_deny_explicitly(
        mut sts in prop::collection::vec(statement(), 1..6),
        vars in var_map(),
        ctx in req_ctx(),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        for s in &mut sts {
            s.allow = true;
        }
        let doc = PolicyDocument::parse(&to_json(&sts), &big()).unwrap();
        let p = compile_all(&[doc], &vars);
        let rr = req_resources();
        for (a, r) in reqs {
            prop_assert_ne!(p.evaluate(REQ_ACTIONS[a], &rr[r], &ctx), Decision::ExplicitDeny);
        }
    }

    #[test]
    fn adding_a_deny_never_allows_more(
        sts in prop::collection::vec(statement(), 1..6),
        mut deny in prop::collection::vec(statement(), 1..3),
        vars in var_map(),
        ctx in req_ctx(),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        for s in &mut deny {
            s.allow = false;
        }
        let base = PolicyDocument::parse(&to_json(&sts), &big()).unwrap();
        let extra = PolicyDocument::parse(&to_json(&deny), &big()).unwrap();
        let before = compile_all(std::slice::from_ref(&base), &vars);
        let after = compile_all(&[base, extra], &vars);
        let rr = req_resources();
        for (a, r) in reqs {
            let b = before.evaluate(REQ_ACTIONS[a], &rr[r], &ctx);
            let x = after.evaluate(REQ_ACTIONS[a], &rr[r], &ctx);
            prop_assert!(x == b || x == Decision::ExplicitDeny, "{:?} became {:?}", b, x);
            if b != Decision::Allowed {
                prop_assert_ne!(x, Decision::Allowed);
            }
        }
    }
}

// ---------------------------------------------------------------- parser robustness

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"Version\"",
    "\"2012-10-17\"",
    "\"2008-10-17\"",
    "\"Statement\"",
    "\"Effect\"",
    "\"Allow\"",
    "\"Deny\"",
    "\"Action\"",
    "\"NotAction\"",
    "\"iot:*\"",
    "\"iot:Publish\"",
    "\"Resource\"",
    "\"NotResource\"",
    "\"*\"",
    "\"Condition\"",
    "\"StringLike\"",
    "\"ForAnyValue:StringEquals\"",
    "\"Null\"",
    "\"IpAddress\"",
    "\"10.0.0.0/8\"",
    "\"${iot:ClientId}\"",
    "\"arn:aws:iot:a:1:topic/${\"",
    "\"arn:aws:iot:eu-west-1:1:topic/${iot:ClientId}/*\"",
    "\"arn:aws:s3:::b/*\"",
    "\"Sid\"",
    "1",
    "-1.5e3",
    "true",
    "null",
    "\"\"",
    "\"é\"",
    "\"\\u0000\"",
    "\"${*}\"",
    "\"${\"",
    "\"}\"",
    "\"arn:\"",
    "\"::::::\"",
];

fn json_value() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "Version",
        "Statement",
        "Effect",
        "Allow",
        "Deny",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Sid",
        "StringEquals",
        "ForAllValues:StringLike",
        "NumericLessThan",
        "DateLessThan",
        "ArnLike",
        "Null",
        "Bool",
        "iot:ClientId",
        "iot:*",
        "*",
        "2012-10-17",
        "arn:aws:iot:r:1:topic/*",
        "${iot:Connection.Thing.ThingName}",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        words.clone().prop_map(|w| json!(w)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((words.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn try_everything(text: &str) {
    if let Ok(doc) = PolicyDocument::parse(text, &ParseOptions::default()) {
        let vars: HashMap<String, VarValue> = HashMap::from([("iot:ClientId".to_string(), VarValue::from("a"))]);
        let p = compile_all(&[doc], &vars);
        for a in REQ_ACTIONS {
            for r in req_resources() {
                let _ = p.evaluate(a, &r, &policy::NoRequestContext);
                let _ = p.explain(a, &r, &policy::NoRequestContext);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,300}") {
        try_everything(&s);
    }

    #[test]
    fn parse_never_panics_on_json_ish_tokens(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..80)) {
        try_everything(&toks.concat());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_json(v in json_value()) {
        try_everything(&v.to_string());
        try_everything(&json!({"Version": "2012-10-17", "Statement": v}).to_string());
        try_everything(&json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": v}]}).to_string());
    }

    #[test]
    fn parse_never_panics_on_mutated_policies(
        sts in prop::collection::vec(statement(), 1..3),
        cuts in prop::collection::vec((0usize..2000, "\\PC{0,3}"), 1..4),
    ) {
        let mut text = to_json(&sts);
        for (at, ins) in cuts {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let end = (at + 2).min(text.len());
            let end = if text.is_char_boundary(end) { end } else { at };
            text.replace_range(at..end, &ins);
        }
        try_everything(&text);
    }
}

#[test]
fn reference_sanity() {
    assert!(ref_matches("a*b?", "axxbc"));
    assert!(!ref_matches("a*b?", "axxb"));
    let _ = common::ARN;
}

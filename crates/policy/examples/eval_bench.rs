//! Throughput of policy evaluation for a realistic fleet policy.
//!
//! Run with `cargo run --release -p policy --example eval_bench`
//! (optionally followed by the number of seconds per measurement).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use policy::{CompiledPolicies, Decision, NoRequestContext, ParseOptions, PolicyDocument, RequestContext, VarValue};

const FLEET: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "connect", "Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Sid": "pubrecv", "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"},
    {"Sid": "subscribe", "Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/#"},
    {"Sid": "shadow", "Effect": "Allow",
     "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
     "Resource": "arn:aws:iot:eu-west-1:123456789012:thing/${iot:Connection.Thing.ThingName}"},
    {"Sid": "noadmin", "Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/admin/*"}
  ]
}"#;

const WITH_CONDITIONS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}",
     "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"},
                   "ForAllValues:StringEquals": {"iot:ConnectAttributes": ["CleanSession", "LastWill", "PersistentConnect"]}}},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*",
     "Condition": {"StringEquals": {"iot:Connection.Thing.ThingTypeName": "lamp"},
                   "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    {"Effect": "Deny", "Action": "iot:*",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/admin/*"}
  ]
}"#;

fn arn(kind: &str, rest: &str) -> String {
    format!("arn:aws:iot:eu-west-1:123456789012:{kind}/{rest}")
}

/// Evaluations per second over `requests`, repeated for about `secs`.
fn measure(p: &CompiledPolicies, requests: &[(&str, String, Decision)], ctx: &dyn RequestContext, secs: f64) -> f64 {
    for (a, r, want) in requests {
        assert_eq!(p.evaluate(a, r, ctx), *want, "{a} {r}");
    }
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            for (a, r, _) in requests {
                black_box(p.evaluate(black_box(a), black_box(r), ctx));
            }
        }
        n += 1000 * requests.len() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let opts = ParseOptions::default();
    let fleet = PolicyDocument::parse(FLEET, &opts).expect("fleet policy");
    let cond = PolicyDocument::parse(WITH_CONDITIONS, &opts).expect("condition policy");
    let mut vars: HashMap<String, VarValue> = HashMap::new();
    vars.insert("iot:Connection.Thing.ThingName".into(), "lamp-0042".into());
    vars.insert("iot:Connection.Thing.ThingTypeName".into(), "lamp".into());
    vars.insert("iot:Connection.Thing.IsAttached".into(), "true".into());
    vars.insert("aws:SourceIp".into(), "10.1.2.3".into());

    use Decision::*;
    let requests: Vec<(&str, String, Decision)> = vec![
        ("iot:Connect", arn("client", "lamp-0042"), Allowed),
        ("iot:Publish", arn("topic", "lamp-0042/telemetry"), Allowed),
        ("iot:Receive", arn("topic", "lamp-0042/cmd/set"), Allowed),
        ("iot:Subscribe", arn("topicfilter", "lamp-0042/#"), Allowed),
        ("iot:UpdateThingShadow", arn("thing", "lamp-0042"), Allowed),
        ("iot:Publish", arn("topic", "lamp-0043/telemetry"), ImplicitDeny),
        ("iot:Subscribe", arn("topicfilter", "#"), ImplicitDeny),
        ("iot:Connect", arn("client", "lamp-0043"), ImplicitDeny),
        ("iot:Publish", arn("topic", "admin/reboot"), ExplicitDeny),
        ("iot:Receive", arn("topic", "admin/keys"), ExplicitDeny),
    ];

    let named = |d| vec![("fleet".to_string(), "1".to_string(), d)];
    let start = Instant::now();
    let mut compiled = None;
    let compiles = 20_000;
    for _ in 0..compiles {
        compiled = Some(CompiledPolicies::compile(&named(&fleet), &vars));
    }
    let compile_us = start.elapsed().as_secs_f64() * 1e6 / compiles as f64;
    let p = compiled.unwrap();

    println!("policy evaluation benchmark ({secs} s per measurement, one core)");
    println!("compile fleet policy for one connection: {compile_us:.2} µs");
    let r = measure(&p, &requests, &NoRequestContext, secs);
    println!(
        "fleet policy, 5 statements, mixed allow / implicit deny / explicit deny: {:>12.0} evaluations/s ({:.1} ns each)",
        r,
        1e9 / r
    );
    let allowed: Vec<_> = requests.iter().filter(|r| r.2 == Allowed).cloned().collect();
    let r = measure(&p, &allowed, &NoRequestContext, secs);
    println!("fleet policy, allowed requests only:                                   {r:>12.0} evaluations/s");
    let denied: Vec<_> = requests.iter().filter(|r| r.2 != Allowed).cloned().collect();
    let r = measure(&p, &denied, &NoRequestContext, secs);
    println!("fleet policy, denied requests only:                                    {r:>12.0} evaluations/s");

    // Ten attached policies (AWS's per-certificate maximum): the fleet policy
    // plus nine unrelated ones.
    let mut docs = vec![fleet.clone()];
    for i in 0..9 {
        let text = format!(
            r#"{{"Version": "2012-10-17", "Statement": [
                {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe", "iot:Receive"],
                  "Resource": ["arn:aws:iot:eu-west-1:123456789012:topic/group{i}/${{iot:Connection.Thing.ThingName}}/*",
                               "arn:aws:iot:eu-west-1:123456789012:topicfilter/group{i}/+/status"]}}]}}"#
        );
        docs.push(PolicyDocument::parse(&text, &opts).unwrap());
    }
    let named10: Vec<_> = docs.iter().enumerate().map(|(i, d)| (format!("p{i}"), "1".to_string(), d)).collect();
    let p10 = CompiledPolicies::compile(&named10, &vars);
    let r = measure(&p10, &requests, &NoRequestContext, secs);
    println!("ten attached policies, same mixed requests:                            {r:>12.0} evaluations/s");

    // Conditions: keys from the connection's variables and from the request.
    let pc = CompiledPolicies::compile(&named(&cond), &vars);
    let creqs: Vec<(&str, String, Decision)> = vec![
        ("iot:Connect", arn("client", "lamp-0042"), Allowed),
        ("iot:Publish", arn("topic", "lamp-0042/telemetry"), Allowed),
        ("iot:Publish", arn("topic", "lamp-0043/telemetry"), ImplicitDeny),
        ("iot:Publish", arn("topic", "admin/reboot"), ExplicitDeny),
    ];
    let r = measure(&pc, &creqs, &NoRequestContext, secs);
    println!("policy with conditions (keys from variables):                          {r:>12.0} evaluations/s");
    let mut ctx: HashMap<String, VarValue> = HashMap::new();
    ctx.insert("iot:ConnectAttributes".into(), VarValue::Many(vec!["CleanSession".into(), "LastWill".into()]));
    let r = measure(&pc, &creqs, &ctx, secs);
    println!("policy with conditions (a HashMap request context, borrowed):         {r:>12.0} evaluations/s");
}

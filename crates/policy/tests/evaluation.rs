//! Whole-policy evaluation: the seed examples, Deny overrides Allow,
//! NotResource, MQTT characters, several policies, explanations.

mod common;

use std::collections::HashMap;

use common::{allowed, client, compile, eval, parse, policy, thing, topic, topicfilter, vars, ARN};
use policy::{CompiledPolicies, Decision, NoRequestContext, StatementRef, VarValue};

#[test]
fn seed_1_iot_button_default_policy() {
    let d = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Action":"iot:Publish","Effect":"Allow","Resource":"arn:aws:iot:eu-west-1:123456789012:topic/iotbutton/G030XXXX"}]}"#,
    );
    let p = compile(&[&d], &vars(&[]));
    assert_eq!(eval(&p, "iot:Publish", &topic("iotbutton/G030XXXX")), Decision::Allowed);
    assert_eq!(eval(&p, "iot:Publish", &topic("iotbutton/G030XXXY")), Decision::ImplicitDeny);
    assert_eq!(eval(&p, "iot:Publish", &topic("iotbutton/G030XXXX/more")), Decision::ImplicitDeny);
    assert_eq!(eval(&p, "iot:Subscribe", &topic("iotbutton/G030XXXX")), Decision::ImplicitDeny);
    assert_eq!(eval(&p, "iot:Connect", &client("G030XXXX")), Decision::ImplicitDeny);
    // Another region or account is another resource.
    assert_eq!(
        eval(&p, "iot:Publish", "arn:aws:iot:us-east-1:123456789012:topic/iotbutton/G030XXXX"),
        Decision::ImplicitDeny
    );
}

#[test]
fn seed_2_certificate_serial_number() {
    let d = parse(
        r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "iot:Publish"
      ],
      "Resource": [
        "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Certificate.Subject.SerialNumber}"
      ]
    }
  ]
}"#,
    );
    let p = compile(&[&d], &vars(&[("iot:Certificate.Subject.SerialNumber", "G030PM0000000001")]));
    assert!(allowed(&p, "iot:Publish", &topic("G030PM0000000001")));
    assert!(!allowed(&p, "iot:Publish", &topic("G030PM0000000002")));
    // A certificate without the attribute gets nothing.
    let p = compile(&[&d], &vars(&[]));
    assert!(!allowed(&p, "iot:Publish", &topic("G030PM0000000001")));
    // A certificate whose serial number is "*" does not get every topic.
    let p = compile(&[&d], &vars(&[("iot:Certificate.Subject.SerialNumber", "*")]));
    assert!(!allowed(&p, "iot:Publish", &topic("G030PM0000000001")));
    assert!(!allowed(&p, "iot:Publish", &topic("*")));
}

const THING_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": "iot:Publish",
     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/devices/${iot:Connection.Thing.ThingName}/*"}
  ]
}"#;

#[test]
fn seed_3_thing_name_publish_and_connect() {
    let d = parse(THING_POLICY);
    let dev1 = compile(&[&d], &vars(&[("iot:Connection.Thing.ThingName", "dev1")]));
    let dev2 = compile(&[&d], &vars(&[("iot:Connection.Thing.ThingName", "dev2")]));
    assert!(allowed(&dev1, "iot:Connect", &client("dev1")));
    assert!(!allowed(&dev1, "iot:Connect", &client("dev2")));
    assert!(allowed(&dev1, "iot:Publish", &topic("devices/dev1/telemetry")));
    assert!(!allowed(&dev1, "iot:Publish", &topic("devices/dev2/telemetry")));
    assert!(allowed(&dev2, "iot:Publish", &topic("devices/dev2/telemetry")));
    assert!(!allowed(&dev2, "iot:Publish", &topic("devices/dev1/telemetry")));
    // Prefix tricks do not work: dev1 is not a prefix of dev10's topics.
    assert!(!allowed(&dev1, "iot:Publish", &topic("devices/dev10/telemetry")));
    // Not attached to a thing: nothing.
    let none = compile(&[&d], &vars(&[]));
    assert!(!allowed(&none, "iot:Connect", &client("dev1")));
    assert!(!allowed(&none, "iot:Publish", &topic("devices/dev1/telemetry")));
    assert_eq!(none.missing_variables(), ["iot:Connection.Thing.ThingName"]);
}

#[test]
fn explicit_deny_overrides_allow() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
           {"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/admin/*"}"#,
        &[],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("admin/reboot")), Decision::ExplicitDeny);
    assert_eq!(eval(&p, "iot:Publish", &topic("user/x")), Decision::Allowed);
    assert_eq!(eval(&p, "iot:Receive", &topic("admin/reboot")), Decision::Allowed);
    // Order does not matter, and a Deny in another policy counts just as well.
    let allow = parse(&common::doc(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#));
    let deny = parse(&common::doc(
        r#"{"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/admin/*"}"#,
    ));
    for docs in [[&deny, &allow], [&allow, &deny]] {
        let p = compile(&docs, &vars(&[]));
        assert_eq!(eval(&p, "iot:Publish", &topic("admin/x")), Decision::ExplicitDeny);
        assert_eq!(eval(&p, "iot:Publish", &topic("other")), Decision::Allowed);
    }
    // A Deny alone still answers ExplicitDeny for what it covers.
    let p = compile(&[&deny], &vars(&[]));
    assert_eq!(eval(&p, "iot:Publish", &topic("admin/x")), Decision::ExplicitDeny);
    assert_eq!(eval(&p, "iot:Publish", &topic("other")), Decision::ImplicitDeny);
}

#[test]
fn implicit_deny_by_default() {
    let p = compile(&[], &vars(&[]));
    assert_eq!(eval(&p, "iot:Connect", &client("c")), Decision::ImplicitDeny);
    let e = p.explain("iot:Connect", &client("c"), &NoRequestContext);
    assert!(e.allowed_by.is_empty() && e.denied_by.is_empty());
}

#[test]
fn not_resource() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "NotResource": [
              "arn:aws:iot:eu-west-1:123456789012:topic/admin/*",
              "arn:aws:iot:eu-west-1:123456789012:topic/$aws/*"]}"#,
        &[],
    );
    assert!(allowed(&p, "iot:Publish", &topic("user/1")));
    assert!(!allowed(&p, "iot:Publish", &topic("admin/1")));
    assert!(!allowed(&p, "iot:Publish", &topic("$aws/things/x/shadow/update")));
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
           {"Effect": "Deny", "Action": "iot:Publish",
            "NotResource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:ClientId}/*"}"#,
        &[("iot:ClientId", "c1")],
    );
    assert_eq!(eval(&p, "iot:Publish", &topic("c1/x")), Decision::Allowed);
    assert_eq!(eval(&p, "iot:Publish", &topic("c2/x")), Decision::ExplicitDeny);
}

#[test]
fn mqtt_wildcards_are_literal_in_resources() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
              "arn:aws:iot:eu-west-1:123456789012:topicfilter/sensors/+/temp",
              "arn:aws:iot:eu-west-1:123456789012:topicfilter/${iot:ClientId}/#"]}"#,
        &[("iot:ClientId", "c1")],
    );
    assert!(allowed(&p, "iot:Subscribe", &topicfilter("sensors/+/temp")));
    assert!(!allowed(&p, "iot:Subscribe", &topicfilter("sensors/a/temp")));
    assert!(!allowed(&p, "iot:Subscribe", &topicfilter("sensors/#")));
    assert!(allowed(&p, "iot:Subscribe", &topicfilter("c1/#")));
    assert!(!allowed(&p, "iot:Subscribe", &topicfilter("c1/a")));
    assert!(!allowed(&p, "iot:Subscribe", &topicfilter("c1/+")));
    assert!(!allowed(&p, "iot:Subscribe", &topicfilter("#")));
}

#[test]
fn question_mark_is_one_character() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish",
            "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/room/?/temp"}"#,
        &[],
    );
    assert!(allowed(&p, "iot:Publish", &topic("room/1/temp")));
    assert!(allowed(&p, "iot:Publish", &topic("room/é/temp")));
    assert!(!allowed(&p, "iot:Publish", &topic("room/12/temp")));
    assert!(!allowed(&p, "iot:Publish", &topic("room//temp")));
}

#[test]
fn resources_are_case_sensitive() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/Room/*"}"#,
        &[],
    );
    assert!(allowed(&p, "iot:Publish", &topic("Room/1")));
    assert!(!allowed(&p, "iot:Publish", &topic("room/1")));
}

#[test]
fn wildcard_region_and_account() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:ClientId}"},
           {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-????-1:123456789012:topic/x"}"#,
        &[("iot:ClientId", "c1")],
    );
    assert!(allowed(&p, "iot:Connect", "arn:aws:iot:us-east-1:111111111111:client/c1"));
    assert!(allowed(&p, "iot:Connect", &client("c1")));
    assert!(!allowed(&p, "iot:Connect", &client("c2")));
    assert!(allowed(&p, "iot:Publish", &topic("x")));
    assert!(allowed(&p, "iot:Publish", "arn:aws:iot:eu-east-1:123456789012:topic/x"));
    assert!(!allowed(&p, "iot:Publish", "arn:aws:iot:eu-north-1:123456789012:topic/x"));
    assert!(!allowed(&p, "iot:Publish", "arn:aws:iot:us-east-1:123456789012:topic/x"));
}

#[test]
fn shadows_objects_and_keys() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow"],
            "Resource": "arn:aws:iot:eu-west-1:123456789012:thing/${iot:Connection.Thing.ThingName}"},
           {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": "arn:aws:s3:::firmware/${iot:Connection.Thing.ThingName}/*"},
           {"Effect": "Allow", "Action": "thingport:GenerateDataKey",
            "Resource": "arn:thingport:keys:local:000000000000:key/fleet"}"#,
        &[("iot:Connection.Thing.ThingName", "t1")],
    );
    assert!(allowed(&p, "iot:GetThingShadow", &thing("t1")));
    assert!(!allowed(&p, "iot:GetThingShadow", &thing("t1/named")));
    assert!(!allowed(&p, "iot:DeleteThingShadow", &thing("t1")));
    assert!(allowed(&p, "s3:PutObject", "arn:aws:s3:::firmware/t1/image.bin"));
    assert!(!allowed(&p, "s3:PutObject", "arn:aws:s3:::firmware/t2/image.bin"));
    assert!(allowed(&p, "thingport:GenerateDataKey", "arn:thingport:keys:local:000000000000:key/fleet"));
    assert!(!allowed(&p, "thingport:Decrypt", "arn:thingport:keys:local:000000000000:key/fleet"));
}

#[test]
fn explanation_names_the_deciding_statements() {
    let allow = parse(&common::doc(
        r#"{"Sid": "pub", "Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
           {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}"#,
    ));
    let deny = parse(&common::doc(
        r#"{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "*"},
           {"Sid": "noadmin", "Effect": "Deny", "Action": "iot:*", "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/admin/*",
            "Condition": {"StringEquals": {"iot:ClientId": "${iot:ClientId}"}}}"#,
    ));
    let p = CompiledPolicies::compile(
        &[("fleet".into(), "3".into(), &allow), ("guard".into(), "7".into(), &deny)],
        &vars(&[("iot:ClientId", "c1")]),
    );
    let e = p.explain("iot:Publish", &topic("admin/x"), &NoRequestContext);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(
        e.allowed_by,
        [StatementRef {
            policy_name: "fleet".into(),
            policy_version: "3".into(),
            statement_index: 0,
            sid: Some("pub".into())
        }]
    );
    assert_eq!(
        e.denied_by,
        [StatementRef {
            policy_name: "guard".into(),
            policy_version: "7".into(),
            statement_index: 1,
            sid: Some("noadmin".into())
        }]
    );
    assert!(e.missing_context_keys.is_empty());
    assert_eq!(e.policies, ["guard"]);
    let e = p.explain("iot:Publish", &topic("user/x"), &NoRequestContext);
    assert_eq!(e.decision, Decision::Allowed);
    assert!(e.denied_by.is_empty());
    assert_eq!(e.policies, ["fleet"]);
    let e = p.explain("iot:Receive", &topic("user/x"), &NoRequestContext);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert!(e.policies.is_empty());
    assert_eq!(Decision::Allowed.as_aws_str(), "ALLOWED");
    assert_eq!(Decision::ExplicitDeny.as_aws_str(), "EXPLICIT_DENY");
    assert_eq!(Decision::ImplicitDeny.as_aws_str(), "IMPLICIT_DENY");
    assert!(Decision::Allowed.is_allowed() && !Decision::ImplicitDeny.is_allowed());
    assert_eq!(p.policies().collect::<Vec<_>>(), [("fleet", "3"), ("guard", "7")]);
}

#[test]
fn request_context_drives_conditions_per_request() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
           {"Effect": "Deny", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"iot:ConnectAttributes": "LastWill"},
                          "StringNotLike": {"iot:LastWillTopic": "${iot:ClientId}/will"}}}"#,
        &[("iot:ClientId", "c1")],
    );
    let ctx = |attrs: &[&str], will: Option<&str>| {
        let mut m = HashMap::new();
        m.insert("iot:ConnectAttributes".to_string(), VarValue::Many(attrs.iter().map(|s| s.to_string()).collect()));
        if let Some(w) = will {
            m.insert("iot:LastWillTopic".to_string(), VarValue::from(w));
        }
        m
    };
    let r = client("c1");
    assert_eq!(p.evaluate("iot:Connect", &r, &ctx(&["CleanSession"], None)), Decision::Allowed);
    assert_eq!(p.evaluate("iot:Connect", &r, &ctx(&["LastWill"], Some("c1/will"))), Decision::Allowed);
    assert_eq!(p.evaluate("iot:Connect", &r, &ctx(&["LastWill"], Some("c2/will"))), Decision::ExplicitDeny);
}

#[test]
fn compiled_policies_are_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<CompiledPolicies>();
    assert_send_sync::<policy::PolicyDocument>();
    let _ = ARN;
}

//! Topic parsing (classic and named shadows) and response topics.

use shadow::{parse_topic, ShadowOp, ShadowTopic};

#[test]
fn classic_request_topics() {
    for (op, expected) in [("get", ShadowOp::Get), ("update", ShadowOp::Update), ("delete", ShadowOp::Delete)] {
        let t = parse_topic(&format!("$aws/things/lamp-1/shadow/{op}")).unwrap();
        assert_eq!(t, ShadowTopic { thing: "lamp-1".into(), shadow: None, op: expected });
        assert_eq!(t.prefix(), "$aws/things/lamp-1/shadow");
        assert_eq!(t.request(), format!("$aws/things/lamp-1/shadow/{op}"));
        assert_eq!(t.display_name(), "lamp-1");
    }
}

#[test]
fn named_request_topics() {
    let t = parse_topic("$aws/things/mySimulatedThing/shadow/name/simShadow1/update").unwrap();
    assert_eq!(t.thing, "mySimulatedThing");
    assert_eq!(t.shadow.as_deref(), Some("simShadow1"));
    assert_eq!(t.op, ShadowOp::Update);
    assert_eq!(t.prefix(), "$aws/things/mySimulatedThing/shadow/name/simShadow1");
    assert_eq!(t.response("update/accepted"), "$aws/things/mySimulatedThing/shadow/name/simShadow1/update/accepted");
    assert_eq!(t.response("update/delta"), "$aws/things/mySimulatedThing/shadow/name/simShadow1/update/delta");
    assert_eq!(t.display_name(), "simShadow1");
    // `$` is allowed in shadow names, and a shadow may be called "name".
    assert!(parse_topic("$aws/things/t/shadow/name/$cfg/get").is_some());
    assert_eq!(parse_topic("$aws/things/t/shadow/name/name/get").unwrap().shadow.as_deref(), Some("name"));
}

#[test]
fn classic_responses() {
    let t = parse_topic("$aws/things/t1/shadow/get").unwrap();
    assert_eq!(t.response("get/rejected"), "$aws/things/t1/shadow/get/rejected");
    assert_eq!(ShadowOp::Delete.as_str(), "delete");
}

#[test]
fn not_request_topics() {
    let bad = [
        "",
        "$aws/things",
        "$aws/things/",
        "$aws/things/t1",
        "$aws/things/t1/shadow",
        "$aws/things/t1/shadow/",
        "$aws/things/t1/shadow/list",
        "$aws/things/t1/shadow/update/accepted",
        "$aws/things/t1/shadow/update/delta",
        "$aws/things/t1/shadow/get/rejected",
        "$aws/things/t1/shadow/name/s1",
        "$aws/things/t1/shadow/name/get",
        "$aws/things/t1/shadow/name/s1/update/documents",
        "$aws/things/t1/shadow/name//update",
        "$aws/things/t1/shadow/named/s1/update",
        "$aws/things//shadow/update",
        "$aws/things/t1/shadows/update",
        "$aws/things/t1/shadow/UPDATE",
        "aws/things/t1/shadow/update",
        "$aws/thing/t1/shadow/update",
        "/$aws/things/t1/shadow/update",
        "$aws/things/t1/shadow/update/",
        "$aws/things/+/shadow/update",
        "$aws/things/#",
        "$aws/things/t 1/shadow/update",
        "$aws/things/$t1/shadow/update",
        "$aws/things/t1/shadow/name/s+1/update",
        "$aws/events/thing/t1/created",
        "t1/shadow/update",
    ];
    for topic in bad {
        assert_eq!(parse_topic(topic), None, "{topic}");
    }
    let long_thing = format!("$aws/things/{}/shadow/update", "x".repeat(129));
    assert_eq!(parse_topic(&long_thing), None);
    let max_thing = format!("$aws/things/{}/shadow/update", "x".repeat(128));
    assert!(parse_topic(&max_thing).is_some());
    let long_shadow = format!("$aws/things/t/shadow/name/{}/update", "s".repeat(65));
    assert_eq!(parse_topic(&long_shadow), None);
    let max_shadow = format!("$aws/things/t/shadow/name/{}/update", "s".repeat(64));
    assert!(parse_topic(&max_shadow).is_some());
}

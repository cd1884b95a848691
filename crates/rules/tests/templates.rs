//! Substitution templates.

mod common;

use common::*;
use rules::Template;

fn render(t: &str, topic: &str, payload: &str) -> String {
    Template::parse(t).unwrap_or_else(|e| panic!("{t}: {e}")).render(&input(topic, payload.as_bytes()), &TestEnv)
}

#[test]
fn documented_example() {
    let payload = r#"{ "deviceid": "iot123", "temp": 54.98, "humidity": 32.43,
        "coords": { "latitude": 47.615694, "longitude": -122.3359976 } }"#;
    assert_eq!(render("${topic()}/republish", "my/iot/topic", payload), "my/iot/topic/republish");
    assert_eq!(render("${parse_time(\"yyyy\", timestamp(), \"UTC\")}", "A/B", payload), "2016");
}

#[test]
fn seed_templates() {
    assert_eq!(render("${topic()}", "a/b/c", "not json"), "a/b/c");
    assert_eq!(render("${timestamp()}", "a", ""), TS.to_string());
    assert_eq!(
        render("archive/${topic(2)}/${timestamp()}.json", "dev/thing-7/t", "{}"),
        format!("archive/thing-7/{TS}.json")
    );
}

#[test]
fn payload_values_and_rendering() {
    let p = r#"{"device_id": "d-1", "n": 2.5, "ok": true, "arr": [1, "x"], "obj": {"a": null}, "nul": null}"#;
    assert_eq!(render("device/${device_id}", "t", p), "device/d-1");
    assert_eq!(
        render("${n * 2}|${ok}|${arr}|${obj}|${nul}|${missing}|", "t", p),
        r#"5|true|[1,"x"]|{"a":null}|null||"#
    );
    assert_eq!(render("${clientid()}-${newuuid()}", "t", p), "client-1-123a4567-b89c-12d3-e456-789012345000");
    assert_eq!(render("${get({'a': '}'}, 'a')}${'}'}", "t", p), "}}");
    assert_eq!(render("cost: $5 and ${'$'}{x}", "t", p), "cost: $5 and ${x}");
    assert_eq!(render("no substitutions", "t", p), "no substitutions");
    assert_eq!(render("", "t", p), "");
    // Binary payloads: keys are Undefined, functions work.
    assert_eq!(render("${device_id}/${topic(1)}", "t/u", "\u{1}\u{2}"), "/t");
}

#[test]
fn template_structure() {
    let t = Template::parse("a${topic()}b${x}c").unwrap();
    assert!(!t.is_literal());
    assert_eq!(t.expressions().count(), 2);
    assert!(Template::parse("plain $ text }").unwrap().is_literal());
}

#[test]
fn template_errors() {
    let e = Template::parse("a/${}").unwrap_err();
    assert_eq!((e.position, e.column), (4, 5));
    assert_eq!(e.message, "expected an expression, found '}'");
    let e = Template::parse("${topic()").unwrap_err();
    assert_eq!(e.message, "expected '}' closing the substitution, found end of input");
    let e = Template::parse("x ${nosuch(1)} y").unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 5: unknown function 'nosuch'");
    let e = Template::parse("${topic() topic()}").unwrap_err();
    assert_eq!(e.position, 10);
    let e = Template::parse("${'abc}").unwrap_err();
    assert_eq!(e.message, "unterminated string literal");
}

//! Examples from the AWS IoT SQL reference: SELECT, WHERE, FROM, literals,
//! CASE, JSON extensions, nested object queries, binary payloads and the
//! data-type conversions.

mod common;

use common::*;
use rules::{Output, Rule};
use serde_json::json;

const COLOR: &str = r#"{"color":"red", "temperature":50}"#;

#[test]
fn select_clause_examples() {
    assert_eq!(json("SELECT * FROM 'topic/subtopic'", COLOR), json!({"color":"red", "temperature":50}));
    assert_eq!(json("SELECT color FROM 'topic/subtopic'", COLOR), json!({"color":"red"}));
    assert_eq!(json("SELECT color AS my_color FROM 'topic/subtopic'", COLOR), json!({"my_color":"red"}));
    assert_eq!(
        json("SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'", COLOR),
        json!({"my_color":"red","fahrenheit":50})
    );
    assert_eq!(
        json("SELECT *, 15 as speed FROM 'topic/subtopic'", COLOR),
        json!({"color":"red", "temperature":50, "speed":15})
    );
    assert_eq!(json("SELECT VALUE color FROM 'topic/subtopic'", COLOR), json!("red"));
    assert_eq!(
        json(
            "SELECT color.red as red_value FROM 'topic/subtopic'",
            r#"{"color":{"red":255,"green":0,"blue":0}, "temperature":50}"#
        ),
        json!({"red_value":255})
    );
    assert_eq!(
        json("SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color FROM 'topic/subtopic'", COLOR),
        json!({"celsius":10,"my_color":"RED"})
    );
}

#[test]
fn select_value_outputs() {
    let out = run("SELECT VALUE color FROM 'topic/subtopic'", COLOR).unwrap();
    assert_eq!(out.to_bytes(), br#""red""#);
    // SELECT VALUE of Undefined serializes to the empty string.
    assert_eq!(run("SELECT VALUE nothing FROM '#'", COLOR), Some(Output::Bytes(vec![])));
    assert_eq!(json("SELECT VALUE [color, temperature] FROM '#'", COLOR), json!(["red", 50]));
}

#[test]
fn where_clause_examples() {
    let payload = r#"{"color":"red", "temperature":40}"#;
    assert_eq!(
        run("SELECT color AS my_color FROM 'topic/subtopic' WHERE temperature > 50 AND color <> 'red'", payload),
        None
    );
    assert_eq!(
        json("SELECT color AS my_color FROM 'topic/subtopic' WHERE temperature > 30 AND color = 'red'", payload),
        json!({"my_color": "red"})
    );
    // WHERE must be Boolean true: Undefined, Null, strings and numbers do not match.
    for cond in ["missing > 1", "null", "'true'", "1", "temperature", "missing = missing"] {
        assert_eq!(run(&format!("SELECT * FROM '#' WHERE {cond}"), payload), None, "{cond}");
    }
    // WHERE cannot see SELECT aliases.
    assert_eq!(run("SELECT temperature AS t FROM '#' WHERE t = 40", payload), None);
}

#[test]
fn seed_rule_color_filter() {
    let rule = Rule::parse("SELECT * FROM 'things/thing-2/color' WHERE color = 'red'").unwrap();
    assert_eq!(rule.topic_filter(), "things/thing-2/color");
    assert!(rule.matches_topic("things/thing-2/color"));
    assert!(!rule.matches_topic("things/thing-1/color"));
    let red = br#"{"color":"red","brightness":3}"#;
    let out = rule.evaluate(&input("things/thing-2/color", red), &TestEnv).unwrap();
    assert_eq!(out, Output::Json(json!({"color":"red","brightness":3})));
    let blue = br#"{"color":"blue"}"#;
    assert_eq!(rule.evaluate(&input("things/thing-2/color", blue), &TestEnv), None);
    assert_eq!(rule.evaluate(&input("things/thing-2/color", b"not json"), &TestEnv), None);
}

#[test]
fn seed_rule_everything() {
    let rule = Rule::parse("SELECT * FROM '#'").unwrap();
    assert!(rule.matches_topic("a"));
    assert!(rule.matches_topic("a/b/c"));
    assert!(!rule.matches_topic("$aws/things/x/shadow/update"));
    let out = rule.evaluate(&input("a/b", br#"{"x": [1, 2.5, null]}"#), &TestEnv).unwrap();
    assert_eq!(out, Output::Json(json!({"x": [1, 2.5, null]})));
    let raw = [0u8, 159, 146, 150, 255];
    let out = rule.evaluate(&input("a/b", &raw), &TestEnv).unwrap();
    assert_eq!(out, Output::Bytes(raw.to_vec()));
    assert_eq!(out.to_bytes(), raw);
}

#[test]
fn topic_filters() {
    let rule = Rule::parse("SELECT * FROM 'a/+/c'").unwrap();
    assert!(rule.matches_topic("a/b/c"));
    assert!(rule.matches_topic("a//c"));
    assert!(!rule.matches_topic("a/b/c/d"));
    let rule = Rule::parse("SELECT * FROM 'sport/#'").unwrap();
    assert!(rule.matches_topic("sport"));
    assert!(rule.matches_topic("sport/tennis/player1"));
    let rule = Rule::parse("SELECT * FROM '$aws/things/+/shadow/update/accepted'").unwrap();
    assert!(rule.matches_topic("$aws/things/lamp/shadow/update/accepted"));
}

#[test]
fn literals() {
    assert_eq!(
        json(
            "SELECT {'latitude': get(lat_long, 0),'longitude':get(lat_long, 1)} as lat_long FROM 'topic/subtopic'",
            r#"{"lat_long": [47.606,-122.332]}"#
        ),
        json!({"lat_long":{"latitude":47.606,"longitude":-122.332}})
    );
    assert_eq!(
        json("SELECT [lat,long] as lat_long FROM 'topic/subtopic'", r#"{"lat": 47.606, "long": -122.332}"#),
        json!({"lat_long": [47.606,-122.332]})
    );
    assert_eq!(json("SELECT NULL AS n FROM 'topic/subtopic'", "{}"), json!({"n": null}));
    check("{\"a\": [1, {\"b\": true}], 'c': 'd'}", json!({"a": [1, {"b": true}], "c": "d"}));
    check("1.5e3", json!(1500));
    check("-2.5", json!(-2.5));
    check("'it''s'", json!("it's"));
    check("\"double\"", json!("double"));
}

#[test]
fn case_statements() {
    let sql = "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' THEN 'stop' \
               ELSE 'you are not at a stop light' END as instructions FROM 'topic/subtopic'";
    assert_eq!(json(sql, r#"{"color":"yellow"}"#), json!({"instructions":"caution"}));
    assert_eq!(json(sql, r#"{"color":"blue"}"#), json!({"instructions":"you are not at a stop light"}));
    // Undefined subject: Undefined result (the key is left out).
    assert_eq!(json(sql, r#"{}"#), json!({}));
    // No match and no ELSE: Undefined.
    check_undefined("CASE 1 WHEN 2 THEN 'x' END");
    // First match wins; numbers compare across Int and Decimal.
    check("CASE 1 WHEN 1.0 THEN 'a' WHEN 1 THEN 'b' END", json!("a"));
    // Searched CASE.
    assert_eq!(
        json(
            "SELECT CASE WHEN temperature > 60 THEN 'hot' WHEN temperature > 40 THEN 'warm' ELSE 'cold' END AS t FROM '#'",
            COLOR
        ),
        json!({"t": "warm"})
    );
}

#[test]
fn json_extensions() {
    let payload = r#"{ "foo": { "bar": "RED", "bar1": "GREEN", "bar2": "BLUE" } }"#;
    assert_eq!(json("SELECT foo.bar AS bar FROM 'topic/subtopic'", payload), json!({"bar": "RED"}));
    // A dotted alias nests the value.
    assert_eq!(json("SELECT foo.bar AS bar.baz FROM 'topic/subtopic'", payload), json!({"bar": {"baz": "RED"}}));
    let payload = r#"{ "mydata": { "item2": { "0": { "my-key": "myValue" } } } }"#;
    assert!(run(r#"SELECT * from 'iot/rules' WHERE get(get(get(mydata,"item2"),"0"),"my-key") = "myValue""#, payload)
        .is_some());
    // Back-quoted keys and string indexes reach the same value.
    assert!(run("SELECT * FROM '#' WHERE mydata.item2.`0`.`my-key` = 'myValue'", payload).is_some());
    assert!(run("SELECT * FROM '#' WHERE mydata['item2']['0']['my-key'] = 'myValue'", payload).is_some());
    let device = r#"{ "deviceid" : "iot123", "temp" : 54.98, "humidity" : 32.43, "coords" : { "latitude" : 47.615694, "longitude" : -122.3359976 } }"#;
    assert_eq!(
        json("SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'", device),
        json!({ "temp": 54.98, "hashed_id": "e37f81fb397e595c4aeb5645b8cbbbd1" })
    );
    // path.* merges an object's keys.
    assert_eq!(
        json("SELECT coords.*, temp FROM '#'", device),
        json!({"latitude": 47.615694, "longitude": -122.3359976, "temp": 54.98})
    );
}

#[test]
fn nested_object_queries() {
    let payload = r#"{ "e": [
        { "n": "temperature", "u": "Cel", "t": 1234, "v": 22.5 },
        { "n": "light", "u": "lm", "t": 1235, "v": 135 },
        { "n": "acidity", "u": "pH", "t": 1235, "v": 7 } ] }"#;
    assert_eq!(
        json("SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'", payload),
        json!({"sensors": ["temperature", "light", "acidity"]})
    );
    assert_eq!(
        json("SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'", payload),
        json!({"temperature": [{"v": 22.5}]})
    );
    assert_eq!(
        json("SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'topic'", payload),
        json!({"temperature": 22.5})
    );
    // Nested queries see the element, and functions still see the message.
    assert_eq!(
        json("SELECT (SELECT VALUE concat(n, '@', topic(1)) FROM e WHERE v > 10) AS s FROM '#'", payload),
        json!({"s": ["temperature@topic", "light@topic"]})
    );
    // Over a computed array.
    check("(SELECT VALUE x * 2 FROM [{'x': 1}, {'x': 2}])", json!([2, 4]));
    // Not an array or object: Undefined.
    assert_eq!(json("SELECT (SELECT VALUE n FROM nothing) AS s FROM '#'", payload), json!({}));
}

#[test]
fn transform_examples() {
    let payload = r#"{ "attributes": { "data1": 1, "data2": 2 }, "values": [ { "a": 3 }, { "b": 4 }, { "c": 5 } ] }"#;
    assert_eq!(
        json(r#"select value transform("enrichArray", attributes, values) from 'A/B'"#, payload),
        json!([{"a": 3, "data1": 1, "data2": 2}, {"b": 4, "data1": 1, "data2": 2}, {"c": 5, "data1": 1, "data2": 2}])
    );
    assert_eq!(
        json(r#"select value transform("enrichArray", {"key": attributes.data1}, values) from 'A/B'"#, payload),
        json!([{"a": 3, "key": 1}, {"b": 4, "key": 1}, {"c": 5, "key": 1}])
    );
    let payload = r#"{ "data1": "example", "data2": { "a": "first attribute", "b": "second attribute",
        "c": [ { "x": { "someInt": 5, "someString": "hello" }, "y": true },
               { "x": { "someInt": 10, "someString": "world" }, "y": false } ] } }"#;
    assert_eq!(
        json(
            "select value transform('enrichArray', (select a, b from data2), (select value c from data2)) from 'A/B'",
            payload
        ),
        json!([
            { "x": { "someInt": 5, "someString": "hello" }, "y": true, "a": "first attribute", "b": "second attribute" },
            { "x": { "someInt": 10, "someString": "world" }, "y": false, "a": "first attribute", "b": "second attribute" }
        ])
    );
    check_undefined("transform('other', {}, [])");
}

#[test]
fn binary_payloads() {
    let raw: &[u8] = &[0xde, 0xad, 0xbe, 0xef, 0x00];
    let out = run_on("SELECT * FROM 'topic/subtopic'", "topic/subtopic", raw).unwrap();
    assert_eq!(out, Output::Bytes(raw.to_vec()));
    let out =
        run_on("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'topic/subtopic'", "topic/subtopic", raw)
            .unwrap();
    assert_eq!(out, Output::Json(json!({"data": "3q2+7wA=", "ts": TS})));
    // A binary payload has no keys: a WHERE on one does not match.
    assert_eq!(run_on("SELECT * FROM 'topic/subtopic' WHERE device_type = 'thermostat'", "topic/subtopic", raw), None);
    // WHERE on functions only works.
    let sql = format!("SELECT * FROM 'topic/subtopic' WHERE timestamp() % 12 = {}", TS % 12);
    assert_eq!(run_on(&sql, "topic/subtopic", raw), Some(Output::Bytes(raw.to_vec())));
    // SELECT *, … on a binary payload: * contributes nothing.
    let out = run_on("SELECT *, timestamp() AS timestamp FROM 'topic/subtopic'", "topic/subtopic", raw).unwrap();
    assert_eq!(out, Output::Json(json!({"timestamp": TS})));
    // encode(*) of a JSON payload encodes its exact bytes.
    let out = run_on("SELECT encode(*, 'base64') AS data FROM '#'", "a", br#"{"a": 1}"#).unwrap();
    assert_eq!(out, Output::Json(json!({"data": "eyJhIjogMX0="})));
}

#[test]
fn where_on_non_json_payload_example() {
    // From the WHERE page: payload `80`.
    let sql = "SELECT decode(encode(*, 'base64'), 'base64') AS value FROM 'topic/subtopic' \
               WHERE decode(encode(*, 'base64'), 'base64') > 50";
    assert_eq!(run_on(sql, "topic/subtopic", b"80"), Some(Output::Json(json!({"value": 80}))));
    assert_eq!(run_on(sql, "topic/subtopic", b"20"), None);
    // SELECT * on a JSON payload that is not an object passes the bytes on.
    assert_eq!(run_on("SELECT * FROM '#'", "a", b"80"), Some(Output::Bytes(b"80".to_vec())));
}

#[test]
fn undefined_and_null() {
    // Undefined keys are left out of the output; Null is kept.
    assert_eq!(json("SELECT foo, bar FROM '#'", r#"{"foo": null}"#), json!({"foo": null}));
    assert_eq!(json("SELECT [foo, bar] AS a FROM '#'", r#"{"foo": 1}"#), json!({"a": [1]}));
    check("missing IS UNDEFINED", json!(true));
    check("missing IS NOT UNDEFINED", json!(false));
    check("null IS NULL", json!(true));
    check("missing IS NULL", json!(false));
    check("1 IS NOT NULL", json!(true));
    assert_eq!(eval_on("foo IS NULL", r#"{"foo": null}"#), Some(json!(true)));
}

#[test]
fn unaliased_item_names() {
    let p = r#"{"a": {"b": {"c": 1}}, "arr": [5, 6]}"#;
    assert_eq!(json("SELECT a.b.c FROM '#'", p), json!({"c": 1}));
    assert_eq!(json("SELECT arr[1] FROM '#'", p), json!({"arr": 6}));
    assert_eq!(json("SELECT upper('x') FROM '#'", p), json!({"upper": "X"}));
    assert_eq!(json("SELECT 1 + 1, 'x' FROM '#'", p), json!({"_1": 2, "_2": "x"}));
    assert_eq!(json("SELECT topic(1) FROM '#'", p), json!({"topic": "topic"}));
}

#[test]
fn value_keyword_versus_value_key() {
    let p = r#"{"value": 7, "x": 1}"#;
    assert_eq!(json("SELECT value FROM '#'", p), json!({"value": 7}));
    assert_eq!(json("SELECT value AS v FROM '#'", p), json!({"v": 7}));
    assert_eq!(json("SELECT value, x FROM '#'", p), json!({"value": 7, "x": 1}));
    assert_eq!(json("SELECT VALUE value FROM '#'", p), json!(7));
    assert_eq!(json("SELECT VALUE x FROM '#'", p), json!(1));
    assert_eq!(json("SELECT value * 2 AS d FROM '#'", p), json!({"d": 14}));
    assert_eq!(json("SELECT VALUE * FROM '#'", p), json!({"value": 7, "x": 1}));
}

#[test]
fn data_type_conversions() {
    // To decimal: strings matching ^-?\d+(\.\d+)?((?i)E-?\d+)?$ convert.
    check("abs('-5.123')", json!(5.123));
    check("'0' + 0", json!("00"));
    check("'10' - 4", json!(6));
    check("'5E-1' * 2", json!(1));
    check_undefined("'1e+5' - 1");
    check_undefined("' 5' - 1");
    check_undefined("true - 1");
    check_undefined("[1] - 1");
    // V2: whole decimals are Ints.
    check("10.0", json!(10));
    assert_eq!(json("SELECT * FROM '#'", r#"{"a": 10.0, "b": 10.5}"#), json!({"a": 10, "b": 10.5}));
    // To boolean: "true"/"false" strings in any case.
    check("NOT 'TRUE'", json!(false));
    check("'false' OR 'True'", json!(true));
    check_undefined("NOT 1");
    check_undefined("NOT null");
    // To string.
    check("concat(1, 2.5, true, {'k': null})", json!(r#"12.5true{"k":null}"#));
    check("upper([1, 'a', 2.50])", json!(r#"[1,"A",2.5]"#));
    check_undefined("concat('a', null)");
    check("cast(1e-7 AS String)", json!("1e-7"));
}

#[test]
fn rules_and_templates_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Rule>();
    assert_send_sync::<rules::Template>();
    assert_send_sync::<rules::RuleError>();
}

#[test]
fn printing_shows_grouping() {
    let rule = Rule::parse("select a+b*2 > 3 and not x is null as y, * from 'a/#' where c in (1, 2)").unwrap();
    assert_eq!(
        rule.to_string(),
        "SELECT (((a + (b * 2)) > 3) AND (NOT (x IS NULL))) AS y, * FROM 'a/#' WHERE (c IN [1, 2])"
    );
    assert_eq!(Rule::parse(&rule.to_string()).unwrap(), rule);
}

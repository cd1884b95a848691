//! Each function's examples from the AWS IoT SQL "Functions" page, plus the
//! argument-type tables.

mod common;

use common::*;
use serde_json::json;

#[test]
fn math_examples() {
    check("abs(-5)", json!(5));
    check("abs(-5.5)", json!(5.5));
    check_undefined("abs(true)");
    check_undefined("abs('x')");
    check_undefined("abs(null)");
    check("acos(0)", json!(std::f64::consts::FRAC_PI_2));
    check("asin(0)", json!(0));
    check("atan(0)", json!(0));
    check("atan2(1, 0)", json!(std::f64::consts::FRAC_PI_2));
    check_undefined("acos(2)");
    check("bitand(13, 5)", json!(5));
    check("bitor(8, 5)", json!(13));
    check("bitxor(13, 5)", json!(8));
    check("bitand(13.9, '5')", json!(5));
    check("bitnot(13)", json!(-14));
    check("ceil(1.2)", json!(2));
    check("ceil(-1.2)", json!(-1));
    check("ceil('1.2')", json!(2));
    check("floor(1.2)", json!(1));
    check("floor(-1.2)", json!(-2));
    check_undefined("floor([1,2,3])");
    check("chr(65)", json!("A"));
    check("chr(49)", json!("1"));
    check("chr('65.7')", json!("A"));
    check_undefined("chr(200)");
    check("cos(0)", json!(1));
    check("cosh(2.3)", json!(5.037220649268761));
    check("exp(0)", json!(1));
    check("ln(exp(1))", json!(1));
    check("log(100)", json!(2));
    check_undefined("ln(0)");
    check("mod(8, 3)", json!(2));
    check("remainder(8, 3)", json!(2));
    check("8 % 3", json!(2));
    check("-8 % 3", json!(-2));
    check("mod(8.5, 3)", json!(2.5));
    check("mod('8', 3)", json!(2));
    check_undefined("mod(8, 0)");
    check("nanvl(8, 3)", json!(8));
    check("nanvl(null, 3)", json!(3));
    check("nanvl(missing, 3)", json!(3));
    check("power(2, 5)", json!(32));
    check("power('2', 0.5)", json!(std::f64::consts::SQRT_2));
    check("round(1.2)", json!(1));
    check("round(1.5)", json!(2));
    check("round(1.7)", json!(2));
    check("round(-1.1)", json!(-1));
    check("round(-1.5)", json!(-2));
    check("sign(-7)", json!(-1));
    check("sign(0)", json!(0));
    check("sign(13)", json!(1));
    check("sign('-0.5')", json!(-1));
    check("sin(0)", json!(0));
    check("sinh(2.3)", json!(4.936961805545957));
    check("sqrt(9)", json!(3));
    check_undefined("sqrt(-1)");
    check("tan(3)", json!(-0.1425465430742778));
    check("tanh(2.3)", json!(0.9800963962661914));
    check("trunc(2.3, 0)", json!(2));
    check("trunc(2.3123, 2)", json!(2.31));
    check("trunc(2.888, 2)", json!(2.88));
    check("trunc(2.00, 5)", json!(2));
    check("trunc(2.3, 1)", json!(2.3));
    check("trunc(-2.75, 1)", json!(-2.7));
}

#[test]
fn string_examples() {
    check_undefined("concat()");
    check("concat(1)", json!("1"));
    check("concat([1, 2, 3], 4)", json!([1, 2, 3, 4]));
    check("concat([1, 2, 3], \"hello\")", json!([1, 2, 3, "hello"]));
    check("concat(\"con\", \"cat\")", json!("concat"));
    check("concat(1, \"hello\")", json!("1hello"));
    check("concat(\"he\",\"is\",\"man\")", json!("heisman"));
    check("concat([1, 2, 3], \"hello\", [4, 5, 6])", json!([1, 2, 3, "hello", 4, 5, 6]));
    check("endswith(\"cat\",\"at\")", json!(true));
    check("endswith(123, 3)", json!(true));
    check_undefined("endswith(null, 'a')");
    check("startswith(\"ranger\",\"ran\")", json!(true));
    check_undefined("startswith(missing, 'a')");
    check("indexof(\"abcd\", \"bc\")", json!(1));
    check("indexof(\"abcd\", \"x\")", json!(-1));
    check("length(\"hi\")", json!(2));
    check("length(false)", json!(5));
    check("length('héllo')", json!(5));
    check("numbytes(\"hi\")", json!(2));
    check("numbytes(\"€\")", json!(3));
    check("lower(\"HELLO\")", json!("hello"));
    check("lower([\"HELLO\"])", json!("[\"hello\"]"));
    check("upper(\"hello\")", json!("HELLO"));
    check("upper([\"hello\"])", json!("[\"HELLO\"]"));
    check("lpad(\"hello\", 2)", json!("  hello"));
    check("lpad(1, 3)", json!("   1"));
    check("rpad(\"hello\", 2)", json!("hello  "));
    check("rpad(1, 3)", json!("1   "));
    check("length(lpad('', 5000))", json!(1000));
    check("lpad('a', -3)", json!("a"));
    check_undefined("lpad('a', 'x')");
    check("Ltrim(\" h i \")", json!("h i "));
    check("rtrim(\" h i \")", json!(" h i"));
    check("Trim(\" hi \")", json!("hi"));
    check("trim('\t x \n')", json!("x"));
    check_undefined("trim(null)");
    check("replace(\"abcd\", \"bc\", \"x\")", json!("axd"));
    check("replace(\"abcdabcd\", \"b\", \"x\")", json!("axcdaxcd"));
    check("substring(\"012345\", 0)", json!("012345"));
    check("substring(\"012345\", 2)", json!("2345"));
    check("substring(\"012345\", 2.745)", json!("2345"));
    check("substring(123, 2)", json!("3"));
    check("substring(\"012345\", -1)", json!("012345"));
    check("substring(true, 1.2)", json!("rue"));
    check("substring(false, -2.411E247)", json!("false"));
    check("substring(\"012345\", 1, 3)", json!("12"));
    check("substring(\"012345\", -50, 50)", json!("012345"));
    check("substring(\"012345\", 3, 1)", json!(""));
    check("substring('héllo', 1, 2)", json!("é"));
}

#[test]
fn regexp_examples() {
    check("regexp_matches(\"aaaa\", \"a{2,}\")", json!(true));
    check("regexp_matches(\"aaaa\", \"b\")", json!(false));
    check("regexp_matches(1234, '^\\d+$')", json!(true));
    check("regexp_replace(\"abcd\", \"bc\", \"x\")", json!("axd"));
    check("regexp_replace(\"abcd\", \"b(.*)d\", \"$1\")", json!("ac"));
    check("regexp_replace('a-b-c', '-', '\\$')", json!("a$b$c"));
    check("regexp_substr(\"hihihello\", \"hi\")", json!("hi"));
    check("regexp_substr(\"hihihello\", \"(hi)*\")", json!("hihi"));
    check_undefined("regexp_substr('abc', 'x')");
    check_undefined("regexp_matches(null, 'a')");
    // A computed, invalid pattern is Undefined at run time.
    assert_eq!(eval_on("regexp_matches('a', p)", r#"{"p": "("}"#), None);
    assert_eq!(eval_on("regexp_matches('abc', p)", r#"{"p": "b"}"#), Some(json!(true)));
}

#[test]
fn type_functions() {
    check("isNull(5)", json!(false));
    check("isNull(Null)", json!(true));
    check("isNull(missing)", json!(false));
    check("isUndefined(5)", json!(false));
    check("isUndefined(floor([1,2,3]))", json!(true));
    check("isnumber(1.5)", json!(true));
    check("isnumber('1')", json!(false));
    check("isstring('1')", json!(true));
    check("isboolean(false)", json!(true));
    check("isobject({})", json!(true));
    check("isarray([])", json!(true));
    check("isarray(missing)", json!(false));
}

#[test]
fn get_examples() {
    check("get([\"a\", \"b\", \"c\"], 1)", json!("b"));
    check("get({\"a\":\"b\"}, \"a\")", json!("b"));
    check("get(\"abc\", 1)", json!("b"));
    check("get(['a', 'b'], '1')", json!("b"));
    check_undefined("get(['a'], 1)");
    check_undefined("get(['a'], -1)");
    check_undefined("get({'1': 'x'}, 1)");
    check_undefined("get(5, 0)");
}

#[test]
fn cast_examples() {
    check("cast(true as Int)", json!(1));
    check("cast(false as Integer)", json!(0));
    check("cast(2.7 as Int)", json!(2));
    check("cast(-2.7 as Int)", json!(-3));
    check("cast('5E-12' AS Decimal)", json!(5e-12));
    check("cast(10.0 AS Decimal)", json!(10));
    check("cast(true AS Double)", json!(1));
    check("cast(0 AS Bool)", json!(false));
    check("cast(0.5 AS Boolean)", json!(true));
    check("cast('TRUE' AS Bool)", json!(true));
    check_undefined("cast('yes' AS Bool)");
    check("cast(1.5 AS String)", json!("1.5"));
    check("cast(true AS varchar)", json!("true"));
    check("cast([1, 'a'] AS Text)", json!("[1,\"a\"]"));
    check_undefined("cast(null AS String)");
    check_undefined("cast(null AS Int)");
    check_undefined("cast([1] AS Int)");
}

#[test]
fn encode_decode() {
    assert_eq!(
        json(
            "SELECT decode(encoded_temp,\"base64\").temperature AS temp from 'topic/subtopic'",
            r#"{"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}"#
        ),
        json!({ "temp": 33 })
    );
    check("decode('aGVsbG8=', 'base64')", json!("hello"));
    check("decode(encode('hi there', 'base64'), 'base64')", json!("hi there"));
    check("encode(12, 'base64')", json!("MTI="));
    check("decode('not base64!', 'base64')", json!(null));
    check_undefined("decode('aGVsbG8=', 'hex')");
    check_undefined("encode(null, 'base64')");
}

#[test]
fn hash_functions() {
    check("md5(\"hello\")", json!("5d41402abc4b2a76b9719d911017c592"));
    check("sha1('abc')", json!("a9993e364706816aba3e25717850c26c9cd0d89d"));
    check("sha256('abc')", json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    check("sha224('abc')", json!("23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"));
    check_undefined("md5(null)");
    check("md5(1)", json!("c4ca4238a0b923820dcc509a6f75849b"));
}

#[test]
fn context_functions() {
    check("topic()", json!("topic/subtopic"));
    check("topic(1)", json!("topic"));
    check("topic(2)", json!("subtopic"));
    check_undefined("topic(3)");
    check_undefined("topic(0)");
    check("clientid()", json!("client-1"));
    check("principal()", json!("ba67293af50b"));
    check("timestamp()", json!(TS));
    check("newuuid()", json!("123a4567-b89c-12d3-e456-789012345000"));
    check("traceid()", json!("12345678-1234-1234-1234-123456789012"));
    check("accountid()", json!("123456789012"));
    check("sql_version()", json!("2016-03-23"));
    let r = eval("rand()").unwrap().as_f64().unwrap();
    assert!((0.0..1.0).contains(&r));
    // Basic Ingest: the $aws/rules/<rule>/ prefix is not part of topic().
    let rule = rules::Rule::parse("SELECT topic() AS t, topic(3) AS f FROM '#'").unwrap();
    let topic = "$aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights";
    let out = rule.evaluate(&input(topic, b"{}"), &TestEnv).unwrap();
    assert_eq!(out.as_json().unwrap(), &json!({"t": "Buildings/Building5/Floor2/Room201/Lights", "f": "Floor2"}));
    // Without a client id: n/a.
    let rule = rules::Rule::parse("SELECT VALUE clientid() FROM '#'").unwrap();
    let msg = rules::Input { topic: "a", payload: b"", client_id: None, principal: None, timestamp_ms: 0 };
    assert_eq!(rule.evaluate(&msg, &TestEnv).unwrap().as_json().unwrap(), &json!("n/a"));
}

#[test]
fn get_thing_shadow_examples() {
    let named = "SELECT * from 'topic/subtopic' WHERE \
        get_thing_shadow(\"MyThing\",\"MyThingShadow\",\"arn:aws:iam::123456789012:role/AllowsThingShadowAccess\").state.reported.alarm = 'OFF'";
    assert!(run(named, "{}").is_some());
    let classic = "SELECT * from 'topic/subtopic' WHERE \
        get_thing_shadow(\"MyThing\",\"arn:aws:iam::123456789012:role/AllowsThingShadowAccess\").state.reported.alarm = 'ON'";
    assert!(run(classic, "{}").is_some());
    check_undefined("get_thing_shadow('Other', 'arn')");
    check_undefined("get_thing_shadow(1, 'arn')");
}

#[test]
fn parse_time_examples() {
    check(
        "parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 100000000, \"America/Belize\")",
        json!("1970.01.01 AD at 21:46:40 CST"),
    );
    check("parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 100000000)", json!("1970.01.02 AD at 03:46:40 UTC"));
    check("parse_time(\"yyyy\", timestamp(), \"UTC\")", json!("2016"));
    check("parse_time(\"yyyy-MM-dd'T'HH:mm:ss.SSSZ\", 1481825251155)", json!("2016-12-15T18:07:31.155+0000"));
    check("parse_time(\"yyyy-MM-dd'T'HH:mm:ssXXX\", 1481825251155, '+05:30')", json!("2016-12-15T23:37:31+05:30"));
    check("parse_time(\"yyyy-MM-dd'T'HH:mm:ssX\", 1481825251155)", json!("2016-12-15T18:07:31Z"));
    check("parse_time('EEE, d MMM yy hh:mm a', 0)", json!("Thu, 1 Jan 70 12:00 AM"));
    check("parse_time('EEEE MMMM D', 1481825251155)", json!("Thursday December 350"));
    check("parse_time('HH:mm z', 1625140800000, 'Europe/Paris')", json!("14:00 CEST"));
    check("parse_time('HH:mm ZZ', 1609502400000, 'America/New_York')", json!("07:00 -05:00"));
    check_undefined("parse_time('yyyy', 0, 'Mars/Olympus')");
    check_undefined("parse_time('yyyy q', 0)");
    check_undefined("parse_time('yyyy', 'soon')");
}

#[test]
fn time_to_epoch_examples() {
    check("time_to_epoch(\"2020-04-03 09:45:18 UTC+01:00\", \"yyyy-MM-dd HH:mm:ss VV\")", json!(1585903518000i64));
    check("time_to_epoch(\"18 December 2015\", \"dd MMMM yyyy\")", json!(1450396800000i64));
    check(
        "time_to_epoch(\"2007-12-03 10:15:30.592 America/Los_Angeles\", \"yyyy-MM-dd HH:mm:ss.SSS z\")",
        json!(1196705730592i64),
    );
    check("time_to_epoch('2016-12-15T18:07:31.155Z', \"yyyy-MM-dd'T'HH:mm:ss.SSSX\")", json!(1481825251155i64));
    check("time_to_epoch('20161215 180731', 'yyyyMMdd HHmmss')", json!(1481825251000i64));
    check("time_to_epoch('12/15/16 06:07 PM', 'MM/dd/yy hh:mm a')", json!(1481825220000i64));
    check_undefined("time_to_epoch('2016-02-30', 'yyyy-MM-dd')");
    check_undefined("time_to_epoch('2016-12-15 junk', 'yyyy-MM-dd')");
    // Round trip through parse_time.
    check(
        "time_to_epoch(parse_time(\"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\", 1481825251155, 'Asia/Kolkata'), \"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\")",
        json!(1481825251155i64),
    );
}

#[test]
fn extreme_arguments_are_undefined_not_panics() {
    check_undefined("parse_time('yyyy-MM-dd HH:mm z', 9223372036854775807, 'America/New_York')");
    check_undefined("parse_time('yyyy', -9223372036854775807 - 1)");
    check_undefined("parse_time('yyyy', 1e300)");
    check("parse_time('yyyy G', -62198755200000)", json!("-0001 BC"));
    check_undefined("time_to_epoch('999999999-01-01', 'yyyy-MM-dd')");
    check_undefined("time_to_epoch('2020-01-01 +99:00', 'yyyy-MM-dd Z')");
    check("length(parse_time(concat('''', lpad('', 1000), ''''), 0))", json!(1000));
    check("substring('abc', 1e300)", json!(""));
    check("substring('abc', -1e300, 1e300)", json!("abc"));
    check("abs(-9223372036854775807 - 1)", json!(9223372036854775808.0));
    check("(-9223372036854775807 - 1) / -1", json!(9223372036854775808.0));
    check("(-9223372036854775807 - 1) % -1", json!(0));
    check("9223372036854775807 * 2", json!(18446744073709551614.0));
    check_undefined("power(10, 400)");
    check("ceil(1e300)", json!(1e300));
    check_undefined("chr(1e300)");
    check_undefined("bitnot(1e300)");
    check("trunc(1e300, 2)", json!(1e300));
}

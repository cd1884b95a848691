//! The operator tables of the AWS IoT SQL "Operators" page, plus IN,
//! CONTAINS, IS and precedence.

mod common;

use common::*;
use serde_json::json;

#[test]
fn and_or_not() {
    check("true AND true", json!(true));
    check("true AND false", json!(false));
    check("'TRUE' AND 'true'", json!(true));
    check("true OR false", json!(true));
    check("false OR 'False'", json!(false));
    check("NOT false", json!(true));
    check("NOT 'false'", json!(true));
    check_undefined("1 AND true");
    check_undefined("true AND missing");
    check_undefined("'yes' OR false");
    check_undefined("NOT 'yes'");
    // A decisive side wins over Undefined.
    check("false AND missing", json!(false));
    check("missing AND false", json!(false));
    check("true OR missing", json!(true));
    check("missing OR true", json!(true));
    check("isUndefined(a) OR a > 5", json!(true));
}

#[test]
fn comparisons() {
    check("3 > 2", json!(true));
    check("2.5 > 2", json!(true));
    check("'3' > 2", json!(true));
    check("'3' > '20'", json!(false));
    check("2 >= 2.0", json!(true));
    check("1 < 1", json!(false));
    check("1 <= '1'", json!(true));
    check_undefined("'a' < 'b'");
    check_undefined("true > false");
    check_undefined("missing > 1");
    check_undefined("null < 1");
    check("9223372036854775807 > 9223372036854775806", json!(true));
}

#[test]
fn equality() {
    check("1 = 1", json!(true));
    check("1 = 1.0", json!(true));
    check("'a' = 'a'", json!(true));
    check("[1, 2] = [1, 2]", json!(true));
    check("[1, 2] = [2, 1]", json!(false));
    check("{'a': 1, 'b': 2} = {'b': 2, 'a': 1}", json!(true));
    check("null = null", json!(true));
    check("null <> null", json!(false));
    check("'1' = 1", json!(false));
    check("'1' <> 1", json!(true));
    check("true != false", json!(true));
    check_undefined("missing = 1");
    check_undefined("1 <> missing");
}

#[test]
fn arithmetic() {
    check("'a' + 1", json!("a1"));
    check("1 + 'a'", json!("1a"));
    check("'a' + [1]", json!("a[1]"));
    check_undefined("'a' + null");
    check("1 + 2", json!(3));
    check("1 + 2.5", json!(3.5));
    check_undefined("1 + true");
    check("5 - 7", json!(-2));
    check("'5' - 7", json!(-2));
    check("2 * 3.5", json!(7));
    check("'2' * '3'", json!(6));
    check("7 / 2", json!(3));
    check("-7 / 2", json!(-3));
    check("7.0 / 2", json!(3));
    check("7.5 / 2", json!(3.75));
    check("'7' / 2", json!(3.5));
    check_undefined("1 / 0");
    check_undefined("1.5 / 0");
    check("7 % 3", json!(1));
    check("7.5 % 2", json!(1.5));
    check_undefined("7 % 0");
    check("-(3)", json!(-3));
    check("-'3'", json!(-3));
    check("-(-9223372036854775807 - 1)", json!(9223372036854775808.0));
    check("9223372036854775807 + 1", json!(9223372036854775808.0));
    check_undefined("[1] * 2");
}

#[test]
fn precedence() {
    check("1 + 2 * 3", json!(7));
    check("(1 + 2) * 3", json!(9));
    check("10 - 4 - 3", json!(3));
    check("2 * 3 % 4", json!(2));
    check("1 + 1 = 2 AND NOT 2 > 3", json!(true));
    check("true OR false AND false", json!(true));
    check("NOT true = false", json!(true));
    check("0 + - 2 * 3", json!(-6));
    check("-2 * -3", json!(6));
}

#[test]
fn in_and_contains() {
    check("3 IN [1, 2, 3]", json!(true));
    check("3 IN (1, 2, 3)", json!(true));
    check("'a' IN ['b']", json!(false));
    check("4 NOT IN (1, 2, 3)", json!(true));
    check("1.0 IN [1]", json!(true));
    check_undefined("1 IN 'abc'");
    check_undefined("missing IN [1]");
    check("[1, 2, 3] CONTAINS 2", json!(true));
    check("[1, 2, 3] CONTAINS 5", json!(false));
    check("'hello world' CONTAINS 'world'", json!(true));
    check("'abc123' CONTAINS 12", json!(true));
    check_undefined("5 CONTAINS 5");
    assert!(run("SELECT * FROM '#' WHERE color IN ['red', 'blue']", r#"{"color": "red"}"#).is_some());
    assert!(run("SELECT * FROM '#' WHERE tags CONTAINS 'hot'", r#"{"tags": ["cold", "hot"]}"#).is_some());
}

#[test]
fn indexes_and_paths() {
    let p = r#"{"a": {"b": [{"c": 1}, {"c": [10, 20]}]}, "i": 1}"#;
    assert_eq!(eval_on("a.b[0].c", p), Some(json!(1)));
    assert_eq!(eval_on("a.b[i].c[1]", p), Some(json!(20)));
    assert_eq!(eval_on("a.b[1.9].c[0]", p), Some(json!(10)));
    assert_eq!(eval_on("a['b'][0]['c']", p), Some(json!(1)));
    assert_eq!(eval_on("a.b[5]", p), None);
    assert_eq!(eval_on("a.b[-1]", p), None);
    assert_eq!(eval_on("a.x.y.z", p), None);
    assert_eq!(eval_on("i.x", p), None);
    assert_eq!(eval_on("[1, [2, 3]][1][0]", p), Some(json!(2)));
    assert_eq!(eval_on("{'k': {'j': 4}}.k.j", p), Some(json!(4)));
    assert_eq!(eval_on("KEY", r#"{"key": 1}"#), None, "keys are case-sensitive");
}

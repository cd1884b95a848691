//! Errors at rule creation, with their positions.

use rules::{Rule, RuleError};

fn err(sql: &str) -> RuleError {
    match Rule::parse(sql) {
        Err(e) => e,
        Ok(r) => panic!("{sql} parsed as {r}"),
    }
}

#[track_caller]
fn check(sql: &str, position: usize, message: &str) {
    let e = err(sql);
    assert_eq!((e.position, e.message.as_str()), (position, message), "{sql}");
    let line_start = sql[..e.position].rfind('\n').map_or(0, |i| i + 1);
    assert_eq!(e.column, sql[line_start..e.position].chars().count() + 1, "{sql}");
}

#[test]
fn misspelled_keywords() {
    let e = err("SELECT color FORM 'a/b'");
    assert_eq!(e.to_string(), "line 1, column 14: expected ',' or FROM, found 'FORM'");
    check("SELECT * FORM 'a'", 9, "expected ',' or FROM, found 'FORM'");
    check("SELEC * FROM 'a'", 0, "expected SELECT, found 'SELEC'");
    check("SELECT * FROM 'a' WHER x = 1", 18, "unexpected 'WHER' after the end of the statement");
    check("SELECT VALUE x 'a'", 15, "expected FROM, found ''a''");
}

#[test]
fn missing_pieces() {
    check("", 0, "expected SELECT, found end of input");
    check("SELECT", 6, "expected an expression, found end of input");
    check("SELECT * FROM", 13, "expected a quoted topic filter, found end of input");
    check("SELECT * FROM a/b", 14, "expected a quoted topic filter, found 'a'");
    check("SELECT * FROM 'a' WHERE", 23, "expected an expression, found end of input");
    check("SELECT (a + 1 FROM 'a'", 14, "expected ')', found 'FROM'");
    check("SELECT a AS FROM 'x'", 12, "expected an alias, found 'FROM'");
    check("SELECT [1, 2 FROM 'x'", 13, "expected ',' or ']', found 'FROM'");
    check("SELECT {'a' 1} FROM 'x'", 12, "expected ':', found '1'");
    check("SELECT CASE x THEN 1 END FROM 'x'", 14, "expected WHEN, found 'THEN'");
    check("SELECT CASE x WHEN 1 THEN 2 FROM 'x'", 28, "expected WHEN, ELSE or END, found 'FROM'");
    check("SELECT a IS 5 FROM 'x'", 12, "expected NULL or UNDEFINED, found '5'");
    check("SELECT a. + 1 FROM 'x'", 10, "expected a key name after '.', found '+'");
}

#[test]
fn lexical_errors() {
    check("SELECT 'abc FROM 'x'", 18, "expected ',' or FROM, found 'x'");
    check("SELECT \"abc FROM 'x", 7, "unterminated string literal");
    check("SELECT # FROM 'x'", 7, "unexpected character '#'");
    check("SELECT 12abc FROM 'x'", 7, "invalid number '12a'");
    check("SELECT `a FROM 'x'", 7, "unterminated quoted identifier");
}

#[test]
fn functions() {
    check("SELECT nosuch(1) FROM 'x'", 7, "unknown function 'nosuch'");
    check("SELECT topic(1, 2) FROM 'x'", 7, "function 'topic' takes 0 to 1 arguments, found 2");
    check("SELECT upper() FROM 'x'", 7, "function 'upper' takes 1 argument, found 0");
    check("SELECT x, regexp_replace('a', 'b') FROM 'x'", 10, "function 'regexp_replace' takes 3 arguments, found 2");
    check(
        "SELECT aws_lambda('arn', *) FROM 'x'",
        7,
        "function 'aws_lambda' is not supported: Thingport does not run Lambda functions",
    );
    check("SELECT cast(x AS Float) FROM 'x'", 17, "expected a type (String, Int, Decimal, Bool), found 'Float'");
    let e = err("SELECT regexp_matches(x, '(unclosed') FROM 'x'");
    assert_eq!(e.position, 25);
    assert!(e.message.starts_with("invalid regular expression"), "{}", e.message);
}

#[test]
fn topic_filter_errors() {
    check("SELECT * FROM ''", 14, "invalid topic filter: it is empty");
    check(
        "SELECT * FROM 'a/#/b'",
        14,
        "invalid topic filter: '#' must be the last level and '+' and '#' must fill a whole level",
    );
    check(
        "SELECT * FROM 'a+'",
        14,
        "invalid topic filter: '#' must be the last level and '+' and '#' must fill a whole level",
    );
    check("SELECT * FROM '$share/g/a'", 14, "invalid topic filter: shared subscriptions cannot be rule sources");
}

#[test]
fn multi_line_positions() {
    let e = err("SELECT a,\n       b\nFROM 'x'\nWHERE a >");
    assert_eq!((e.line, e.column), (4, 10));
    assert_eq!(e.to_string(), "line 4, column 10: expected an expression, found end of input");
}

#[test]
fn nesting_limit() {
    let deep = format!("SELECT {}1{} FROM 'x'", "(".repeat(200), ")".repeat(200));
    let e = err(&deep);
    assert!(e.message.contains("nested more than"), "{}", e.message);
    let deep = format!("SELECT {}1 FROM 'x'", "NOT ".repeat(500));
    assert!(err(&deep).message.contains("nested more than"));
    let deep = format!("SELECT {}1 FROM 'x'", "-".repeat(500));
    assert!(err(&deep).message.contains("nested more than"));
    let ok = format!("SELECT {}1{} AS x FROM 'x'", "(".repeat(20), ")".repeat(20));
    assert!(Rule::parse(&ok).is_ok());
}

#[test]
fn reserved_words() {
    check("SELECT from FROM 'x'", 7, "expected an expression, found 'from'");
    assert!(Rule::parse("SELECT `from` FROM 'x'").is_ok());
    assert!(Rule::parse("select * from 'x' where a = 1").is_ok(), "keywords are case-insensitive");
}

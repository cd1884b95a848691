//! String functions.
//!
//! Non-string arguments go through the standard conversion to `String`
//! (numbers, booleans, arrays and objects as JSON); `Null` and `Undefined`
//! make the result `Undefined`. Lengths and indexes count Unicode
//! characters. The trims remove spaces, tabs and line breaks.
//!
//! `concat`: no argument is `Undefined`; one argument is returned as it is
//! when it is a string or an array, and converted to a string otherwise
//! (the examples show `concat(1)` = `"1"`); with several, any array makes
//! the result an array of all the arguments (arrays spliced, `Undefined`
//! skipped), otherwise the string conversions are joined (`Undefined` if
//! one cannot be converted).

use crate::value::Value;

/// Whether `c` is removed by the trim functions.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Applies `f` to the string conversion of `v`.
pub(super) fn map_string(v: &Value, f: impl FnOnce(&str) -> Value) -> Value {
    match v {
        Value::String(s) => f(s),
        other => other.to_sql_string().map_or(Value::Undefined, |s| f(&s)),
    }
}

/// Applies `f` to the string conversions of `a` and `b`.
pub(super) fn both_strings(a: &Value, b: &Value, f: impl FnOnce(&str, &str) -> Value) -> Value {
    match (a.to_sql_string(), b.to_sql_string()) {
        (Some(x), Some(y)) => f(&x, &y),
        _ => Value::Undefined,
    }
}

/// `indexof`: character index of the first occurrence, or -1.
pub(super) fn index_of(hay: &str, needle: &str) -> Value {
    Value::Int(hay.find(needle).map_or(-1, |byte| hay[..byte].chars().count() as i64))
}

/// `concat`.
pub(super) fn concat(args: Vec<Value>) -> Value {
    match args.len() {
        0 => Value::Undefined,
        1 => match args.into_iter().next().unwrap_or_default() {
            v @ (Value::String(_) | Value::Array(_)) => v,
            other => other.to_sql_string().map_or(Value::Undefined, Value::String),
        },
        _ if args.iter().any(|a| matches!(a, Value::Array(_))) => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::Array(items) => out.extend(items),
                    Value::Undefined => {}
                    other => out.push(other),
                }
            }
            Value::Array(out)
        }
        _ => {
            let mut out = String::new();
            for a in &args {
                match a.to_sql_string() {
                    Some(s) => out.push_str(&s),
                    None => return Value::Undefined,
                }
            }
            Value::String(out)
        }
    }
}

/// `lpad` / `rpad`: the count is floored and clamped to 0–1000.
pub(super) fn pad(s: &Value, n: &Value, left: bool) -> Value {
    let Some(n) = n.to_int_saturating() else { return Value::Undefined };
    let n = n.clamp(0, 1000) as usize;
    map_string(s, |s| {
        let spaces = " ".repeat(n);
        Value::String(if left { spaces + s } else { s.to_string() + &spaces })
    })
}

/// `replace(s, from, to)`: every occurrence; an empty `from` changes nothing.
pub(super) fn replace(s: &Value, from: &Value, to: &Value) -> Value {
    match (s.to_sql_string(), from.to_sql_string(), to.to_sql_string()) {
        (Some(s), Some(f), Some(_)) if f.is_empty() => Value::String(s),
        (Some(s), Some(f), Some(t)) => Value::String(s.replace(&f, &t)),
        _ => Value::Undefined,
    }
}

/// `substring(s, start[, end])`: indexes clamped to the string; an empty
/// result when `start >= end`.
pub(super) fn substring(s: &Value, start: &Value, end: Option<&Value>) -> Value {
    let Some(start) = start.to_int_saturating() else { return Value::Undefined };
    let end = match end {
        Some(e) => match e.to_int_saturating() {
            Some(e) => Some(e),
            None => return Value::Undefined,
        },
        None => None,
    };
    map_string(s, |s| {
        let len = s.chars().count() as i64;
        let from = start.clamp(0, len);
        let to = end.unwrap_or(len).clamp(0, len);
        if from >= to {
            return Value::String(String::new());
        }
        Value::String(s.chars().skip(from as usize).take((to - from) as usize).collect())
    })
}

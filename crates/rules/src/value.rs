//! Values of AWS IoT SQL and the standard conversions between them
//! ("Data types" page of the AWS IoT developer guide).
//!
//! Representation decisions:
//! * `Int` is an `i64` (AWS allows 34 digits). Integer arithmetic that
//!   overflows falls back to `Decimal`.
//! * `Decimal` is an `f64` (AWS uses 34-digit decimals), so sums such as
//!   `0.1 + 0.2` carry binary rounding. A NaN or infinite result is
//!   `Undefined`.
//! * SQL version 2016-03-23 treats whole numbers such as `10.0` as `Int`:
//!   whole numbers read from the payload or written as literals become
//!   `Int`, and a whole `Decimal` is written to JSON as an integer.
//! * `Undefined` is a value inside the evaluator; written to JSON it is
//!   omitted (a key whose value is `Undefined` disappears, and so does an
//!   array element), and written alone it is the empty string.
//! * Objects are `BTreeMap`s, so output keys come out sorted, as
//!   `serde_json` writes them by default.

use std::collections::BTreeMap;

/// An object: keys to values.
pub type Map = BTreeMap<String, Value>;

/// A value of AWS IoT SQL.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Not a value: a missing key, or the result of a function given bad arguments.
    #[default]
    Undefined,
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction (never NaN or infinite).
    Decimal(f64),
    /// A UTF-8 string.
    String(String),
    /// A JSON array.
    Array(Vec<Value>),
    /// A JSON object.
    Object(Map),
}

/// A number taken from a value by the numeric conversions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Dec(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Dec(d) => d,
        }
    }
}

/// Largest magnitude an `f64` may have to be turned into an `i64` exactly.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// `f` as an `i64` when it is whole and in range.
pub(crate) fn whole_f64(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f > -I64_LIMIT && f < I64_LIMIT).then_some(f as i64)
}

/// Whether `s` is a number the conversions accept: `^-?\d+(\.\d+)?((?i)E-?\d+)?$`.
fn is_decimal_text(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let Some(j) = digits(i) else { return false };
    i = j;
    if i < b.len() && b[i] == b'.' {
        let Some(j) = digits(i + 1) else { return false };
        i = j;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && b[i] == b'-' {
            i += 1;
        }
        let Some(j) = digits(i) else { return false };
        i = j;
    }
    i == b.len()
}

/// Parses a string by the documented rule; `None` when it does not match
/// or is out of `f64` range.
pub(crate) fn parse_decimal_text(s: &str) -> Option<f64> {
    if !is_decimal_text(s) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Text of a `Decimal`: whole values as integers, others in the shortest
/// form that reads back exactly, with an exponent for very large or small
/// magnitudes (`1.5`, `1e-7`, `1.2345678901234568e22`).
pub(crate) fn format_decimal(f: f64) -> String {
    if let Some(i) = whole_f64(f).filter(|i| i.unsigned_abs() < 1_000_000_000_000_000) {
        return i.to_string();
    }
    match serde_json::Number::from_f64(f) {
        Some(n) => n.to_string(),
        None => f.to_string(),
    }
}

impl Value {
    /// A `Decimal`, or `Undefined` when `f` is NaN or infinite.
    pub fn decimal(f: f64) -> Value {
        if f.is_finite() {
            Value::Decimal(f)
        } else {
            Value::Undefined
        }
    }

    /// A number read from JSON or a literal: whole values become `Int`
    /// (SQL version 2016-03-23), others `Decimal`.
    pub fn number(f: f64) -> Value {
        match whole_f64(f) {
            Some(i) => Value::Int(i),
            None => Value::decimal(f),
        }
    }

    /// The value's type name as the AWS documentation spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "Undefined",
            Value::Null => "Null",
            Value::Bool(_) => "Boolean",
            Value::Int(_) => "Int",
            Value::Decimal(_) => "Decimal",
            Value::String(_) => "String",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
        }
    }

    /// Whether this is `Undefined`.
    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    /// Converts a JSON value (numbers as described in the module docs).
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => json_number(n),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Converts an owned JSON value without copying its strings.
    pub fn from_json_owned(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from_json_owned).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from_json_owned(v))).collect())
            }
            other => Value::from_json(&other),
        }
    }

    /// The value as JSON; `None` for `Undefined`. `Undefined` members of
    /// arrays and objects are left out; whole decimals become integers.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Undefined => return None,
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Decimal(f) => match whole_f64(*f) {
                Some(i) => serde_json::Value::from(i),
                None => serde_json::Value::Number(serde_json::Number::from_f64(*f)?),
            },
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().filter_map(Value::to_json).collect()),
            Value::Object(o) => {
                serde_json::Value::Object(o.iter().filter_map(|(k, v)| Some((k.clone(), v.to_json()?))).collect())
            }
        })
    }

    /// Like [`Value::to_json`], consuming the value.
    pub fn into_json(self) -> Option<serde_json::Value> {
        match self {
            Value::String(s) => Some(serde_json::Value::String(s)),
            Value::Array(a) => Some(serde_json::Value::Array(a.into_iter().filter_map(Value::into_json).collect())),
            Value::Object(o) => {
                Some(serde_json::Value::Object(o.into_iter().filter_map(|(k, v)| Some((k, v.into_json()?))).collect()))
            }
            other => other.to_json(),
        }
    }

    /// The standard conversion to `String`: numbers in standard notation,
    /// booleans as `true`/`false`, arrays and objects as JSON; `None` for
    /// `Null` and `Undefined`.
    pub fn to_sql_string(&self) -> Option<String> {
        match self {
            Value::Undefined | Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Decimal(f) => Some(format_decimal(*f)),
            Value::String(s) => Some(s.clone()),
            Value::Array(_) | Value::Object(_) => self.to_json().map(|j| j.to_string()),
        }
    }

    /// The value as it appears in a substitution template or as a whole
    /// output: strings unquoted, `Null` as `null`, `Undefined` as nothing.
    pub fn render(&self) -> String {
        match self {
            Value::Undefined => String::new(),
            Value::Null => "null".to_string(),
            other => other.to_sql_string().unwrap_or_default(),
        }
    }

    /// The numeric conversion used by operators and most functions: `Int`
    /// and `Decimal` as they are, a `String` matching the documented number
    /// pattern as a `Decimal`; anything else `None`.
    pub(crate) fn to_num(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Decimal(f) => Some(Num::Dec(*f)),
            Value::String(s) => parse_decimal_text(s).map(Num::Dec),
            _ => None,
        }
    }

    /// The conversion to `Decimal` (as `f64`).
    pub(crate) fn to_f64(&self) -> Option<f64> {
        self.to_num().map(Num::as_f64)
    }

    /// The conversion to `Int` rounding down (floor), as the functions that
    /// take an `Int` argument document it. `None` when out of range.
    pub(crate) fn to_int_floor(&self) -> Option<i64> {
        match self.to_num()? {
            Num::Int(i) => Some(i),
            Num::Dec(f) => whole_f64(f.floor()),
        }
    }

    /// Like [`Value::to_int_floor`], saturating at the `i64` range (for
    /// indexes and counts that are clamped anyway).
    pub(crate) fn to_int_saturating(&self) -> Option<i64> {
        match self.to_num()? {
            Num::Int(i) => Some(i),
            Num::Dec(f) => Some(f.floor() as i64),
        }
    }

    /// The conversion to `Boolean`: booleans, and the strings `"true"` and
    /// `"false"` in any case.
    pub(crate) fn to_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// SQL equality (`=`): `None` when either side is `Undefined`; numbers
    /// compare by value across `Int` and `Decimal`; arrays element by element
    /// in order; objects by keys and values in any order; values of different
    /// types are unequal.
    pub fn sql_eq(&self, other: &Value) -> Option<bool> {
        Some(match (self, other) {
            (Value::Undefined, _) | (_, Value::Undefined) => return None,
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(a), Value::Decimal(b)) | (Value::Decimal(b), Value::Int(a)) => (*a as f64) == *b,
            (Value::Decimal(a), Value::Decimal(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.sql_eq(y) == Some(true))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.sql_eq(w) == Some(true)))
            }
            _ => false,
        })
    }
}

fn json_number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::number(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<serde_json::Value> for Value {
    fn from(j: serde_json::Value) -> Self {
        Value::from_json_owned(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_text() {
        for ok in ["0", "-1.2", "5E-12", "5e3", "12.50"] {
            assert!(parse_decimal_text(ok).is_some(), "{ok}");
        }
        for bad in ["", "-", "+1", "1.", ".5", "1e", "1e+5", " 1", "0x10", "NaN", "1_0"] {
            assert!(parse_decimal_text(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn json_round_trip_and_whole_numbers() {
        let j = json!({"a": 10.0, "b": [1, 2.5, null], "c": "x", "d": {"e": true}});
        let v = Value::from_json(&j);
        let Value::Object(m) = &v else { panic!() };
        assert_eq!(m["a"], Value::Int(10));
        assert_eq!(v.to_json().unwrap(), json!({"a": 10, "b": [1, 2.5, null], "c": "x", "d": {"e": true}}));
        assert_eq!(Value::Decimal(3.0).to_json().unwrap(), json!(3));
        assert_eq!(Value::Array(vec![Value::Int(1), Value::Undefined]).to_json().unwrap(), json!([1]));
    }

    #[test]
    fn to_string_conversion() {
        assert_eq!(Value::Decimal(1.5).to_sql_string().unwrap(), "1.5");
        assert_eq!(Value::Decimal(1e-7).to_sql_string().unwrap(), "1e-7");
        assert_eq!(Value::Decimal(2.0).to_sql_string().unwrap(), "2");
        assert_eq!(Value::Array(vec!["a".into(), Value::Int(1)]).to_sql_string().unwrap(), r#"["a",1]"#);
        assert_eq!(Value::Null.to_sql_string(), None);
        assert_eq!(Value::Undefined.render(), "");
    }

    #[test]
    fn equality() {
        assert_eq!(Value::Int(1).sql_eq(&Value::Decimal(1.0)), Some(true));
        assert_eq!(Value::Int(1).sql_eq(&"1".into()), Some(false));
        assert_eq!(Value::Null.sql_eq(&Value::Null), Some(true));
        assert_eq!(Value::Null.sql_eq(&Value::Undefined), None);
        let a = Value::from_json(&json!({"x": [1, {"y": 2}]}));
        let b = Value::from_json(&json!({"x": [1.0, {"y": 2}]}));
        assert_eq!(a.sql_eq(&b), Some(true));
    }
}

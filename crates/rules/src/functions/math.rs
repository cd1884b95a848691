//! Numeric functions.
//!
//! Decisions: functions documented as "rounded down" convert decimals with
//! `floor`; `round` rounds halves away from zero (`round(-1.5)` = -2, as
//! the examples show, though the table says "rounded down"); `bitnot` is
//! the two's complement NOT of a 64-bit integer (`bitnot(13)` = -14; the
//! AWS page's example claims 2). `trunc` works on the shortest decimal text
//! of the number, so `trunc(2.3, 1)` is 2.3 despite binary rounding.

use crate::value::{whole_f64, Num, Value};

/// `abs`: `Int` stays `Int`, other numbers become `Decimal`.
pub(super) fn abs(v: &Value) -> Value {
    match v.to_num() {
        Some(Num::Int(i)) => i.checked_abs().map_or(Value::Decimal(-(i as f64)), Value::Int),
        Some(Num::Dec(d)) => Value::decimal(d.abs()),
        None => Value::Undefined,
    }
}

/// A function computed in double precision; NaN or infinite results
/// ("imaginary results") are `Undefined`.
pub(super) fn double(v: &Value, f: fn(f64) -> f64) -> Value {
    v.to_f64().map_or(Value::Undefined, |x| Value::decimal(f(x)))
}

/// A two-argument function computed in double precision.
pub(super) fn double2(a: &Value, b: &Value, f: fn(f64, f64) -> f64) -> Value {
    match (a.to_f64(), b.to_f64()) {
        (Some(x), Some(y)) => Value::decimal(f(x, y)),
        _ => Value::Undefined,
    }
}

/// A bitwise operation on the `Int` conversions of two arguments.
pub(super) fn bits(a: &Value, b: &Value, f: fn(i64, i64) -> i64) -> Value {
    match (a.to_int_floor(), b.to_int_floor()) {
        (Some(x), Some(y)) => Value::Int(f(x, y)),
        _ => Value::Undefined,
    }
}

/// `ceil`, `floor`, `round`: an `Int` (a `Decimal` when out of `Int` range).
pub(super) fn to_int_with(v: &Value, f: fn(f64) -> f64) -> Value {
    match v.to_num() {
        Some(Num::Int(i)) => Value::Int(i),
        Some(Num::Dec(d)) => {
            let r = f(d);
            whole_f64(r).map_or(Value::decimal(r), Value::Int)
        }
        None => Value::Undefined,
    }
}

/// `chr`: the ASCII character for 0–127.
pub(super) fn chr(v: &Value) -> Value {
    match v.to_int_floor() {
        Some(i @ 0..=127) => Value::String(char::from(i as u8).to_string()),
        _ => Value::Undefined,
    }
}

/// `sign`: -1, 0 or 1 as an `Int`.
pub(super) fn sign(v: &Value) -> Value {
    match v.to_num() {
        Some(Num::Int(i)) => Value::Int(i.signum()),
        Some(Num::Dec(d)) => Value::Int(if d > 0.0 {
            1
        } else if d < 0.0 {
            -1
        } else {
            0
        }),
        None => Value::Undefined,
    }
}

/// `trunc(x, places)`: places clamped to 0–34; trailing zeros dropped.
pub(super) fn trunc(x: &Value, places: &Value) -> Value {
    let Some(n) = places.to_int_saturating() else { return Value::Undefined };
    let n = n.clamp(0, 34) as usize;
    match x.to_num() {
        Some(Num::Int(i)) => Value::Int(i),
        Some(Num::Dec(d)) => {
            let text = format!("{d}");
            let cut = match text.find('.') {
                Some(dot) if text.len() > dot + 1 + n => &text[..dot + 1 + n],
                _ => &text[..],
            };
            let cut = cut.trim_end_matches('.');
            cut.parse::<f64>().map_or(Value::Undefined, |f| whole_f64(f).map_or(Value::decimal(f), Value::Int))
        }
        None => Value::Undefined,
    }
}

/// `nanvl(x, fallback)`: `fallback` when `x` is `Undefined`, `Null` or NaN.
pub(super) fn nanvl(x: &Value, fallback: &Value) -> Value {
    match x {
        Value::Undefined | Value::Null => fallback.clone(),
        Value::Decimal(d) if d.is_nan() => fallback.clone(),
        other => other.clone(),
    }
}

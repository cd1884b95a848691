//! `regexp_matches`, `regexp_replace` and `regexp_substr`.
//!
//! AWS evaluates Java regular expressions; Thingport uses the `regex`
//! crate, which shares Java's common syntax (classes, quantifiers, groups,
//! named groups, flags) but has no look-around or back-references. A
//! pattern it cannot compile is an error when it is a literal (the rule is
//! refused) and `Undefined` when it is computed. Replacements use Java's
//! syntax: `$1`, `${name}`, and `\$` for a dollar sign. `regexp_substr`
//! with no match is `Undefined`. Compiled patterns are limited in size so
//! that a hostile pattern cannot use unbounded memory.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use crate::value::Value;

/// Compiles a pattern with size limits.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| e.to_string().lines().last().unwrap_or("invalid").trim().to_string())
}

/// The compiled pattern: the one made at rule creation, or one compiled now.
fn pattern<'r>(re: &Value, cached: Option<&'r Regex>) -> Option<Cow<'r, Regex>> {
    if let Some(r) = cached {
        return Some(Cow::Borrowed(r));
    }
    compile_regex(&re.to_sql_string()?).ok().map(Cow::Owned)
}

/// `regexp_matches(s, regex)`: whether `s` contains a match.
pub(super) fn matches(s: &Value, re: &Value, cached: Option<&Regex>) -> Value {
    let (Some(s), Some(r)) = (s.to_sql_string(), pattern(re, cached)) else { return Value::Undefined };
    Value::Bool(r.is_match(&s))
}

/// `regexp_substr(s, regex)`: the first match.
pub(super) fn substr(s: &Value, re: &Value, cached: Option<&Regex>) -> Value {
    let (Some(s), Some(r)) = (s.to_sql_string(), pattern(re, cached)) else { return Value::Undefined };
    r.find(&s).map_or(Value::Undefined, |m| Value::from(m.as_str()))
}

/// `regexp_replace(s, regex, replacement)`: replaces every match.
pub(super) fn replace(s: &Value, re: &Value, rep: &Value, cached: Option<&Regex>) -> Value {
    let (Some(s), Some(r), Some(rep)) = (s.to_sql_string(), pattern(re, cached), rep.to_sql_string()) else {
        return Value::Undefined;
    };
    match java_replacement(&rep, r.captures_len() - 1) {
        Some(rep) => Value::String(r.replace_all(&s, rep.as_str()).into_owned()),
        None => Value::Undefined,
    }
}

/// Translates a Java replacement string to the `regex` crate's syntax;
/// `None` where Java would throw (a dangling `\` or `$`, a missing group).
fn java_replacement(rep: &str, groups: usize) -> Option<String> {
    let mut out = String::with_capacity(rep.len());
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '$' => out.push_str("$$"),
                other => out.push(other),
            },
            '$' => {
                if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next()? {
                            '}' => break,
                            ch if ch.is_ascii_alphanumeric() => name.push(ch),
                            _ => return None,
                        }
                    }
                    if name.is_empty() || !name.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
                        return None;
                    }
                    out.push_str(&format!("${{{name}}}"));
                } else {
                    let mut n = chars.next()?.to_digit(10)? as usize;
                    while let Some(d) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                        let next = n * 10 + d as usize;
                        if next > groups {
                            break;
                        }
                        n = next;
                        chars.next();
                    }
                    if n > groups {
                        return None;
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_translation() {
        assert_eq!(java_replacement("$1", 1).unwrap(), "${1}");
        assert_eq!(java_replacement("$1a", 1).unwrap(), "${1}a");
        assert_eq!(java_replacement("$12", 1).unwrap(), "${1}2");
        assert_eq!(java_replacement("$12", 12).unwrap(), "${12}");
        assert_eq!(java_replacement(r"\$x\\", 0).unwrap(), "$$x\\");
        assert_eq!(java_replacement("${g}", 1).unwrap(), "${g}");
        assert!(java_replacement("$2", 1).is_none());
        assert!(java_replacement("$", 1).is_none());
        assert!(java_replacement("a\\", 1).is_none());
    }
}

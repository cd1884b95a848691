//! The `Condition` element: operators, parsing with precise errors,
//! compilation for one connection, and evaluation against a request.
//!
//! Semantics follow IAM:
//! - all operators of a block AND, all keys of an operator AND, the values of
//!   one key OR — for a negated operator (`StringNotEquals`, `NotIpAddress`, …)
//!   the values NOR;
//! - a key absent from the request is false for positive operators and true
//!   for negated ones; `…IfExists` makes an absent key true; `Null` tests
//!   presence itself;
//! - `ForAnyValue:` is true if some request value satisfies the operator
//!   (false for an absent key), `ForAllValues:` if every request value does
//!   (true for an absent key). Without a prefix a multi-valued key behaves
//!   like `ForAnyValue:` for positive operators and like `ForAllValues:` for
//!   negated ones (no request value may match).
//!
//! Condition values may use policy variables; they are substituted when the
//! policies are compiled for a connection, as literal text.

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::date;
use crate::error::{did_you_mean, PolicyError};
use crate::eval::RequestContext;
use crate::json::Json;
use crate::pattern::{Glob, GlobBuilder};
use crate::template::{self, Seg, Template};
use crate::variables::{self, Variables};

/// How two numbers (or dates) are compared: `request OP policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, req: T, pol: T) -> bool {
        match self {
            Cmp::Eq => req == pol,
            Cmp::Lt => req < pol,
            Cmp::Le => req <= pol,
            Cmp::Gt => req > pol,
            Cmp::Ge => req >= pol,
        }
    }
}

/// What an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Arn,
    Ip,
    Null,
}

/// `ForAnyValue:` / `ForAllValues:` or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// Base operator names: (name, kind, negated).
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::String, false),
    ("StringNotEquals", Kind::String, true),
    ("StringEqualsIgnoreCase", Kind::StringIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Kind::StringIgnoreCase, true),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Kind::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Kind::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Kind::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Kind::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Kind::Numeric(Cmp::Ge), false),
    ("DateEquals", Kind::Date(Cmp::Eq), false),
    ("DateNotEquals", Kind::Date(Cmp::Eq), true),
    ("DateLessThan", Kind::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Kind::Date(Cmp::Le), false),
    ("DateGreaterThan", Kind::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Kind::Date(Cmp::Ge), false),
    ("Bool", Kind::Bool, false),
    ("ArnEquals", Kind::Arn, false),
    ("ArnLike", Kind::Arn, false),
    ("ArnNotEquals", Kind::Arn, true),
    ("ArnNotLike", Kind::Arn, true),
    ("IpAddress", Kind::Ip, false),
    ("NotIpAddress", Kind::Ip, true),
    ("Null", Kind::Null, false),
];

/// A parsed operator name such as `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) kind: Kind,
    pub(crate) negated: bool,
    pub(crate) set: SetOp,
    pub(crate) if_exists: bool,
}

impl Operator {
    /// Parses an operator name; the error message has no path.
    pub(crate) fn parse(name: &str) -> Result<Operator, String> {
        let (set, rest) = match name.split_once(':') {
            None => (SetOp::Single, name),
            Some(("ForAnyValue", r)) => (SetOp::ForAnyValue, r),
            Some(("ForAllValues", r)) => (SetOp::ForAllValues, r),
            Some((p, _)) => {
                let hint = did_you_mean(p, ["ForAnyValue", "ForAllValues"]);
                return Err(format!("unknown set operator \"{p}:\" (expected ForAnyValue: or ForAllValues:){hint}"));
            }
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let Some(&(_, kind, negated)) = OPERATORS.iter().find(|(n, _, _)| *n == base) else {
            let hint = did_you_mean(rest, OPERATORS.iter().map(|(n, _, _)| *n));
            return Err(format!("unknown condition operator{hint}"));
        };
        if kind == Kind::Null && if_exists {
            return Err("Null cannot be combined with IfExists".into());
        }
        if kind == Kind::Null && set != SetOp::Single {
            return Err("Null cannot be combined with ForAnyValue: or ForAllValues:".into());
        }
        Ok(Operator { kind, negated, set, if_exists })
    }
}

/// One `operator → key → values` entry of a statement's `Condition`.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    /// The operator as written.
    pub(crate) operator_name: String,
    pub(crate) op: Operator,
    /// The condition key in canonical spelling.
    pub(crate) key: String,
    pub(crate) values: Vec<Template>,
}

/// Parses a statement's `Condition` object; `path` is `Statement[i].Condition`.
pub(crate) fn parse_block(json: &Json, path: &str, vars_allowed: bool) -> Result<Vec<Condition>, PolicyError> {
    let Json::Object(ops) = json else {
        return Err(PolicyError::new(
            path,
            format!("must be an object mapping condition operators to keys, not {}", json.kind()),
        ));
    };
    if ops.is_empty() {
        return Err(PolicyError::new(path, "must not be empty"));
    }
    let mut out = Vec::new();
    for (op_name, block) in ops {
        let op_path = format!("{path}.{op_name}");
        let op = Operator::parse(op_name).map_err(|m| PolicyError::new(&op_path, m))?;
        let Json::Object(keys) = block else {
            return Err(PolicyError::new(
                &op_path,
                format!("must be an object mapping condition keys to values, not {}", block.kind()),
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::new(&op_path, "must not be empty"));
        }
        for (key, vals) in keys {
            if key.is_empty() {
                return Err(PolicyError::new(&op_path, "empty condition key"));
            }
            let key_path = format!("{op_path}.{key}");
            let items: Vec<(String, &Json)> = match vals {
                Json::Array(a) if a.is_empty() => {
                    return Err(PolicyError::new(&key_path, "must not be an empty array"))
                }
                Json::Array(a) => a.iter().enumerate().map(|(i, v)| (format!("{key_path}[{i}]"), v)).collect(),
                v => vec![(key_path.clone(), v)],
            };
            let mut values = Vec::with_capacity(items.len());
            for (vpath, v) in items {
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.clone(),
                    Json::Bool(b) => b.to_string(),
                    other => {
                        return Err(PolicyError::new(
                            &vpath,
                            format!("condition values must be strings, numbers or booleans, not {}", other.kind()),
                        ))
                    }
                };
                let t = Template::parse(&text, vars_allowed, &vpath)?;
                if !t.has_vars() {
                    let segs = t.instantiate(&variables::NoVariables).unwrap_or_default();
                    typed(op.kind, &segs).map_err(|m| PolicyError::new(&vpath, m))?;
                }
                values.push(t);
            }
            out.push(Condition {
                operator_name: op_name.clone(),
                op,
                key: variables::canonical_condition_key(key),
                values,
            });
        }
    }
    Ok(out)
}

/// An ARN pattern compared component by component, as IAM's `Arn…` operators.
#[derive(Debug, Clone)]
pub(crate) enum ArnPattern {
    Any,
    Parts(Box<[Glob; 6]>),
}

impl ArnPattern {
    fn matches(&self, v: &str) -> bool {
        match self {
            ArnPattern::Any => true,
            ArnPattern::Parts(globs) => {
                let mut it = v.splitn(6, ':');
                globs.iter().all(|g| it.next().is_some_and(|p| g.matches(p)))
            }
        }
    }
}

/// One policy value, converted for its operator.
#[derive(Debug, Clone)]
enum Typed {
    Str(Box<str>),
    Like(Glob),
    Num(f64),
    Date(i64),
    Bool(bool),
    Arn(ArnPattern),
    Ip(Cidr),
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Converts a substituted value for an operator kind; the error message has
/// no path.
fn typed(kind: Kind, segs: &[Seg]) -> Result<Typed, String> {
    let text = || template::join(segs);
    Ok(match kind {
        Kind::String | Kind::StringIgnoreCase => Typed::Str(text().into()),
        Kind::StringLike => {
            let mut b = GlobBuilder::default();
            for s in segs {
                match s {
                    Seg::Pattern(p) => b.pattern(p),
                    Seg::Literal(l) => b.literal(l),
                };
            }
            Typed::Like(b.build())
        }
        Kind::Numeric(_) => {
            let t = text();
            Typed::Num(parse_num(&t).ok_or_else(|| format!("\"{t}\" is not a number"))?)
        }
        Kind::Date(_) => {
            let t = text();
            Typed::Date(date::parse_millis(&t).ok_or_else(|| {
                format!("\"{t}\" is not a date (ISO 8601 such as 2024-05-01T12:00:00Z, or epoch seconds)")
            })?)
        }
        Kind::Bool | Kind::Null => {
            let t = text();
            Typed::Bool(parse_bool(&t).ok_or_else(|| format!("\"{t}\" is not \"true\" or \"false\""))?)
        }
        Kind::Ip => {
            let t = text();
            Typed::Ip(
                Cidr::parse(&t)
                    .ok_or_else(|| format!("\"{t}\" is not an IP address or CIDR block (e.g. 203.0.113.0/24)"))?,
            )
        }
        Kind::Arn => Typed::Arn(arn_pattern(segs).ok_or_else(|| {
            format!("\"{}\" is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE) or \"*\"", text())
        })?),
    })
}

fn arn_pattern(segs: &[Seg]) -> Option<ArnPattern> {
    if let [Seg::Pattern(p)] = segs {
        if p == "*" {
            return Some(ArnPattern::Any);
        }
    }
    let mut parts: Vec<GlobBuilder> = vec![GlobBuilder::default()];
    for s in segs {
        let (text, wild) = match s {
            Seg::Pattern(p) => (p.as_str(), true),
            Seg::Literal(l) => (l.as_str(), false),
        };
        for (i, chunk) in text.split(':').enumerate() {
            if i > 0 {
                if parts.len() < 6 {
                    parts.push(GlobBuilder::default());
                } else {
                    parts.last_mut()?.literal(":");
                }
            }
            let b = parts.last_mut()?;
            if wild {
                b.pattern(chunk);
            } else {
                b.literal(chunk);
            }
        }
    }
    if parts.len() != 6 {
        return None;
    }
    let globs: Vec<Glob> = parts.iter().map(GlobBuilder::build).collect();
    let arr: [Glob; 6] = globs.try_into().ok()?;
    if arr[0] != Glob::Exact("arn".into()) && !matches!(arr[0], Glob::Any) {
        return None;
    }
    Some(ArnPattern::Parts(Box::new(arr)))
}

/// The policy values of one compiled condition.
#[derive(Debug, Clone)]
enum Values {
    Str(Vec<Box<str>>),
    Like(Vec<Glob>),
    Num(Vec<f64>),
    Date(Vec<i64>),
    Bool(Vec<bool>),
    Arn(Vec<ArnPattern>),
    Ip(Vec<Cidr>),
}

/// A condition compiled for one connection.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    op: Operator,
    pub(crate) key: Box<str>,
    values: Values,
    /// The key's values from the connection's variables, used when the
    /// request context does not supply the key.
    fallback: Option<Vec<String>>,
}

/// The outcome of compiling one condition.
pub(crate) struct CompileOutcome {
    pub(crate) condition: CompiledCondition,
    /// Variables used in values that had no substitutable value.
    pub(crate) missing_vars: Vec<String>,
    /// Values that could not be converted after substitution (e.g. a
    /// non-numeric attribute in a Numeric condition).
    pub(crate) invalid_values: usize,
}

impl Condition {
    /// Compiles for one connection. Values whose variables are missing, or
    /// that are invalid once substituted, are left out (they match nothing);
    /// the caller decides what that means for the statement.
    pub(crate) fn compile(&self, vars: &dyn Variables) -> CompileOutcome {
        let mut missing_vars = Vec::new();
        let mut invalid_values = 0;
        let mut typed_vals = Vec::with_capacity(self.values.len());
        for t in &self.values {
            match t.instantiate(vars) {
                Ok(segs) => match typed(self.op.kind, &segs) {
                    Ok(v) => typed_vals.push(v),
                    Err(_) => invalid_values += 1,
                },
                Err(m) => missing_vars.extend(m),
            }
        }
        let values = match self.op.kind {
            Kind::String | Kind::StringIgnoreCase => Values::Str(
                typed_vals.into_iter().filter_map(|v| if let Typed::Str(s) = v { Some(s) } else { None }).collect(),
            ),
            Kind::StringLike => Values::Like(
                typed_vals.into_iter().filter_map(|v| if let Typed::Like(g) = v { Some(g) } else { None }).collect(),
            ),
            Kind::Numeric(_) => Values::Num(
                typed_vals.into_iter().filter_map(|v| if let Typed::Num(n) = v { Some(n) } else { None }).collect(),
            ),
            Kind::Date(_) => Values::Date(
                typed_vals.into_iter().filter_map(|v| if let Typed::Date(d) = v { Some(d) } else { None }).collect(),
            ),
            Kind::Bool | Kind::Null => Values::Bool(
                typed_vals.into_iter().filter_map(|v| if let Typed::Bool(b) = v { Some(b) } else { None }).collect(),
            ),
            Kind::Arn => Values::Arn(
                typed_vals.into_iter().filter_map(|v| if let Typed::Arn(a) = v { Some(a) } else { None }).collect(),
            ),
            Kind::Ip => Values::Ip(
                typed_vals.into_iter().filter_map(|v| if let Typed::Ip(c) = v { Some(c) } else { None }).collect(),
            ),
        };
        CompileOutcome {
            condition: CompiledCondition {
                op: self.op,
                key: self.key.clone().into_boxed_str(),
                values,
                fallback: variables::key_values(vars, &self.key),
            },
            missing_vars,
            invalid_values,
        }
    }
}

/// Case-insensitive equality without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

impl CompiledCondition {
    /// Whether one request value matches any policy value (positive sense).
    fn matches_any(&self, v: &str) -> bool {
        match &self.values {
            Values::Str(ps) => {
                if self.op.kind == Kind::StringIgnoreCase {
                    ps.iter().any(|p| eq_ignore_case(p, v))
                } else {
                    ps.iter().any(|p| **p == *v)
                }
            }
            Values::Like(gs) => gs.iter().any(|g| g.matches(v)),
            Values::Num(ns) => {
                let Kind::Numeric(cmp) = self.op.kind else { return false };
                parse_num(v).is_some_and(|x| ns.iter().any(|&n| cmp.holds(x, n)))
            }
            Values::Date(ds) => {
                let Kind::Date(cmp) = self.op.kind else { return false };
                date::parse_millis(v).is_some_and(|x| ds.iter().any(|&d| cmp.holds(x, d)))
            }
            Values::Bool(bs) => parse_bool(v.trim()).is_some_and(|x| bs.contains(&x)),
            Values::Arn(arns) => arns.iter().any(|a| a.matches(v)),
            Values::Ip(cidrs) => v.trim().parse::<IpAddr>().is_ok_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
        }
    }

    /// Evaluates the condition. When `missing` is given, an absent key is
    /// recorded there (except for `Null` and `…IfExists`, which expect it).
    pub(crate) fn eval(&self, req: &dyn RequestContext, mut missing: Option<&mut Vec<String>>) -> bool {
        req.with_values(&self.key, &mut |from_req| {
            let vals = from_req.unwrap_or_else(|| self.fallback.as_deref().unwrap_or(&[]));
            self.eval_values(vals, missing.as_deref_mut())
        })
    }

    fn eval_values(&self, vals: &[String], missing: Option<&mut Vec<String>>) -> bool {
        let present = !vals.is_empty();
        if self.op.kind == Kind::Null {
            let Values::Bool(bs) = &self.values else { return false };
            // "Null": "true" holds when the key is absent.
            return bs.iter().any(|&want_absent| want_absent != present);
        }
        if !present {
            if let Some(m) = missing {
                if !self.op.if_exists && !m.iter().any(|k| **k == *self.key) {
                    m.push(self.key.to_string());
                }
            }
            if self.op.if_exists {
                return true;
            }
            return match self.op.set {
                SetOp::ForAllValues => true,
                SetOp::ForAnyValue => false,
                SetOp::Single => self.op.negated,
            };
        }
        match (self.op.set, self.op.negated) {
            (SetOp::Single | SetOp::ForAnyValue, false) => vals.iter().any(|v| self.matches_any(v)),
            (SetOp::Single | SetOp::ForAllValues, true) => vals.iter().all(|v| !self.matches_any(v)),
            (SetOp::ForAnyValue, true) => vals.iter().any(|v| !self.matches_any(v)),
            (SetOp::ForAllValues, false) => vals.iter().all(|v| self.matches_any(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.kind, Kind::StringLike);
        assert_eq!(op.set, SetOp::ForAllValues);
        assert!(op.if_exists && !op.negated);
        assert!(Operator::parse("NotIpAddress").unwrap().negated);
        assert_eq!(
            Operator::parse("StringEqualz").unwrap_err(),
            "unknown condition operator (did you mean \"StringEquals\"?)"
        );
        assert_eq!(
            Operator::parse("ForAnyValues:StringLike").unwrap_err(),
            "unknown set operator \"ForAnyValues:\" (expected ForAnyValue: or ForAllValues:) (did you mean \"ForAnyValue\"?)"
        );
        assert!(Operator::parse("NullIfExists").is_err());
        assert!(Operator::parse("ForAnyValue:Null").is_err());
        for (n, _, _) in OPERATORS {
            assert!(Operator::parse(n).is_ok());
            if *n != "Null" {
                assert!(Operator::parse(&format!("{n}IfExists")).is_ok());
                assert!(Operator::parse(&format!("ForAnyValue:{n}")).is_ok());
            }
        }
    }

    #[test]
    fn block_errors() {
        let p = |s: &str| parse_block(&json::parse(s).unwrap(), "Statement[0].Condition", true);
        let e = p("[]").unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition");
        assert_eq!(p("{}").unwrap_err().message, "must not be empty");
        let e = p(r#"{"StringEquals": {}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Statement[0].Condition.StringEquals: must not be empty");
        let e = p(r#"{"StringEquals": "x"}"#).unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition.StringEquals");
        let e = p(r#"{"StringEquals": {"": "x"}}"#).unwrap_err();
        assert_eq!(e.message, "empty condition key");
        let e = p(r#"{"StringEquals": {"iot:ClientId": []}}"#).unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition.StringEquals.iot:ClientId");
        let e = p(r#"{"StringEquals": {"iot:ClientId": ["a", null]}}"#).unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition.StringEquals.iot:ClientId[1]");
        let e = p(r#"{"NumericLessThan": {"k": "ten"}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Statement[0].Condition.NumericLessThan.k: \"ten\" is not a number");
        let e = p(r#"{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "10.0.0.0/99"]}}"#).unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition.IpAddress.aws:SourceIp[1]");
        let e = p(r#"{"DateLessThan": {"aws:CurrentTime": "soon"}}"#).unwrap_err();
        assert!(e.message.contains("is not a date"), "{e}");
        let e = p(r#"{"Bool": {"k": "yes"}}"#).unwrap_err();
        assert!(e.message.contains("\"yes\" is not \"true\" or \"false\""), "{e}");
        let e = p(r#"{"ArnLike": {"k": "arn:aws:iot"}}"#).unwrap_err();
        assert!(e.message.contains("is not an ARN"), "{e}");
        let e = p(r#"{"StringEquals": {"k": "${iot:Nope}"}}"#).unwrap_err();
        assert_eq!(e.path, "Statement[0].Condition.StringEquals.k");
        let ok =
            p(r#"{"NumericLessThan": {"k": 10}, "Bool": {"b": true}, "StringEquals": {"iot:clientid": "x"}}"#).unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[2].key, "iot:ClientId");
    }

    #[test]
    fn arn_patterns() {
        let a = |s: &str| arn_pattern(&[Seg::Pattern(s.into())]).unwrap();
        assert!(a("*").matches("anything"));
        let p = a("arn:aws:iot:*:123:topic/*");
        assert!(p.matches("arn:aws:iot:eu-west-1:123:topic/a:b"));
        assert!(!p.matches("arn:aws:iot:eu-west-1:124:topic/a"));
        assert!(!p.matches("arn:aws:iot:eu-west-1"));
        // `*` does not cross a component boundary: five parts are not an ARN
        assert!(arn_pattern(&[Seg::Pattern("arn:aws:*:123:topic/x".into())]).is_none());
        let p = a("arn:aws:iot:*:*:topic/x");
        assert!(!p.matches("arn:aws:iot:r:a:b:topic/x"));
        // a substituted value is literal, `:` included
        let p = arn_pattern(&[Seg::Pattern("arn:aws:iot:r:1:thing/".into()), Seg::Literal("a:*".into())]).unwrap();
        assert!(p.matches("arn:aws:iot:r:1:thing/a:*"));
        assert!(!p.matches("arn:aws:iot:r:1:thing/a:b"));
        assert!(arn_pattern(&[Seg::Pattern("urn:a:b:c:d:e".into())]).is_none());
    }
}

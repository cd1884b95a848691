//! Evaluation of statements and expressions against one message.
//!
//! Evaluation never fails and never panics: an operand of the wrong type
//! makes the result `Undefined`, as the AWS operator tables say.
//!
//! Decisions where the AWS documentation is silent or ambiguous:
//! * `AND` and `OR` take `Boolean`s or the strings `"true"`/`"false"`. A
//!   decisive side wins even when the other is `Undefined`
//!   (`false AND x` is `false`, `true OR x` is `true`); otherwise a
//!   non-boolean side makes the result `Undefined`. The left side is
//!   evaluated first and the right side is skipped when the left decides.
//! * Only `Boolean` `true` satisfies `WHERE`.
//! * `IN` and `CONTAINS` compare with `=`. `x IN list` needs an array on the
//!   right; `a CONTAINS b` takes an array on the left (membership) or a
//!   string (substring, the right side converted to a string).
//! * Division or remainder by zero is `Undefined`. `Int / Int` truncates
//!   toward zero, `Int % Int` has the sign of the dividend (as in Java).
//! * An unaliased select item is named after its last key (`a.b.c` → `c`,
//!   `a[0]` → `a`), a function call after the function (`upper(x)` →
//!   `upper`), anything else `_N` for the N-th item (1-based).
//! * `SELECT *` with other items, on a payload that is not a JSON object,
//!   contributes no keys (AWS rejects such a rule for binary payloads).

use crate::ast::{BinaryOp, Expr, From, IsKind, Query, Select, SelectItem, UnaryOp};
use crate::functions;
use crate::value::{Map, Num, Value};
use crate::{Env, Input, Output};

/// The document expressions read keys from.
#[derive(Clone, Copy)]
pub(crate) enum Doc<'a> {
    /// No document (binary payload, or the payload was not needed).
    None,
    /// The parsed payload, or an element of it in a nested query.
    Json(&'a serde_json::Value),
    /// A computed value (an element of a computed array in a nested query).
    Value(&'a Value),
}

/// Everything an expression can see.
pub(crate) struct Scope<'a> {
    pub input: &'a Input<'a>,
    pub env: &'a dyn Env,
    pub doc: Doc<'a>,
    /// Whether `doc` is the message's payload (not an element in a nested query).
    pub top_level: bool,
}

/// Where a path expression points: into the document (borrowed) or at a
/// computed value.
enum Place<'a> {
    Missing,
    Json(&'a serde_json::Value),
    Val(&'a Value),
    Owned(Value),
}

impl<'a> Place<'a> {
    fn into_value(self) -> Value {
        match self {
            Place::Missing => Value::Undefined,
            Place::Json(j) => Value::from_json(j),
            Place::Val(v) => v.clone(),
            Place::Owned(v) => v,
        }
    }

    fn member(self, key: &str) -> Place<'a> {
        match self {
            Place::Json(serde_json::Value::Object(m)) => m.get(key).map_or(Place::Missing, Place::Json),
            Place::Val(Value::Object(m)) => m.get(key).map_or(Place::Missing, Place::Val),
            Place::Owned(Value::Object(mut m)) => m.remove(key).map_or(Place::Missing, Place::Owned),
            _ => Place::Missing,
        }
    }

    fn index(self, idx: &Value) -> Place<'a> {
        if let Value::String(key) = idx {
            return self.member(key);
        }
        let Some(i) = idx.to_int_floor().and_then(|i| usize::try_from(i).ok()) else {
            return Place::Missing;
        };
        match self {
            Place::Json(serde_json::Value::Array(a)) => a.get(i).map_or(Place::Missing, Place::Json),
            Place::Val(Value::Array(a)) => a.get(i).map_or(Place::Missing, Place::Val),
            Place::Owned(Value::Array(mut a)) if i < a.len() => Place::Owned(a.swap_remove(i)),
            _ => Place::Missing,
        }
    }
}

impl<'a> Scope<'a> {
    fn child<'c>(&'c self, doc: Doc<'c>) -> Scope<'c> {
        Scope { input: self.input, env: self.env, doc, top_level: false }
    }

    /// The whole document as a value (`*` as an argument).
    pub fn doc_value(&self) -> Value {
        match self.doc {
            Doc::None => Value::Undefined,
            Doc::Json(j) => Value::from_json(j),
            Doc::Value(v) => v.clone(),
        }
    }

    fn place(&self, e: &Expr) -> Place<'a> {
        match e {
            Expr::Field(name) => match self.doc {
                Doc::Json(j) => Place::Json(j).member(name),
                Doc::Value(v) => Place::Val(v).member(name),
                Doc::None => Place::Missing,
            },
            Expr::Member(base, key) => self.place(base).member(key),
            Expr::Index(base, idx) => {
                let idx = self.eval(idx);
                self.place(base).index(&idx)
            }
            other => Place::Owned(self.eval(other)),
        }
    }

    /// Evaluates an expression.
    pub fn eval(&self, e: &Expr) -> Value {
        match e {
            Expr::Literal(v) => v.clone(),
            Expr::Field(_) | Expr::Member(..) | Expr::Index(..) => self.place(e).into_value(),
            Expr::Star => self.doc_value(),
            Expr::Array(items) => Value::Array(items.iter().map(|i| self.eval(i)).collect()),
            Expr::Object(members) => Value::Object(members.iter().map(|(k, v)| (k.clone(), self.eval(v))).collect()),
            Expr::Unary(UnaryOp::Not, x) => match self.eval(x).to_bool() {
                Some(b) => Value::Bool(!b),
                None => Value::Undefined,
            },
            Expr::Unary(UnaryOp::Neg, x) => match self.eval(x).to_num() {
                Some(Num::Int(i)) => i.checked_neg().map_or(Value::Decimal(-(i as f64)), Value::Int),
                Some(Num::Dec(d)) => Value::decimal(-d),
                None => Value::Undefined,
            },
            Expr::Binary(BinaryOp::And, l, r) => {
                let lb = self.eval(l).to_bool();
                if lb == Some(false) {
                    return Value::Bool(false);
                }
                match (lb, self.eval(r).to_bool()) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Undefined,
                }
            }
            Expr::Binary(BinaryOp::Or, l, r) => {
                let lb = self.eval(l).to_bool();
                if lb == Some(true) {
                    return Value::Bool(true);
                }
                match (lb, self.eval(r).to_bool()) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Undefined,
                }
            }
            Expr::Binary(op, l, r) => binary(*op, &self.eval(l), &self.eval(r)),
            Expr::Is { expr, negated, kind } => {
                let v = self.eval(expr);
                let is = match kind {
                    IsKind::Null => matches!(v, Value::Null),
                    IsKind::Undefined => v.is_undefined(),
                };
                Value::Bool(is != *negated)
            }
            Expr::In { expr, list, negated } => {
                let needle = self.eval(expr);
                if needle.is_undefined() {
                    return Value::Undefined;
                }
                match self.eval(list) {
                    Value::Array(items) => {
                        let found = items.iter().any(|i| needle.sql_eq(i) == Some(true));
                        Value::Bool(found != *negated)
                    }
                    _ => Value::Undefined,
                }
            }
            Expr::Case { operand, whens, otherwise } => {
                let subject = match operand {
                    Some(op) => {
                        let v = self.eval(op);
                        if v.is_undefined() {
                            return Value::Undefined;
                        }
                        Some(v)
                    }
                    None => None,
                };
                for (w, then) in whens {
                    let hit = match &subject {
                        Some(v) => v.sql_eq(&self.eval(w)) == Some(true),
                        None => self.eval(w) == Value::Bool(true),
                    };
                    if hit {
                        return self.eval(then);
                    }
                }
                otherwise.as_ref().map_or(Value::Undefined, |e| self.eval(e))
            }
            Expr::Call { func, args, regex } => functions::call(self, *func, args, regex.0.as_deref()),
            Expr::Cast(x, ty) => functions::cast(self.eval(x), *ty),
            Expr::Subquery(q) => self.subquery(q),
        }
    }

    fn subquery(&self, q: &Query) -> Value {
        let From::Expr(src) = &q.from else { return Value::Undefined };
        match self.place(src) {
            Place::Json(serde_json::Value::Array(a)) => {
                Value::Array(a.iter().filter_map(|el| self.child(Doc::Json(el)).row(q)).collect())
            }
            Place::Json(obj @ serde_json::Value::Object(_)) => {
                self.child(Doc::Json(obj)).row(q).unwrap_or(Value::Undefined)
            }
            Place::Val(Value::Array(a)) => {
                Value::Array(a.iter().filter_map(|el| self.child(Doc::Value(el)).row(q)).collect())
            }
            Place::Val(obj @ Value::Object(_)) => self.child(Doc::Value(obj)).row(q).unwrap_or(Value::Undefined),
            Place::Owned(Value::Array(a)) => {
                Value::Array(a.iter().filter_map(|el| self.child(Doc::Value(el)).row(q)).collect())
            }
            Place::Owned(obj @ Value::Object(_)) => self.child(Doc::Value(&obj)).row(q).unwrap_or(Value::Undefined),
            _ => Value::Undefined,
        }
    }

    /// Whether the `WHERE` clause (if any) holds.
    fn where_holds(&self, q: &Query) -> bool {
        q.where_clause.as_ref().is_none_or(|w| self.eval(w) == Value::Bool(true))
    }

    /// One result of a nested query on the current document; `None` when
    /// the `WHERE` clause does not hold or `SELECT VALUE` is `Undefined`.
    fn row(&self, q: &Query) -> Option<Value> {
        if !self.where_holds(q) {
            return None;
        }
        match &q.select {
            Select::Value(e) => Some(self.eval(e)).filter(|v| !v.is_undefined()),
            Select::Items(items) => {
                let mut out = Map::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        SelectItem::Star => merge_into(&mut out, self.doc_value()),
                        SelectItem::AllOf(e) => merge_into(&mut out, self.eval(e)),
                        SelectItem::Expr { expr, alias } => {
                            let v = self.eval(expr);
                            if !v.is_undefined() {
                                insert_value_path(&mut out, &item_key(expr, alias.as_deref(), i), v);
                            }
                        }
                    }
                }
                Some(Value::Object(out))
            }
        }
    }
}

fn merge_into(out: &mut Map, v: Value) {
    if let Value::Object(m) = v {
        out.extend(m.into_iter().filter(|(_, v)| !v.is_undefined()));
    }
}

fn insert_value_path(out: &mut Map, path: &[String], v: Value) {
    match path {
        [] => {}
        [key] => {
            out.insert(key.clone(), v);
        }
        [key, rest @ ..] => {
            let slot = out.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
            if !matches!(slot, Value::Object(_)) {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(m) = slot {
                insert_value_path(m, rest, v);
            }
        }
    }
}

fn insert_json_path(out: &mut serde_json::Map<String, serde_json::Value>, path: &[String], v: serde_json::Value) {
    match path {
        [] => {}
        [key] => {
            out.insert(key.clone(), v);
        }
        [key, rest @ ..] => {
            let slot = out.entry(key.clone()).or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !slot.is_object() {
                *slot = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(m) = slot {
                insert_json_path(m, rest, v);
            }
        }
    }
}

/// The output key path of a select item.
fn item_key(expr: &Expr, alias: Option<&[String]>, position: usize) -> Vec<String> {
    if let Some(a) = alias {
        return a.to_vec();
    }
    fn name(e: &Expr) -> Option<String> {
        match e {
            Expr::Field(n) | Expr::Member(_, n) => Some(n.clone()),
            Expr::Index(base, _) => name(base),
            Expr::Call { func, .. } => Some(func.name().to_string()),
            Expr::Cast(..) => Some("cast".to_string()),
            _ => None,
        }
    }
    vec![name(expr).unwrap_or_else(|| format!("_{}", position + 1))]
}

/// A binary operator other than `AND` and `OR`.
pub(crate) fn binary(op: BinaryOp, l: &Value, r: &Value) -> Value {
    if l.is_undefined() || r.is_undefined() {
        return Value::Undefined;
    }
    match op {
        BinaryOp::Eq => l.sql_eq(r).map_or(Value::Undefined, Value::Bool),
        BinaryOp::Neq => l.sql_eq(r).map_or(Value::Undefined, |b| Value::Bool(!b)),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let (Some(a), Some(b)) = (l.to_num(), r.to_num()) else { return Value::Undefined };
            let ord = match (a, b) {
                (Num::Int(x), Num::Int(y)) => x.cmp(&y),
                _ => match a.as_f64().partial_cmp(&b.as_f64()) {
                    Some(o) => o,
                    None => return Value::Undefined,
                },
            };
            Value::Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        BinaryOp::Add if matches!(l, Value::String(_)) || matches!(r, Value::String(_)) => {
            match (l.to_sql_string(), r.to_sql_string()) {
                (Some(a), Some(b)) => Value::String(a + &b),
                _ => Value::Undefined,
            }
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => arith(op, l, r),
        BinaryOp::Contains => match l {
            Value::Array(items) => Value::Bool(items.iter().any(|i| i.sql_eq(r) == Some(true))),
            Value::String(s) => r.to_sql_string().map_or(Value::Undefined, |n| Value::Bool(s.contains(&n))),
            _ => Value::Undefined,
        },
        BinaryOp::And | BinaryOp::Or => Value::Undefined,
    }
}

/// `+ - * / %` on numbers (strings converted for all but `+`).
pub(crate) fn arith(op: BinaryOp, l: &Value, r: &Value) -> Value {
    let numeric = |v: &Value| match (op, v) {
        (BinaryOp::Add, Value::String(_)) => None,
        _ => v.to_num(),
    };
    let (Some(a), Some(b)) = (numeric(l), numeric(r)) else { return Value::Undefined };
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if y == 0 => return Value::Undefined,
            BinaryOp::Div => x.checked_div(y),
            BinaryOp::Mod if y == 0 => return Value::Undefined,
            BinaryOp::Mod => Some(x.checked_rem(y).unwrap_or(0)),
            _ => None,
        };
        if let Some(v) = exact {
            return Value::Int(v);
        }
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Value::decimal(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div if y == 0.0 => return Value::Undefined,
        BinaryOp::Div => x / y,
        BinaryOp::Mod if y == 0.0 => return Value::Undefined,
        BinaryOp::Mod => x % y,
        _ => return Value::Undefined,
    })
}

/// Whether an expression anywhere reads the payload document.
pub(crate) fn needs_doc(e: &Expr) -> bool {
    match e {
        Expr::Field(_) | Expr::Star | Expr::Subquery(_) => true,
        Expr::Literal(_) => false,
        Expr::Member(b, _) | Expr::Unary(_, b) | Expr::Cast(b, _) => needs_doc(b),
        Expr::Is { expr, .. } => needs_doc(expr),
        Expr::Index(a, b) | Expr::Binary(_, a, b) | Expr::In { expr: a, list: b, .. } => needs_doc(a) || needs_doc(b),
        Expr::Array(items) => items.iter().any(needs_doc),
        Expr::Object(m) => m.iter().any(|(_, v)| needs_doc(v)),
        Expr::Call { args, .. } => args.iter().any(needs_doc),
        Expr::Case { operand, whens, otherwise } => {
            operand.as_deref().is_some_and(needs_doc)
                || whens.iter().any(|(w, t)| needs_doc(w) || needs_doc(t))
                || otherwise.as_deref().is_some_and(needs_doc)
        }
    }
}

/// Whether a top-level statement reads the payload document.
pub(crate) fn query_needs_doc(q: &Query) -> bool {
    let select = match &q.select {
        Select::Value(e) => needs_doc(e),
        Select::Items(items) => items.iter().any(|i| match i {
            SelectItem::Star => true,
            SelectItem::AllOf(e) | SelectItem::Expr { expr: e, .. } => needs_doc(e),
        }),
    };
    select || q.where_clause.as_ref().is_some_and(needs_doc)
}

/// Parses the payload when it is JSON.
pub(crate) fn parse_payload(payload: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(payload).ok()
}

/// Runs a top-level statement on one message.
pub(crate) fn run(q: &Query, needs: bool, input: &Input<'_>, env: &dyn Env) -> Option<Output> {
    let mut doc = if needs { parse_payload(input.payload) } else { None };
    let mut star = false;
    let mut entries: Vec<(Vec<String>, Value)> = Vec::new();
    {
        let scope = Scope { input, env, doc: doc.as_ref().map_or(Doc::None, Doc::Json), top_level: true };
        if !scope.where_holds(q) {
            return None;
        }
        match &q.select {
            Select::Value(Expr::Star) => star = true,
            Select::Value(e) => {
                return Some(match scope.eval(e).into_json() {
                    Some(j) => Output::Json(j),
                    None => Output::Bytes(Vec::new()),
                });
            }
            Select::Items(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        SelectItem::Star => star = true,
                        SelectItem::AllOf(e) => {
                            if let Value::Object(m) = scope.eval(e) {
                                entries.extend(m.into_iter().map(|(k, v)| (vec![k], v)));
                            }
                        }
                        SelectItem::Expr { expr, alias } => {
                            entries.push((item_key(expr, alias.as_deref(), i), scope.eval(expr)));
                        }
                    }
                }
            }
        }
    }
    if let Some(d) = doc.as_mut().filter(|_| star) {
        normalize_numbers(d);
    }
    let only_star = star && entries.is_empty();
    if only_star {
        let value_form = matches!(q.select, Select::Value(_));
        return Some(match doc.take() {
            Some(d @ serde_json::Value::Object(_)) => Output::Json(d),
            Some(d) if value_form => Output::Json(d),
            _ => Output::Bytes(input.payload.to_vec()),
        });
    }
    let mut out = match (star, doc.take()) {
        (true, Some(serde_json::Value::Object(m))) => m,
        _ => serde_json::Map::new(),
    };
    for (path, v) in entries {
        if let Some(j) = v.into_json() {
            insert_json_path(&mut out, &path, j);
        }
    }
    Some(Output::Json(serde_json::Value::Object(out)))
}

/// Rewrites whole floating-point numbers (`10.0`) as integers, as SQL
/// version 2016-03-23 reads them.
fn normalize_numbers(j: &mut serde_json::Value) {
    match j {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(i) = n.as_f64().and_then(crate::value::whole_f64) {
                *j = serde_json::Value::from(i);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(normalize_numbers),
        serde_json::Value::Object(m) => m.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// Evaluates one expression against a message (substitution templates).
pub(crate) fn eval_standalone(e: &Expr, doc: Option<&serde_json::Value>, input: &Input<'_>, env: &dyn Env) -> Value {
    let scope = Scope { input, env, doc: doc.map_or(Doc::None, Doc::Json), top_level: true };
    scope.eval(e)
}

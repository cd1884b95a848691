//! The syntax tree of an AWS IoT SQL statement, and a printer that writes
//! it back as SQL the parser reads to the same tree.
//!
//! The printer parenthesises every operation, so its output shows how a
//! statement was grouped (`SELECT ((a + (b * 2)) > 3) AS x FROM 't'`).

use std::fmt;
use std::sync::Arc;

use crate::functions::Func;
use crate::value::Value;

/// A `SELECT … FROM … [WHERE …]` statement, top-level or nested.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What the statement produces.
    pub select: Select,
    /// Where its input comes from.
    pub from: From,
    /// The condition, if any.
    pub where_clause: Option<Expr>,
}

/// The `FROM` part.
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    /// A top-level statement's MQTT topic filter.
    Topic(String),
    /// A nested query's source: an expression yielding an array (the query
    /// runs once per element) or an object (it runs once on it).
    Expr(Expr),
}

/// The `SELECT` part.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `SELECT VALUE expr`: the output is the value itself.
    Value(Expr),
    /// `SELECT item, …`: the output is an object.
    Items(Vec<SelectItem>),
}

/// One item of a `SELECT` list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`: every key of the input document.
    Star,
    /// `path.*`: every key of the object at `path`.
    AllOf(Expr),
    /// `expr [AS alias]`.
    Expr {
        /// The selected expression.
        expr: Expr,
        /// The output key given with `AS`; a dotted alias (`AS a.b`) is a
        /// path that nests the value in objects.
        alias: Option<Vec<String>>,
    },
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `NOT x`.
    Not,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `=`.
    Eq,
    /// `<>` (also written `!=`).
    Neq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+` (addition, or concatenation when a side is a string).
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `CONTAINS`: array membership or substring.
    Contains,
}

impl BinaryOp {
    /// The operator as written in SQL.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Contains => "CONTAINS",
        }
    }
}

/// What `IS [NOT] …` tests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsKind {
    /// `IS NULL`.
    Null,
    /// `IS UNDEFINED`.
    Undefined,
}

/// Target types of `cast(x AS type)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    /// `String`, `Nvarchar`, `Text`, `Ntext`, `Varchar`.
    String,
    /// `Int`, `Integer`.
    Int,
    /// `Decimal`, `Double`.
    Decimal,
    /// `Bool`, `Boolean`.
    Bool,
}

impl CastType {
    /// The type for a keyword after `AS` (case-insensitive).
    pub fn from_keyword(s: &str) -> Option<CastType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "string" | "nvarchar" | "text" | "ntext" | "varchar" => CastType::String,
            "int" | "integer" => CastType::Int,
            "decimal" | "double" => CastType::Decimal,
            "bool" | "boolean" => CastType::Bool,
            _ => return None,
        })
    }

    fn keyword(self) -> &'static str {
        match self {
            CastType::String => "String",
            CastType::Int => "Int",
            CastType::Decimal => "Decimal",
            CastType::Bool => "Boolean",
        }
    }
}

/// A regular expression compiled when the rule was created (for a literal
/// pattern argument). Ignored by equality.
#[derive(Clone, Default)]
pub struct CachedRegex(pub(crate) Option<Arc<regex::Regex>>);

impl PartialEq for CachedRegex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for CachedRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(r) => write!(f, "CachedRegex({:?})", r.as_str()),
            None => f.write_str("CachedRegex(None)"),
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `null`, `true`, `false`, a number or a string.
    Literal(Value),
    /// A key of the input document (`color`).
    Field(String),
    /// `base.key`.
    Member(Box<Expr>, String),
    /// `base[index]`: an array element, or an object key when the index is a string.
    Index(Box<Expr>, Box<Expr>),
    /// `*` as a function argument: the whole payload.
    Star,
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// `{"k": v}`.
    Object(Vec<(String, Expr)>),
    /// A unary operation.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operation.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x IS [NOT] NULL|UNDEFINED`.
    Is {
        /// The tested expression.
        expr: Box<Expr>,
        /// `IS NOT`.
        negated: bool,
        /// What is tested for.
        kind: IsKind,
    },
    /// `x [NOT] IN list`: `list` is an array expression or a parenthesised list.
    In {
        /// The needle.
        expr: Box<Expr>,
        /// The haystack (an array).
        list: Box<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    Case {
        /// The value compared with each `WHEN` (absent for a searched CASE).
        operand: Option<Box<Expr>>,
        /// `(WHEN, THEN)` pairs, at least one.
        whens: Vec<(Expr, Expr)>,
        /// The `ELSE` result.
        otherwise: Option<Box<Expr>>,
    },
    /// A function call.
    Call {
        /// The function.
        func: Func,
        /// The arguments.
        args: Vec<Expr>,
        /// The compiled pattern when the pattern argument is a literal.
        regex: CachedRegex,
    },
    /// `cast(x AS type)`.
    Cast(Box<Expr>, CastType),
    /// A nested `(SELECT … FROM expr [WHERE …])`.
    Subquery(Box<Query>),
}

/// Words the parser never reads as a field name.
pub(crate) const RESERVED: &[&str] = &[
    "select", "from", "where", "as", "and", "or", "not", "case", "when", "then", "else", "end", "true", "false",
    "null", "is", "in", "contains",
];

/// Whether `s` can be written as a bare identifier.
pub(crate) fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

struct Ident<'a>(&'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_ident(self.0) {
            f.write_str(self.0)
        } else {
            write!(f, "`{}`", self.0.replace('`', "``"))
        }
    }
}

struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\\', "\\\\").replace('\'', "''"))
    }
}

fn write_literal(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) if *i < 0 => write!(f, "(-{})", i.unsigned_abs()),
        Value::Int(i) => write!(f, "{i}"),
        Value::Decimal(d) if *d < 0.0 => write!(f, "(-{:?})", -d),
        Value::Decimal(d) => write!(f, "{d:?}"),
        Value::String(s) => write!(f, "{}", Quoted(s)),
        // Not produced by the parser; printed as something readable.
        other => f.write_str(&other.to_sql_string().unwrap_or_else(|| "null".into())),
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(v) => write_literal(f, v),
            Expr::Field(name) => write!(f, "{}", Ident(name)),
            Expr::Member(base, key) => write!(f, "{base}.{}", Ident(key)),
            Expr::Index(base, idx) => write!(f, "{base}[{idx}]"),
            Expr::Star => f.write_str("*"),
            Expr::Array(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            Expr::Object(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", Quoted(k))?;
                }
                f.write_str("}")
            }
            Expr::Unary(UnaryOp::Neg, e) => write!(f, "(-{e})"),
            Expr::Unary(UnaryOp::Not, e) => write!(f, "(NOT {e})"),
            Expr::Binary(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            Expr::Is { expr, negated, kind } => {
                let not = if *negated { "NOT " } else { "" };
                let what = match kind {
                    IsKind::Null => "NULL",
                    IsKind::Undefined => "UNDEFINED",
                };
                write!(f, "({expr} IS {not}{what})")
            }
            Expr::In { expr, list, negated } => {
                write!(f, "({expr} {}IN {list})", if *negated { "NOT " } else { "" })
            }
            Expr::Case { operand, whens, otherwise } => {
                f.write_str("CASE")?;
                if let Some(op) = operand {
                    write!(f, " {op}")?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Call { func, args, .. } => {
                write!(f, "{}(", func.name())?;
                write_list(f, args)?;
                f.write_str(")")
            }
            Expr::Cast(e, t) => write!(f, "cast({e} AS {})", t.keyword()),
            Expr::Subquery(q) => write!(f, "({q})"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        match &self.select {
            Select::Value(e) => write!(f, "VALUE {e}")?,
            Select::Items(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match item {
                        SelectItem::Star => f.write_str("*")?,
                        SelectItem::AllOf(e) => write!(f, "{e}.*")?,
                        SelectItem::Expr { expr, alias: None } => write!(f, "{expr}")?,
                        SelectItem::Expr { expr, alias: Some(path) } => {
                            write!(f, "{expr} AS ")?;
                            for (i, key) in path.iter().enumerate() {
                                if i > 0 {
                                    f.write_str(".")?;
                                }
                                write!(f, "{}", Ident(key))?;
                            }
                        }
                    }
                }
            }
        }
        match &self.from {
            From::Topic(t) => write!(f, " FROM {}", Quoted(t))?,
            From::Expr(e) => write!(f, " FROM {e}")?,
        }
        if let Some(w) = &self.where_clause {
            write!(f, " WHERE {w}")?;
        }
        Ok(())
    }
}

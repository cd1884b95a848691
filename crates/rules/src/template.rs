//! Substitution templates: `${expression}` inside an action's parameters
//! ("Substitution templates" page of the AWS IoT developer guide).
//!
//! A template is parsed when the rule is created; each `${…}` holds any
//! expression of the SQL dialect and ends at the `}` that closes it (braces
//! and quotes inside the expression are fine: `${get({'a': 1}, 'a')}`).
//! Expressions are evaluated against the original message — its payload
//! keys, `topic()`, `clientid()`, `timestamp()` … — never against the
//! `SELECT` output, so aliases cannot be used.
//!
//! Rendering: strings as they are, numbers and booleans in their standard
//! text, arrays and objects as JSON, `null` as `null`, and `Undefined` as
//! nothing. A `$` not followed by `{` is literal text.

use crate::ast::Expr;
use crate::error::RuleError;
use crate::eval;
use crate::parser::Parser;
use crate::{Env, Input};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A parsed substitution template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    needs_doc: bool,
}

impl Template {
    /// Parses a template such as `"${topic()}/republish"`.
    pub fn parse(s: &str) -> Result<Template, RuleError> {
        let mut parts = Vec::new();
        let mut pos = 0;
        while let Some(found) = s[pos..].find("${") {
            let start = pos + found;
            if start > pos {
                parts.push(Part::Text(s[pos..start].to_string()));
            }
            let (expr, end) = Parser::new(s, start + 2).parse_template_expr()?;
            parts.push(Part::Expr(expr));
            pos = end;
        }
        if pos < s.len() {
            parts.push(Part::Text(s[pos..].to_string()));
        }
        let needs_doc = parts.iter().any(|p| matches!(p, Part::Expr(e) if eval::needs_doc(e)));
        Ok(Template { parts, needs_doc })
    }

    /// Whether the template has no `${…}` (it renders to itself).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The expressions of the template, in order.
    pub fn expressions(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Text(_) => None,
        })
    }

    /// Renders the template for one message.
    pub fn render(&self, msg: &Input<'_>, env: &dyn Env) -> String {
        let doc = if self.needs_doc { eval::parse_payload(msg.payload) } else { None };
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => out.push_str(&eval::eval_standalone(e, doc.as_ref(), msg, env).render()),
            }
        }
        out
    }
}

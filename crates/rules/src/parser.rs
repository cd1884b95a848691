//! A recursive-descent parser for AWS IoT SQL (version 2016-03-23).
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! query      := SELECT (VALUE expr | item (, item)*) FROM source [WHERE expr]
//! item       := * | expr . * | expr [AS name (. name)*]
//! source     := 'topic/filter'            (top level)
//!             | expr                      (nested query)
//! expr       := or
//! or         := and (OR and)*
//! and        := not (AND not)*
//! not        := NOT not | comparison
//! comparison := additive ( (= | <> | != | < | <= | > | >=) additive
//!                        | IS [NOT] (NULL | UNDEFINED)
//!                        | [NOT] IN (additive | ( expr, … ))
//!                        | CONTAINS additive )*
//! additive   := multiplicative ((+ | -) multiplicative)*
//! multiplicative := unary ((* | / | %) unary)*
//! unary      := - unary | postfix
//! postfix    := primary (. name | [ expr ])*
//! primary    := literal | name | name ( args ) | cast ( expr AS type )
//!             | CASE … END | ( expr ) | ( query ) | [ … ] | { 'key': expr, … }
//! ```
//!
//! Decisions where the AWS documentation is silent:
//! * Precedence is the usual SQL one shown above; comparison operators chain
//!   left to right.
//! * `VALUE` right after `SELECT` is the keyword only when an expression
//!   follows it (`SELECT value FROM …` and `SELECT value AS v …` select a key
//!   named `value`).
//! * Calls to unknown functions, calls with a wrong number of arguments,
//!   unknown `cast` types and invalid literal regular expressions are errors
//!   when the rule is created (AWS returns `Undefined` at run time for some
//!   of them; an early error is more useful).
//! * A minus sign before a numeric literal is folded into the literal.
//! * Nesting deeper than [`MAX_DEPTH`] is rejected, so that hostile input
//!   cannot exhaust the stack.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ast::{BinaryOp, CachedRegex, CastType, Expr, From, IsKind, Query, Select, SelectItem, UnaryOp, RESERVED};
use crate::error::RuleError;
use crate::functions::{self, Lookup};
use crate::lexer::{Lexer, Tok, Token};
use crate::value::Value;

/// Deepest nesting of expressions accepted.
pub const MAX_DEPTH: usize = 64;

pub(crate) struct Parser<'s> {
    src: &'s str,
    lexer: Lexer<'s>,
    ahead: VecDeque<Token>,
    depth: usize,
}

fn is_kw(t: &Token, kw: &str) -> bool {
    matches!(&t.tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

impl<'s> Parser<'s> {
    /// A parser reading `src` from byte offset `pos`.
    pub fn new(src: &'s str, pos: usize) -> Self {
        Parser { src, lexer: Lexer::new(src, pos), ahead: VecDeque::new(), depth: 0 }
    }

    fn fill(&mut self, n: usize) -> Result<(), RuleError> {
        while self.ahead.len() <= n {
            let t = self.lexer.next_token()?;
            self.ahead.push_back(t);
        }
        Ok(())
    }

    /// The next token, not consumed.
    fn peek(&mut self) -> Result<&Token, RuleError> {
        self.peek_nth(0)
    }

    fn peek_nth(&mut self, n: usize) -> Result<&Token, RuleError> {
        self.fill(n)?;
        Ok(&self.ahead[n])
    }

    fn bump(&mut self) -> Result<Token, RuleError> {
        self.fill(0)?;
        Ok(self.ahead.pop_front().expect("filled"))
    }

    fn describe(&self, t: &Token) -> String {
        match t.tok {
            Tok::Eof => "end of input".to_string(),
            _ => format!("'{}'", &self.src[t.start..t.end]),
        }
    }

    fn error_at(&self, t: &Token, expected: &str) -> RuleError {
        RuleError::new(self.src, t.start, format!("expected {expected}, found {}", self.describe(t)))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, RuleError> {
        let t = self.bump()?;
        if t.tok == tok {
            Ok(t)
        } else {
            Err(self.error_at(&t, what))
        }
    }

    fn peek_kw(&mut self, kw: &str) -> Result<bool, RuleError> {
        Ok(is_kw(self.peek()?, kw))
    }

    fn eat_kw(&mut self, kw: &str) -> Result<bool, RuleError> {
        if self.peek_kw(kw)? {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<Token, RuleError> {
        let t = self.bump()?;
        if is_kw(&t, kw) {
            Ok(t)
        } else {
            Err(self.error_at(&t, kw))
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::new(self.src, at, format!("expression nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    /// Parses a whole top-level statement (nothing may follow it).
    pub fn parse_statement(&mut self) -> Result<Query, RuleError> {
        let q = self.parse_query(true)?;
        let t = self.bump()?;
        if t.tok != Tok::Eof {
            return Err(RuleError::new(
                self.src,
                t.start,
                format!("unexpected {} after the end of the statement", self.describe(&t)),
            ));
        }
        Ok(q)
    }

    /// Parses one expression and the `}` that closes a template's `${`;
    /// returns the expression and the byte offset just after the `}`.
    pub fn parse_template_expr(&mut self) -> Result<(Expr, usize), RuleError> {
        let e = self.parse_expr()?;
        let close = self.expect(Tok::RBrace, "'}' closing the substitution")?;
        Ok((e, close.end))
    }

    fn parse_query(&mut self, top_level: bool) -> Result<Query, RuleError> {
        self.expect_kw("SELECT")?;
        let select = if self.value_keyword_follows()? {
            self.bump()?;
            if self.peek()?.tok == Tok::Star {
                self.bump()?;
                Select::Value(Expr::Star)
            } else {
                Select::Value(self.parse_expr()?)
            }
        } else {
            let mut items = vec![self.parse_item()?];
            while self.peek()?.tok == Tok::Comma {
                self.bump()?;
                items.push(self.parse_item()?);
            }
            Select::Items(items)
        };
        let from_tok = self.bump()?;
        if !is_kw(&from_tok, "FROM") {
            let expected = if matches!(select, Select::Items(_)) { "',' or FROM" } else { "FROM" };
            return Err(self.error_at(&from_tok, expected));
        }
        let from = if top_level {
            let t = self.bump()?;
            match t.tok {
                Tok::Str(filter) => {
                    if let Err(why) = crate::validate_topic_filter(&filter) {
                        return Err(RuleError::new(self.src, t.start, format!("invalid topic filter: {why}")));
                    }
                    From::Topic(filter)
                }
                _ => return Err(self.error_at(&t, "a quoted topic filter")),
            }
        } else {
            From::Expr(self.parse_expr()?)
        };
        let where_clause = if self.eat_kw("WHERE")? { Some(self.parse_expr()?) } else { None };
        Ok(Query { select, from, where_clause })
    }

    /// Whether the next token is the `VALUE` keyword rather than a key named
    /// `value`.
    fn value_keyword_follows(&mut self) -> Result<bool, RuleError> {
        let first = self.peek()?.clone();
        if !is_kw(&first, "VALUE") {
            return Ok(false);
        }
        let next = self.peek_nth(1)?.clone();
        Ok(match &next.tok {
            Tok::Ident(s) => {
                let s = s.to_ascii_lowercase();
                match s.as_str() {
                    "from" | "as" | "and" | "or" | "is" | "in" | "contains" => false,
                    "not" => !is_kw(self.peek_nth(2)?, "IN"),
                    _ => true,
                }
            }
            Tok::QuotedIdent(_) | Tok::Str(_) | Tok::Int(_) | Tok::Decimal(_) | Tok::LParen | Tok::LBrace => true,
            // `value[0]` indexes a key named value; `VALUE [a, b]` is an array.
            Tok::LBracket => next.start > first.end,
            // `SELECT VALUE * FROM …` versus `SELECT value * 2 …`.
            Tok::Star => is_kw(self.peek_nth(2)?, "FROM"),
            // `SELECT VALUE -2` versus `SELECT value - 2` and `value-2`.
            Tok::Minus => next.start > first.end && self.peek_nth(2)?.start == next.end,
            _ => false,
        })
    }

    fn parse_item(&mut self) -> Result<SelectItem, RuleError> {
        if self.peek()?.tok == Tok::Star {
            self.bump()?;
            return Ok(SelectItem::Star);
        }
        let expr = self.parse_expr()?;
        if self.peek()?.tok == Tok::Dot && self.peek_nth(1)?.tok == Tok::Star {
            self.bump()?;
            self.bump()?;
            return Ok(SelectItem::AllOf(expr));
        }
        let alias = if self.eat_kw("AS")? {
            let mut path = vec![self.parse_name("an alias")?];
            while self.peek()?.tok == Tok::Dot {
                self.bump()?;
                path.push(self.parse_name("an alias")?);
            }
            Some(path)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    /// An identifier, back-quoted identifier or (for aliases) string.
    fn parse_name(&mut self, what: &str) -> Result<String, RuleError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Ident(s) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&s)) => Ok(s),
            Tok::QuotedIdent(s) | Tok::Str(s) => Ok(s),
            _ => Err(self.error_at(&t, what)),
        }
    }

    pub(crate) fn parse_expr(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.parse_and()?;
        while self.eat_kw("OR")? {
            let right = self.parse_and()?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.parse_not()?;
        while self.eat_kw("AND")? {
            let right = self.parse_not()?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Expr, RuleError> {
        let at = self.peek()?.start;
        self.enter(at)?;
        let e = if self.eat_kw("NOT")? {
            Expr::Unary(UnaryOp::Not, Box::new(self.parse_not()?))
        } else {
            self.parse_comparison()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn parse_comparison(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.parse_additive()?;
        loop {
            let t = self.peek()?.clone();
            let op = match &t.tok {
                Tok::Eq => BinaryOp::Eq,
                Tok::Neq => BinaryOp::Neq,
                Tok::Lt => BinaryOp::Lt,
                Tok::Le => BinaryOp::Le,
                Tok::Gt => BinaryOp::Gt,
                Tok::Ge => BinaryOp::Ge,
                Tok::Ident(_) if is_kw(&t, "CONTAINS") => BinaryOp::Contains,
                Tok::Ident(_) if is_kw(&t, "IS") => {
                    self.bump()?;
                    let negated = self.eat_kw("NOT")?;
                    let k = self.bump()?;
                    let kind = if is_kw(&k, "NULL") {
                        IsKind::Null
                    } else if is_kw(&k, "UNDEFINED") {
                        IsKind::Undefined
                    } else {
                        return Err(self.error_at(&k, "NULL or UNDEFINED"));
                    };
                    left = Expr::Is { expr: Box::new(left), negated, kind };
                    continue;
                }
                Tok::Ident(_) if is_kw(&t, "IN") || (is_kw(&t, "NOT") && is_kw(self.peek_nth(1)?, "IN")) => {
                    let negated = self.eat_kw("NOT")?;
                    self.bump()?;
                    let list = self.parse_in_list()?;
                    left = Expr::In { expr: Box::new(left), list: Box::new(list), negated };
                    continue;
                }
                _ => return Ok(left),
            };
            self.bump()?;
            let right = self.parse_additive()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// The right side of `IN`: `(a, b, …)` becomes an array literal; any
    /// other expression must evaluate to an array.
    fn parse_in_list(&mut self) -> Result<Expr, RuleError> {
        if self.peek()?.tok == Tok::LParen && !is_kw(self.peek_nth(1)?, "SELECT") {
            let open = self.bump()?;
            self.enter(open.start)?;
            let mut items = vec![self.parse_expr()?];
            while self.peek()?.tok == Tok::Comma {
                self.bump()?;
                items.push(self.parse_expr()?);
            }
            self.expect(Tok::RParen, "',' or ')'")?;
            self.depth -= 1;
            return Ok(if items.len() == 1 { items.pop().expect("one") } else { Expr::Array(items) });
        }
        self.parse_additive()
    }

    fn parse_additive(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.parse_multiplicative()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Plus => BinaryOp::Add,
                Tok::Minus => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.bump()?;
            let right = self.parse_multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn parse_multiplicative(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.parse_unary()?;
        loop {
            let op = match self.peek()?.tok {
                Tok::Star => BinaryOp::Mul,
                Tok::Slash => BinaryOp::Div,
                Tok::Percent => BinaryOp::Mod,
                _ => return Ok(left),
            };
            self.bump()?;
            let right = self.parse_unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn parse_unary(&mut self) -> Result<Expr, RuleError> {
        let at = self.peek()?.start;
        self.enter(at)?;
        let e = if self.peek()?.tok == Tok::Minus {
            self.bump()?;
            match self.parse_unary()? {
                Expr::Literal(Value::Int(i)) if i != i64::MIN => Expr::Literal(Value::Int(-i)),
                Expr::Literal(Value::Decimal(d)) => Expr::Literal(Value::number(-d)),
                other => Expr::Unary(UnaryOp::Neg, Box::new(other)),
            }
        } else {
            self.parse_postfix()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn parse_postfix(&mut self) -> Result<Expr, RuleError> {
        let mut e = self.parse_primary()?;
        loop {
            match self.peek()?.tok {
                Tok::Dot => {
                    if self.peek_nth(1)?.tok == Tok::Star {
                        return Ok(e);
                    }
                    self.bump()?;
                    let t = self.bump()?;
                    let key = match t.tok {
                        Tok::Ident(s) | Tok::QuotedIdent(s) => s,
                        _ => return Err(self.error_at(&t, "a key name after '.'")),
                    };
                    e = Expr::Member(Box::new(e), key);
                }
                Tok::LBracket => {
                    let open = self.bump()?;
                    self.enter(open.start)?;
                    let idx = self.parse_expr()?;
                    self.depth -= 1;
                    self.expect(Tok::RBracket, "']'")?;
                    e = Expr::Index(Box::new(e), Box::new(idx));
                }
                _ => return Ok(e),
            }
        }
    }

    fn parse_primary(&mut self) -> Result<Expr, RuleError> {
        let t = self.bump()?;
        Ok(match t.tok {
            Tok::Int(i) => Expr::Literal(Value::Int(i)),
            Tok::Decimal(d) => Expr::Literal(Value::number(d)),
            Tok::Str(s) => Expr::Literal(Value::String(s)),
            Tok::QuotedIdent(s) => Expr::Field(s),
            Tok::LParen => {
                if self.peek_kw("SELECT")? {
                    let q = self.parse_query(false)?;
                    self.expect(Tok::RParen, "')' closing the nested SELECT")?;
                    Expr::Subquery(Box::new(q))
                } else {
                    let e = self.parse_expr()?;
                    self.expect(Tok::RParen, "')'")?;
                    e
                }
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if self.peek()?.tok != Tok::RBracket {
                    items.push(self.parse_expr()?);
                    while self.peek()?.tok == Tok::Comma {
                        self.bump()?;
                        items.push(self.parse_expr()?);
                    }
                }
                self.expect(Tok::RBracket, "',' or ']'")?;
                Expr::Array(items)
            }
            Tok::LBrace => {
                let mut members = Vec::new();
                if self.peek()?.tok != Tok::RBrace {
                    loop {
                        let k = self.bump()?;
                        let key = match k.tok {
                            Tok::Str(s) | Tok::Ident(s) | Tok::QuotedIdent(s) => s,
                            _ => return Err(self.error_at(&k, "an object key")),
                        };
                        self.expect(Tok::Colon, "':'")?;
                        members.push((key, self.parse_expr()?));
                        if self.peek()?.tok != Tok::Comma {
                            break;
                        }
                        self.bump()?;
                    }
                }
                self.expect(Tok::RBrace, "',' or '}'")?;
                Expr::Object(members)
            }
            Tok::Ident(ref name) => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => Expr::Literal(Value::Bool(true)),
                    "false" => Expr::Literal(Value::Bool(false)),
                    "null" => Expr::Literal(Value::Null),
                    "case" => self.parse_case()?,
                    _ if self.peek()?.tok == Tok::LParen => self.parse_call(&t, &lower)?,
                    _ if RESERVED.contains(&lower.as_str()) => return Err(self.error_at(&t, "an expression")),
                    _ => Expr::Field(name.clone()),
                }
            }
            _ => return Err(self.error_at(&t, "an expression")),
        })
    }

    fn parse_case(&mut self) -> Result<Expr, RuleError> {
        let operand = if self.peek_kw("WHEN")? { None } else { Some(Box::new(self.parse_expr()?)) };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN")? {
            let w = self.parse_expr()?;
            self.expect_kw("THEN")?;
            whens.push((w, self.parse_expr()?));
        }
        if whens.is_empty() {
            let t = self.bump()?;
            return Err(self.error_at(&t, "WHEN"));
        }
        let otherwise = if self.eat_kw("ELSE")? { Some(Box::new(self.parse_expr()?)) } else { None };
        let end = self.bump()?;
        if !is_kw(&end, "END") {
            return Err(self.error_at(&end, if otherwise.is_some() { "END" } else { "WHEN, ELSE or END" }));
        }
        Ok(Expr::Case { operand, whens, otherwise })
    }

    fn parse_call(&mut self, name_tok: &Token, lower: &str) -> Result<Expr, RuleError> {
        self.expect(Tok::LParen, "'('")?;
        if lower == "cast" {
            let e = self.parse_expr()?;
            self.expect_kw("AS")?;
            let t = self.bump()?;
            let ty = match &t.tok {
                Tok::Ident(s) => CastType::from_keyword(s),
                _ => None,
            };
            let Some(ty) = ty else {
                return Err(self.error_at(&t, "a type (String, Int, Decimal, Bool)"));
            };
            self.expect(Tok::RParen, "')'")?;
            return Ok(Expr::Cast(Box::new(e), ty));
        }
        let func = match functions::lookup(lower) {
            Lookup::Found(f) => f,
            Lookup::Unsupported(why) => {
                return Err(RuleError::new(
                    self.src,
                    name_tok.start,
                    format!("function '{lower}' is not supported: {why}"),
                ));
            }
            Lookup::Unknown => {
                return Err(RuleError::new(self.src, name_tok.start, format!("unknown function '{lower}'")));
            }
        };
        let mut args = Vec::new();
        let mut arg_pos = Vec::new();
        if self.peek()?.tok != Tok::RParen {
            loop {
                let start = self.peek()?.start;
                arg_pos.push(start);
                let arg = if self.peek()?.tok == Tok::Star && matches!(self.peek_nth(1)?.tok, Tok::Comma | Tok::RParen)
                {
                    self.bump()?;
                    Expr::Star
                } else {
                    self.parse_expr()?
                };
                args.push(arg);
                if self.peek()?.tok != Tok::Comma {
                    break;
                }
                self.bump()?;
            }
        }
        self.expect(Tok::RParen, "',' or ')'")?;
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|m| args.len() > m) {
            let expected = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            let s = if expected == "1" { "" } else { "s" };
            return Err(RuleError::new(
                self.src,
                name_tok.start,
                format!("function '{}' takes {expected} argument{s}, found {}", func.name(), args.len()),
            ));
        }
        let mut regex = CachedRegex::default();
        if let Some(i) = func.regex_arg() {
            if let Some(Expr::Literal(Value::String(pattern))) = args.get(i) {
                match functions::compile_regex(pattern) {
                    Ok(r) => regex = CachedRegex(Some(Arc::new(r))),
                    Err(why) => {
                        return Err(RuleError::new(self.src, arg_pos[i], format!("invalid regular expression: {why}")));
                    }
                }
            }
        }
        Ok(Expr::Call { func, args, regex })
    }
}

/// Parses a top-level statement.
pub(crate) fn parse_statement(sql: &str) -> Result<Query, RuleError> {
    Parser::new(sql, 0).parse_statement()
}

//! AWS IoT SQL for Thingport: the rules engine's language, version
//! 2016-03-23 — lexer, parser, evaluator, built-in functions and
//! substitution templates.
//!
//! This crate is pure: text and bytes in, values out. It reads no clock and
//! makes no I/O; the time of a message comes with it ([`Input`]), and ids,
//! trace ids and shadow documents come from the caller's [`Env`].
//!
//! ```
//! use rules::{Env, Input, Output, Rule, Template};
//!
//! struct NoEnv;
//! impl Env for NoEnv {
//!     fn new_uuid(&self) -> String { "00000000-0000-4000-8000-000000000000".into() }
//!     fn trace_id(&self) -> String { "trace".into() }
//!     fn get_thing_shadow(&self, _: &str, _: Option<&str>) -> Option<serde_json::Value> { None }
//! }
//!
//! let rule = Rule::parse("SELECT color, temperature * 2 AS t2 FROM 'things/+/color' WHERE color = 'red'").unwrap();
//! assert!(rule.matches_topic("things/thing-2/color"));
//! let msg = Input {
//!     topic: "things/thing-2/color",
//!     payload: br#"{"color":"red","temperature":21}"#,
//!     client_id: Some("thing-2"),
//!     principal: None,
//!     timestamp_ms: 1_700_000_000_000,
//! };
//! let out = rule.evaluate(&msg, &NoEnv).unwrap();
//! assert_eq!(out, Output::Json(serde_json::json!({"color": "red", "t2": 42})));
//!
//! let topic = Template::parse("${topic(2)}/alerts").unwrap();
//! assert_eq!(topic.render(&msg, &NoEnv), "thing-2/alerts");
//! ```
//!
//! What is and is not supported, and the decisions taken where the AWS
//! documentation is ambiguous, are written on the modules: [`value`]
//! (types and conversions), `lexer` and `parser` (syntax), `eval`
//! (operators and output), [`functions`] and its submodules, and
//! [`template`](Template).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
mod error;
mod eval;
pub mod functions;
mod lexer;
mod parser;
mod template;
pub mod value;

pub use error::RuleError;
pub use template::Template;
pub use value::Value;

/// The SQL version this crate implements (`sql_version()`).
pub const SQL_VERSION: &str = "2016-03-23";

/// One message, as a rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The topic it was published to (a Basic Ingest `$aws/rules/<rule>/`
    /// prefix is hidden from `topic()`).
    pub topic: &'a str,
    /// The payload bytes; a JSON payload is parsed, anything else is binary.
    pub payload: &'a [u8],
    /// The publishing MQTT client (`clientid()`; `n/a` when absent).
    pub client_id: Option<&'a str>,
    /// The publisher's principal, e.g. its certificate id (`principal()`).
    pub principal: Option<&'a str>,
    /// When the message arrived, in milliseconds since the Unix epoch (`timestamp()`).
    pub timestamp_ms: i64,
}

/// What a rule produces for a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A JSON document (an object, or any value with `SELECT VALUE`).
    Json(serde_json::Value),
    /// Raw bytes: the payload itself for `SELECT *` on a payload that is not
    /// a JSON object, or nothing for `SELECT VALUE` of `Undefined`.
    Bytes(Vec<u8>),
}

impl Output {
    /// The bytes to send on (JSON serialized compactly).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Output::Json(j) => serde_json::to_vec(j).unwrap_or_default(),
            Output::Bytes(b) => b.clone(),
        }
    }

    /// The JSON document, if the output is JSON.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Output::Json(j) => Some(j),
            Output::Bytes(_) => None,
        }
    }
}

/// What a rule needs from outside: fresh ids and lookups. Implemented by
/// the caller; must not block for long, as rules run on the message path.
pub trait Env {
    /// A new random UUID, for `newuuid()`.
    fn new_uuid(&self) -> String;
    /// The trace id of the message being processed, for `traceid()`.
    fn trace_id(&self) -> String;
    /// The shadow document of a thing (`None` for the classic shadow's
    /// `shadow` argument), for `get_thing_shadow()`; `None` when it does not
    /// exist or may not be read.
    fn get_thing_shadow(&self, thing: &str, shadow: Option<&str>) -> Option<serde_json::Value>;
    /// A uniformly distributed number in [0, 1), for `rand()`. By default
    /// derived from [`Env::new_uuid`].
    fn random(&self) -> f64 {
        let hex: String = self.new_uuid().chars().filter(char::is_ascii_hexdigit).take(13).collect();
        u64::from_str_radix(&hex, 16).map_or(0.0, |n| n as f64 / (1u64 << (hex.len() * 4)) as f64)
    }
    /// The account that owns the rule, for `accountid()` (`Undefined` when `None`).
    fn account_id(&self) -> Option<String> {
        None
    }
}

/// Why a topic filter is not valid in `FROM`.
pub(crate) fn validate_topic_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("it is empty");
    }
    if filter.starts_with(mqtt::topic::SHARE_PREFIX) {
        return Err("shared subscriptions cannot be rule sources");
    }
    if !mqtt::topic::valid_topic_filter(filter) {
        return Err("'#' must be the last level and '+' and '#' must fill a whole level");
    }
    Ok(())
}

/// A parsed rule statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    query: ast::Query,
    needs_doc: bool,
}

impl Rule {
    /// Parses and checks a statement (`SELECT … FROM 'filter' [WHERE …]`).
    pub fn parse(sql: &str) -> Result<Rule, RuleError> {
        let query = parser::parse_statement(sql)?;
        let needs_doc = eval::query_needs_doc(&query);
        Ok(Rule { query, needs_doc })
    }

    /// The `FROM` topic filter (a valid MQTT filter, wildcards allowed).
    pub fn topic_filter(&self) -> &str {
        match &self.query.from {
            ast::From::Topic(t) => t,
            ast::From::Expr(_) => "",
        }
    }

    /// Whether a message on `topic` triggers this rule (MQTT matching: `+`
    /// one level, `#` any number of trailing levels; topics starting with
    /// `$` are not matched by a filter that starts with a wildcard).
    pub fn matches_topic(&self, topic: &str) -> bool {
        mqtt::topic::matches(self.topic_filter(), topic)
    }

    /// Runs the rule on one message. `None`: the `WHERE` clause was not
    /// `true`, so no action runs. `Some(output)`: the selected document.
    pub fn evaluate(&self, msg: &Input<'_>, env: &dyn Env) -> Option<Output> {
        eval::run(&self.query, self.needs_doc, msg, env)
    }

    /// The syntax tree.
    pub fn query(&self) -> &ast::Query {
        &self.query
    }
}

impl std::fmt::Display for Rule {
    /// The statement as SQL, fully parenthesised.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.query.fmt(f)
    }
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Rule, RuleError> {
        Rule::parse(s)
    }
}

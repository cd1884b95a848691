//! Policy documents: parsing and validation into a typed model.
//!
//! ```json
//! {"Version": "2012-10-17",
//!  "Statement": [{"Sid": "…", "Effect": "Allow" | "Deny",
//!                 "Action" | "NotAction": "…" | ["…"],
//!                 "Resource" | "NotResource": "…" | ["…"],
//!                 "Condition": {"Operator": {"key": "value" | ["…"]}}}]}
//! ```
//!
//! Validation is strict, because a policy that silently means something else
//! than its author thought is a security bug: unknown keys, empty arrays,
//! duplicate JSON keys or `Sid`s, unknown literal actions, malformed ARNs,
//! unknown policy variables and malformed condition values are all errors
//! that name the element at fault.
//!
//! `Version` may be `2012-10-17` or `2008-10-17`; when absent it is
//! `2008-10-17`, as in IAM. Under `2008-10-17` IAM treats `${…}` as literal
//! text; here any `${` in such a document is an error instead, so a policy
//! never quietly loses its variables (or escapes).

use crate::action::ActionPattern;
use crate::condition::{self, Condition};
use crate::error::{did_you_mean, PolicyError};
use crate::json::{self, Json};
use crate::resource;
use crate::template::Template;

/// Limits applied when parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Maximum document length in characters, not counting whitespace.
    /// AWS IoT's CreatePolicy allows 2048 (the default).
    pub max_len_without_whitespace: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { max_len_without_whitespace: 2048 }
    }
}

/// Whether a statement allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `"Effect": "Allow"`
    Allow,
    /// `"Effect": "Deny"`
    Deny,
}

/// One validated statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) not_action: bool,
    pub(crate) actions: Vec<ActionPattern>,
    pub(crate) not_resource: bool,
    pub(crate) resources: Vec<Template>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// The statement's `Sid`, if any.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Allow or Deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the actions are given as `NotAction`.
    pub fn is_not_action(&self) -> bool {
        self.not_action
    }

    /// The `Action` / `NotAction` entries as written.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|a| a.raw.as_str())
    }

    /// Whether the resources are given as `NotResource`.
    pub fn is_not_resource(&self) -> bool {
        self.not_resource
    }

    /// The `Resource` / `NotResource` entries as written.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(|r| r.raw.as_str())
    }

    /// The statement's conditions as `(operator as written, condition key in
    /// canonical spelling)` pairs.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.conditions.iter().map(|c| (c.operator_name.as_str(), c.key.as_str()))
    }
}

/// A parsed and validated policy document, with its original text.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    text: String,
    version: &'static str,
    statements: Vec<Statement>,
}

const TOP_KEYS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_KEYS: &[&str] = &["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"];

impl PolicyDocument {
    /// Parses and validates a policy document.
    pub fn parse(text: &str, opts: &ParseOptions) -> Result<Self, PolicyError> {
        let len = text.chars().filter(|c| !c.is_whitespace()).count();
        if len == 0 {
            return Err(PolicyError::new("policy", "document is empty"));
        }
        if len > opts.max_len_without_whitespace {
            return Err(PolicyError::new(
                "policy",
                format!(
                    "document is {len} characters long without whitespace; the limit is {}",
                    opts.max_len_without_whitespace
                ),
            ));
        }
        let json = json::parse(text)?;
        let Json::Object(top) = &json else {
            return Err(PolicyError::new("policy", format!("must be a JSON object, not {}", json.kind())));
        };
        for (k, _) in top {
            if !TOP_KEYS.contains(&k.as_str()) {
                let hint = did_you_mean(k, TOP_KEYS.iter().copied());
                return Err(PolicyError::new("policy", format!("unknown key \"{k}\"{hint}")));
            }
        }
        let get = |k: &str| top.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let version = match get("Version") {
            None => "2008-10-17",
            Some(Json::String(v)) if v == "2012-10-17" => "2012-10-17",
            Some(Json::String(v)) if v == "2008-10-17" => "2008-10-17",
            Some(Json::String(v)) => {
                return Err(PolicyError::new(
                    "Version",
                    format!("unsupported version \"{v}\" (expected \"2012-10-17\")"),
                ))
            }
            Some(other) => {
                return Err(PolicyError::new(
                    "Version",
                    format!("must be the string \"2012-10-17\", not {}", other.kind()),
                ))
            }
        };
        if let Some(id) = get("Id") {
            if !matches!(id, Json::String(_)) {
                return Err(PolicyError::new("Id", format!("must be a string, not {}", id.kind())));
            }
        }
        let vars_allowed = version == "2012-10-17";
        let items: Vec<(String, &Json)> = match get("Statement") {
            None => return Err(PolicyError::new("policy", "missing Statement")),
            Some(Json::Array(a)) if a.is_empty() => return Err(PolicyError::new("Statement", "must not be empty")),
            Some(Json::Array(a)) => a.iter().enumerate().map(|(i, s)| (format!("Statement[{i}]"), s)).collect(),
            Some(s @ Json::Object(_)) => vec![("Statement".to_string(), s)],
            Some(other) => {
                return Err(PolicyError::new(
                    "Statement",
                    format!("must be an object or an array of objects, not {}", other.kind()),
                ))
            }
        };
        let mut statements: Vec<Statement> = Vec::with_capacity(items.len());
        let mut sids: Vec<(String, String)> = Vec::new();
        for (path, s) in items {
            let st = parse_statement(s, &path, vars_allowed)?;
            if let Some(sid) = &st.sid {
                if let Some((_, other)) = sids.iter().find(|(s, _)| s == sid) {
                    return Err(PolicyError::new(
                        format!("{path}.Sid"),
                        format!("duplicate Sid \"{sid}\" (also used by {other})"),
                    ));
                }
                sids.push((sid.clone(), path.clone()));
            }
            statements.push(st);
        }
        Ok(PolicyDocument { text: text.to_string(), version, statements })
    }

    /// The document exactly as given to [`PolicyDocument::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The policy language version (`2008-10-17` when the document has none).
    pub fn version(&self) -> &str {
        self.version
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

/// A string or a non-empty array of strings, each with its path.
fn string_list(v: &Json, path: &str) -> Result<Vec<(String, String)>, PolicyError> {
    match v {
        Json::String(s) => Ok(vec![(path.to_string(), s.clone())]),
        Json::Array(a) if a.is_empty() => Err(PolicyError::new(path, "must not be empty")),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let p = format!("{path}[{i}]");
                match e {
                    Json::String(s) => Ok((p, s.clone())),
                    other => Err(PolicyError::new(p, format!("must be a string, not {}", other.kind()))),
                }
            })
            .collect(),
        other => Err(PolicyError::new(path, format!("must be a string or an array of strings, not {}", other.kind()))),
    }
}

/// Picks exactly one of `key` / `not_key`.
fn one_of<'a>(kv: &'a [(String, Json)], key: &str, not_key: &str, path: &str) -> Result<(bool, &'a Json), PolicyError> {
    let get = |k: &str| kv.iter().find(|(x, _)| x == k).map(|(_, v)| v);
    match (get(key), get(not_key)) {
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (Some(_), Some(_)) => Err(PolicyError::new(path, format!("has both {key} and {not_key} (use one)"))),
        (None, None) => Err(PolicyError::new(path, format!("missing {key} or {not_key}"))),
    }
}

fn parse_statement(s: &Json, path: &str, vars_allowed: bool) -> Result<Statement, PolicyError> {
    let Json::Object(kv) = s else {
        return Err(PolicyError::new(path, format!("must be an object, not {}", s.kind())));
    };
    for (k, _) in kv {
        if STATEMENT_KEYS.contains(&k.as_str()) {
            continue;
        }
        if k == "Principal" || k == "NotPrincipal" {
            return Err(PolicyError::new(
                path,
                format!(
                    "unknown key \"{k}\": AWS IoT policies have no principal; \
                     they apply to whatever they are attached to"
                ),
            ));
        }
        let hint = did_you_mean(k, STATEMENT_KEYS.iter().copied());
        return Err(PolicyError::new(path, format!("unknown key \"{k}\"{hint}")));
    }
    let get = |k: &str| kv.iter().find(|(x, _)| x == k).map(|(_, v)| v);

    let sid = match get("Sid") {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(PolicyError::new(format!("{path}.Sid"), format!("must be a string, not {}", other.kind())))
        }
    };

    let effect = match get("Effect") {
        None => return Err(PolicyError::new(path, "missing Effect")),
        Some(Json::String(e)) if e == "Allow" => crate::Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => crate::Effect::Deny,
        Some(Json::String(e)) => {
            let hint = did_you_mean(e, ["Allow", "Deny"]);
            return Err(PolicyError::new(
                format!("{path}.Effect"),
                format!("must be \"Allow\" or \"Deny\", not \"{e}\"{hint}"),
            ));
        }
        Some(other) => {
            return Err(PolicyError::new(
                format!("{path}.Effect"),
                format!("must be \"Allow\" or \"Deny\", not {}", other.kind()),
            ))
        }
    };

    let (not_action, av) = one_of(kv, "Action", "NotAction", path)?;
    let akey = if not_action { "NotAction" } else { "Action" };
    let actions = string_list(av, &format!("{path}.{akey}"))?
        .into_iter()
        .map(|(p, a)| ActionPattern::parse(&a, &p))
        .collect::<Result<Vec<_>, _>>()?;

    let (not_resource, rv) = one_of(kv, "Resource", "NotResource", path)?;
    let rkey = if not_resource { "NotResource" } else { "Resource" };
    let mut resources = Vec::new();
    for (p, r) in string_list(rv, &format!("{path}.{rkey}"))? {
        if r.is_empty() {
            return Err(PolicyError::new(p, "must not be empty"));
        }
        let t = Template::parse(&r, vars_allowed, &p)?;
        resource::validate(&t, &p)?;
        resources.push(t);
    }

    let conditions = match get("Condition") {
        None => Vec::new(),
        Some(c) => condition::parse_block(c, &format!("{path}.Condition"), vars_allowed)?,
    };

    Ok(Statement { sid, effect, not_action, actions, not_resource, resources, conditions })
}

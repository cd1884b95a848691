//! Compiling policies for one principal / connection.
//!
//! Compilation substitutes the connection's variables, builds every resource
//! glob and condition value once, and files each statement under the known
//! actions it covers (Deny and Allow lists per action), so that
//! [`CompiledPolicies::evaluate`](crate::CompiledPolicies::evaluate) only
//! looks at statements that can apply.
//!
//! # Missing variables never widen access
//! AWS leaves an unsubstitutable `${…}` in the text, where it matches nothing.
//! Thingport follows the same idea but resolves the two cases where literal
//! text would *widen* access (`NotResource`, negated condition operators):
//! - an **Allow** statement with any missing variable (or a value that is
//!   invalid once substituted, e.g. a non-numeric attribute in a `Numeric…`
//!   condition) is switched off entirely — it allows nothing;
//! - in a **Deny** statement only the affected entry is dropped: a `Resource`
//!   pattern matches nothing, a `NotResource` pattern excludes nothing, a
//!   condition value matches nothing (so `StringNotEquals` against it holds).
//!
//! Either way the outcome is never more permissive than AWS's.

use crate::action::KNOWN_ACTIONS;
use crate::condition::CompiledCondition;
use crate::document::{Effect, PolicyDocument, Statement};
use crate::pattern::{Glob, GlobBuilder};
use crate::template::Seg;
use crate::variables::Variables;

/// Policies compiled for one principal / connection: variables substituted,
/// patterns pre-built, statements indexed by action.
#[derive(Debug, Clone)]
pub struct CompiledPolicies {
    /// (policy name, version id), indexed by [`CompiledStatement::policy`].
    pub(crate) policies: Vec<(String, String)>,
    pub(crate) statements: Vec<CompiledStatement>,
    /// One bucket per entry of [`KNOWN_ACTIONS`].
    pub(crate) by_action: Vec<ActionBucket>,
}

/// The statements that cover one known action.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionBucket {
    pub(crate) deny: Vec<u32>,
    pub(crate) allow: Vec<u32>,
}

/// One statement, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledStatement {
    pub(crate) policy: usize,
    pub(crate) index: usize,
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) not_action: bool,
    /// Lower-cased action patterns.
    pub(crate) actions: Vec<Glob>,
    pub(crate) not_resource: bool,
    pub(crate) resources: Vec<Glob>,
    pub(crate) conditions: Vec<CompiledCondition>,
    /// An Allow statement that lost a variable: it allows nothing.
    pub(crate) disabled: bool,
    /// Variables it uses that have no substitutable value.
    pub(crate) missing_vars: Vec<String>,
}

impl CompiledStatement {
    /// Whether the statement covers `action_lc` (lower-cased).
    pub(crate) fn covers_action(&self, action_lc: &str) -> bool {
        self.actions.iter().any(|g| g.matches(action_lc)) != self.not_action
    }

    /// Whether the statement covers `resource`.
    #[inline]
    pub(crate) fn covers_resource(&self, resource: &str) -> bool {
        self.resources.iter().any(|g| g.matches(resource)) != self.not_resource
    }
}

fn compile_statement(policy: usize, index: usize, st: &Statement, vars: &dyn Variables) -> CompiledStatement {
    let mut missing = Vec::new();
    let mut invalid = 0usize;
    let resources = st
        .resources
        .iter()
        .map(|t| match t.instantiate(vars) {
            Ok(segs) => {
                let mut b = GlobBuilder::default();
                for s in &segs {
                    match s {
                        Seg::Pattern(p) => b.pattern(p),
                        Seg::Literal(l) => b.literal(l),
                    };
                }
                b.build()
            }
            Err(m) => {
                missing.extend(m);
                Glob::Never
            }
        })
        .collect();
    let conditions = st
        .conditions
        .iter()
        .map(|c| {
            let out = c.compile(vars);
            missing.extend(out.missing_vars);
            invalid += out.invalid_values;
            out.condition
        })
        .collect();
    let mut seen = Vec::new();
    missing.retain(|m| {
        let new = !seen.contains(m);
        seen.push(m.clone());
        new
    });
    CompiledStatement {
        policy,
        index,
        sid: st.sid.clone(),
        effect: st.effect,
        not_action: st.not_action,
        actions: st.actions.iter().map(|a| a.glob.clone()).collect(),
        not_resource: st.not_resource,
        resources,
        conditions,
        disabled: st.effect == Effect::Allow && (!missing.is_empty() || invalid > 0),
        missing_vars: missing,
    }
}

impl CompiledPolicies {
    /// Compiles `policies` — `(name, version id, document)` — for one
    /// connection whose policy variables are `vars`.
    pub fn compile(policies: &[(String, String, &PolicyDocument)], vars: &dyn Variables) -> CompiledPolicies {
        let mut statements = Vec::new();
        for (p, (_, _, doc)) in policies.iter().enumerate() {
            for (i, st) in doc.statements().iter().enumerate() {
                statements.push(compile_statement(p, i, st, vars));
            }
        }
        let mut by_action = vec![ActionBucket::default(); KNOWN_ACTIONS.len()];
        for (a, bucket) in KNOWN_ACTIONS.iter().zip(by_action.iter_mut()) {
            let lc = a.to_ascii_lowercase();
            for (s, st) in statements.iter().enumerate() {
                if st.disabled || !st.covers_action(&lc) {
                    continue;
                }
                let s = u32::try_from(s).expect("fewer than 2^32 statements");
                match st.effect {
                    Effect::Deny => bucket.deny.push(s),
                    Effect::Allow => bucket.allow.push(s),
                }
            }
        }
        CompiledPolicies {
            policies: policies.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect(),
            statements,
            by_action,
        }
    }

    /// The `(policy name, version id)` pairs compiled, in the given order.
    pub fn policies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.policies.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The variables some statement needed but the connection did not have
    /// (or had with a value that cannot be substituted), deduplicated.
    pub fn missing_variables(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for st in &self.statements {
            for m in &st.missing_vars {
                if !out.contains(&m.as_str()) {
                    out.push(m);
                }
            }
        }
        out
    }
}

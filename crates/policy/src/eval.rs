//! Evaluating compiled policies: the authorization decision for one
//! `(action, resource, request context)`, and its explanation for
//! TestAuthorization.
//!
//! IAM logic: an explicit Deny from any matching statement wins; otherwise a
//! matching Allow allows; otherwise the request is implicitly denied.
//!
//! The hot path ([`CompiledPolicies::evaluate`]) looks the action up among
//! the known actions (an exact comparison first, then a case-insensitive
//! one), walks only the statements filed under it, compares precompiled
//! resource globs and evaluates conditions without allocating (the request
//! context is only consulted for statements that have conditions).

use std::collections::HashMap;

use crate::action;
use crate::compile::{CompiledPolicies, CompiledStatement};
use crate::document::Effect;
use crate::variables::VarValue;

/// Per-request condition context (e.g. `iot:ConnectAttributes`,
/// `iot:LastWillTopic`, `aws:CurrentTime`). Keys it lacks fall back to the
/// connection's [`Variables`](crate::Variables).
pub trait RequestContext {
    /// The value of condition key `key` (canonical spelling) for this request.
    fn get(&self, key: &str) -> Option<VarValue>;

    /// Calls `f` with the values of `key` (`None` when absent) and returns
    /// its answer. The default goes through [`RequestContext::get`]; override
    /// it to lend stored values without cloning them (the evaluator only ever
    /// uses this method).
    fn with_values(&self, key: &str, f: &mut dyn FnMut(Option<&[String]>) -> bool) -> bool {
        match self.get(key) {
            Some(v) => f(Some(v.as_slice())),
            None => f(None),
        }
    }
}

/// A request with no context of its own (conditions see only the
/// connection's variables).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRequestContext;

impl RequestContext for NoRequestContext {
    #[inline]
    fn get(&self, _key: &str) -> Option<VarValue> {
        None
    }

    #[inline]
    fn with_values(&self, _key: &str, f: &mut dyn FnMut(Option<&[String]>) -> bool) -> bool {
        f(None)
    }
}

impl RequestContext for HashMap<String, VarValue> {
    fn get(&self, key: &str) -> Option<VarValue> {
        HashMap::get(self, key).cloned()
    }

    fn with_values(&self, key: &str, f: &mut dyn FnMut(Option<&[String]>) -> bool) -> bool {
        f(HashMap::get(self, key).map(VarValue::as_slice))
    }
}

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allowed,
    /// A Deny statement matches.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }

    /// The AWS spelling used by TestAuthorization's `authDecision`.
    pub fn as_aws_str(self) -> &'static str {
        match self {
            Decision::Allowed => "ALLOWED",
            Decision::ExplicitDeny => "EXPLICIT_DENY",
            Decision::ImplicitDeny => "IMPLICIT_DENY",
        }
    }
}

/// One statement of one policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The policy's name.
    pub policy_name: String,
    /// The policy version id.
    pub policy_version: String,
    /// Zero-based position of the statement in the document.
    pub statement_index: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
}

/// A decision with its reasons, for TestAuthorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The same decision [`CompiledPolicies::evaluate`] returns.
    pub decision: Decision,
    /// Names of the policies that decided, without duplicates, in the order
    /// they were compiled: the denying ones for [`Decision::ExplicitDeny`],
    /// the allowing ones for [`Decision::Allowed`], none for
    /// [`Decision::ImplicitDeny`].
    pub policies: Vec<String>,
    /// Every Allow statement that matched (all of them, even when a Deny wins).
    pub allowed_by: Vec<StatementRef>,
    /// Every Deny statement that matched.
    pub denied_by: Vec<StatementRef>,
    /// Condition keys absent from the request and the connection, and policy
    /// variables without a value, among the statements that cover the action
    /// (AWS's `missingContextValues`).
    pub missing_context_keys: Vec<String>,
}

impl CompiledPolicies {
    /// The decision for `action` on `resource` (a full ARN).
    #[inline]
    pub fn evaluate(&self, action: &str, resource: &str, req: &dyn crate::RequestContext) -> crate::Decision {
        let Some(i) = action::known_index(action) else {
            return self.evaluate_other(action, resource, req);
        };
        let bucket = &self.by_action[i];
        for &s in &bucket.deny {
            if self.statements[s as usize].applies(resource, req) {
                return Decision::ExplicitDeny;
            }
        }
        for &s in &bucket.allow {
            if self.statements[s as usize].applies(resource, req) {
                return Decision::Allowed;
            }
        }
        Decision::ImplicitDeny
    }

    /// Slow path for an action outside [`action::KNOWN_ACTIONS`].
    #[cold]
    fn evaluate_other(&self, action: &str, resource: &str, req: &dyn RequestContext) -> Decision {
        let lc = action.to_ascii_lowercase();
        let lc = lc.as_str();
        let live =
            |e: Effect| self.statements.iter().filter(move |s| s.effect == e && !s.disabled && s.covers_action(lc));
        if live(Effect::Deny).any(|s| s.applies(resource, req)) {
            return Decision::ExplicitDeny;
        }
        if live(Effect::Allow).any(|s| s.applies(resource, req)) {
            return Decision::Allowed;
        }
        Decision::ImplicitDeny
    }

    /// The decision with the statements that made it and the context values
    /// that were missing. Slower than [`CompiledPolicies::evaluate`]; meant
    /// for TestAuthorization and debugging.
    pub fn explain(&self, action: &str, resource: &str, req: &dyn RequestContext) -> Explanation {
        let lc = action.to_ascii_lowercase();
        let mut allowed_by = Vec::new();
        let mut denied_by = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for st in &self.statements {
            if !st.covers_action(&lc) {
                continue;
            }
            for m in &st.missing_vars {
                if !missing.contains(m) {
                    missing.push(m.clone());
                }
            }
            if st.disabled || !st.covers_resource(resource) {
                continue;
            }
            let mut holds = true;
            for c in &st.conditions {
                holds &= c.eval(req, Some(&mut missing));
            }
            if holds {
                let (name, version) = &self.policies[st.policy];
                let r = StatementRef {
                    policy_name: name.clone(),
                    policy_version: version.clone(),
                    statement_index: st.index,
                    sid: st.sid.clone(),
                };
                match st.effect {
                    Effect::Allow => allowed_by.push(r),
                    Effect::Deny => denied_by.push(r),
                }
            }
        }
        let (decision, deciding) = if !denied_by.is_empty() {
            (Decision::ExplicitDeny, &denied_by)
        } else if !allowed_by.is_empty() {
            (Decision::Allowed, &allowed_by)
        } else {
            (Decision::ImplicitDeny, &denied_by)
        };
        let mut policies: Vec<String> = Vec::new();
        for r in deciding {
            if !policies.contains(&r.policy_name) {
                policies.push(r.policy_name.clone());
            }
        }
        Explanation { decision, policies, allowed_by, denied_by, missing_context_keys: missing }
    }
}

impl CompiledStatement {
    /// Resource and conditions (the action is already known to match).
    #[inline]
    fn applies(&self, resource: &str, req: &dyn RequestContext) -> bool {
        self.covers_resource(resource) && self.conditions.iter().all(|c| c.eval(req, None))
    }
}

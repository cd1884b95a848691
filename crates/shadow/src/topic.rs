//! Shadow topics: parsing the reserved request topics and naming responses.
//!
//! Requests arrive on `$aws/things/{thing}/shadow/{get|update|delete}`
//! (classic shadow) and `$aws/things/{thing}/shadow/name/{shadow}/{op}`
//! (named shadow). Responses go to the same prefix followed by a suffix
//! such as `update/accepted`, `update/delta` or `get/rejected`. Anything
//! else (response topics, extra or missing segments, invalid names) is not
//! a shadow request.

use crate::limits::{valid_shadow_name, valid_thing_name};

/// The operation a request topic asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowOp {
    /// `…/get`
    Get,
    /// `…/update`
    Update,
    /// `…/delete`
    Delete,
}

impl ShadowOp {
    /// The topic segment: `get`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOp::Get => "get",
            ShadowOp::Update => "update",
            ShadowOp::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<ShadowOp> {
        match s {
            "get" => Some(ShadowOp::Get),
            "update" => Some(ShadowOp::Update),
            "delete" => Some(ShadowOp::Delete),
            _ => None,
        }
    }
}

/// A shadow request: which thing, which shadow (`None` for the classic
/// one), which operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShadowTopic {
    /// The thing name.
    pub thing: String,
    /// The shadow name, `None` for the classic (unnamed) shadow.
    pub shadow: Option<String>,
    /// The operation.
    pub op: ShadowOp,
}

/// Parse a shadow request topic; `None` if `topic` is not one.
pub fn parse_topic(topic: &str) -> Option<ShadowTopic> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (thing, shadow, op) = match parts.as_slice() {
        [thing, "shadow", op] => (*thing, None, *op),
        [thing, "shadow", "name", shadow, op] => (*thing, Some(*shadow), *op),
        _ => return None,
    };
    if !valid_thing_name(thing) || !shadow.is_none_or(valid_shadow_name) {
        return None;
    }
    Some(ShadowTopic { thing: thing.to_string(), shadow: shadow.map(str::to_string), op: ShadowOp::parse(op)? })
}

impl ShadowTopic {
    /// `$aws/things/{thing}/shadow` or `$aws/things/{thing}/shadow/name/{shadow}`.
    pub fn prefix(&self) -> String {
        match &self.shadow {
            None => format!("$aws/things/{}/shadow", self.thing),
            Some(s) => format!("$aws/things/{}/shadow/name/{s}", self.thing),
        }
    }

    /// A response topic: the prefix, `/`, and `suffix` (e.g. `update/accepted`).
    pub fn response(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.prefix())
    }

    /// The request topic itself (`{prefix}/{op}`).
    pub fn request(&self) -> String {
        self.response(self.op.as_str())
    }

    /// The name AWS quotes in "No shadow exists with name: '…'": the shadow
    /// name of a named shadow, the thing name for the classic shadow.
    pub fn display_name(&self) -> &str {
        self.shadow.as_deref().unwrap_or(&self.thing)
    }
}

//! Shadow errors: an HTTP status code and AWS's exact message text, rendered
//! as the error response document published on `/rejected` topics.
//!
//! Messages are those of the "Device Shadow error messages" page. Where the
//! live service is known to be more precise than that page, the live wording
//! wins: unknown nodes under `state` are named
//! (`State contains an invalid node: 'delta'`), and the 404 quotes the name
//! (`No shadow exists with name: 'simShadow1'`).

use serde_json::{json, Value};

/// A rejected shadow request: `code` is the HTTP status, `message` AWS's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct ShadowError {
    /// HTTP status code (400, 401, 403, 404, 409, 413, 415, 429 or 500).
    pub code: u16,
    /// Human-readable message, worded as AWS words it.
    pub message: String,
}

impl ShadowError {
    /// An error with any code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        ShadowError { code, message: message.into() }
    }

    /// 400: the payload is not a JSON object (or contains what AWS rejects,
    /// such as `null` inside an array).
    pub fn invalid_json() -> Self {
        Self::new(400, "Invalid JSON")
    }

    /// 400: an update without a `state` node.
    pub fn missing_state() -> Self {
        Self::new(400, "Missing required node: state")
    }

    /// 400: `state` is neither an object nor `null`.
    pub fn state_not_object() -> Self {
        Self::new(400, "State node must be an object")
    }

    /// 400: `state.desired` is neither an object nor `null`.
    pub fn desired_not_object() -> Self {
        Self::new(400, "Desired node must be an object")
    }

    /// 400: `state.reported` is neither an object nor `null`.
    pub fn reported_not_object() -> Self {
        Self::new(400, "Reported node must be an object")
    }

    /// 400: `version` is not a non-negative integer.
    pub fn invalid_version() -> Self {
        Self::new(400, "Invalid version")
    }

    /// 400: `clientToken` is not a string or is longer than the limit (64 bytes).
    pub fn invalid_client_token() -> Self {
        Self::new(400, "Invalid clientToken")
    }

    /// 400: `desired` or `reported` nests deeper than `max` levels.
    pub fn too_deep(max: usize) -> Self {
        Self::new(400, format!("JSON contains too many levels of nesting; maximum is {max}"))
    }

    /// 400: `state` holds a node other than `desired` and `reported`.
    pub fn invalid_state_node(node: &str) -> Self {
        Self::new(400, format!("State contains an invalid node: '{node}'"))
    }

    /// 401 "Unauthorized".
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 403 "Forbidden".
    pub fn forbidden() -> Self {
        Self::new(403, "Forbidden")
    }

    /// 404 "Thing not found".
    pub fn thing_not_found() -> Self {
        Self::new(404, "Thing not found")
    }

    /// 404 for a get or delete of a shadow that does not exist. `name` is the
    /// name AWS quotes: the shadow name for a named shadow, the thing name
    /// for the classic one (see [`crate::ShadowTopic::display_name`]).
    pub fn no_shadow(name: &str) -> Self {
        Self::new(404, format!("No shadow exists with name: '{name}'"))
    }

    /// 409 "Version conflict".
    pub fn version_conflict() -> Self {
        Self::new(409, "Version conflict")
    }

    /// 413: the resulting state document is larger than the limit.
    pub fn payload_too_large() -> Self {
        Self::new(413, "The payload exceeds the maximum size allowed")
    }

    /// 415: the payload is not UTF-8 (AWS's wording, typo included).
    pub fn unsupported_encoding() -> Self {
        Self::new(415, "Unsupported documented encoding; supported encoding is UTF-8")
    }

    /// 429: too many requests in flight. AWS documents the condition (more
    /// than 10 in-flight requests on a connection) but not the text; this is
    /// the text AWS's throttling errors use elsewhere.
    pub fn throttled() -> Self {
        Self::new(429, "Rate exceeded")
    }

    /// 500 "Internal service failure".
    pub fn internal() -> Self {
        Self::new(500, "Internal service failure")
    }

    /// The error response document:
    /// `{"code", "message", "timestamp", "clientToken"?}`. The client token
    /// is echoed when the request carried one.
    pub fn to_json(&self, client_token: Option<&str>, now: i64) -> Value {
        let mut v = json!({ "code": self.code, "message": self.message, "timestamp": now });
        if let Some(t) = client_token {
            v["clientToken"] = Value::String(t.to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_shape() {
        let e = ShadowError::version_conflict();
        assert_eq!(e.to_string(), "409 Version conflict");
        assert_eq!(
            e.to_json(Some("tok"), 7),
            json!({"code": 409, "message": "Version conflict", "timestamp": 7, "clientToken": "tok"})
        );
        assert_eq!(e.to_json(None, 7), json!({"code": 409, "message": "Version conflict", "timestamp": 7}));
    }

    #[test]
    fn worded_messages() {
        assert_eq!(ShadowError::too_deep(6).message, "JSON contains too many levels of nesting; maximum is 6");
        assert_eq!(ShadowError::invalid_state_node("delta").message, "State contains an invalid node: 'delta'");
        assert_eq!(ShadowError::no_shadow("simShadow1").message, "No shadow exists with name: 'simShadow1'");
        assert_eq!(ShadowError::unsupported_encoding().code, 415);
        assert_eq!(ShadowError::internal().message, "Internal service failure");
    }
}

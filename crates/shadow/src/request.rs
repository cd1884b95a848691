//! Request documents: decoding and validating the payloads of `/update`,
//! `/get` and `/delete`.
//!
//! Update requests are checked in this order, the first failure winning:
//! UTF-8 (415), JSON object (400 "Invalid JSON"), `clientToken` (a string of
//! at most 64 bytes), `version` (a non-negative integer; `null` counts as
//! absent), `state` present, `state` an object or `null`, no node under
//! `state` besides `desired` and `reported`, each of those an object or
//! `null`, nesting depth, and no `null` inside arrays (AWS: "Arrays can't
//! have null values … will be rejected"; the text of that rejection is not
//! documented, "Invalid JSON" is used). Other top-level members (`metadata`,
//! `timestamp`, …) are ignored, as AWS ignores content outside the state
//! sections.
//!
//! Get and delete payloads may be empty; AWS ignores their content except to
//! echo a `clientToken`, so anything that is not a JSON object is ignored
//! too, while a `clientToken` that is present must be valid.

use serde_json::Value;

use crate::{Limits, Map, ShadowError};

/// A validated update request.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    /// The `state` node: `None` for `"state": null` (clear both sections).
    pub state: Option<Map>,
    /// The client token to echo.
    pub client_token: Option<String>,
    /// The expected current version, when given.
    pub version: Option<u64>,
}

impl UpdateRequest {
    /// The `state` node as sent (`null` or the object), for `/accepted`.
    pub fn state_value(&self) -> Value {
        self.state.clone().map_or(Value::Null, Value::Object)
    }
}

/// Decode and validate an update request.
pub fn parse_update(request: &[u8], limits: &Limits) -> Result<UpdateRequest, ShadowError> {
    let text = std::str::from_utf8(request).map_err(|_| ShadowError::unsupported_encoding())?;
    let mut top = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(ShadowError::invalid_json()),
        Err(e) => return Err(json_error(&e, limits)),
    };
    let client_token = client_token(&top, limits)?;
    let version = match top.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(ShadowError::invalid_version)?),
    };
    let state = match top.remove("state") {
        None => return Err(ShadowError::missing_state()),
        Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(ShadowError::state_not_object()),
    };
    if let Some(state) = &state {
        if let Some(bad) = state.keys().find(|k| *k != "desired" && *k != "reported") {
            return Err(ShadowError::invalid_state_node(bad));
        }
        for (key, err) in [
            ("desired", ShadowError::desired_not_object as fn() -> ShadowError),
            ("reported", ShadowError::reported_not_object),
        ] {
            match state.get(key) {
                None | Some(Value::Null) => {}
                Some(section @ Value::Object(_)) => {
                    if depth(section) > limits.max_depth {
                        return Err(ShadowError::too_deep(limits.max_depth));
                    }
                    if null_in_array(section, false) {
                        return Err(ShadowError::invalid_json());
                    }
                }
                Some(_) => return Err(err()),
            }
        }
    }
    Ok(UpdateRequest { state, client_token, version })
}

/// Decode a get or delete request: returns the client token to echo.
pub fn parse_read(request: &[u8], limits: &Limits) -> Result<Option<String>, ShadowError> {
    let Ok(text) = std::str::from_utf8(request) else { return Ok(None) };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(top)) => client_token(&top, limits),
        _ => Ok(None),
    }
}

/// The client token of a request, when it has a valid one: for echoing in
/// an error response of a request that was rejected (any operation).
pub fn request_client_token(request: &[u8]) -> Option<String> {
    let top = serde_json::from_slice::<Value>(request).ok()?;
    match top.get("clientToken")? {
        Value::String(t) if t.len() <= Limits::default().max_client_token => Some(t.clone()),
        _ => None,
    }
}

fn client_token(top: &Map, limits: &Limits) -> Result<Option<String>, ShadowError> {
    match top.get("clientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if t.len() <= limits.max_client_token => Ok(Some(t.clone())),
        Some(_) => Err(ShadowError::invalid_client_token()),
    }
}

fn json_error(e: &serde_json::Error, limits: &Limits) -> ShadowError {
    // serde_json stops at 128 levels; that is a nesting problem, not a syntax one.
    if e.to_string().starts_with("recursion limit exceeded") {
        ShadowError::too_deep(limits.max_depth)
    } else {
        ShadowError::invalid_json()
    }
}

/// Nesting depth: 0 for a scalar, 1 + the deepest child for an object or array.
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn null_in_array(v: &Value, inside_array: bool) -> bool {
    match v {
        Value::Null => inside_array,
        Value::Object(m) => m.values().any(|c| null_in_array(c, inside_array)),
        Value::Array(a) => a.iter().any(|c| null_in_array(c, true)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(payload: &str) -> ShadowError {
        parse_update(payload.as_bytes(), &Limits::default()).unwrap_err()
    }

    #[test]
    fn parses_a_full_request() {
        let r = parse_update(br#"{"state":{"desired":{"a":1}},"clientToken":"t","version":4}"#, &Limits::default())
            .unwrap();
        assert_eq!(r.client_token.as_deref(), Some("t"));
        assert_eq!(r.version, Some(4));
        assert_eq!(r.state_value(), json!({"desired": {"a": 1}}));
    }

    #[test]
    fn null_state_and_null_version() {
        let r = parse_update(br#"{"state":null,"version":null,"clientToken":null}"#, &Limits::default()).unwrap();
        assert_eq!(r.state, None);
        assert_eq!(r.version, None);
        assert_eq!(r.client_token, None);
        assert_eq!(r.state_value(), Value::Null);
    }

    #[test]
    fn rejections_in_order() {
        assert_eq!(parse_update(&[0xff, b'{'], &Limits::default()).unwrap_err().code, 415);
        assert_eq!(err("").message, "Invalid JSON");
        assert_eq!(err("[1]").message, "Invalid JSON");
        assert_eq!(err(r#"{"state":{}"#).message, "Invalid JSON");
        assert_eq!(err(r#"{"clientToken":5,"version":"x"}"#).message, "Invalid clientToken");
        assert_eq!(err(r#"{"version":-1}"#).message, "Invalid version");
        assert_eq!(err(r#"{"version":1.5,"state":{}}"#).message, "Invalid version");
        assert_eq!(err(r#"{"clientToken":"x"}"#).message, "Missing required node: state");
        assert_eq!(err(r#"{"state":[]}"#).message, "State node must be an object");
        assert_eq!(err(r#"{"state":{"delta":{}}}"#).message, "State contains an invalid node: 'delta'");
        assert_eq!(err(r#"{"state":{"desired":1}}"#).message, "Desired node must be an object");
        assert_eq!(err(r#"{"state":{"reported":"x"}}"#).message, "Reported node must be an object");
        assert_eq!(err(r#"{"state":{"desired":{"c":[null]}}}"#).message, "Invalid JSON");
        assert_eq!(err(r#"{"state":{"desired":{"c":[{"x":null}]}}}"#).message, "Invalid JSON");
    }

    #[test]
    fn depth_counts_the_section_as_level_one() {
        assert_eq!(depth(&json!({"a": 1})), 1);
        assert_eq!(depth(&json!({"a": [1]})), 2);
        assert_eq!(depth(&json!({"a": {"b": [{"c": 1}]}})), 4);
        let six = r#"{"state":{"reported":{"a":{"b":{"c":{"d":{"e":1}}}}}}}"#; // 5 levels
        assert!(parse_update(six.as_bytes(), &Limits::default()).is_ok());
        let deep = r#"{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":[1]}}}}}}}}"#; // 7 levels
        assert_eq!(err(deep).message, "JSON contains too many levels of nesting; maximum is 6");
    }

    #[test]
    fn serde_recursion_limit_is_a_nesting_error() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(err(&deep).message, "JSON contains too many levels of nesting; maximum is 6");
    }

    #[test]
    fn read_requests() {
        let l = Limits::default();
        assert_eq!(parse_read(b"", &l), Ok(None));
        assert_eq!(parse_read(b"{}", &l), Ok(None));
        assert_eq!(parse_read(b"garbage", &l), Ok(None));
        assert_eq!(parse_read(&[0xff], &l), Ok(None));
        assert_eq!(parse_read(br#"{"clientToken":"abc"}"#, &l), Ok(Some("abc".into())));
        assert_eq!(parse_read(br#"{"clientToken":7}"#, &l).unwrap_err().message, "Invalid clientToken");
    }

    #[test]
    fn client_token_length_is_in_bytes() {
        let ok = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "é".repeat(32)); // 64 bytes
        assert!(parse_update(ok.as_bytes(), &Limits::default()).is_ok());
        let long = format!(r#"{{"state":{{}},"clientToken":"{}x"}}"#, "é".repeat(32)); // 65 bytes
        assert_eq!(err(&long).message, "Invalid clientToken");
        assert_eq!(request_client_token(long.as_bytes()), None);
        assert_eq!(request_client_token(ok.as_bytes()).map(|t| t.len()), Some(64));
        assert_eq!(request_client_token(b"nope"), None);
    }
}

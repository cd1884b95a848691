//! Every rejection, with AWS's code and message, and the error document.

mod common;

use common::{build, reject};
use serde_json::json;
use shadow::{delete, get_response, request_client_token, ShadowError};

#[test]
fn update_rejections() {
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "Invalid JSON"),
        ("{", 400, "Invalid JSON"),
        ("not json", 400, "Invalid JSON"),
        ("[]", 400, "Invalid JSON"),
        ("null", 400, "Invalid JSON"),
        ("42", 400, "Invalid JSON"),
        (r#"{"state":{}} trailing"#, 400, "Invalid JSON"),
        (r#"{}"#, 400, "Missing required node: state"),
        (r#"{"clientToken":"t","version":1}"#, 400, "Missing required node: state"),
        (r#"{"state":"on"}"#, 400, "State node must be an object"),
        (r#"{"state":[{"desired":{}}]}"#, 400, "State node must be an object"),
        (r#"{"state":true}"#, 400, "State node must be an object"),
        (r#"{"state":{"desired":[]}}"#, 400, "Desired node must be an object"),
        (r#"{"state":{"desired":"x"}}"#, 400, "Desired node must be an object"),
        (r#"{"state":{"reported":5}}"#, 400, "Reported node must be an object"),
        (r#"{"state":{"reported":[1]}}"#, 400, "Reported node must be an object"),
        (r#"{"state":{},"version":"1"}"#, 400, "Invalid version"),
        (r#"{"state":{},"version":-3}"#, 400, "Invalid version"),
        (r#"{"state":{},"version":2.5}"#, 400, "Invalid version"),
        (r#"{"state":{},"version":{}}"#, 400, "Invalid version"),
        (r#"{"state":{},"clientToken":12}"#, 400, "Invalid clientToken"),
        (r#"{"state":{},"clientToken":["a"]}"#, 400, "Invalid clientToken"),
        (r#"{"state":{"delta":{"a":1}}}"#, 400, "State contains an invalid node: 'delta'"),
        (r#"{"state":{"desired":{},"metadata":{}}}"#, 400, "State contains an invalid node: 'metadata'"),
        (r#"{"state":{"desired":{"a":[1,null]}}}"#, 400, "Invalid JSON"),
        (r#"{"state":{"reported":{"a":[[null]]}}}"#, 400, "Invalid JSON"),
        (
            r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#,
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
    ];
    for (payload, code, message) in cases {
        assert_eq!(reject(None, payload, 1), (*code, message.to_string()), "payload {payload}");
    }
    let long_token = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "t".repeat(65));
    assert_eq!(reject(None, &long_token, 1), (400, "Invalid clientToken".into()));
}

#[test]
fn non_utf8_is_415() {
    let (code, message) =
        match shadow::apply_update(None, b"{\"state\":{\"desired\":{\"a\":\"\xff\"}}}", 1, &Default::default()) {
            Err(e) => (e.code, e.message),
            Ok(_) => panic!("accepted"),
        };
    assert_eq!((code, message.as_str()), (415, "Unsupported documented encoding; supported encoding is UTF-8"));
}

#[test]
fn version_conflict_is_409() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    assert_eq!(reject(Some(&doc), r#"{"state":{},"version":0}"#, 2), (409, "Version conflict".into()));
    assert_eq!(reject(Some(&doc), r#"{"state":{},"version":7}"#, 2), (409, "Version conflict".into()));
}

#[test]
fn state_too_large_is_413() {
    let big = format!(r#"{{"state":{{"reported":{{"blob":"{}"}}}}}}"#, "x".repeat(9000));
    assert_eq!(reject(None, &big, 1), (413, "The payload exceeds the maximum size allowed".into()));
}

#[test]
fn missing_shadow_is_404() {
    let e = get_response(None, b"", 5, Some("simShadow1")).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (404, "No shadow exists with name: 'simShadow1'"));
    let e = delete(None, br#"{"clientToken":"c"}"#, 5, Some("lamp-1")).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (404, "No shadow exists with name: 'lamp-1'"));
    let e = get_response(None, b"", 5, None).unwrap_err();
    assert_eq!(e.message, "No shadow exists with name: ''");
}

#[test]
fn get_and_delete_validate_client_tokens() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    let long = format!(r#"{{"clientToken":"{}"}}"#, "t".repeat(65));
    assert_eq!(get_response(Some(&doc), long.as_bytes(), 5, None).unwrap_err(), ShadowError::invalid_client_token());
    assert_eq!(delete(Some(&doc), br#"{"clientToken":1}"#, 5, None).unwrap_err(), ShadowError::invalid_client_token());
}

#[test]
fn service_side_errors() {
    let all = [
        (ShadowError::unauthorized(), 401, "Unauthorized"),
        (ShadowError::forbidden(), 403, "Forbidden"),
        (ShadowError::thing_not_found(), 404, "Thing not found"),
        (ShadowError::throttled(), 429, "Rate exceeded"),
        (ShadowError::internal(), 500, "Internal service failure"),
    ];
    for (e, code, message) in all {
        assert_eq!((e.code, e.message.as_str()), (code, message));
    }
}

#[test]
fn error_document_echoes_the_token() {
    let payload = br#"{"state":{"desired":5},"clientToken":"abc-1"}"#;
    let e = shadow::apply_update(None, payload, 9, &Default::default()).unwrap_err();
    let token = request_client_token(payload);
    assert_eq!(
        e.to_json(token.as_deref(), 9),
        json!({"code": 400, "message": "Desired node must be an object", "timestamp": 9, "clientToken": "abc-1"})
    );
    assert_eq!(e.to_json(None, 9), json!({"code": 400, "message": "Desired node must be an object", "timestamp": 9}));
}

//! Browser-style POST uploads: the signed policy document of S3's "POST
//! Object".
//!
//! A POST upload is a `multipart/form-data` form carrying the object (`file`)
//! and fields (`key`, `Content-Type`, `x-amz-credential`, …) plus a base64
//! JSON `policy`, signed with SigV4 (`x-amz-signature`). The signature proves
//! the policy came from a key holder; the policy says what the form may
//! contain. Devices and web pages get such a form from
//! `generate_presigned_post` (boto3) or Thingport, and upload without any
//! credential of their own, so this check is the whole of the upload's
//! authorisation: every rule of S3's documentation ("POST Policy",
//! sigv4-HTTPPOSTConstructPolicy) is enforced:
//!
//! * the policy has not expired (`expiration`, ISO 8601 UTC);
//! * every condition holds: `{"field": "value"}` and `["eq", "$field",
//!   "value"]` (exact), `["starts-with", "$field", "prefix"]` (an empty
//!   prefix allows anything; for `Content-Type` a comma-separated list of
//!   types must all match), `["content-length-range", min, max]`;
//! * every form field except `policy`, `x-amz-signature`, `file` and those
//!   starting `x-ignore-` is named by some condition.
//!
//! Field names compare case-insensitively, values case-sensitively. A
//! condition on a field absent from the form is checked against the empty
//! string (so `["starts-with", "$x", ""]` allows leaving `x` out).
//!
//! `${filename}` in the `key` field is not expanded here: S3 checks the key
//! after replacing `${filename}` with the uploaded file's name, so the caller
//! substitutes it in the `key` value before calling [`PostPolicy::check`].

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::S3Error;

/// One policy condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`. `field` as
    /// written, without `$`.
    Eq { field: String, value: String },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith { field: String, prefix: String },
    /// `["content-length-range", min, max]`, inclusive bounds in bytes.
    ContentLengthRange { min: u64, max: u64 },
}

impl Condition {
    /// The form field this condition constrains (None for a length range).
    pub fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => Some(field),
            Condition::ContentLengthRange { .. } => None,
        }
    }

    /// The condition as S3 quotes it in errors: `["eq", "$key", "x"]`.
    fn describe(&self) -> String {
        let q = |s: &str| Value::String(s.to_owned()).to_string();
        match self {
            Condition::Eq { field, value } => format!("[\"eq\", {}, {}]", q(&format!("${field}")), q(value)),
            Condition::StartsWith { field, prefix } => {
                format!("[\"starts-with\", {}, {}]", q(&format!("${field}")), q(prefix))
            }
            Condition::ContentLengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
        }
    }

    fn holds(&self, fields: &[(String, String)]) -> bool {
        let value_of =
            |name: &str| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str());
        match self {
            Condition::Eq { field, value } => value_of(field) == value,
            Condition::StartsWith { field, prefix } => {
                let v = value_of(field);
                if field.eq_ignore_ascii_case("content-type") && v.contains(',') {
                    v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                } else {
                    v.starts_with(prefix.as_str())
                }
            }
            Condition::ContentLengthRange { .. } => true,
        }
    }
}

/// A parsed POST policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    /// When the policy stops being valid, milliseconds since the epoch.
    pub expiration_ms: i64,
    pub conditions: Vec<Condition>,
}

fn invalid_policy(why: impl std::fmt::Display) -> S3Error {
    S3Error::new(400, "InvalidPolicyDocument", format!("Invalid Policy: {why}"))
}

fn denied(why: impl std::fmt::Display) -> S3Error {
    S3Error::access_denied(format!("Invalid according to Policy: {why}"))
}

/// A JSON string condition operand.
fn string(v: &Value, what: &str) -> Result<String, S3Error> {
    v.as_str().map(str::to_owned).ok_or_else(|| invalid_policy(format!("{what} must be a string")))
}

/// `$field` → `field`.
fn field_ref(v: &Value) -> Result<String, S3Error> {
    let s = string(v, "a condition's field")?;
    match s.strip_prefix('$') {
        Some(f) if !f.is_empty() => Ok(f.to_owned()),
        _ => Err(invalid_policy(format!("condition field {s:?} must start with '$'"))),
    }
}

/// A content-length-range bound: a non-negative integer (or a string of
/// digits, which some policy generators write).
fn bound(v: &Value) -> Result<u64, S3Error> {
    let n = match v {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| invalid_policy("content-length-range bounds must be non-negative integers"))
}

/// Parse an ISO 8601 UTC time (`2013-08-01T12:00:00.000Z`,
/// `2026-11-22T05:14:16Z`) into milliseconds since the epoch.
fn parse_expiration(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parse the base64 `policy` form field: `{"expiration": "…Z", "conditions":
/// [...]}`. Anything malformed (bad base64 or JSON, missing or unknown
/// members, an unknown condition, operands of the wrong type) is
/// `400 InvalidPolicyDocument`.
pub fn parse(policy_b64: &str) -> Result<PostPolicy, S3Error> {
    let compact: String = policy_b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = BASE64.decode(compact.as_bytes()).map_err(|_| invalid_policy("the policy is not valid base64"))?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid_policy("the policy is not valid JSON"))?;
    let obj = doc.as_object().ok_or_else(|| invalid_policy("the policy must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "expiration" && *k != "conditions") {
        return Err(invalid_policy(format!("unexpected policy member {k:?}")));
    }
    let expiration = obj
        .get("expiration")
        .ok_or_else(|| invalid_policy("the policy has no expiration"))?
        .as_str()
        .ok_or_else(|| invalid_policy("expiration must be a string"))?;
    let expiration_ms = parse_expiration(expiration)
        .ok_or_else(|| invalid_policy(format!("expiration {expiration:?} is not an ISO 8601 time")))?;
    let list = obj
        .get("conditions")
        .ok_or_else(|| invalid_policy("the policy has no conditions"))?
        .as_array()
        .ok_or_else(|| invalid_policy("conditions must be a list"))?;

    let mut conditions = Vec::with_capacity(list.len());
    for c in list {
        match c {
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(invalid_policy("empty condition"));
                }
                for (field, value) in map {
                    let value = string(value, "an exact-match value")?;
                    let field = field.strip_prefix('$').unwrap_or(field).to_owned();
                    conditions.push(Condition::Eq { field, value });
                }
            }
            Value::Array(items) => {
                let [op, a, b] = items.as_slice() else {
                    return Err(invalid_policy("a condition list must have three elements"));
                };
                let op = string(op, "a condition's operator")?;
                let cond = match op.to_ascii_lowercase().as_str() {
                    "eq" => Condition::Eq { field: field_ref(a)?, value: string(b, "an eq value")? },
                    "starts-with" => Condition::StartsWith { field: field_ref(a)?, prefix: string(b, "a prefix")? },
                    "content-length-range" => {
                        let (min, max) = (bound(a)?, bound(b)?);
                        if min > max {
                            return Err(invalid_policy("content-length-range minimum exceeds its maximum"));
                        }
                        Condition::ContentLengthRange { min, max }
                    }
                    _ => return Err(invalid_policy(format!("unknown condition {op:?}"))),
                };
                conditions.push(cond);
            }
            _ => return Err(invalid_policy("a condition must be an object or a list")),
        }
    }
    Ok(PostPolicy { expiration_ms, conditions })
}

/// Form fields that need no condition (S3's documented exceptions).
fn exempt(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), "policy" | "x-amz-signature" | "file") || lower.starts_with("x-ignore-")
}

impl PostPolicy {
    /// Check a form against the policy.
    ///
    /// `fields`: every form field except `file` (name as sent, value), with
    /// `bucket` added by the caller and `${filename}` already substituted in
    /// `key`. `content_length`: the file's size once known; checked against
    /// `content-length-range` (call once without it before reading the file,
    /// and again with it, or bound the read by
    /// [`content_length_range`](Self::content_length_range)).
    ///
    /// Errors (as S3): expired → `403 AccessDenied` "Invalid according to
    /// Policy: Policy expired."; a failed condition → `403 AccessDenied`
    /// "Invalid according to Policy: Policy Condition failed: [\"eq\",
    /// \"$key\", \"x\"]"; an uncovered field → `403 AccessDenied` "Invalid
    /// according to Policy: Extra input fields: name"; a field given twice
    /// with different values → `400 InvalidArgument`; the size outside the
    /// range → `400 EntityTooSmall` / `EntityTooLarge`.
    pub fn check(&self, fields: &[(String, String)], content_length: Option<u64>, now_ms: i64) -> Result<(), S3Error> {
        if now_ms >= self.expiration_ms {
            return Err(denied("Policy expired."));
        }
        for (i, (name, value)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v != value) {
                return Err(S3Error::invalid_argument(format!(
                    "POST form field {name:?} is given more than once with different values"
                )));
            }
        }
        if let Some(failed) = self.conditions.iter().find(|c| !c.holds(fields)) {
            return Err(denied(format!("Policy Condition failed: {}", failed.describe())));
        }
        let extra: Vec<&str> = fields
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !exempt(n))
            .filter(|n| !self.conditions.iter().any(|c| c.field().is_some_and(|f| f.eq_ignore_ascii_case(n))))
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        if let (Some(len), Some((min, max))) = (content_length, self.content_length_range()) {
            if len < min {
                return Err(S3Error::entity_too_small()
                    .with("MinSizeAllowed", min.to_string())
                    .with("ProposedSize", len.to_string()));
            }
            if len > max {
                return Err(S3Error::entity_too_large(max).with("ProposedSize", len.to_string()));
            }
        }
        Ok(())
    }

    /// The allowed size of the file, `(min, max)` inclusive, if the policy
    /// has a `content-length-range` (several are intersected).
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().fold(None, |acc, c| match (c, acc) {
            (Condition::ContentLengthRange { min, max }, None) => Some((*min, *max)),
            (Condition::ContentLengthRange { min, max }, Some((lo, hi))) => Some((lo.max(*min), hi.min(*max))),
            (_, acc) => acc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Expiration of both boto3 policies below: 2026-11-22T05:14:16Z.
    const EXPIRES_MS: i64 = 1_795_324_456_000;
    const BEFORE: i64 = EXPIRES_MS - 60_000;

    /// boto3 1.43 `generate_presigned_post("bkt", "k")` with
    /// `signature_version="s3v4"`, verbatim.
    const BOTO3_SIMPLE: &str = "eyJleHBpcmF0aW9uIjogIjIwMjYtMTEtMjJUMDU6MTQ6MTZaIiwgImNvbmRpdGlvbnMiOiBbeyJidWNrZXQiOiAiYmt0In0sIHsia2V5IjogImsifSwgeyJ4LWFtei1hbGdvcml0aG0iOiAiQVdTNC1ITUFDLVNIQTI1NiJ9LCB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAyNjExMjIvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LCB7IngtYW16LWRhdGUiOiAiMjAyNjExMjJUMDQxNDE2WiJ9XX0=";

    /// boto3 1.43 `generate_presigned_post("bkt", "uploads/${filename}",
    /// Fields={"Content-Type": "image/png", "success_action_status": "201"},
    /// Conditions=[["starts-with", "$key", "uploads/"], {"Content-Type":
    /// "image/png"}, {"success_action_status": "201"},
    /// ["content-length-range", 1, 1048576]])`, verbatim.
    const BOTO3_UPLOADS: &str = "eyJleHBpcmF0aW9uIjogIjIwMjYtMTEtMjJUMDU6MTQ6MTZaIiwgImNvbmRpdGlvbnMiOiBbWyJzdGFydHMtd2l0aCIsICIka2V5IiwgInVwbG9hZHMvIl0sIHsiQ29udGVudC1UeXBlIjogImltYWdlL3BuZyJ9LCB7InN1Y2Nlc3NfYWN0aW9uX3N0YXR1cyI6ICIyMDEifSwgWyJjb250ZW50LWxlbmd0aC1yYW5nZSIsIDEsIDEwNDg1NzZdLCB7ImJ1Y2tldCI6ICJia3QifSwgWyJzdGFydHMtd2l0aCIsICIka2V5IiwgInVwbG9hZHMvIl0sIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwgeyJ4LWFtei1jcmVkZW50aWFsIjogIkFLSUFJT1NGT0ROTjdFWEFNUExFLzIwMjYxMTIyL3VzLWVhc3QtMS9zMy9hd3M0X3JlcXVlc3QifSwgeyJ4LWFtei1kYXRlIjogIjIwMjYxMTIyVDA0MTQxNloifV19";

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn boto3_simple_fields() -> Vec<(String, String)> {
        form(&[
            ("key", "k"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20261122/us-east-1/s3/aws4_request"),
            ("x-amz-date", "20261122T041416Z"),
            ("policy", BOTO3_SIMPLE),
            ("x-amz-signature", "911ad9548b9b191043a858371a0f0406ea8345cead1b803a3de7a4a6061e012e"),
            ("bucket", "bkt"),
        ])
    }

    fn boto3_upload_fields(key: &str) -> Vec<(String, String)> {
        form(&[
            ("Content-Type", "image/png"),
            ("success_action_status", "201"),
            ("key", key),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20261122/us-east-1/s3/aws4_request"),
            ("x-amz-date", "20261122T041416Z"),
            ("policy", BOTO3_UPLOADS),
            ("x-amz-signature", "7eed9a57404306372872ad100fd5d6250e7b887719ffa3bdeed918efd5a577e7"),
            ("bucket", "bkt"),
        ])
    }

    fn code(r: Result<(), S3Error>) -> (u16, &'static str, String) {
        let e = r.unwrap_err();
        (e.status, e.code, e.message)
    }

    #[test]
    fn parses_boto3_policies() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        assert_eq!(p.expiration_ms, EXPIRES_MS);
        assert_eq!(p.conditions.len(), 5);
        assert_eq!(p.conditions[0], Condition::Eq { field: "bucket".into(), value: "bkt".into() });
        assert_eq!(p.content_length_range(), None);

        let p = parse(BOTO3_UPLOADS).unwrap();
        assert_eq!(p.conditions[0], Condition::StartsWith { field: "key".into(), prefix: "uploads/".into() });
        assert_eq!(p.content_length_range(), Some((1, 1_048_576)));
    }

    #[test]
    fn boto3_forms_pass() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        p.check(&boto3_simple_fields(), None, BEFORE).unwrap();
        p.check(&boto3_simple_fields(), Some(0), BEFORE).unwrap();
        p.check(&boto3_simple_fields(), Some(u64::MAX), BEFORE).unwrap();

        let p = parse(BOTO3_UPLOADS).unwrap();
        // ${filename} substituted by the caller.
        p.check(&boto3_upload_fields("uploads/cat.png"), None, BEFORE).unwrap();
        p.check(&boto3_upload_fields("uploads/cat.png"), Some(1), BEFORE).unwrap();
        p.check(&boto3_upload_fields("uploads/cat.png"), Some(1_048_576), BEFORE).unwrap();
        // Field names are case-insensitive; x-ignore- fields need no condition.
        let mut f = boto3_upload_fields("uploads/cat.png");
        f[0].0 = "content-type".into();
        f.push(("X-Ignore-Submit".into(), "Upload".into()));
        f.push(("Policy".into(), BOTO3_UPLOADS.into()));
        p.check(&f, None, BEFORE).unwrap();
    }

    #[test]
    fn expiry() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        let (status, code, msg) = super::tests::code(p.check(&boto3_simple_fields(), None, EXPIRES_MS));
        assert_eq!((status, code, msg.as_str()), (403, "AccessDenied", "Invalid according to Policy: Policy expired."));
        assert!(p.check(&boto3_simple_fields(), None, EXPIRES_MS + 1).is_err());
        assert!(p.check(&boto3_simple_fields(), None, EXPIRES_MS - 1).is_ok());
    }

    #[test]
    fn failed_conditions() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        let mut f = boto3_simple_fields();
        f[0].1 = "other".into();
        assert_eq!(
            code(p.check(&f, None, BEFORE)),
            (
                403,
                "AccessDenied",
                "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$key\", \"k\"]".into()
            )
        );
        // Values compare case-sensitively.
        let mut f = boto3_simple_fields();
        f[6].1 = "BKT".into();
        assert!(code(p.check(&f, None, BEFORE)).2.contains("[\"eq\", \"$bucket\", \"bkt\"]"));
        // A missing field is the empty string.
        let f: Vec<_> = boto3_simple_fields().into_iter().filter(|(n, _)| n != "x-amz-date").collect();
        assert!(code(p.check(&f, None, BEFORE)).2.contains("$x-amz-date"));

        let p = parse(BOTO3_UPLOADS).unwrap();
        assert_eq!(
            code(p.check(&boto3_upload_fields("other/cat.png"), None, BEFORE)).2,
            "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"uploads/\"]"
        );
        let mut f = boto3_upload_fields("uploads/cat.png");
        f[0].1 = "image/gif".into();
        assert!(code(p.check(&f, None, BEFORE)).2.contains("Content-Type"));
    }

    #[test]
    fn extra_fields() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        let mut f = boto3_simple_fields();
        f.push(("acl".into(), "public-read".into()));
        f.push(("x-amz-meta-owner".into(), "me".into()));
        assert_eq!(
            code(p.check(&f, None, BEFORE)),
            (403, "AccessDenied", "Invalid according to Policy: Extra input fields: acl, x-amz-meta-owner".into())
        );
        // SigV2 form fields are not exempt.
        let mut f = boto3_simple_fields();
        f.push(("AWSAccessKeyId".into(), "AKID".into()));
        assert!(code(p.check(&f, None, BEFORE)).2.contains("Extra input fields: AWSAccessKeyId"));
    }

    #[test]
    fn duplicate_fields() {
        let p = parse(BOTO3_SIMPLE).unwrap();
        let mut f = boto3_simple_fields();
        f.push(("KEY".into(), "k".into()));
        p.check(&f, None, BEFORE).unwrap();
        f.push(("Key".into(), "other".into()));
        assert_eq!(code(p.check(&f, None, BEFORE)).1, "InvalidArgument");
    }

    #[test]
    fn content_length() {
        let p = parse(BOTO3_UPLOADS).unwrap();
        let f = boto3_upload_fields("uploads/a");
        let e = p.check(&f, Some(0), BEFORE).unwrap_err();
        assert_eq!((e.status, e.code), (400, "EntityTooSmall"));
        assert!(e.extra.contains(&("MinSizeAllowed", "1".into())));
        let e = p.check(&f, Some(1_048_577), BEFORE).unwrap_err();
        assert_eq!((e.status, e.code), (400, "EntityTooLarge"));
        assert!(e.extra.contains(&("MaxSizeAllowed", "1048576".into())));
    }

    fn policy(json: &str) -> Result<PostPolicy, S3Error> {
        parse(&BASE64.encode(json))
    }

    #[test]
    fn condition_forms() {
        let p = policy(
            r#"{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [
                ["EQ", "$bucket", "b"], ["starts-with", "$Content-Type", "image/"],
                ["starts-with", "$success_action_redirect", ""], {"$x-amz-meta-a": "1"},
                ["content-length-range", "10", 20], ["content-length-range", 0, 15.0]]}"#,
        )
        .unwrap();
        assert_eq!(p.content_length_range(), Some((10, 15)));
        let now = 0;
        let ok = form(&[("bucket", "b"), ("content-type", "image/jpeg"), ("x-amz-meta-a", "1")]);
        p.check(&ok, Some(12), now).unwrap();
        // An empty starts-with prefix allows any value (or none).
        let mut f = ok.clone();
        f.push(("success_action_redirect".into(), "https://example.com/done".into()));
        p.check(&f, None, now).unwrap();
        // Content-Type lists: every type must match.
        let mut f = ok.clone();
        f[1].1 = "image/jpeg, image/png".into();
        p.check(&f, None, now).unwrap();
        f[1].1 = "image/jpeg,text/html".into();
        assert!(p.check(&f, None, now).is_err());
        assert_eq!(p.check(&ok, Some(16), now).unwrap_err().code, "EntityTooLarge");
    }

    #[test]
    fn malformed_policies() {
        for bad in [
            "not base64!",
            &BASE64.encode("not json"),
            &BASE64.encode("[]"),
            &BASE64.encode(r#"{"conditions": []}"#),
            &BASE64.encode(r#"{"expiration": "tomorrow", "conditions": []}"#),
            &BASE64.encode(r#"{"expiration": 5, "conditions": []}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z"}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": {}}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [], "extra": 1}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "$key"]]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "x"]]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$key", "x"]]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "$key", 5]]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"key": 5}]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{}]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": ["key"]}"#),
            &BASE64
                .encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#),
            &BASE64.encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 6, 5]]}"#),
            &BASE64
                .encode(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 1.5, 5]]}"#),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "InvalidPolicyDocument"), "{bad}");
        }
    }

    #[test]
    fn aws_documented_example_policy() {
        // The example policy of sigv4-post-example (fields as in its form).
        let p = policy(
            r#"{ "expiration": "2015-12-30T12:00:00.000Z",
  "conditions": [
    {"bucket": "sigv4examplebucket"},
    ["starts-with", "$key", "user/user1/"],
    {"acl": "public-read"},
    {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
    ["starts-with", "$Content-Type", "image/"],
    {"x-amz-meta-uuid": "14365123651274"},
    {"x-amz-server-side-encryption": "AES256"},
    ["starts-with", "$x-amz-meta-tag", ""],
    {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    {"x-amz-date": "20151229T000000Z" }
  ]
}"#,
        )
        .unwrap();
        let fields = form(&[
            ("key", "user/user1/photo.jpg"),
            ("acl", "public-read"),
            ("success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"),
            ("Content-Type", "image/jpeg"),
            ("x-amz-meta-uuid", "14365123651274"),
            ("x-amz-server-side-encryption", "AES256"),
            ("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Date", "20151229T000000Z"),
            ("x-amz-meta-tag", ""),
            ("Policy", "…"),
            ("X-Amz-Signature", "…"),
            ("bucket", "sigv4examplebucket"),
        ]);
        let now = p.expiration_ms - 1000;
        p.check(&fields, Some(1000), now).unwrap();
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
            let _ = parse(&BASE64.encode(&s));
        }

        #[test]
        fn starts_with_semantics(prefix in "[a-z/]{0,6}", value in "[a-z/]{0,10}") {
            let p = PostPolicy {
                expiration_ms: 1,
                conditions: vec![Condition::StartsWith { field: "key".into(), prefix: prefix.clone() }],
            };
            let r = p.check(&form(&[("key", &value)]), None, 0);
            prop_assert_eq!(r.is_ok(), value.starts_with(&prefix));
        }
    }
}

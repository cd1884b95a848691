//! S3 event notifications: which configured rules an object change matches,
//! and the JSON record S3 sends for it.
//!
//! A bucket's `NotificationConfiguration` (PutBucketNotificationConfiguration,
//! parsed in [`crate::xml`]) lists rules: event types, an optional key
//! prefix/suffix filter and a target. Thingport publishes each matching
//! event over MQTT (an `arn:aws:iot:REGION:ACCOUNT:topic/TOPIC` target names
//! the topic), so devices and rules can react to uploads. The record is the
//! one S3 sends to SNS/SQS/Lambda, so existing consumers (`event["Records"]
//! [0]["s3"]["object"]["key"]`, decoded with `unquote_plus`) work unchanged,
//! plus a `thingport` member naming the device that made the change.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A bucket's notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfig {
    pub rules: Vec<NotificationRule>,
}

/// One `TopicConfiguration` / `QueueConfiguration` /
/// `CloudFunctionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    pub id: String,
    /// `s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, …
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    /// TopicArn / QueueArn / LambdaFunctionArn as configured; Thingport maps
    /// an `arn:aws:iot:REGION:ACCOUNT:topic/TOPIC` to that MQTT topic.
    pub target: Option<String>,
    /// Which element it came from: `Topic`, `Queue` or `CloudFunction` (for
    /// writing it back).
    pub target_kind: String,
}

/// The event types S3 accepts in a notification configuration.
pub const SUPPORTED_EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

/// Whether S3 accepts `event` (exact spelling) in a configuration.
pub fn is_supported_event(event: &str) -> bool {
    SUPPORTED_EVENTS.contains(&event)
}

/// Whether a configured event type (`s3:ObjectCreated:*`) covers an event
/// (`ObjectCreated:Put`; an `s3:` prefix on either is optional).
pub fn event_matches(configured: &str, event_name: &str) -> bool {
    let configured = configured.strip_prefix("s3:").unwrap_or(configured);
    let event_name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    match configured.strip_suffix('*') {
        Some(family) if family.ends_with(':') => event_name.starts_with(family),
        _ => configured == event_name,
    }
}

impl NotificationRule {
    /// Whether the rule's key filter accepts `key`. S3 documents that filter
    /// values are compared with the key as it appears in the event record
    /// (URL-encoded, a space as `+`), so a filter may be written either way:
    /// the filter matches if it matches the raw key or the encoded key.
    pub fn key_matches(&self, key: &str) -> bool {
        let fits = |k: &str| {
            self.prefix.as_deref().is_none_or(|p| k.starts_with(p))
                && self.suffix.as_deref().is_none_or(|s| k.ends_with(s))
        };
        fits(key) || fits(&encode_key(key))
    }
}

impl NotificationConfig {
    /// Rules whose events match `event_name` (like `ObjectCreated:Put`;
    /// `s3:ObjectCreated:*` matches every `ObjectCreated:…`) and whose
    /// prefix/suffix filters match `key`.
    pub fn matching<'a>(&'a self, event_name: &str, key: &str) -> Vec<&'a NotificationRule> {
        self.rules
            .iter()
            .filter(|r| r.events.iter().any(|e| event_matches(e, event_name)) && r.key_matches(key))
            .collect()
    }
}

/// One object change, as [`record`] describes it.
#[derive(Debug, Clone, Copy)]
pub struct EventInfo<'a> {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, … (an `s3:` prefix is
    /// dropped).
    pub event_name: &'a str,
    pub region: &'a str,
    pub bucket: &'a str,
    /// The key, not encoded.
    pub key: &'a str,
    pub size: Option<u64>,
    /// Without quotes (quotes are removed if present).
    pub etag: Option<&'a str>,
    pub principal_id: &'a str,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub time_ms: i64,
    pub configuration_id: &'a str,
    /// Orders events on one key; written as 16 upper-case hex digits.
    pub sequencer: u64,
    /// Thingport extension: the thing whose pre-signed URL made the change,
    /// and its certificate.
    pub thing_name: Option<&'a str>,
    pub certificate_id: Option<&'a str>,
}

/// Encode a key as S3 does in event records: form encoding (a space becomes
/// `+`), with letters, digits, `-`, `_`, `.`, `*` and `/` left as they are
/// and every other byte of the UTF-8 as `%XX`.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    out
}

/// The `{"Records":[…]}` message S3 sends for one event (event structure
/// version 2.1). For removals (`ObjectRemoved:*`) `size` and `eTag` are
/// left out, as S3 does. The bucket's `ownerIdentity` is `principal_id`
/// (Thingport has a single owner account). When `thing_name` is set, the
/// record carries a `thingport` member:
/// `{"thingName": …, "certificateId": …}` (the latter only if known).
pub fn record(e: &EventInfo) -> Value {
    let event_name = e.event_name.strip_prefix("s3:").unwrap_or(e.event_name);
    let mut object = Map::new();
    object.insert("key".into(), Value::String(encode_key(e.key)));
    if !event_name.starts_with("ObjectRemoved") {
        if let Some(size) = e.size {
            object.insert("size".into(), json!(size));
        }
        if let Some(etag) = e.etag {
            object.insert("eTag".into(), Value::String(etag.trim_matches('"').to_owned()));
        }
    }
    object.insert("sequencer".into(), Value::String(format!("{:016X}", e.sequencer)));

    let mut rec = json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": e.region,
        "eventTime": crate::xml::iso8601(e.time_ms),
        "eventName": event_name,
        "userIdentity": { "principalId": e.principal_id },
        "requestParameters": { "sourceIPAddress": e.source_ip },
        "responseElements": { "x-amz-request-id": e.request_id, "x-amz-id-2": e.request_id },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": e.configuration_id,
            "bucket": {
                "name": e.bucket,
                "ownerIdentity": { "principalId": e.principal_id },
                "arn": format!("arn:aws:s3:::{}", e.bucket),
            },
            "object": Value::Object(object),
        },
    });
    if let Some(thing) = e.thing_name {
        let mut tp = Map::new();
        tp.insert("thingName".into(), Value::String(thing.to_owned()));
        if let Some(cert) = e.certificate_id {
            tp.insert("certificateId".into(), Value::String(cert.to_owned()));
        }
        rec["thingport"] = Value::Object(tp);
    }
    json!({ "Records": [rec] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> NotificationRule {
        NotificationRule {
            id: id.into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.map(Into::into),
            suffix: suffix.map(Into::into),
            target: Some("arn:aws:iot:us-east-1:123456789012:topic/uploads".into()),
            target_kind: "Topic".into(),
        }
    }

    #[test]
    fn event_type_matching() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload"));
        assert!(event_matches("s3:ObjectCreated:*", "s3:ObjectCreated:Post"));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(event_matches("ObjectCreated:Put", "s3:ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Put", "ObjectCreated:Post"));
        assert!(!event_matches("s3:ObjectCreated:*", "ObjectRemoved:Delete"));
        assert!(!event_matches("s3:ObjectCreated:*", "ObjectCreatedX:Put"));
        assert!(event_matches("s3:ObjectRemoved:*", "ObjectRemoved:DeleteMarkerCreated"));
        assert!(!event_matches("s3:*", "ObjectCreated:Put"));
    }

    #[test]
    fn rule_matching() {
        let cfg = NotificationConfig {
            rules: vec![
                rule("all-created", &["s3:ObjectCreated:*"], None, None),
                rule("jpg", &["s3:ObjectCreated:Put"], Some("images/"), Some(".jpg")),
                rule("removed", &["s3:ObjectRemoved:*"], None, None),
                rule("spaces", &["s3:ObjectCreated:*"], Some("my+doc"), None),
            ],
        };
        let ids = |ev: &str, key: &str| cfg.matching(ev, key).iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids("ObjectCreated:Put", "images/a.jpg"), ["all-created", "jpg"]);
        assert_eq!(ids("ObjectCreated:Post", "images/a.jpg"), ["all-created"]);
        assert_eq!(ids("ObjectCreated:Put", "images/a.png"), ["all-created"]);
        assert_eq!(ids("ObjectCreated:Put", "other/a.jpg"), ["all-created"]);
        assert_eq!(ids("ObjectRemoved:Delete", "images/a.jpg"), ["removed"]);
        assert_eq!(ids("ObjectCreated:Copy", "my doc.txt"), ["all-created", "spaces"]);
        assert!(ids("ObjectRestore:Post", "x").is_empty());
        assert!(NotificationConfig::default().matching("ObjectCreated:Put", "x").is_empty());
    }

    #[test]
    fn key_encoding_is_form_encoding() {
        assert_eq!(encode_key("hello world.jpg"), "hello+world.jpg");
        assert_eq!(encode_key("a+b"), "a%2Bb");
        assert_eq!(encode_key("dir/sub/file_1-2.txt"), "dir/sub/file_1-2.txt");
        assert_eq!(encode_key("é=&?"), "%C3%A9%3D%26%3F");
        assert_eq!(encode_key("100%"), "100%25");
    }

    fn info<'a>(event_name: &'a str, thing: Option<&'a str>) -> EventInfo<'a> {
        EventInfo {
            event_name,
            region: "eu-west-1",
            bucket: "media",
            key: "cam 1/frame+1.jpg",
            size: Some(1024),
            etag: Some("d41d8cd98f00b204e9800998ecf8427e"),
            principal_id: "AKIDEXAMPLE",
            source_ip: "192.0.2.7",
            request_id: "C3D13FE58DE4C810",
            time_ms: 1_255_369_830_123,
            configuration_id: "uploads",
            sequencer: 0x55AE_D6DC_D902_81E5,
            thing_name: thing,
            certificate_id: thing.map(|_| "abc123"),
        }
    }

    #[test]
    fn created_record_has_s3_shape() {
        let v = record(&info("ObjectCreated:Put", None));
        let expected = json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventTime": "2009-10-12T17:50:30.123Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AKIDEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "192.0.2.7"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "C3D13FE58DE4C810"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "uploads",
                "bucket": {"name": "media", "ownerIdentity": {"principalId": "AKIDEXAMPLE"}, "arn": "arn:aws:s3:::media"},
                "object": {"key": "cam+1/frame%2B1.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "55AED6DCD90281E5"}
            }
        }]});
        assert_eq!(v, expected);
        assert!(v["Records"][0].get("thingport").is_none());
    }

    #[test]
    fn sequencer_is_16_hex_digits() {
        let mut e = info("s3:ObjectCreated:Put", None);
        e.sequencer = 0xab;
        let v = record(&e);
        assert_eq!(v["Records"][0]["s3"]["object"]["sequencer"], "00000000000000AB");
        assert_eq!(v["Records"][0]["eventName"], "ObjectCreated:Put");
    }

    #[test]
    fn removed_record_omits_size_and_etag() {
        let v = record(&info("ObjectRemoved:Delete", Some("cam-1")));
        let obj = &v["Records"][0]["s3"]["object"];
        assert!(obj.get("size").is_none() && obj.get("eTag").is_none());
        assert_eq!(obj["key"], "cam+1/frame%2B1.jpg");
        assert_eq!(v["Records"][0]["thingport"], json!({"thingName": "cam-1", "certificateId": "abc123"}));
    }

    #[test]
    fn quoted_etag_is_unquoted() {
        let mut e = info("ObjectCreated:Put", Some("cam-1"));
        e.etag = Some("\"abc-2\"");
        e.certificate_id = None;
        let v = record(&e);
        assert_eq!(v["Records"][0]["s3"]["object"]["eTag"], "abc-2");
        assert_eq!(v["Records"][0]["thingport"], json!({"thingName": "cam-1"}));
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = NotificationConfig { rules: vec![rule("r", &["s3:ObjectCreated:*"], Some("a/"), None)] };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<NotificationConfig>(&text).unwrap(), cfg);
    }

    #[test]
    fn supported_events() {
        assert!(is_supported_event("s3:ObjectCreated:*"));
        assert!(is_supported_event("s3:ObjectRemoved:Delete"));
        assert!(!is_supported_event("s3:ObjectCreated:Bogus"));
        assert!(!is_supported_event("ObjectCreated:*"));
    }
}

//! The stored shadow document: state, metadata, version, timestamp, and the
//! tombstone a delete leaves behind.
//!
//! Invariants the operations keep (and the property tests check): a section
//! is `None` rather than empty; state holds no `null` and no empty object;
//! each metadata section mirrors its state section exactly (see
//! [`crate::metadata`]). A tombstone (`deleted_at: Some(_)`) has no state and
//! remembers the version so that a shadow recreated soon after continues the
//! numbering.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Map;

/// A shadow as the store keeps it (serialise it with serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    /// `state.desired`; `None` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_desired: Option<Map>,
    /// `state.reported`; `None` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reported: Option<Map>,
    /// `metadata.desired`, mirroring `state_desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_desired: Option<Map>,
    /// `metadata.reported`, mirroring `state_reported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_reported: Option<Map>,
    /// Document version: 1 after the first update, +1 per accepted update.
    pub version: u64,
    /// When the shadow was last updated (or deleted), epoch seconds.
    pub timestamp: i64,
    /// Set on a tombstone: when the shadow was deleted, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

impl Shadow {
    /// Whether this is a tombstone left by [`crate::delete()`] (the shadow does
    /// not exist; only its version number is remembered).
    pub fn is_tombstone(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The shadow that exists, if any: `current` unless it is a tombstone.
    pub fn live(current: Option<&Shadow>) -> Option<&Shadow> {
        current.filter(|s| !s.is_tombstone())
    }

    /// `{"desired"?, "reported"?}` (absent sections omitted).
    pub fn state_value(&self) -> Value {
        sections(&self.state_desired, &self.state_reported)
    }

    /// `{"desired"?, "reported"?}` of the metadata.
    pub fn metadata_value(&self) -> Value {
        sections(&self.metadata_desired, &self.metadata_reported)
    }

    /// `{"state", "metadata", "version"}`: one side of `/update/documents`.
    pub fn document_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("state".into(), self.state_value());
        m.insert("metadata".into(), self.metadata_value());
        m.insert("version".into(), self.version.into());
        Value::Object(m)
    }

    /// Compact JSON size of `desired` plus `reported`: what the state size
    /// limit counts (metadata does not count, as AWS documents).
    pub fn state_bytes(&self) -> usize {
        section_bytes(&self.state_desired) + section_bytes(&self.state_reported)
    }
}

fn sections(desired: &Option<Map>, reported: &Option<Map>) -> Value {
    let mut m = Map::new();
    if let Some(d) = desired {
        m.insert("desired".into(), Value::Object(d.clone()));
    }
    if let Some(r) = reported {
        m.insert("reported".into(), Value::Object(r.clone()));
    }
    Value::Object(m)
}

fn section_bytes(section: &Option<Map>) -> usize {
    section.as_ref().map_or(0, |m| {
        let mut counter = ByteCounter(0);
        // Writing a Map of Values to a counter cannot fail.
        let _ = serde_json::to_writer(&mut counter, m);
        counter.0
    })
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Shadow {
        Shadow {
            state_desired: json!({"a": 1}).as_object().cloned(),
            state_reported: None,
            metadata_desired: json!({"a": {"timestamp": 3}}).as_object().cloned(),
            metadata_reported: None,
            version: 2,
            timestamp: 3,
            deleted_at: None,
        }
    }

    #[test]
    fn renders_sections() {
        let s = sample();
        assert_eq!(s.state_value(), json!({"desired": {"a": 1}}));
        assert_eq!(
            s.document_value(),
            json!({"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": {"timestamp": 3}}}, "version": 2})
        );
        assert_eq!(s.state_bytes(), br#"{"a":1}"#.len());
    }

    #[test]
    fn serde_round_trip_and_tombstones() {
        let s = sample();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("deleted_at"));
        assert_eq!(serde_json::from_str::<Shadow>(&text).unwrap(), s);
        let t = Shadow { deleted_at: Some(9), ..sample() };
        assert!(t.is_tombstone());
        assert!(Shadow::live(Some(&t)).is_none());
        assert!(Shadow::live(Some(&s)).is_some());
        // Minimal stored form.
        let min: Shadow = serde_json::from_str(r#"{"version":1,"timestamp":2}"#).unwrap();
        assert_eq!(min.state_value(), json!({}));
    }
}

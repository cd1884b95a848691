//! Get: the `/get/accepted` document (also the GetThingShadow response).
//!
//! `{"state": {"desired"?, "reported"?, "delta"?}, "metadata": {"desired"?,
//! "reported"?, "delta"?}, "version", "timestamp", "clientToken"?}`: the
//! full document with the delta and its metadata when desired and reported
//! differ (AWS's "Retrieving a shadow document" example carries
//! `metadata.delta`). `timestamp` is when the response is generated, not when
//! the shadow was last updated. A missing shadow, or a tombstone, is a 404.

use serde_json::Value;

use crate::delta::delta_with_metadata;
use crate::request::parse_read;
use crate::{Limits, Map, Shadow, ShadowError};

/// Answer a get request.
///
/// `shadow_name` is the name quoted in the 404 message
/// (`No shadow exists with name: '<name>'`). AWS quotes the shadow name for
/// a named shadow and the thing name for the classic one, so pass
/// [`crate::ShadowTopic::display_name`]; `None` quotes an empty name.
pub fn get_response(
    current: Option<&Shadow>,
    request: &[u8],
    now: i64,
    shadow_name: Option<&str>,
) -> Result<Value, ShadowError> {
    let token = parse_read(request, &Limits::default())?;
    let shadow = Shadow::live(current).ok_or_else(|| ShadowError::no_shadow(shadow_name.unwrap_or("")))?;
    let mut state = shadow.state_value();
    let mut metadata = shadow.metadata_value();
    if let Some((d, md)) = delta_with_metadata(shadow) {
        state["delta"] = Value::Object(d);
        metadata["delta"] = Value::Object(md);
    }
    let mut m = Map::new();
    m.insert("state".into(), state);
    m.insert("metadata".into(), metadata);
    m.insert("version".into(), shadow.version.into());
    m.insert("timestamp".into(), now.into());
    if let Some(t) = token {
        m.insert("clientToken".into(), Value::String(t));
    }
    Ok(Value::Object(m))
}

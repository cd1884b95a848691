//! Delete: remove a shadow, leaving a tombstone that remembers its version.
//!
//! AWS: "deleting a shadow does not reset its version number to 0", and a
//! shadow recreated within 48 hours continues the old numbering. The
//! tombstone carries the deleted shadow's version and the deletion time;
//! [`crate::apply_update`] continues from it within
//! [`crate::Limits::version_retention_secs`]. `/delete/accepted` is
//! `{"version", "timestamp", "clientToken"?}` with the version of the shadow
//! that was deleted. The request's content is ignored apart from its
//! `clientToken`. Deleting a missing shadow (or a tombstone) is a 404.

use serde_json::Value;

use crate::request::parse_read;
use crate::{Limits, Map, Shadow, ShadowError};

/// Delete a shadow: returns the tombstone to store and the
/// `/delete/accepted` payload. `shadow_name` is quoted in the 404 message,
/// as for [`crate::get_response`].
pub fn delete(
    current: Option<&Shadow>,
    request: &[u8],
    now: i64,
    shadow_name: Option<&str>,
) -> Result<(Shadow, Value), ShadowError> {
    let token = parse_read(request, &Limits::default())?;
    let shadow = Shadow::live(current).ok_or_else(|| ShadowError::no_shadow(shadow_name.unwrap_or("")))?;
    let tombstone = Shadow {
        state_desired: None,
        state_reported: None,
        metadata_desired: None,
        metadata_reported: None,
        version: shadow.version,
        timestamp: now,
        deleted_at: Some(now),
    };
    let mut m = Map::new();
    m.insert("version".into(), shadow.version.into());
    m.insert("timestamp".into(), now.into());
    if let Some(t) = token {
        m.insert("clientToken".into(), Value::String(t));
    }
    Ok((tombstone, Value::Object(m)))
}

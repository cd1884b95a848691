//! Pre-signed URL grants: what a URL handed to a device allows (method,
//! bucket, key, size), for how long, to whom, and whether it was used.
//! Kept server-side so URLs can be single-use and die with the device's
//! certificate — which S3's own pre-signed URLs cannot.

use serde::{Deserialize, Serialize};

/// One issued URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlGrant {
    /// Also the URL's access key id.
    pub id: String,
    pub thing_name: Option<String>,
    /// The certificate the requesting device connected with; the URL stops
    /// working when it is no longer active.
    pub certificate_id: Option<String>,
    pub client_id: Option<String>,
    /// `GET` or `PUT`.
    pub method: String,
    pub bucket: String,
    pub key: String,
    /// Largest upload allowed (uploads only).
    pub max_size: Option<u64>,
    pub content_type: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub single_use: bool,
    /// `active`, `in-use` (a request is using a single-use URL), `used`, `revoked`.
    pub state: String,
}

pub trait GrantStore: Send + Sync + 'static {
    fn put_grant(&self, grant: &UrlGrant) -> crate::Result<()>;
    fn get_grant(&self, id: &str) -> crate::Result<Option<UrlGrant>>;
    /// Atomically move a grant from `active` to `in-use`; false if it was not active.
    fn claim_grant(&self, id: &str) -> crate::Result<bool>;
    /// End a claim: `used` when the request succeeded, back to `active` when not.
    fn release_grant(&self, id: &str, used: bool) -> crate::Result<()>;
    /// Revoke every still-usable grant of a certificate (or of a thing); returns how many.
    fn revoke_grants(&self, certificate_id: Option<&str>, thing_name: Option<&str>) -> crate::Result<usize>;
    /// Grants of a thing, newest first.
    fn list_grants(&self, thing_name: &str, limit: usize) -> crate::Result<Vec<UrlGrant>>;
    /// Forget grants that expired before `before_ms`.
    fn purge_grants(&self, before_ms: i64) -> crate::Result<usize>;
}

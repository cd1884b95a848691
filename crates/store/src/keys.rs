//! Payload keys: master keys (their versions sealed by the root key), the
//! data keys issued to devices, aliases, and the append-only audit log of
//! every key use.

use serde::{Deserialize, Serialize};

/// A master key (KMS's "KMS key").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyRecord {
    pub id: String,
    pub description: String,
    /// `Enabled`, `Disabled` or `PendingDeletion`.
    pub state: String,
    pub created_ms: i64,
    pub deletion_ms: Option<i64>,
    pub rotation_enabled: bool,
    pub rotation_period_days: u32,
    /// When the current version was made.
    pub rotated_ms: i64,
    pub current_version: u32,
}

/// One version of a master key's material, sealed under the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersionRecord {
    pub key_id: String,
    pub version: u32,
    pub sealed: Vec<u8>,
    pub created_ms: i64,
}

/// A data key issued to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataKeyRecord {
    pub id: String,
    pub master_key_id: String,
    pub thing_name: Option<String>,
    pub certificate_id: Option<String>,
    /// How it was wrapped for the device (`RSAES_OAEP_SHA_256`, …).
    pub algorithm: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
    /// `active` or `revoked`.
    pub status: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAuditRecord {
    pub seq: i64,
    pub time_ms: i64,
    /// `CreateKey`, `GenerateDataKey`, `IssueDataKey`, `Decrypt`, `RevokeDataKey`, …
    pub event: String,
    pub key_id: Option<String>,
    pub data_key_id: Option<String>,
    /// Who: an access key id or a certificate id.
    pub principal: String,
    /// JSON details (thing, encryption context, outcome).
    pub detail: String,
}

pub trait KeyStore: Send + Sync + 'static {
    fn put_master_key(&self, rec: &MasterKeyRecord) -> crate::Result<()>;
    fn get_master_key(&self, id: &str) -> crate::Result<Option<MasterKeyRecord>>;
    fn list_master_keys(&self) -> crate::Result<Vec<MasterKeyRecord>>;
    fn add_key_version(&self, rec: &KeyVersionRecord) -> crate::Result<()>;
    fn key_versions(&self, key_id: &str) -> crate::Result<Vec<KeyVersionRecord>>;
    fn put_alias(&self, alias: &str, key_id: &str) -> crate::Result<()>;
    fn delete_alias(&self, alias: &str) -> crate::Result<()>;
    /// (alias, key id), sorted by alias.
    fn list_aliases(&self) -> crate::Result<Vec<(String, String)>>;
    fn put_data_key(&self, rec: &DataKeyRecord) -> crate::Result<()>;
    fn get_data_key(&self, id: &str) -> crate::Result<Option<DataKeyRecord>>;
    /// Newest first; of one thing when given.
    fn list_data_keys(&self, thing: Option<&str>, limit: usize) -> crate::Result<Vec<DataKeyRecord>>;
    /// Revoke one key, or every active key of a thing; returns how many changed.
    fn revoke_data_keys(&self, id: Option<&str>, thing: Option<&str>) -> crate::Result<usize>;
    /// Append to the audit log (never updated or deleted).
    fn append_audit(&self, rec: &KeyAuditRecord) -> crate::Result<()>;
    /// Newest first, optionally of one master or data key.
    fn list_audit(&self, key: Option<&str>, limit: usize) -> crate::Result<Vec<KeyAuditRecord>>;
}

//! Policy records: named policies with up to five versions (one default) and
//! the targets (certificates, thing groups) they are attached to.

use serde::{Deserialize, Serialize};

/// One version of a policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersionRecord {
    /// "1", "2", … as AWS numbers them.
    pub version_id: String,
    /// The document exactly as the user wrote it.
    pub document: String,
    pub created_at_ms: u64,
}

/// A policy with all its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub default_version: String,
    pub versions: Vec<PolicyVersionRecord>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl PolicyRecord {
    /// The default version's document.
    pub fn default_document(&self) -> Option<&PolicyVersionRecord> {
        self.versions.iter().find(|v| v.version_id == self.default_version)
    }
}

/// Storage for policies. Targets are ARN strings chosen by the caller
/// (certificate ARNs, thing-group ARNs).
pub trait PolicyStore: Send + Sync + 'static {
    /// Create a policy with version "1" as default; `AlreadyExists` if the name is taken.
    fn create_policy(&self, name: &str, document: &str, now_ms: u64) -> crate::Result<PolicyRecord>;
    fn get_policy(&self, name: &str) -> crate::Result<Option<PolicyRecord>>;
    fn list_policies(&self) -> crate::Result<Vec<PolicyRecord>>;
    /// Delete a policy with its versions and attachments.
    fn delete_policy(&self, name: &str) -> crate::Result<()>;
    /// Add a version (the caller enforces the five-version limit); returns its id.
    fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_default: bool,
        now_ms: u64,
    ) -> crate::Result<String>;
    fn set_default_policy_version(&self, name: &str, version_id: &str, now_ms: u64) -> crate::Result<()>;
    fn delete_policy_version(&self, name: &str, version_id: &str) -> crate::Result<()>;

    /// Attach; attaching twice is a no-op.
    fn attach_policy(&self, name: &str, target: &str) -> crate::Result<()>;
    /// Detach; `NotFound` if it was not attached.
    fn detach_policy(&self, name: &str, target: &str) -> crate::Result<()>;
    fn policy_targets(&self, name: &str) -> crate::Result<Vec<String>>;
    /// Remove every attachment to `target` (the target was deleted).
    fn forget_target(&self, target: &str) -> crate::Result<()>;
    /// Names of the policies attached to `target`.
    fn target_policies(&self, target: &str) -> crate::Result<Vec<String>>;
}

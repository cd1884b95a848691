//! Registry records: certificates, things, and which certificates (principals)
//! are attached to which things.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Certificate status, spelled as AWS IoT spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
            CertificateStatus::PendingTransfer => "PENDING_TRANSFER",
            CertificateStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertificateStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ACTIVE" => CertificateStatus::Active,
            "INACTIVE" => CertificateStatus::Inactive,
            "REVOKED" => CertificateStatus::Revoked,
            "PENDING_TRANSFER" => CertificateStatus::PendingTransfer,
            "REGISTER_INACTIVE" => CertificateStatus::RegisterInactive,
            "PENDING_ACTIVATION" => CertificateStatus::PendingActivation,
            _ => return None,
        })
    }
}

/// A device certificate known to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// SHA-256 of the DER, 64 lowercase hex characters.
    pub id: String,
    pub pem: String,
    pub status: CertificateStatus,
    /// Id of the CA certificate that signed it, when known.
    pub ca_certificate_id: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// A thing in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingRecord {
    pub name: String,
    /// Stable id (UUID) as AWS returns in `thingId`.
    pub id: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Incremented on every update (AWS `version`).
    pub version: i64,
    pub created_at_ms: u64,
}

/// Registry storage. Calls are short, synchronous transactions; callers on an
/// async runtime keep them off hot paths (the broker reads a cache).
pub trait RegistryStore: Send + Sync + 'static {
    fn insert_certificate(&self, rec: &CertificateRecord) -> crate::Result<()>;
    fn get_certificate(&self, id: &str) -> crate::Result<Option<CertificateRecord>>;
    fn list_certificates(&self) -> crate::Result<Vec<CertificateRecord>>;
    fn set_certificate_status(
        &self,
        id: &str,
        status: CertificateStatus,
        now_ms: u64,
    ) -> crate::Result<()>;
    fn delete_certificate(&self, id: &str) -> crate::Result<()>;

    fn create_thing(&self, rec: &ThingRecord) -> crate::Result<()>;
    fn get_thing(&self, name: &str) -> crate::Result<Option<ThingRecord>>;
    fn list_things(&self) -> crate::Result<Vec<ThingRecord>>;
    fn update_thing(&self, rec: &ThingRecord) -> crate::Result<()>;
    fn delete_thing(&self, name: &str) -> crate::Result<()>;

    /// Attach a principal (certificate id) to a thing; attaching twice is a no-op.
    fn attach_principal(&self, thing: &str, principal: &str) -> crate::Result<()>;
    fn detach_principal(&self, thing: &str, principal: &str) -> crate::Result<()>;
    fn thing_principals(&self, thing: &str) -> crate::Result<Vec<String>>;
    fn principal_things(&self, principal: &str) -> crate::Result<Vec<String>>;
}

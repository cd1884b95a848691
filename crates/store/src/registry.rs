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

/// A CA certificate registered by the user (bring your own CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaCertificateRecord {
    /// SHA-256 of the DER, 64 lowercase hex characters.
    pub id: String,
    pub pem: String,
    /// ACTIVE or INACTIVE (AWS `CACertificateStatus`).
    pub active: bool,
    /// Whether unknown device certificates it signed register themselves on first connect.
    pub auto_registration: bool,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// Registry storage. Calls are short, synchronous transactions; callers on an
/// async runtime keep them off hot paths (the broker reads a cache).
pub trait RegistryStore: Send + Sync + 'static {
    fn insert_certificate(&self, rec: &CertificateRecord) -> crate::Result<()>;
    fn get_certificate(&self, id: &str) -> crate::Result<Option<CertificateRecord>>;
    fn list_certificates(&self) -> crate::Result<Vec<CertificateRecord>>;
    fn set_certificate_status(&self, id: &str, status: CertificateStatus, now_ms: u64) -> crate::Result<()>;
    fn delete_certificate(&self, id: &str) -> crate::Result<()>;

    fn create_thing(&self, rec: &ThingRecord) -> crate::Result<()>;
    fn get_thing(&self, name: &str) -> crate::Result<Option<ThingRecord>>;
    fn list_things(&self) -> crate::Result<Vec<ThingRecord>>;
    fn update_thing(&self, rec: &ThingRecord) -> crate::Result<()>;
    fn delete_thing(&self, name: &str) -> crate::Result<()>;

    /// Attach a principal (certificate id) to a thing; attaching twice is a no-op.
    /// `exclusive`: the principal may be attached to no other thing (AWS
    /// `EXCLUSIVE_THING`); refused with `AlreadyExists` if it already is, and
    /// any later attach elsewhere is refused too.
    fn attach_principal(&self, thing: &str, principal: &str, exclusive: bool) -> crate::Result<()>;
    fn detach_principal(&self, thing: &str, principal: &str) -> crate::Result<()>;
    fn thing_principals(&self, thing: &str) -> crate::Result<Vec<String>>;
    fn principal_things(&self, principal: &str) -> crate::Result<Vec<String>>;
    /// Things a principal is attached to, with whether the attachment is exclusive.
    fn principal_attachments(&self, principal: &str) -> crate::Result<Vec<(String, bool)>>;

    fn insert_ca_certificate(&self, rec: &CaCertificateRecord) -> crate::Result<()>;
    fn get_ca_certificate(&self, id: &str) -> crate::Result<Option<CaCertificateRecord>>;
    fn list_ca_certificates(&self) -> crate::Result<Vec<CaCertificateRecord>>;
    fn update_ca_certificate(&self, rec: &CaCertificateRecord) -> crate::Result<()>;
    fn delete_ca_certificate(&self, id: &str) -> crate::Result<()>;

    /// Server-wide settings (small strings).
    fn get_setting(&self, key: &str) -> crate::Result<Option<String>>;
    fn put_setting(&self, key: &str, value: &str) -> crate::Result<()>;
}

// ---- thing types, static thing groups, registry event configuration ----

/// A thing type (AWS CreateThingType). Its properties cannot change after
/// creation; only deprecation can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingTypeRecord {
    pub name: String,
    /// Stable id (UUID) as AWS returns in `thingTypeId`.
    pub id: String,
    pub description: Option<String>,
    pub searchable_attributes: Vec<String>,
    /// Tags given at creation (key → value; AWS tag values are optional, "" here).
    pub tags: BTreeMap<String, String>,
    pub deprecated: bool,
    /// When it was last deprecated (kept only while deprecated).
    pub deprecated_at_ms: Option<u64>,
    pub created_at_ms: u64,
}

/// A static thing group (AWS CreateThingGroup). The parent is fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingGroupRecord {
    pub name: String,
    /// Stable id (UUID) as AWS returns in `thingGroupId`.
    pub id: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// 1 at creation, incremented on every update (AWS `version`).
    pub version: i64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// A thing's membership of a static group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    pub group: String,
    pub thing: String,
    /// AWS `membershipId` in registry events: made when the thing is added.
    pub membership_id: String,
    pub added_at_ms: u64,
}

/// Which registry events are published (AWS UpdateEventConfigurations): event
/// type (`THING`, `THING_GROUP`, …) → enabled. Missing types are disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventConfigRecord {
    pub enabled: BTreeMap<String, bool>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// Storage for thing types, static thing groups and their memberships, and
/// the registry event configuration. Memberships go away with their thing or
/// group (the SQLite schema cascades), so `RegistryStore::delete_thing` needs
/// no help. Like [`RegistryStore`], calls are short synchronous transactions.
pub trait GroupStore: Send + Sync + 'static {
    fn create_thing_type(&self, rec: &ThingTypeRecord) -> crate::Result<()>;
    fn get_thing_type(&self, name: &str) -> crate::Result<Option<ThingTypeRecord>>;
    /// All thing types, by name.
    fn list_thing_types(&self) -> crate::Result<Vec<ThingTypeRecord>>;
    /// Set the deprecation flag and date.
    fn set_thing_type_deprecated(&self, name: &str, deprecated: bool, at_ms: Option<u64>) -> crate::Result<()>;
    fn delete_thing_type(&self, name: &str) -> crate::Result<()>;
    /// How many things have this type.
    fn count_things_of_type(&self, name: &str) -> crate::Result<u64>;

    /// Replace a thing's type, attributes and version only if its stored
    /// version is still `current_version` (optimistic concurrency for
    /// UpdateThing). `Ok(false)`: the version moved on (or the thing is gone).
    fn update_thing_if_version(&self, rec: &ThingRecord, current_version: i64) -> crate::Result<bool>;

    fn create_thing_group(&self, rec: &ThingGroupRecord) -> crate::Result<()>;
    fn get_thing_group(&self, name: &str) -> crate::Result<Option<ThingGroupRecord>>;
    /// All thing groups, by name.
    fn list_thing_groups(&self) -> crate::Result<Vec<ThingGroupRecord>>;
    /// Replace description, attributes, version and update time, only if the
    /// stored version is still `current_version`. `Ok(false)` otherwise.
    fn update_thing_group_if_version(&self, rec: &ThingGroupRecord, current_version: i64) -> crate::Result<bool>;
    /// Delete a group and its memberships. Fails while it has child groups.
    fn delete_thing_group(&self, name: &str) -> crate::Result<()>;

    /// Add a thing to a group; `Ok(false)` if it already was a member.
    fn add_group_member(&self, m: &GroupMembership) -> crate::Result<bool>;
    /// Remove a thing from a group; the removed membership, if there was one.
    fn remove_group_member(&self, group: &str, thing: &str) -> crate::Result<Option<GroupMembership>>;
    /// Direct members of a group, by thing name.
    fn group_members(&self, group: &str) -> crate::Result<Vec<GroupMembership>>;
    /// Groups a thing is directly a member of, by group name.
    fn thing_memberships(&self, thing: &str) -> crate::Result<Vec<GroupMembership>>;

    /// The stored event configuration, if any was ever written.
    fn get_event_config(&self) -> crate::Result<Option<EventConfigRecord>>;
    fn put_event_config(&self, rec: &EventConfigRecord) -> crate::Result<()>;
}

//! Persistence for Thingport: the records that must survive a crash, the
//! traits the rest of the system writes them through, and the embedded
//! SQLite implementation used by default.
//!
//! Two kinds of state live here:
//! - broker state ([`broker`]): persistent sessions, their subscriptions and
//!   queued messages, retained messages — written on the hot path through a
//!   batching writer, committed before the broker acknowledges;
//! - registry state ([`registry`]): certificates, things and their links —
//!   small, transactional, read through caches.
#![forbid(unsafe_code)]

pub mod broker;
pub mod grants;
pub mod keys;
pub mod memory;
pub mod policy;
pub mod registry;
pub mod rules;
pub mod shadow;
pub mod sqlite;

pub use broker::{BrokerOp, BrokerSnapshot, BrokerStore, StoredMessage, StoredSession, StoredSubscription};
pub use grants::{GrantStore, UrlGrant};
pub use keys::{DataKeyRecord, KeyAuditRecord, KeyStore, KeyVersionRecord, MasterKeyRecord};
pub use policy::{PolicyRecord, PolicyStore, PolicyVersionRecord};
pub use registry::{CaCertificateRecord, CertificateRecord, CertificateStatus, RegistryStore, ThingRecord};
pub use rules::{RuleRecord, RuleStore};
pub use shadow::ShadowStore;

/// Errors from any storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error (disk full, corruption, locked, …).
    #[error("database error: {0}")]
    Database(String),
    /// A stored row could not be decoded (written by a newer version?).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The record already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The writer thread is gone (the store was closed).
    #[error("store closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

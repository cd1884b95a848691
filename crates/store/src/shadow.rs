//! Device shadow records: one JSON document per (thing, shadow name), kept
//! as a tombstone after deletion so version numbering can continue.

/// Storage for shadows. Documents are opaque JSON text (the shadow crate's
/// serialised form); `deleted` marks tombstones, which listings skip.
pub trait ShadowStore: Send + Sync + 'static {
    /// The stored document (tombstones included) for `shadow` ("" = classic).
    fn get_shadow(&self, thing: &str, shadow: &str) -> crate::Result<Option<String>>;
    /// Write a document, committed before returning.
    fn put_shadow(&self, thing: &str, shadow: &str, document: &str, deleted: bool, now_ms: u64) -> crate::Result<()>;
    /// Names of a thing's live named shadows (not the classic one), sorted.
    fn list_named_shadows(&self, thing: &str) -> crate::Result<Vec<String>>;
}

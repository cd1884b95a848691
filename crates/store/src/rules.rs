//! Topic rules, the rule-action job queue (written through the broker's
//! batching writer, see [`crate::BrokerOp::PutJob`]) and the embedded table
//! store behind the `dynamoDB`-style action.

/// A stored topic rule: its AWS `topicRulePayload` as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub name: String,
    pub payload: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// Storage for rules, pending rule jobs and table items.
pub trait RuleStore: Send + Sync + 'static {
    fn put_rule(&self, rec: &RuleRecord) -> crate::Result<()>;
    fn get_rule(&self, name: &str) -> crate::Result<Option<RuleRecord>>;
    fn list_rules(&self) -> crate::Result<Vec<RuleRecord>>;
    fn delete_rule(&self, name: &str) -> crate::Result<()>;
    /// Jobs not yet done, oldest first: (id, body).
    fn pending_jobs(&self) -> crate::Result<Vec<(u64, String)>>;
    /// Put (insert or replace) an item.
    fn put_item(&self, table: &str, hash_key: &str, range_key: &str, item: &str) -> crate::Result<()>;
    /// Items of a table, optionally of one hash key: (hash key, range key, item).
    fn query_items(
        &self,
        table: &str,
        hash_key: Option<&str>,
        limit: usize,
    ) -> crate::Result<Vec<(String, String, String)>>;
}

//! SQLite rows for rules, rule jobs and table items.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::rules::{RuleRecord, RuleStore};
use crate::{Result, StoreError};

fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRecord> {
    Ok(RuleRecord {
        name: r.get(0)?,
        payload: r.get(1)?,
        created_at_ms: r.get::<_, i64>(2)? as u64,
        updated_at_ms: r.get::<_, i64>(3)? as u64,
    })
}

impl RuleStore for SqliteStore {
    fn put_rule(&self, rec: &RuleRecord) -> Result<()> {
        self.conn.lock().execute(
            "INSERT INTO topic_rules (name, payload, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET payload = excluded.payload, updated_at_ms = excluded.updated_at_ms",
            params![rec.name, rec.payload, rec.created_at_ms as i64, rec.updated_at_ms as i64],
        )?;
        Ok(())
    }

    fn get_rule(&self, name: &str) -> Result<Option<RuleRecord>> {
        Ok(self
            .conn
            .lock()
            .query_row(
                "SELECT name, payload, created_at_ms, updated_at_ms FROM topic_rules WHERE name = ?1",
                params![name],
                rule_from_row,
            )
            .optional()?)
    }

    fn list_rules(&self) -> Result<Vec<RuleRecord>> {
        let conn = self.conn.lock();
        let mut st =
            conn.prepare("SELECT name, payload, created_at_ms, updated_at_ms FROM topic_rules ORDER BY name")?;
        let rows = st.query_map([], rule_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn delete_rule(&self, name: &str) -> Result<()> {
        let n = self.conn.lock().execute("DELETE FROM topic_rules WHERE name = ?1", params![name])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("rule {name}")));
        }
        Ok(())
    }

    fn pending_jobs(&self) -> Result<Vec<(u64, String)>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare("SELECT id, body FROM rule_jobs ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_item(&self, table: &str, hash_key: &str, range_key: &str, item: &str) -> Result<()> {
        self.conn.lock().execute(
            "INSERT OR REPLACE INTO table_items (table_name, hash_key, range_key, item) VALUES (?1, ?2, ?3, ?4)",
            params![table, hash_key, range_key, item],
        )?;
        Ok(())
    }

    fn query_items(&self, table: &str, hash_key: Option<&str>, limit: usize) -> Result<Vec<(String, String, String)>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT hash_key, range_key, item FROM table_items WHERE table_name = ?1 AND (?2 IS NULL OR hash_key = ?2)
             ORDER BY hash_key, range_key LIMIT ?3",
        )?;
        let rows = st.query_map(params![table, hash_key, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

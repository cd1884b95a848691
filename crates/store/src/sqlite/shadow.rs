//! SQLite rows for device shadows.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::shadow::ShadowStore;
use crate::Result;

impl ShadowStore for SqliteStore {
    fn get_shadow(&self, thing: &str, shadow: &str) -> Result<Option<String>> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                "SELECT document FROM shadows WHERE thing_name = ?1 AND shadow_name = ?2",
                params![thing, shadow],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn put_shadow(&self, thing: &str, shadow: &str, document: &str, deleted: bool, now_ms: u64) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO shadows (thing_name, shadow_name, document, deleted, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(thing_name, shadow_name) DO UPDATE SET document = excluded.document,
             deleted = excluded.deleted, updated_at_ms = excluded.updated_at_ms",
            params![thing, shadow, document, deleted, now_ms as i64],
        )?;
        Ok(())
    }

    fn list_named_shadows(&self, thing: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT shadow_name FROM shadows WHERE thing_name = ?1 AND shadow_name != '' AND deleted = 0
             ORDER BY shadow_name",
        )?;
        let rows = st.query_map(params![thing], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

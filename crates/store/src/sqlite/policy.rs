//! SQLite rows for policies.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::policy::{PolicyRecord, PolicyStore, PolicyVersionRecord};
use crate::{Result, StoreError};

fn load(conn: &rusqlite::Connection, name: &str) -> Result<Option<PolicyRecord>> {
    let head = conn
        .query_row(
            "SELECT name, default_version, created_at_ms, updated_at_ms FROM policies WHERE name = ?1",
            params![name],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
        )
        .optional()?;
    let Some((name, default_version, created, updated)) = head else { return Ok(None) };
    let mut st = conn.prepare(
        "SELECT version_id, document, created_at_ms FROM policy_versions WHERE policy_name = ?1
         ORDER BY CAST(version_id AS INTEGER)",
    )?;
    let versions = st
        .query_map(params![name], |r| {
            Ok(PolicyVersionRecord {
                version_id: r.get(0)?,
                document: r.get(1)?,
                created_at_ms: r.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(PolicyRecord {
        name,
        default_version,
        versions,
        created_at_ms: created as u64,
        updated_at_ms: updated as u64,
    }))
}

impl PolicyStore for SqliteStore {
    fn create_policy(&self, name: &str, document: &str, now_ms: u64) -> Result<PolicyRecord> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO policies (name, default_version, next_version, created_at_ms, updated_at_ms)
             VALUES (?1, '1', 2, ?2, ?2)",
            params![name, now_ms as i64],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("policy {name}")));
        }
        tx.execute(
            "INSERT INTO policy_versions (policy_name, version_id, document, created_at_ms) VALUES (?1, '1', ?2, ?3)",
            params![name, document, now_ms as i64],
        )?;
        tx.commit()?;
        load(&conn, name)?.ok_or_else(|| StoreError::NotFound(format!("policy {name}")))
    }

    fn get_policy(&self, name: &str) -> Result<Option<PolicyRecord>> {
        load(&self.conn.lock(), name)
    }

    fn list_policies(&self) -> Result<Vec<PolicyRecord>> {
        let conn = self.conn.lock();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM policies ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        names.iter().filter_map(|n| load(&conn, n).transpose()).collect()
    }

    fn delete_policy(&self, name: &str) -> Result<()> {
        let n = self.conn.lock().execute("DELETE FROM policies WHERE name = ?1", params![name])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("policy {name}")));
        }
        Ok(())
    }

    fn create_policy_version(&self, name: &str, document: &str, set_default: bool, now_ms: u64) -> Result<String> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let next: Option<i64> = tx
            .query_row("SELECT next_version FROM policies WHERE name = ?1", params![name], |r| r.get(0))
            .optional()?;
        let Some(next) = next else { return Err(StoreError::NotFound(format!("policy {name}"))) };
        let id = next.to_string();
        tx.execute(
            "INSERT INTO policy_versions (policy_name, version_id, document, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, id, document, now_ms as i64],
        )?;
        tx.execute(
            "UPDATE policies SET next_version = next_version + 1, updated_at_ms = ?2,
             default_version = CASE WHEN ?3 THEN ?4 ELSE default_version END WHERE name = ?1",
            params![name, now_ms as i64, set_default, id],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn set_default_policy_version(&self, name: &str, version_id: &str, now_ms: u64) -> Result<()> {
        let conn = self.conn.lock();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM policy_versions WHERE policy_name = ?1 AND version_id = ?2)",
            params![name, version_id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound(format!("version {version_id} of policy {name}")));
        }
        conn.execute(
            "UPDATE policies SET default_version = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![name, version_id, now_ms as i64],
        )?;
        Ok(())
    }

    fn delete_policy_version(&self, name: &str, version_id: &str) -> Result<()> {
        let n = self.conn.lock().execute(
            "DELETE FROM policy_versions WHERE policy_name = ?1 AND version_id = ?2",
            params![name, version_id],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("version {version_id} of policy {name}")));
        }
        Ok(())
    }

    fn attach_policy(&self, name: &str, target: &str) -> Result<()> {
        let conn = self.conn.lock();
        let exists: bool =
            conn.query_row("SELECT EXISTS(SELECT 1 FROM policies WHERE name = ?1)", params![name], |r| r.get(0))?;
        if !exists {
            return Err(StoreError::NotFound(format!("policy {name}")));
        }
        conn.execute(
            "INSERT OR IGNORE INTO policy_targets (policy_name, target) VALUES (?1, ?2)",
            params![name, target],
        )?;
        Ok(())
    }

    fn detach_policy(&self, name: &str, target: &str) -> Result<()> {
        let n = self
            .conn
            .lock()
            .execute("DELETE FROM policy_targets WHERE policy_name = ?1 AND target = ?2", params![name, target])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("attachment of policy {name} to {target}")));
        }
        Ok(())
    }

    fn policy_targets(&self, name: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let v = conn
            .prepare("SELECT target FROM policy_targets WHERE policy_name = ?1 ORDER BY target")?
            .query_map(params![name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    fn forget_target(&self, target: &str) -> Result<()> {
        self.conn.lock().execute("DELETE FROM policy_targets WHERE target = ?1", params![target])?;
        Ok(())
    }

    fn target_policies(&self, target: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let v = conn
            .prepare("SELECT policy_name FROM policy_targets WHERE target = ?1 ORDER BY policy_name")?
            .query_map(params![target], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }
}

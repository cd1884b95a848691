//! SQLite rows for payload keys and their audit log.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::keys::{DataKeyRecord, KeyAuditRecord, KeyStore, KeyVersionRecord, MasterKeyRecord};
use crate::Result;

const MASTER: &str =
    "id, description, state, created_ms, deletion_ms, rotation_enabled, rotation_period_days, rotated_ms, current_version";
const DATA: &str = "id, master_key_id, thing_name, certificate_id, algorithm, issued_ms, expires_ms, status";

fn master(r: &rusqlite::Row<'_>) -> rusqlite::Result<MasterKeyRecord> {
    Ok(MasterKeyRecord {
        id: r.get(0)?,
        description: r.get(1)?,
        state: r.get(2)?,
        created_ms: r.get(3)?,
        deletion_ms: r.get(4)?,
        rotation_enabled: r.get(5)?,
        rotation_period_days: r.get(6)?,
        rotated_ms: r.get(7)?,
        current_version: r.get(8)?,
    })
}

fn data(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataKeyRecord> {
    Ok(DataKeyRecord {
        id: r.get(0)?,
        master_key_id: r.get(1)?,
        thing_name: r.get(2)?,
        certificate_id: r.get(3)?,
        algorithm: r.get(4)?,
        issued_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        status: r.get(7)?,
    })
}

impl KeyStore for SqliteStore {
    fn put_master_key(&self, k: &MasterKeyRecord) -> Result<()> {
        self.conn.lock().execute(
            &format!("INSERT OR REPLACE INTO master_keys ({MASTER}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                k.id,
                k.description,
                k.state,
                k.created_ms,
                k.deletion_ms,
                k.rotation_enabled,
                k.rotation_period_days,
                k.rotated_ms,
                k.current_version
            ],
        )?;
        Ok(())
    }

    fn get_master_key(&self, id: &str) -> Result<Option<MasterKeyRecord>> {
        Ok(self
            .conn
            .lock()
            .query_row(&format!("SELECT {MASTER} FROM master_keys WHERE id = ?1"), params![id], master)
            .optional()?)
    }

    fn list_master_keys(&self) -> Result<Vec<MasterKeyRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {MASTER} FROM master_keys ORDER BY created_ms, id"))?;
        let rows = st.query_map([], master)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn add_key_version(&self, v: &KeyVersionRecord) -> Result<()> {
        self.conn.lock().execute(
            "INSERT INTO key_versions (key_id, version, sealed, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![v.key_id, v.version, v.sealed, v.created_ms],
        )?;
        Ok(())
    }

    fn key_versions(&self, key_id: &str) -> Result<Vec<KeyVersionRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT key_id, version, sealed, created_ms FROM key_versions WHERE key_id = ?1 ORDER BY version",
        )?;
        let rows = st.query_map(params![key_id], |r| {
            Ok(KeyVersionRecord { key_id: r.get(0)?, version: r.get(1)?, sealed: r.get(2)?, created_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        self.conn
            .lock()
            .execute("INSERT OR REPLACE INTO key_aliases (alias, key_id) VALUES (?1, ?2)", params![alias, key_id])?;
        Ok(())
    }

    fn delete_alias(&self, alias: &str) -> Result<()> {
        self.conn.lock().execute("DELETE FROM key_aliases WHERE alias = ?1", params![alias])?;
        Ok(())
    }

    fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare("SELECT alias, key_id FROM key_aliases ORDER BY alias")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_data_key(&self, k: &DataKeyRecord) -> Result<()> {
        self.conn.lock().execute(
            &format!("INSERT OR REPLACE INTO data_keys ({DATA}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                k.id,
                k.master_key_id,
                k.thing_name,
                k.certificate_id,
                k.algorithm,
                k.issued_ms,
                k.expires_ms,
                k.status
            ],
        )?;
        Ok(())
    }

    fn get_data_key(&self, id: &str) -> Result<Option<DataKeyRecord>> {
        Ok(self
            .conn
            .lock()
            .query_row(&format!("SELECT {DATA} FROM data_keys WHERE id = ?1"), params![id], data)
            .optional()?)
    }

    fn list_data_keys(&self, thing: Option<&str>, limit: usize) -> Result<Vec<DataKeyRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {DATA} FROM data_keys WHERE ?1 IS NULL OR thing_name = ?1 ORDER BY issued_ms DESC, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![thing, limit as i64], data)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn revoke_data_keys(&self, id: Option<&str>, thing: Option<&str>) -> Result<usize> {
        Ok(self.conn.lock().execute(
            "UPDATE data_keys SET status = 'revoked'
             WHERE status = 'active' AND ((?1 IS NOT NULL AND id = ?1) OR (?2 IS NOT NULL AND thing_name = ?2))",
            params![id, thing],
        )?)
    }

    fn append_audit(&self, a: &KeyAuditRecord) -> Result<()> {
        self.conn.lock().execute(
            "INSERT INTO key_audit (time_ms, event, key_id, data_key_id, principal, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.time_ms, a.event, a.key_id, a.data_key_id, a.principal, a.detail],
        )?;
        Ok(())
    }

    fn list_audit(&self, key: Option<&str>, limit: usize) -> Result<Vec<KeyAuditRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT seq, time_ms, event, key_id, data_key_id, principal, detail FROM key_audit
             WHERE ?1 IS NULL OR key_id = ?1 OR data_key_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![key, limit as i64], |r| {
            Ok(KeyAuditRecord {
                seq: r.get(0)?,
                time_ms: r.get(1)?,
                event: r.get(2)?,
                key_id: r.get(3)?,
                data_key_id: r.get(4)?,
                principal: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_data_keys_and_an_append_only_audit_log() {
        let s = SqliteStore::open_in_memory().unwrap();
        let k = MasterKeyRecord {
            id: "k1".into(),
            description: "d".into(),
            state: "Enabled".into(),
            created_ms: 1,
            deletion_ms: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            rotated_ms: 1,
            current_version: 1,
        };
        s.put_master_key(&k).unwrap();
        assert_eq!(s.get_master_key("k1").unwrap().unwrap(), k);
        s.add_key_version(&KeyVersionRecord { key_id: "k1".into(), version: 1, sealed: vec![1, 2], created_ms: 1 })
            .unwrap();
        assert!(s
            .add_key_version(&KeyVersionRecord { key_id: "k1".into(), version: 1, sealed: vec![3], created_ms: 2 })
            .is_err());
        assert_eq!(s.key_versions("k1").unwrap().len(), 1);
        s.put_alias("alias/x", "k1").unwrap();
        assert_eq!(s.list_aliases().unwrap(), vec![("alias/x".to_string(), "k1".to_string())]);
        let dk = DataKeyRecord {
            id: "dk1".into(),
            master_key_id: "k1".into(),
            thing_name: Some("t".into()),
            certificate_id: Some("c".into()),
            algorithm: "RSAES_OAEP_SHA_256".into(),
            issued_ms: 5,
            expires_ms: 10,
            status: "active".into(),
        };
        s.put_data_key(&dk).unwrap();
        assert_eq!(s.list_data_keys(Some("t"), 10).unwrap(), vec![dk.clone()]);
        assert_eq!(s.revoke_data_keys(None, Some("t")).unwrap(), 1);
        assert_eq!(s.get_data_key("dk1").unwrap().unwrap().status, "revoked");
        let a = KeyAuditRecord {
            seq: 0,
            time_ms: 1,
            event: "Decrypt".into(),
            key_id: Some("k1".into()),
            data_key_id: Some("dk1".into()),
            principal: "p".into(),
            detail: "{}".into(),
        };
        s.append_audit(&a).unwrap();
        s.append_audit(&a).unwrap();
        assert_eq!(s.list_audit(Some("dk1"), 10).unwrap().len(), 2);
        let conn = s.conn.lock();
        assert!(conn.execute("UPDATE key_audit SET event = 'x'", []).is_err(), "the audit log is append-only");
        assert!(conn.execute("DELETE FROM key_audit", []).is_err(), "the audit log is append-only");
    }
}

//! SQLite rows for pre-signed URL grants.

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::grants::{GrantStore, UrlGrant};
use crate::Result;

const COLUMNS: &str = "id, thing_name, certificate_id, client_id, method, bucket, object_key, max_size, content_type, \
                       created_ms, expires_ms, single_use, state";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UrlGrant> {
    Ok(UrlGrant {
        id: r.get(0)?,
        thing_name: r.get(1)?,
        certificate_id: r.get(2)?,
        client_id: r.get(3)?,
        method: r.get(4)?,
        bucket: r.get(5)?,
        key: r.get(6)?,
        max_size: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        content_type: r.get(8)?,
        created_ms: r.get(9)?,
        expires_ms: r.get(10)?,
        single_use: r.get(11)?,
        state: r.get(12)?,
    })
}

impl GrantStore for SqliteStore {
    fn put_grant(&self, g: &UrlGrant) -> Result<()> {
        self.conn.lock().execute(
            &format!("INSERT OR REPLACE INTO url_grants ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            params![
                g.id,
                g.thing_name,
                g.certificate_id,
                g.client_id,
                g.method,
                g.bucket,
                g.key,
                g.max_size.map(|v| v as i64),
                g.content_type,
                g.created_ms,
                g.expires_ms,
                g.single_use,
                g.state
            ],
        )?;
        Ok(())
    }

    fn get_grant(&self, id: &str) -> Result<Option<UrlGrant>> {
        Ok(self
            .conn
            .lock()
            .query_row(&format!("SELECT {COLUMNS} FROM url_grants WHERE id = ?1"), params![id], from_row)
            .optional()?)
    }

    fn claim_grant(&self, id: &str) -> Result<bool> {
        let n = self
            .conn
            .lock()
            .execute("UPDATE url_grants SET state = 'in-use' WHERE id = ?1 AND state = 'active'", params![id])?;
        Ok(n == 1)
    }

    fn release_grant(&self, id: &str, used: bool) -> Result<()> {
        let to = if used { "used" } else { "active" };
        self.conn
            .lock()
            .execute("UPDATE url_grants SET state = ?2 WHERE id = ?1 AND state = 'in-use'", params![id, to])?;
        Ok(())
    }

    fn revoke_grants(&self, certificate_id: Option<&str>, thing_name: Option<&str>) -> Result<usize> {
        Ok(self.conn.lock().execute(
            "UPDATE url_grants SET state = 'revoked'
             WHERE state IN ('active', 'in-use')
               AND ((?1 IS NOT NULL AND certificate_id = ?1) OR (?2 IS NOT NULL AND thing_name = ?2))",
            params![certificate_id, thing_name],
        )?)
    }

    fn list_grants(&self, thing_name: &str, limit: usize) -> Result<Vec<UrlGrant>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM url_grants WHERE thing_name = ?1 ORDER BY created_ms DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![thing_name, limit as i64], from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn purge_grants(&self, before_ms: i64) -> Result<usize> {
        Ok(self.conn.lock().execute("DELETE FROM url_grants WHERE expires_ms < ?1", params![before_ms])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> UrlGrant {
        UrlGrant {
            id: id.into(),
            thing_name: Some("cam-1".into()),
            certificate_id: Some("c1".into()),
            client_id: Some("cam-1".into()),
            method: "PUT".into(),
            bucket: "uploads".into(),
            key: "cam-1/a.bin".into(),
            max_size: Some(10),
            content_type: None,
            created_ms: 1,
            expires_ms: 100,
            single_use: true,
            state: "active".into(),
        }
    }

    #[test]
    fn claim_release_revoke_purge() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.put_grant(&grant("g1")).unwrap();
        s.put_grant(&grant("g2")).unwrap();
        assert_eq!(s.get_grant("g1").unwrap().unwrap(), grant("g1"));
        assert!(s.claim_grant("g1").unwrap());
        assert!(!s.claim_grant("g1").unwrap(), "a claimed grant cannot be claimed twice");
        s.release_grant("g1", false).unwrap();
        assert!(s.claim_grant("g1").unwrap(), "a failed use gives the grant back");
        s.release_grant("g1", true).unwrap();
        assert_eq!(s.get_grant("g1").unwrap().unwrap().state, "used");
        assert!(!s.claim_grant("g1").unwrap());
        assert_eq!(s.revoke_grants(Some("c1"), None).unwrap(), 1);
        assert_eq!(s.get_grant("g2").unwrap().unwrap().state, "revoked");
        assert_eq!(s.list_grants("cam-1", 10).unwrap().len(), 2);
        assert_eq!(s.purge_grants(101).unwrap(), 2);
        assert!(s.get_grant("g1").unwrap().is_none());
    }
}

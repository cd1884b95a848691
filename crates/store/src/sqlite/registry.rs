//! SQLite rows for the registry.

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::registry::{CertificateRecord, CertificateStatus, RegistryStore, ThingRecord};
use crate::{Result, StoreError};

fn cert_from_row(r: &Row<'_>) -> rusqlite::Result<(CertificateRecord, String)> {
    let status: String = r.get(2)?;
    Ok((
        CertificateRecord {
            id: r.get(0)?,
            pem: r.get(1)?,
            status: CertificateStatus::Inactive,
            ca_certificate_id: r.get(3)?,
            created_at_ms: r.get::<_, i64>(4)? as u64,
            updated_at_ms: r.get::<_, i64>(5)? as u64,
        },
        status,
    ))
}

fn fix_status((mut rec, status): (CertificateRecord, String)) -> Result<CertificateRecord> {
    rec.status = CertificateStatus::parse(&status).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "certificate {} has unknown status {status}",
            rec.id
        ))
    })?;
    Ok(rec)
}

fn thing_from_row(r: &Row<'_>) -> rusqlite::Result<(ThingRecord, String)> {
    Ok((
        ThingRecord {
            name: r.get(0)?,
            id: r.get(1)?,
            type_name: r.get(2)?,
            attributes: Default::default(),
            version: r.get(4)?,
            created_at_ms: r.get::<_, i64>(5)? as u64,
        },
        r.get(3)?,
    ))
}

fn fix_attrs((mut rec, attrs): (ThingRecord, String)) -> Result<ThingRecord> {
    rec.attributes = serde_json::from_str(&attrs)
        .map_err(|e| StoreError::Corrupt(format!("thing {} attributes: {e}", rec.name)))?;
    Ok(rec)
}

const CERT_COLS: &str = "id, pem, status, ca_certificate_id, created_at_ms, updated_at_ms";
const THING_COLS: &str = "name, id, type_name, attributes, version, created_at_ms";

impl RegistryStore for SqliteStore {
    fn insert_certificate(&self, rec: &CertificateRecord) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO certificates (id, pem, status, ca_certificate_id, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                rec.id,
                rec.pem,
                rec.status.as_str(),
                rec.ca_certificate_id,
                rec.created_at_ms as i64,
                rec.updated_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("certificate {}", rec.id)));
        }
        Ok(())
    }

    fn get_certificate(&self, id: &str) -> Result<Option<CertificateRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row(
                &format!("SELECT {CERT_COLS} FROM certificates WHERE id = ?1"),
                params![id],
                cert_from_row,
            )
            .optional()?;
        row.map(fix_status).transpose()
    }

    fn list_certificates(&self) -> Result<Vec<CertificateRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {CERT_COLS} FROM certificates ORDER BY created_at_ms, id"
        ))?;
        let rows = st.query_map([], cert_from_row)?;
        rows.map(|r| fix_status(r?)).collect()
    }

    fn set_certificate_status(
        &self,
        id: &str,
        status: CertificateStatus,
        now_ms: u64,
    ) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE certificates SET status = ?2, updated_at_ms = ?3 WHERE id = ?1",
            params![id, status.as_str(), now_ms as i64],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("certificate {id}")));
        }
        Ok(())
    }

    fn delete_certificate(&self, id: &str) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute("DELETE FROM certificates WHERE id = ?1", params![id])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("certificate {id}")));
        }
        Ok(())
    }

    fn create_thing(&self, rec: &ThingRecord) -> Result<()> {
        let conn = self.conn.lock();
        let attrs = serde_json::to_string(&rec.attributes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = conn.execute(
            "INSERT OR IGNORE INTO things (name, id, type_name, attributes, version, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                rec.name,
                rec.id,
                rec.type_name,
                attrs,
                rec.version,
                rec.created_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("thing {}", rec.name)));
        }
        Ok(())
    }

    fn get_thing(&self, name: &str) -> Result<Option<ThingRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row(
                &format!("SELECT {THING_COLS} FROM things WHERE name = ?1"),
                params![name],
                thing_from_row,
            )
            .optional()?;
        row.map(fix_attrs).transpose()
    }

    fn list_things(&self) -> Result<Vec<ThingRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {THING_COLS} FROM things ORDER BY name"))?;
        let rows = st.query_map([], thing_from_row)?;
        rows.map(|r| fix_attrs(r?)).collect()
    }

    fn update_thing(&self, rec: &ThingRecord) -> Result<()> {
        let conn = self.conn.lock();
        let attrs = serde_json::to_string(&rec.attributes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = conn.execute(
            "UPDATE things SET type_name = ?2, attributes = ?3, version = ?4 WHERE name = ?1",
            params![rec.name, rec.type_name, attrs, rec.version],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("thing {}", rec.name)));
        }
        Ok(())
    }

    fn delete_thing(&self, name: &str) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute("DELETE FROM things WHERE name = ?1", params![name])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("thing {name}")));
        }
        Ok(())
    }

    fn attach_principal(&self, thing: &str, principal: &str) -> Result<()> {
        let conn = self.conn.lock();
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM things WHERE name = ?1)",
            params![thing],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound(format!("thing {thing}")));
        }
        conn.execute(
            "INSERT OR IGNORE INTO thing_principals (thing_name, principal) VALUES (?1, ?2)",
            params![thing, principal],
        )?;
        Ok(())
    }

    fn detach_principal(&self, thing: &str, principal: &str) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute(
            "DELETE FROM thing_principals WHERE thing_name = ?1 AND principal = ?2",
            params![thing, principal],
        )?;
        Ok(())
    }

    fn thing_principals(&self, thing: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT principal FROM thing_principals WHERE thing_name = ?1 ORDER BY principal",
        )?;
        let rows = st.query_map(params![thing], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn principal_things(&self, principal: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(
            "SELECT thing_name FROM thing_principals WHERE principal = ?1 ORDER BY thing_name",
        )?;
        let rows = st.query_map(params![principal], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

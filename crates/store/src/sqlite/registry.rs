//! SQLite rows for the registry.

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::registry::{CaCertificateRecord, CertificateRecord, CertificateStatus, RegistryStore, ThingRecord};
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
    rec.status = CertificateStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("certificate {} has unknown status {status}", rec.id)))?;
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
    rec.attributes =
        serde_json::from_str(&attrs).map_err(|e| StoreError::Corrupt(format!("thing {} attributes: {e}", rec.name)))?;
    Ok(rec)
}

fn ca_from_row(r: &Row<'_>) -> rusqlite::Result<CaCertificateRecord> {
    let status: String = r.get(2)?;
    Ok(CaCertificateRecord {
        id: r.get(0)?,
        pem: r.get(1)?,
        active: status == "ACTIVE",
        auto_registration: r.get(3)?,
        created_at_ms: r.get::<_, i64>(4)? as u64,
        updated_at_ms: r.get::<_, i64>(5)? as u64,
    })
}

const CA_COLS: &str = "id, pem, status, auto_registration, created_at_ms, updated_at_ms";
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
            .query_row(&format!("SELECT {CERT_COLS} FROM certificates WHERE id = ?1"), params![id], cert_from_row)
            .optional()?;
        row.map(fix_status).transpose()
    }

    fn list_certificates(&self) -> Result<Vec<CertificateRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {CERT_COLS} FROM certificates ORDER BY created_at_ms, id"))?;
        let rows = st.query_map([], cert_from_row)?;
        rows.map(|r| fix_status(r?)).collect()
    }

    fn set_certificate_status(&self, id: &str, status: CertificateStatus, now_ms: u64) -> Result<()> {
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
        let attrs = serde_json::to_string(&rec.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = conn.execute(
            "INSERT OR IGNORE INTO things (name, id, type_name, attributes, version, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rec.name, rec.id, rec.type_name, attrs, rec.version, rec.created_at_ms as i64],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("thing {}", rec.name)));
        }
        Ok(())
    }

    fn get_thing(&self, name: &str) -> Result<Option<ThingRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row(&format!("SELECT {THING_COLS} FROM things WHERE name = ?1"), params![name], thing_from_row)
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
        let attrs = serde_json::to_string(&rec.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
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

    fn attach_principal(&self, thing: &str, principal: &str, exclusive: bool) -> Result<()> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let exists: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM things WHERE name = ?1)", params![thing], |r| r.get(0))?;
        if !exists {
            return Err(StoreError::NotFound(format!("thing {thing}")));
        }
        let (elsewhere, exclusive_elsewhere): (i64, bool) = tx.query_row(
            "SELECT COUNT(*), COALESCE(MAX(exclusive), 0) FROM thing_principals WHERE principal = ?1 AND thing_name != ?2",
            params![principal, thing],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if exclusive_elsewhere || (exclusive && elsewhere > 0) {
            return Err(StoreError::AlreadyExists(format!("an exclusive attachment of principal {principal}")));
        }
        tx.execute(
            "INSERT INTO thing_principals (thing_name, principal, exclusive) VALUES (?1, ?2, ?3)
             ON CONFLICT(thing_name, principal) DO UPDATE SET exclusive = excluded.exclusive",
            params![thing, principal, exclusive],
        )?;
        tx.commit()?;
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
        let mut st = conn.prepare("SELECT principal FROM thing_principals WHERE thing_name = ?1 ORDER BY principal")?;
        let rows = st.query_map(params![thing], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn principal_attachments(&self, principal: &str) -> Result<Vec<(String, bool)>> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare("SELECT thing_name, exclusive FROM thing_principals WHERE principal = ?1 ORDER BY thing_name")?;
        let rows = st.query_map(params![principal], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn principal_things(&self, principal: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock();
        let mut st =
            conn.prepare("SELECT thing_name FROM thing_principals WHERE principal = ?1 ORDER BY thing_name")?;
        let rows = st.query_map(params![principal], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn insert_ca_certificate(&self, rec: &CaCertificateRecord) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO ca_certificates (id, pem, status, auto_registration, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                rec.id,
                rec.pem,
                if rec.active { "ACTIVE" } else { "INACTIVE" },
                rec.auto_registration,
                rec.created_at_ms as i64,
                rec.updated_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("CA certificate {}", rec.id)));
        }
        Ok(())
    }

    fn get_ca_certificate(&self, id: &str) -> Result<Option<CaCertificateRecord>> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(&format!("SELECT {CA_COLS} FROM ca_certificates WHERE id = ?1"), params![id], ca_from_row)
            .optional()?)
    }

    fn list_ca_certificates(&self) -> Result<Vec<CaCertificateRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {CA_COLS} FROM ca_certificates ORDER BY created_at_ms, id"))?;
        let rows = st.query_map([], ca_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn update_ca_certificate(&self, rec: &CaCertificateRecord) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE ca_certificates SET status = ?2, auto_registration = ?3, updated_at_ms = ?4 WHERE id = ?1",
            params![
                rec.id,
                if rec.active { "ACTIVE" } else { "INACTIVE" },
                rec.auto_registration,
                rec.updated_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("CA certificate {}", rec.id)));
        }
        Ok(())
    }

    fn delete_ca_certificate(&self, id: &str) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute("DELETE FROM ca_certificates WHERE id = ?1", params![id])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("CA certificate {id}")));
        }
        Ok(())
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn.lock();
        Ok(conn.query_row("SELECT value FROM settings WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
    }

    fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

//! SQLite rows for thing types, static thing groups, memberships and the
//! registry event configuration.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::registry::{EventConfigRecord, GroupMembership, GroupStore, ThingGroupRecord, ThingRecord, ThingTypeRecord};
use crate::{Result, StoreError};

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

const TYPE_COLS: &str =
    "name, id, description, searchable_attributes, tags, deprecated, deprecated_at_ms, created_at_ms";

/// A row with its JSON columns still as text (decoded outside rusqlite's closure).
struct TypeRow {
    rec: ThingTypeRecord,
    searchable: String,
    tags: String,
}

fn type_from_row(r: &Row<'_>) -> rusqlite::Result<TypeRow> {
    Ok(TypeRow {
        rec: ThingTypeRecord {
            name: r.get(0)?,
            id: r.get(1)?,
            description: r.get(2)?,
            searchable_attributes: Vec::new(),
            tags: BTreeMap::new(),
            deprecated: r.get::<_, i64>(5)? != 0,
            deprecated_at_ms: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
            created_at_ms: r.get::<_, i64>(7)? as u64,
        },
        searchable: r.get(3)?,
        tags: r.get(4)?,
    })
}

fn fix_type(row: TypeRow) -> Result<ThingTypeRecord> {
    let mut rec = row.rec;
    let what = format!("thing type {}", rec.name);
    rec.searchable_attributes = from_json(&what, &row.searchable)?;
    rec.tags = from_json(&what, &row.tags)?;
    Ok(rec)
}

const GROUP_COLS: &str = "name, id, parent_name, description, attributes, tags, version, created_at_ms, updated_at_ms";

struct GroupRow {
    rec: ThingGroupRecord,
    attributes: String,
    tags: String,
}

fn group_from_row(r: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        rec: ThingGroupRecord {
            name: r.get(0)?,
            id: r.get(1)?,
            parent: r.get(2)?,
            description: r.get(3)?,
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
            version: r.get(6)?,
            created_at_ms: r.get::<_, i64>(7)? as u64,
            updated_at_ms: r.get::<_, i64>(8)? as u64,
        },
        attributes: r.get(4)?,
        tags: r.get(5)?,
    })
}

fn fix_group(row: GroupRow) -> Result<ThingGroupRecord> {
    let mut rec = row.rec;
    let what = format!("thing group {}", rec.name);
    rec.attributes = from_json(&what, &row.attributes)?;
    rec.tags = from_json(&what, &row.tags)?;
    Ok(rec)
}

fn member_from_row(r: &Row<'_>) -> rusqlite::Result<GroupMembership> {
    Ok(GroupMembership {
        group: r.get(0)?,
        thing: r.get(1)?,
        membership_id: r.get(2)?,
        added_at_ms: r.get::<_, i64>(3)? as u64,
    })
}

const MEMBER_COLS: &str = "group_name, thing_name, membership_id, added_at_ms";

impl GroupStore for SqliteStore {
    fn create_thing_type(&self, rec: &ThingTypeRecord) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO thing_types (name, id, description, searchable_attributes, tags, deprecated, deprecated_at_ms, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                rec.name,
                rec.id,
                rec.description,
                to_json(&rec.searchable_attributes)?,
                to_json(&rec.tags)?,
                rec.deprecated as i64,
                rec.deprecated_at_ms.map(|v| v as i64),
                rec.created_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("thing type {}", rec.name)));
        }
        Ok(())
    }

    fn get_thing_type(&self, name: &str) -> Result<Option<ThingTypeRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row(&format!("SELECT {TYPE_COLS} FROM thing_types WHERE name = ?1"), params![name], type_from_row)
            .optional()?;
        row.map(fix_type).transpose()
    }

    fn list_thing_types(&self) -> Result<Vec<ThingTypeRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {TYPE_COLS} FROM thing_types ORDER BY name"))?;
        let rows = st.query_map([], type_from_row)?;
        rows.map(|r| fix_type(r?)).collect()
    }

    fn set_thing_type_deprecated(&self, name: &str, deprecated: bool, at_ms: Option<u64>) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE thing_types SET deprecated = ?2, deprecated_at_ms = ?3 WHERE name = ?1",
            params![name, deprecated as i64, at_ms.map(|v| v as i64)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("thing type {name}")));
        }
        Ok(())
    }

    fn delete_thing_type(&self, name: &str) -> Result<()> {
        let conn = self.conn.lock();
        let n = conn.execute("DELETE FROM thing_types WHERE name = ?1", params![name])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("thing type {name}")));
        }
        Ok(())
    }

    fn count_things_of_type(&self, name: &str) -> Result<u64> {
        let conn = self.conn.lock();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM things WHERE type_name = ?1", params![name], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn update_thing_if_version(&self, rec: &ThingRecord, current_version: i64) -> Result<bool> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE things SET type_name = ?2, attributes = ?3, version = ?4
             WHERE name = ?1 AND version = ?5",
            params![rec.name, rec.type_name, to_json(&rec.attributes)?, rec.version, current_version],
        )?;
        Ok(n == 1)
    }

    fn create_thing_group(&self, rec: &ThingGroupRecord) -> Result<()> {
        let conn = self.conn.lock();
        if let Some(p) = &rec.parent {
            let exists: bool =
                conn.query_row("SELECT EXISTS(SELECT 1 FROM thing_groups WHERE name = ?1)", params![p], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound(format!("thing group {p}")));
            }
        }
        let n = conn.execute(
            "INSERT OR IGNORE INTO thing_groups (name, id, parent_name, description, attributes, tags, version, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                rec.name,
                rec.id,
                rec.parent,
                rec.description,
                to_json(&rec.attributes)?,
                to_json(&rec.tags)?,
                rec.version,
                rec.created_at_ms as i64,
                rec.updated_at_ms as i64
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!("thing group {}", rec.name)));
        }
        Ok(())
    }

    fn get_thing_group(&self, name: &str) -> Result<Option<ThingGroupRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row(&format!("SELECT {GROUP_COLS} FROM thing_groups WHERE name = ?1"), params![name], group_from_row)
            .optional()?;
        row.map(fix_group).transpose()
    }

    fn list_thing_groups(&self) -> Result<Vec<ThingGroupRecord>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!("SELECT {GROUP_COLS} FROM thing_groups ORDER BY name"))?;
        let rows = st.query_map([], group_from_row)?;
        rows.map(|r| fix_group(r?)).collect()
    }

    fn update_thing_group_if_version(&self, rec: &ThingGroupRecord, current_version: i64) -> Result<bool> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE thing_groups SET description = ?2, attributes = ?3, version = ?4, updated_at_ms = ?5
             WHERE name = ?1 AND version = ?6",
            params![
                rec.name,
                rec.description,
                to_json(&rec.attributes)?,
                rec.version,
                rec.updated_at_ms as i64,
                current_version
            ],
        )?;
        Ok(n == 1)
    }

    fn delete_thing_group(&self, name: &str) -> Result<()> {
        let conn = self.conn.lock();
        let children: i64 =
            conn.query_row("SELECT COUNT(*) FROM thing_groups WHERE parent_name = ?1", params![name], |r| r.get(0))?;
        if children > 0 {
            // Callers check first; the foreign key would refuse too.
            return Err(StoreError::Database(format!("thing group {name} has child groups")));
        }
        let n = conn.execute("DELETE FROM thing_groups WHERE name = ?1", params![name])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("thing group {name}")));
        }
        Ok(())
    }

    fn add_group_member(&self, m: &GroupMembership) -> Result<bool> {
        let conn = self.conn.lock();
        for (table, what, name) in [("thing_groups", "thing group", &m.group), ("things", "thing", &m.thing)] {
            let exists: bool =
                conn.query_row(&format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE name = ?1)"), params![name], |r| {
                    r.get(0)
                })?;
            if !exists {
                return Err(StoreError::NotFound(format!("{what} {name}")));
            }
        }
        let n = conn.execute(
            "INSERT OR IGNORE INTO thing_group_members (group_name, thing_name, membership_id, added_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![m.group, m.thing, m.membership_id, m.added_at_ms as i64],
        )?;
        Ok(n == 1)
    }

    fn remove_group_member(&self, group: &str, thing: &str) -> Result<Option<GroupMembership>> {
        let conn = self.conn.lock();
        let tx = conn.unchecked_transaction()?;
        let m = tx
            .query_row(
                &format!("SELECT {MEMBER_COLS} FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2"),
                params![group, thing],
                member_from_row,
            )
            .optional()?;
        if m.is_some() {
            tx.execute(
                "DELETE FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2",
                params![group, thing],
            )?;
        }
        tx.commit()?;
        Ok(m)
    }

    fn group_members(&self, group: &str) -> Result<Vec<GroupMembership>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {MEMBER_COLS} FROM thing_group_members WHERE group_name = ?1 ORDER BY thing_name"
        ))?;
        let rows = st.query_map(params![group], member_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn thing_memberships(&self, thing: &str) -> Result<Vec<GroupMembership>> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {MEMBER_COLS} FROM thing_group_members WHERE thing_name = ?1 ORDER BY group_name"
        ))?;
        let rows = st.query_map(params![thing], member_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn get_event_config(&self) -> Result<Option<EventConfigRecord>> {
        let conn = self.conn.lock();
        let row = conn
            .query_row("SELECT config, created_at_ms, updated_at_ms FROM event_configurations WHERE id = 1", [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()?;
        row.map(|(config, created, updated)| {
            Ok(EventConfigRecord {
                enabled: from_json("event configurations", &config)?,
                created_at_ms: created as u64,
                updated_at_ms: updated as u64,
            })
        })
        .transpose()
    }

    fn put_event_config(&self, rec: &EventConfigRecord) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO event_configurations (id, config, created_at_ms, updated_at_ms)
             VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET config = excluded.config, updated_at_ms = excluded.updated_at_ms",
            params![to_json(&rec.enabled)?, rec.created_at_ms as i64, rec.updated_at_ms as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryStore;
    use std::sync::Arc;

    /// A store in its own temporary directory (kept alive by the guard).
    fn open() -> (Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db.sqlite"), super::super::Synchronous::Normal).unwrap();
        (s, dir)
    }

    fn thing(name: &str) -> ThingRecord {
        ThingRecord {
            name: name.into(),
            id: format!("id-{name}"),
            type_name: None,
            attributes: BTreeMap::new(),
            version: 1,
            created_at_ms: 1,
        }
    }

    fn group(name: &str, parent: Option<&str>) -> ThingGroupRecord {
        ThingGroupRecord {
            name: name.into(),
            id: format!("gid-{name}"),
            parent: parent.map(Into::into),
            description: Some("d".into()),
            attributes: BTreeMap::from([("a".into(), "1".into())]),
            tags: BTreeMap::new(),
            version: 1,
            created_at_ms: 5,
            updated_at_ms: 5,
        }
    }

    fn member(g: &str, t: &str) -> GroupMembership {
        GroupMembership { group: g.into(), thing: t.into(), membership_id: format!("m-{g}-{t}"), added_at_ms: 9 }
    }

    #[test]
    fn thing_types_round_trip() {
        let (s, _dir) = open();
        let t = ThingTypeRecord {
            name: "sensor".into(),
            id: "tid".into(),
            description: Some("a sensor".into()),
            searchable_attributes: vec!["room".into()],
            tags: BTreeMap::from([("team".into(), "iot".into())]),
            deprecated: false,
            deprecated_at_ms: None,
            created_at_ms: 7,
        };
        s.create_thing_type(&t).unwrap();
        assert!(matches!(s.create_thing_type(&t), Err(StoreError::AlreadyExists(_))));
        assert_eq!(s.get_thing_type("sensor").unwrap(), Some(t.clone()));
        s.set_thing_type_deprecated("sensor", true, Some(11)).unwrap();
        let got = s.get_thing_type("sensor").unwrap().unwrap();
        assert!(got.deprecated);
        assert_eq!(got.deprecated_at_ms, Some(11));
        let mut th = thing("t1");
        th.type_name = Some("sensor".into());
        s.create_thing(&th).unwrap();
        assert_eq!(s.count_things_of_type("sensor").unwrap(), 1);
        assert_eq!(s.list_thing_types().unwrap().len(), 1);
        s.delete_thing_type("sensor").unwrap();
        assert!(matches!(s.delete_thing_type("sensor"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn thing_update_is_compare_and_swap() {
        let (s, _dir) = open();
        s.create_thing(&thing("t1")).unwrap();
        let mut t = thing("t1");
        t.version = 2;
        t.attributes.insert("k".into(), "v".into());
        assert!(s.update_thing_if_version(&t, 1).unwrap());
        assert!(!s.update_thing_if_version(&t, 1).unwrap());
        assert_eq!(s.get_thing("t1").unwrap().unwrap(), t);
    }

    #[test]
    fn groups_hierarchy_and_memberships_cascade() {
        let (s, _dir) = open();
        s.create_thing_group(&group("root", None)).unwrap();
        assert!(matches!(s.create_thing_group(&group("orphan", Some("nope"))), Err(StoreError::NotFound(_))));
        s.create_thing_group(&group("child", Some("root"))).unwrap();
        assert!(matches!(s.create_thing_group(&group("child", Some("root"))), Err(StoreError::AlreadyExists(_))));
        assert_eq!(s.get_thing_group("child").unwrap(), Some(group("child", Some("root"))));
        assert!(s.delete_thing_group("root").is_err());

        s.create_thing(&thing("t1")).unwrap();
        s.create_thing(&thing("t2")).unwrap();
        assert!(s.add_group_member(&member("child", "t1")).unwrap());
        assert!(!s.add_group_member(&member("child", "t1")).unwrap());
        assert!(s.add_group_member(&member("child", "t2")).unwrap());
        assert!(s.add_group_member(&member("root", "t2")).unwrap());
        assert!(matches!(s.add_group_member(&member("child", "ghost")), Err(StoreError::NotFound(_))));
        assert_eq!(s.group_members("child").unwrap().len(), 2);
        assert_eq!(
            s.thing_memberships("t2").unwrap().iter().map(|m| m.group.as_str()).collect::<Vec<_>>(),
            ["child", "root"]
        );

        // Deleting a thing removes its memberships.
        s.delete_thing("t2").unwrap();
        assert_eq!(s.group_members("root").unwrap(), vec![]);
        assert_eq!(s.group_members("child").unwrap(), vec![member("child", "t1")]);

        assert_eq!(s.remove_group_member("child", "t1").unwrap(), Some(member("child", "t1")));
        assert_eq!(s.remove_group_member("child", "t1").unwrap(), None);

        let mut g = group("child", Some("root"));
        g.version = 2;
        g.description = None;
        assert!(s.update_thing_group_if_version(&g, 1).unwrap());
        assert!(!s.update_thing_group_if_version(&g, 1).unwrap());
        assert_eq!(s.get_thing_group("child").unwrap(), Some(g));

        s.add_group_member(&member("child", "t1")).unwrap();
        s.delete_thing_group("child").unwrap();
        assert!(s.thing_memberships("t1").unwrap().is_empty());
        s.delete_thing_group("root").unwrap();
        assert!(s.list_thing_groups().unwrap().is_empty());
    }

    #[test]
    fn event_config_round_trip() {
        let (s, _dir) = open();
        assert_eq!(s.get_event_config().unwrap(), None);
        let mut c =
            EventConfigRecord { enabled: BTreeMap::from([("THING".into(), true)]), created_at_ms: 1, updated_at_ms: 1 };
        s.put_event_config(&c).unwrap();
        c.enabled.insert("THING_GROUP".into(), false);
        c.updated_at_ms = 2;
        // created_at_ms is kept from the first write.
        let mut later = c.clone();
        later.created_at_ms = 99;
        s.put_event_config(&later).unwrap();
        assert_eq!(s.get_event_config().unwrap(), Some(c));
    }
}

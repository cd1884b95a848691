//! Schema migrations, applied in order at open; `PRAGMA user_version` records
//! how many have run. Never edit a released migration: append a new one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: broker state and registry.
    r#"
    CREATE TABLE sessions (
        client_id TEXT PRIMARY KEY,
        expiry_interval INTEGER NOT NULL,
        disconnected_at_ms INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE subscriptions (
        client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE,
        filter TEXT NOT NULL,
        qos INTEGER NOT NULL,
        no_local INTEGER NOT NULL,
        retain_as_published INTEGER NOT NULL,
        retain_handling INTEGER NOT NULL,
        subscription_id INTEGER,
        PRIMARY KEY (client_id, filter)
    );
    CREATE TABLE session_messages (
        client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        meta TEXT NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (client_id, seq)
    );
    CREATE TABLE retained (
        topic TEXT PRIMARY KEY,
        meta TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE TABLE certificates (
        id TEXT PRIMARY KEY,
        pem TEXT NOT NULL,
        status TEXT NOT NULL,
        ca_certificate_id TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE things (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type_name TEXT,
        attributes TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE thing_principals (
        thing_name TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
        principal TEXT NOT NULL,
        PRIMARY KEY (thing_name, principal)
    );
    CREATE INDEX thing_principals_by_principal ON thing_principals(principal);
    "#,
    // 2: registered CA certificates and server-wide settings (registration code, …).
    r#"
    CREATE TABLE ca_certificates (
        id TEXT PRIMARY KEY,
        pem TEXT NOT NULL,
        status TEXT NOT NULL,
        auto_registration INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ALTER TABLE thing_principals ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: thing types, static thing groups and their memberships, registry
    // event configuration. Memberships go with their thing or group
    // (ON DELETE CASCADE); a group with children cannot be deleted.
    r#"
    CREATE TABLE thing_types (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        description TEXT,
        searchable_attributes TEXT NOT NULL,
        tags TEXT NOT NULL,
        deprecated INTEGER NOT NULL,
        deprecated_at_ms INTEGER,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE thing_groups (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        parent_name TEXT REFERENCES thing_groups(name),
        description TEXT,
        attributes TEXT NOT NULL,
        tags TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX thing_groups_by_parent ON thing_groups(parent_name);
    CREATE TABLE thing_group_members (
        group_name TEXT NOT NULL REFERENCES thing_groups(name) ON DELETE CASCADE,
        thing_name TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
        membership_id TEXT NOT NULL,
        added_at_ms INTEGER NOT NULL,
        PRIMARY KEY (group_name, thing_name)
    );
    CREATE INDEX thing_group_members_by_thing ON thing_group_members(thing_name);
    CREATE TABLE event_configurations (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        config TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    "#,
    // 4: policies, their versions (at most 5, one default) and attachments
    // (to certificate ARNs and thing-group ARNs).
    r#"
    CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        default_version TEXT NOT NULL,
        next_version INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE policy_versions (
        policy_name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
        version_id TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (policy_name, version_id)
    );
    CREATE TABLE policy_targets (
        policy_name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
        target TEXT NOT NULL,
        PRIMARY KEY (policy_name, target)
    );
    CREATE INDEX policy_targets_by_target ON policy_targets(target);
    "#,
    // 5: device shadows ('' is the classic, unnamed shadow). A deleted shadow
    // stays as a tombstone so its version numbering can continue.
    r#"
    CREATE TABLE shadows (
        thing_name TEXT NOT NULL,
        shadow_name TEXT NOT NULL,
        document TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (thing_name, shadow_name)
    );
    "#,
    // 6: topic rules, the durable queue of rule actions still to run, and the
    // embedded table store the `dynamoDB`-style action writes to.
    r#"
    CREATE TABLE topic_rules (
        name TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE rule_jobs (
        id INTEGER PRIMARY KEY,
        body TEXT NOT NULL
    );
    CREATE TABLE table_items (
        table_name TEXT NOT NULL,
        hash_key TEXT NOT NULL,
        range_key TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (table_name, hash_key, range_key)
    );
    "#,
    // 7: pre-signed URL grants (secure file transfer).
    r#"
    CREATE TABLE url_grants (
        id TEXT PRIMARY KEY,
        thing_name TEXT,
        certificate_id TEXT,
        client_id TEXT,
        method TEXT NOT NULL,
        bucket TEXT NOT NULL,
        object_key TEXT NOT NULL,
        max_size INTEGER,
        content_type TEXT,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        single_use INTEGER NOT NULL,
        state TEXT NOT NULL
    );
    CREATE INDEX url_grants_thing ON url_grants (thing_name, created_ms);
    CREATE INDEX url_grants_cert ON url_grants (certificate_id);
    "#,
    // 8: payload keys: master keys with sealed versions, aliases, data keys
    // issued to devices, and the append-only audit log of key use.
    r#"
    CREATE TABLE master_keys (
        id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        state TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        deletion_ms INTEGER,
        rotation_enabled INTEGER NOT NULL,
        rotation_period_days INTEGER NOT NULL,
        rotated_ms INTEGER NOT NULL,
        current_version INTEGER NOT NULL
    );
    CREATE TABLE key_versions (
        key_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (key_id, version)
    );
    CREATE TABLE key_aliases (
        alias TEXT PRIMARY KEY,
        key_id TEXT NOT NULL
    );
    CREATE TABLE data_keys (
        id TEXT PRIMARY KEY,
        master_key_id TEXT NOT NULL,
        thing_name TEXT,
        certificate_id TEXT,
        algorithm TEXT NOT NULL,
        issued_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX data_keys_thing ON data_keys (thing_name, issued_ms);
    CREATE TABLE key_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        event TEXT NOT NULL,
        key_id TEXT,
        data_key_id TEXT,
        principal TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX key_audit_key ON key_audit (key_id);
    CREATE INDEX key_audit_data_key ON key_audit (data_key_id);
    CREATE TRIGGER key_audit_no_update BEFORE UPDATE ON key_audit
        BEGIN SELECT RAISE(ABORT, 'the key audit log is append-only'); END;
    CREATE TRIGGER key_audit_no_delete BEFORE DELETE ON key_audit
        BEGIN SELECT RAISE(ABORT, 'the key audit log is append-only'); END;
    "#,
];

pub fn run(conn: &Connection) -> crate::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = current.max(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(crate::StoreError::Corrupt(format!(
            "database schema version {current} is newer than this Thingport ({}); upgrade Thingport",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}

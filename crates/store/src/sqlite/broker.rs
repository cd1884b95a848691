//! SQLite rows for broker state.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::broker::{BrokerOp, BrokerSnapshot, StoredMessage, StoredSession, StoredSubscription};
use crate::{Result, StoreError};

fn meta_json(m: &StoredMessage) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

fn message_from_row(meta: &str, payload: Vec<u8>) -> Result<StoredMessage> {
    let mut m: StoredMessage =
        serde_json::from_str(meta).map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
    m.payload = payload;
    Ok(m)
}

pub fn apply_batch(conn: &mut Connection, ops: &[BrokerOp]) -> Result<()> {
    let tx = conn.transaction()?;
    for op in ops {
        match op {
            BrokerOp::PutSession { client_id, expiry_interval, disconnected_at_ms } => {
                tx.prepare_cached(
                    "INSERT INTO sessions (client_id, expiry_interval, disconnected_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(client_id) DO UPDATE SET expiry_interval = excluded.expiry_interval,
                     disconnected_at_ms = excluded.disconnected_at_ms",
                )?
                .execute(params![client_id, *expiry_interval as i64, *disconnected_at_ms as i64])?;
            }
            BrokerOp::DeleteSession { client_id } => {
                tx.prepare_cached("DELETE FROM sessions WHERE client_id = ?1")?.execute(params![client_id])?;
            }
            BrokerOp::PutSubscription { client_id, subscription: s } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO subscriptions
                     (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    client_id,
                    s.filter,
                    s.qos,
                    s.no_local,
                    s.retain_as_published,
                    s.retain_handling,
                    s.subscription_id
                ])?;
            }
            BrokerOp::DeleteSubscription { client_id, filter } => {
                tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2")?
                    .execute(params![client_id, filter])?;
            }
            BrokerOp::Enqueue { client_id, seq, message } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO session_messages (client_id, seq, meta, payload) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![client_id, *seq as i64, meta_json(message), message.payload])?;
            }
            BrokerOp::Release { client_id, seq, packet_id } => {
                tx.prepare_cached(
                    "UPDATE session_messages SET meta = json_set(meta, '$.released_packet_id', ?3)
                     WHERE client_id = ?1 AND seq = ?2",
                )?
                .execute(params![client_id, *seq as i64, *packet_id as i64])?;
            }
            BrokerOp::Ack { client_id, seq } => {
                tx.prepare_cached("DELETE FROM session_messages WHERE client_id = ?1 AND seq = ?2")?
                    .execute(params![client_id, *seq as i64])?;
            }
            BrokerOp::PutJob { id, body } => {
                tx.prepare_cached("INSERT OR REPLACE INTO rule_jobs (id, body) VALUES (?1, ?2)")?
                    .execute(params![*id as i64, body])?;
            }
            BrokerOp::DeleteJob { id } => {
                tx.prepare_cached("DELETE FROM rule_jobs WHERE id = ?1")?.execute(params![*id as i64])?;
            }
            BrokerOp::SetRetained(m) => {
                tx.prepare_cached("INSERT OR REPLACE INTO retained (topic, meta, payload) VALUES (?1, ?2, ?3)")?
                    .execute(params![m.topic, meta_json(m), m.payload])?;
            }
            BrokerOp::ClearRetained { topic } => {
                tx.prepare_cached("DELETE FROM retained WHERE topic = ?1")?.execute(params![topic])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn load(conn: &Connection) -> Result<BrokerSnapshot> {
    let mut sessions: HashMap<String, StoredSession> = HashMap::new();
    let mut order = Vec::new();
    {
        let mut st = conn.prepare("SELECT client_id, expiry_interval, disconnected_at_ms FROM sessions")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
        for row in rows {
            let (client_id, expiry, disc) = row?;
            order.push(client_id.clone());
            sessions.insert(
                client_id.clone(),
                StoredSession {
                    client_id,
                    expiry_interval: expiry.clamp(0, u32::MAX as i64) as u32,
                    disconnected_at_ms: disc.max(0) as u64,
                    subscriptions: Vec::new(),
                    messages: Vec::new(),
                },
            );
        }
    }
    {
        let mut st = conn.prepare(
            "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id
             FROM subscriptions ORDER BY rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StoredSubscription {
                    filter: r.get(1)?,
                    qos: r.get(2)?,
                    no_local: r.get(3)?,
                    retain_as_published: r.get(4)?,
                    retain_handling: r.get(5)?,
                    subscription_id: r.get(6)?,
                },
            ))
        })?;
        for row in rows {
            let (client_id, sub) = row?;
            if let Some(s) = sessions.get_mut(&client_id) {
                s.subscriptions.push(sub);
            }
        }
    }
    {
        let mut st =
            conn.prepare("SELECT client_id, seq, meta, payload FROM session_messages ORDER BY client_id, seq")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?))
        })?;
        for row in rows {
            let (client_id, seq, meta, payload) = row?;
            if let Some(s) = sessions.get_mut(&client_id) {
                s.messages.push((seq as u64, message_from_row(&meta, payload)?));
            }
        }
    }
    let mut retained = Vec::new();
    {
        let mut st = conn.prepare("SELECT meta, payload FROM retained")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (meta, payload) = row?;
            retained.push(message_from_row(&meta, payload)?);
        }
    }
    Ok(BrokerSnapshot { sessions: order.into_iter().filter_map(|c| sessions.remove(&c)).collect(), retained })
}

//! The embedded default: one SQLite file in WAL mode.
//!
//! Broker changes go to a dedicated writer thread that applies everything
//! queued since its last commit in one transaction (group commit), then wakes
//! the waiters of that batch. With `synchronous=NORMAL` in WAL mode a commit
//! survives a crash of the process (kill -9); only an OS crash or power loss
//! can lose the last transactions, which `durability = "full"` prevents.

mod broker;
mod grants;
mod groups;
mod keys;
mod migrations;
mod policy;
mod registry;
mod rules;
mod shadow;

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;

use crate::broker::{BrokerOp, BrokerSnapshot, BrokerStore, SyncFuture};
use crate::{Result, StoreError};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Survives a process crash (kill -9); the default.
    #[default]
    Normal,
    /// fsync on every commit: survives power loss too.
    Full,
}

#[allow(clippy::large_enum_variant)] // ops are the common case; boxing them would cost an allocation each
enum WriterMsg {
    Op(BrokerOp),
    Sync(tokio::sync::oneshot::Sender<Result<()>>),
}

/// SQLite-backed store for broker and registry state.
pub struct SqliteStore {
    /// Registry reads and writes (short transactions).
    conn: Mutex<Connection>,
    /// Queue into the broker writer thread.
    writer: Mutex<mpsc::Sender<WriterMsg>>,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and run migrations.
    pub fn open(path: &Path, sync: Synchronous) -> Result<Arc<Self>> {
        let conn = open_conn(path, sync)?;
        migrations::run(&conn)?;
        let writer_conn = open_conn(path, sync)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
        Ok(Arc::new(SqliteStore { conn: Mutex::new(conn), writer: Mutex::new(tx) }))
    }

    /// An in-memory database (tests): registry only is shared; broker ops go to
    /// a separate in-memory database and are not reloadable.
    pub fn open_in_memory() -> Result<Arc<Self>> {
        let dir = std::env::temp_dir().join(format!("thingport-mem-{}-{}", std::process::id(), crate::now_ms()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Database(e.to_string()))?;
        Self::open(&dir.join("db.sqlite"), Synchronous::Normal)
    }
}

fn open_conn(path: &Path, sync: Synchronous) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Apply queued broker ops in batches: block for the first, take whatever else
/// is already queued (bounded), commit once, then answer the batch's waiters.
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<WriterMsg>) {
    const MAX_BATCH: usize = 4096;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut waiters = Vec::new();
        let mut ops = Vec::new();
        for m in batch {
            match m {
                WriterMsg::Op(op) => ops.push(op),
                WriterMsg::Sync(tx) => waiters.push(tx),
            }
        }
        let result = if ops.is_empty() { Ok(()) } else { broker::apply_batch(&mut conn, &ops) };
        if let Err(e) = &result {
            tracing::error!(error = %e, ops = ops.len(), "failed to persist broker state");
        }
        for w in waiters {
            let _ = w.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Database(e.to_string())),
            });
        }
    }
}

impl BrokerStore for SqliteStore {
    fn load(&self) -> Result<BrokerSnapshot> {
        broker::load(&self.conn.lock())
    }

    fn submit(&self, op: BrokerOp) {
        let _ = self.writer.lock().send(WriterMsg::Op(op));
    }

    fn sync(&self) -> SyncFuture {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.writer.lock().send(WriterMsg::Sync(tx)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

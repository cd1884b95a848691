//! The default backend: objects on the local filesystem, so a single
//! Thingport needs nothing else to store device payloads.
//!
//! Layout under the root (e.g. `<data_dir>/objects`):
//! - `blobs/<bucket>/<2 hex>/<uuid>`: object bytes, one file per object,
//!   named by a random id and never by key, so a key can never escape its
//!   bucket (or name a path at all);
//! - `index.sqlite`: buckets, bucket configuration, and per object its blob
//!   and its [`ObjectMeta`]; listings are ordered index scans;
//! - `tmp/`: the [`Staging`] area, on the same filesystem as the blobs so a
//!   commit is a rename.
//!
//! A put renames the fsync'd staged file into a new blob, then points the
//! index row at it in one transaction, then deletes the replaced blob: a
//! reader sees the old object or the new one, never a mix. A crash can only
//! leave unreferenced blobs (and temp files), which [`LocalBackend::open`]
//! sweeps.

use std::collections::HashSet;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::io::AsyncReadExt;

use super::{Backend, BucketInfo, ByteStream, ListRequest, Listing, ObjectMeta};
use crate::staging::{create_private_dir, now_ms, remove_any, sync_dir, Staged, Staging};
use crate::S3Error;

/// Chunk size of object body streams.
const READ_CHUNK: usize = 64 * 1024;

/// Schema migrations, applied in order at open; `PRAGMA user_version` records
/// how many have run. Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: buckets, their configuration, objects.
    r#"
    CREATE TABLE buckets (
        name TEXT NOT NULL PRIMARY KEY,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE bucket_config (
        bucket TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bucket, name)
    ) WITHOUT ROWID;
    CREATE TABLE objects (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        blob TEXT NOT NULL,
        meta_json TEXT NOT NULL,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
    -- The sweep at open looks blobs up by name, one 2-hex directory at a time.
    CREATE INDEX objects_blob ON objects (bucket, blob);
    "#,
];

/// Objects on the local filesystem, indexed in SQLite.
pub struct LocalBackend {
    inner: Arc<Inner>,
    staging: Arc<Staging>,
}

struct Inner {
    blobs: PathBuf,
    /// Used only inside `spawn_blocking`. Also serializes index changes with
    /// the blob-file steps that must not interleave with them (opening a blob
    /// for reading, checking a new blob is still there before committing).
    db: Mutex<Connection>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend").field("blobs", &self.inner.blobs).finish()
    }
}

impl LocalBackend {
    /// root: e.g. `<data_dir>/objects`. Creates `root/`, `root/blobs/`,
    /// `root/tmp/` (staging) and `root/index.sqlite`, then removes what a
    /// crash may have left: temp files and blobs the index does not
    /// reference. Blocking (the sweep reads every blob directory): call it at
    /// startup. Only one process may use a root at a time.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalBackend, S3Error> {
        let root = root.into();
        create_private_dir(&root)?;
        let blobs = root.join("blobs");
        create_private_dir(&blobs)?;
        let staging = Arc::new(Staging::new(root.join("tmp"))?);
        let conn = open_db(&root.join("index.sqlite"))?;
        let inner = Inner { blobs, db: Mutex::new(conn) };
        inner.sweep()?;
        Ok(LocalBackend { inner: Arc::new(inner), staging })
    }

    /// Staging area on the same filesystem as the blobs (`root/tmp`), so
    /// commits are a rename: stage bodies for this backend here.
    pub fn staging(&self) -> &Arc<Staging> {
        &self.staging
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, S3Error> + Send + 'static,
    ) -> Result<T, S3Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| S3Error::internal(format!("storage task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error> {
        check_bucket(bucket)?;
        let bucket = bucket.to_owned();
        self.run(move |inner| {
            let conn = inner.db.lock();
            let created_ms = now_ms();
            let inserted = conn
                .execute(
                    "INSERT INTO buckets (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    params![bucket, created_ms],
                )
                .map_err(db)?;
            if inserted == 0 {
                return Err(S3Error::bucket_already_owned(&bucket));
            }
            Ok(BucketInfo { name: bucket, created_ms })
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        check_bucket(bucket)?;
        let bucket = bucket.to_owned();
        self.run(move |inner| {
            let trash = {
                let mut conn = inner.db.lock();
                let tx = conn.transaction().map_err(db)?;
                if !bucket_exists(&tx, &bucket)? {
                    return Err(S3Error::no_such_bucket(&bucket));
                }
                let has_objects = tx
                    .query_row("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1", [&bucket], |_| Ok(()))
                    .optional()
                    .map_err(db)?
                    .is_some();
                if has_objects {
                    return Err(S3Error::bucket_not_empty(&bucket));
                }
                tx.execute("DELETE FROM bucket_config WHERE bucket = ?1", [&bucket]).map_err(db)?;
                tx.execute("DELETE FROM buckets WHERE name = ?1", [&bucket]).map_err(db)?;
                tx.commit().map_err(db)?;
                // Under the lock, so a put that already moved its blob into the
                // old directory finds it gone when it tries to commit (the
                // bucket may exist again by then). `.` names are never
                // buckets; the sweep at open removes a leftover.
                let dir = inner.blobs.join(&bucket);
                let trash = inner.blobs.join(format!(".deleted-{}", uuid::Uuid::new_v4().simple()));
                match std::fs::rename(&dir, &trash) {
                    Ok(()) => Some(trash),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(e.into()),
                }
            };
            if let Some(trash) = trash {
                if let Err(e) = std::fs::remove_dir_all(&trash) {
                    tracing::warn!(path = %trash.display(), error = %e, "cannot remove a deleted bucket's directory");
                }
            }
            Ok(())
        })
        .await
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |inner| {
            let conn = inner.db.lock();
            conn.query_row("SELECT created_ms FROM buckets WHERE name = ?1", [&bucket], |r| r.get(0))
                .optional()
                .map_err(db)?
                .map(|created_ms| BucketInfo { name: bucket.clone(), created_ms })
                .ok_or_else(|| S3Error::no_such_bucket(&bucket))
        })
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, S3Error> {
        self.run(|inner| {
            let conn = inner.db.lock();
            let mut stmt = conn.prepare_cached("SELECT name, created_ms FROM buckets ORDER BY name").map_err(db)?;
            let rows = stmt.query_map([], |r| Ok(BucketInfo { name: r.get(0)?, created_ms: r.get(1)? })).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    async fn put_bucket_config(&self, bucket: &str, name: &str, value: Option<&str>) -> Result<(), S3Error> {
        let (bucket, name, value) = (bucket.to_owned(), name.to_owned(), value.map(str::to_owned));
        self.run(move |inner| {
            let mut conn = inner.db.lock();
            let tx = conn.transaction().map_err(db)?;
            if !bucket_exists(&tx, &bucket)? {
                return Err(S3Error::no_such_bucket(&bucket));
            }
            match value {
                Some(value) => tx.execute(
                    "INSERT OR REPLACE INTO bucket_config (bucket, name, value) VALUES (?1, ?2, ?3)",
                    params![bucket, name, value],
                ),
                None => tx.execute("DELETE FROM bucket_config WHERE bucket = ?1 AND name = ?2", params![bucket, name]),
            }
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn get_bucket_config(&self, bucket: &str, name: &str) -> Result<Option<String>, S3Error> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        self.run(move |inner| {
            let conn = inner.db.lock();
            if !bucket_exists(&conn, &bucket)? {
                return Err(S3Error::no_such_bucket(&bucket));
            }
            conn.query_row(
                "SELECT value FROM bucket_config WHERE bucket = ?1 AND name = ?2",
                params![bucket, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn put_object(&self, bucket: &str, meta: ObjectMeta, body: Staged) -> Result<ObjectMeta, S3Error> {
        check_bucket(bucket)?;
        let bucket = bucket.to_owned();
        self.run(move |inner| inner.put(&bucket, meta, body)).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectMeta, ByteStream), S3Error> {
        check_bucket(bucket)?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let (meta, file, len) = self
            .run(move |inner| {
                let (meta, mut file) = inner.open_object(&bucket, &key)?;
                let (start, len) = match range {
                    None => (0, meta.size),
                    Some((start, end)) if start <= end && end < meta.size => (start, end - start + 1),
                    Some(_) => return Err(S3Error::invalid_range(meta.size)),
                };
                if start > 0 {
                    file.seek(SeekFrom::Start(start))?;
                }
                Ok((meta, file, len))
            })
            .await?;
        Ok((meta, file_stream(tokio::fs::File::from_std(file), len)))
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |inner| {
            let conn = inner.db.lock();
            let meta_json: Option<String> = conn
                .query_row("SELECT meta_json FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            match meta_json {
                Some(json) => parse_meta(&key, &json),
                None if bucket_exists(&conn, &bucket)? => Err(S3Error::no_such_key(&key)),
                None => Err(S3Error::no_such_bucket(&bucket)),
            }
        })
        .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, S3Error> {
        check_bucket(bucket)?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |inner| {
            let blob = {
                let conn = inner.db.lock();
                if !bucket_exists(&conn, &bucket)? {
                    return Err(S3Error::no_such_bucket(&bucket));
                }
                let blob: Option<String> = conn
                    .query_row("SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(db)?;
                let Some(blob) = blob else { return Ok(false) };
                // The blob is unlinked right after: the commit must be durable first.
                durable_commit(&conn, |conn| {
                    conn.execute("DELETE FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, key])
                })?;
                blob
            };
            inner.remove_blob(&bucket, &blob);
            Ok(true)
        })
        .await
    }

    async fn list_objects(&self, bucket: &str, req: &ListRequest) -> Result<Listing, S3Error> {
        let (bucket, req) = (bucket.to_owned(), req.clone());
        self.run(move |inner| {
            let conn = inner.db.lock();
            if !bucket_exists(&conn, &bucket)? {
                return Err(S3Error::no_such_bucket(&bucket));
            }
            list(&conn, &bucket, &req).map(|(listing, _)| listing)
        })
        .await
    }
}

impl Inner {
    fn blob_path(&self, bucket: &str, blob: &str) -> Result<PathBuf, S3Error> {
        if !is_blob_name(blob) {
            return Err(S3Error::internal(format!("object index names an invalid blob {blob:?}")));
        }
        Ok(self.blobs.join(bucket).join(&blob[..2]).join(blob))
    }

    fn put(&self, bucket: &str, mut meta: ObjectMeta, body: Staged) -> Result<ObjectMeta, S3Error> {
        if !bucket_exists(&self.db.lock(), bucket)? {
            return Err(S3Error::no_such_bucket(bucket));
        }
        let blob = uuid::Uuid::new_v4().simple().to_string();
        let path = self.blob_path(bucket, &blob)?;
        let dir = path.parent().expect("a blob path has a parent");
        let moved = create_dir_durable(dir).and_then(|()| body.move_to(&path)).and_then(|()| sync_dir(dir));
        if let Err(e) = moved {
            let _ = std::fs::remove_file(&path);
            // A concurrent bucket delete removes the directory.
            if !bucket_exists(&self.db.lock(), bucket)? {
                return Err(S3Error::no_such_bucket(bucket));
            }
            return Err(e.into());
        }

        let committed = (|| {
            let conn = self.db.lock();
            if !bucket_exists(&conn, bucket)? {
                return Err(S3Error::no_such_bucket(bucket));
            }
            if !path.exists() {
                // The bucket was deleted (and created again) since the blob
                // was moved in: that removed the blob with the old directory.
                return Err(S3Error::no_such_bucket(bucket));
            }
            let old: Option<String> = conn
                .query_row("SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2", params![bucket, meta.key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            meta.last_modified_ms = now_ms();
            let json = serde_json::to_string(&meta).map_err(|e| S3Error::internal(e.to_string()))?;
            let upsert = |conn: &Connection| {
                conn.execute(
                    "INSERT OR REPLACE INTO objects (bucket, key, blob, meta_json) VALUES (?1, ?2, ?3, ?4)",
                    params![bucket, meta.key, blob, json],
                )
            };
            if old.is_some() {
                // The old blob is unlinked right after: the commit must be durable first.
                durable_commit(&conn, upsert)?;
            } else {
                upsert(&conn).map_err(db)?;
            }
            Ok(old)
        })();
        match committed {
            Ok(old) => {
                if let Some(old) = old {
                    self.remove_blob(bucket, &old);
                }
                Ok(meta)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Look the object up and open its blob, under the index lock: a
    /// concurrent overwrite or delete unlinks the old blob only after its
    /// commit, so the blob is still there, and once open it stays readable.
    fn open_object(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, std::fs::File), S3Error> {
        let conn = self.db.lock();
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT blob, meta_json FROM objects WHERE bucket = ?1 AND key = ?2",
                params![bucket, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((blob, json)) = row else {
            return Err(if bucket_exists(&conn, bucket)? {
                S3Error::no_such_key(key)
            } else {
                S3Error::no_such_bucket(bucket)
            });
        };
        let path = self.blob_path(bucket, &blob)?;
        let file = std::fs::File::open(&path).map_err(|e| {
            tracing::error!(bucket, key, path = %path.display(), error = %e, "cannot open an indexed object's data");
            S3Error::internal(format!("object data unavailable: {e}"))
        })?;
        drop(conn);
        Ok((parse_meta(key, &json)?, file))
    }

    fn remove_blob(&self, bucket: &str, blob: &str) {
        let Ok(path) = self.blob_path(bucket, blob) else { return };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Left for the sweep at the next open.
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove a replaced object's data"),
        }
    }

    /// Remove what the index does not reference: directories of buckets that
    /// no longer exist, and blobs a crash left between rename and commit.
    fn sweep(&self) -> Result<(), S3Error> {
        let conn = self.db.lock();
        let buckets: HashSet<String> = {
            let mut stmt = conn.prepare("SELECT name FROM buckets").map_err(db)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let mut removed = 0usize;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name().to_str().map(str::to_owned);
            match name {
                Some(bucket) if buckets.contains(&bucket) && entry.file_type()?.is_dir() => {
                    removed += self.sweep_bucket(&conn, &bucket, &entry.path())?;
                }
                _ => {
                    remove_any(&entry.path())?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed unreferenced object data left by an interrupted operation");
        }
        Ok(())
    }

    fn sweep_bucket(&self, conn: &Connection, bucket: &str, dir: &Path) -> Result<usize, S3Error> {
        let mut removed = 0;
        let mut stmt =
            conn.prepare("SELECT blob FROM objects WHERE bucket = ?1 AND blob >= ?2 AND blob < ?3").map_err(db)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let shard = entry.file_name().to_str().map(str::to_owned);
            let shard = match shard {
                Some(s) if s.len() == 2 && is_lower_hex(&s) && entry.file_type()?.is_dir() => s,
                _ => {
                    remove_any(&entry.path())?;
                    removed += 1;
                    continue;
                }
            };
            // Blob names are lowercase hex, all below `~`.
            let rows = stmt.query_map(params![bucket, shard, format!("{shard}~")], |r| r.get(0)).map_err(db)?;
            let referenced: HashSet<String> = rows.collect::<Result<_, _>>().map_err(db)?;
            for file in std::fs::read_dir(entry.path())? {
                let file = file?;
                if !file.file_name().to_str().is_some_and(|n| referenced.contains(n)) {
                    remove_any(&file.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// One page of a listing, and how many index rows it read. Keys rolled up
/// into a common prefix are skipped with a new index seek past the prefix,
/// not read one by one.
fn list(conn: &Connection, bucket: &str, req: &ListRequest) -> Result<(Listing, usize), S3Error> {
    enum From {
        Including(String),
        After(String),
    }
    enum Next {
        Done,
        Seek(String),
    }

    let mut listing = Listing::default();
    let mut rows_read = 0;
    if req.max_keys == 0 {
        return Ok((listing, rows_read));
    }
    let prefix = req.prefix.as_str();
    let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut from = match &req.start_after {
        Some(after) if after.as_str() >= prefix => {
            let rolled_up = after.starts_with(prefix)
                && delimiter.and_then(|d| common_prefix(after, prefix, d)).is_some_and(|cp| cp.len() == after.len());
            if rolled_up {
                // `after` is a common prefix an earlier page returned: skip
                // every key under it.
                match successor(after) {
                    Some(s) => From::Including(s),
                    None => return Ok((listing, rows_read)),
                }
            } else {
                From::After(after.clone())
            }
        }
        _ => From::Including(prefix.to_owned()),
    };
    let mut count = 0;
    let mut last: Option<String> = None;
    loop {
        let (sql, bound) = match &from {
            From::Including(k) => {
                ("SELECT key, meta_json FROM objects WHERE bucket = ?1 AND key >= ?2 ORDER BY key", k)
            }
            From::After(k) => ("SELECT key, meta_json FROM objects WHERE bucket = ?1 AND key > ?2 ORDER BY key", k),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(db)?;
        let mut rows = stmt.query(params![bucket, bound]).map_err(db)?;
        let next = loop {
            let Some(row) = rows.next().map_err(db)? else { break Next::Done };
            rows_read += 1;
            let key = text(row, 0)?;
            if !key.starts_with(prefix) {
                break Next::Done;
            }
            if count == req.max_keys {
                listing.truncated = true;
                break Next::Done;
            }
            count += 1;
            if let Some(cp) = delimiter.and_then(|d| common_prefix(key, prefix, d)) {
                listing.common_prefixes.push(cp.to_owned());
                last = Some(cp.to_owned());
                match successor(cp) {
                    Some(s) => break Next::Seek(s),
                    None => break Next::Done,
                }
            }
            let json = text(row, 1)?;
            listing.objects.push(parse_meta(key, json)?);
            last = Some(key.to_owned());
        };
        match next {
            Next::Done => break,
            Next::Seek(s) => from = From::Including(s),
        }
    }
    if listing.truncated {
        listing.next_start_after = last;
    }
    Ok((listing, rows_read))
}

/// The common prefix `key` rolls up into: `prefix` and the rest of `key` up
/// to and including the first `delimiter` after `prefix`. `key` starts with
/// `prefix`.
fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: &str) -> Option<&'a str> {
    key[prefix.len()..].find(delimiter).map(|i| &key[..prefix.len() + i + delimiter.len()])
}

/// The smallest string greater than every string starting with `s`, if any.
/// UTF-8 byte order is code point order, so: drop trailing `char::MAX`es and
/// step the last remaining character to the next code point.
fn successor(s: &str) -> Option<String> {
    let mut end = s.len();
    for c in s.chars().rev() {
        end -= c.len_utf8();
        let next = match c {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            let mut out = String::with_capacity(end + 4);
            out.push_str(&s[..end]);
            out.push(next);
            return Some(out);
        }
    }
    None
}

/// The object's body from an open file positioned at its first byte.
fn file_stream(file: tokio::fs::File, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::unfold((file, len), |(mut file, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let mut buf = BytesMut::zeroed(remaining.min(READ_CHUNK as u64) as usize);
        match file.read(&mut buf).await {
            Ok(0) => {
                let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object data is shorter than its size");
                Some((Err(e), (file, 0)))
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf.freeze()), (file, remaining - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    }))
}

fn open_db(path: &Path) -> Result<Connection, S3Error> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), S3Error> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db)?;
    let current = current.max(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(S3Error::internal(format!(
            "object index schema version {current} is newer than this Thingport ({}); upgrade Thingport",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version = i + 1, "applied object index migration");
    }
    Ok(())
}

/// Run one autocommit change with `synchronous = FULL`: with NORMAL a WAL
/// commit may be lost on power failure, and a change followed by unlinking a
/// blob must not be, or the index would come back pointing at a deleted blob.
fn durable_commit(conn: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<usize>) -> Result<(), S3Error> {
    conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
    let result = f(conn);
    let restored = conn.pragma_update(None, "synchronous", "NORMAL");
    result.map_err(db)?;
    restored.map_err(db)
}

fn bucket_exists(conn: &Connection, bucket: &str) -> Result<bool, S3Error> {
    conn.query_row("SELECT 1 FROM buckets WHERE name = ?1", [bucket], |_| Ok(()))
        .optional()
        .map_err(db)
        .map(|r| r.is_some())
}

fn parse_meta(key: &str, json: &str) -> Result<ObjectMeta, S3Error> {
    let mut meta: ObjectMeta = serde_json::from_str(json)
        .map_err(|e| S3Error::internal(format!("corrupt object metadata for {key:?}: {e}")))?;
    meta.key = key.to_owned();
    Ok(meta)
}

/// Bucket names are validated before they get here ([`crate::names`]); this
/// is the last line before one becomes a path component.
fn check_bucket(bucket: &str) -> Result<(), S3Error> {
    let bad = bucket.is_empty()
        || bucket.starts_with('.')
        || bucket.contains(['/', '\\', '\0'])
        || Path::new(bucket).components().count() != 1;
    if bad {
        return Err(S3Error::invalid_bucket_name(bucket));
    }
    Ok(())
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_blob_name(s: &str) -> bool {
    s.len() == 32 && is_lower_hex(s)
}

/// Create `dir` and missing parents, fsyncing each parent that gained an entry.
fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| std::io::Error::other("no parent directory"))?;
    create_dir_durable(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn text<'a>(row: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a str, S3Error> {
    row.get_ref(i).map_err(db)?.as_str().map_err(|e| S3Error::internal(format!("object index error: {e}")))
}

fn db(e: rusqlite::Error) -> S3Error {
    S3Error::internal(format!("object index error: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use futures_util::StreamExt;
    use md5::{Digest, Md5};
    use proptest::prelude::*;

    use super::*;

    fn open(dir: &Path) -> LocalBackend {
        LocalBackend::open(dir.join("objects")).unwrap()
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + seed as usize) as u8 ^ (i >> 9) as u8).collect()
    }

    async fn stage(b: &LocalBackend, body: &[u8]) -> Staged {
        let mut w = b.staging().writer(None).await.unwrap();
        w.write(body).await.unwrap();
        w.finish().await.unwrap()
    }

    async fn put(b: &LocalBackend, bucket: &str, key: &str, body: &[u8]) -> Result<ObjectMeta, S3Error> {
        let staged = stage(b, body).await;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: staged.size(),
            etag: staged.md5_hex(),
            content_type: Some("application/octet-stream".into()),
            user_metadata: [("device".to_string(), "cam-1".to_string())].into(),
            ..Default::default()
        };
        b.put_object(bucket, meta, staged).await
    }

    async fn collect(mut stream: ByteStream) -> std::io::Result<(Vec<u8>, Vec<usize>)> {
        let (mut out, mut chunks) = (Vec::new(), Vec::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            chunks.push(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok((out, chunks))
    }

    async fn get(b: &LocalBackend, bucket: &str, key: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, S3Error> {
        let (_, stream) = b.get_object(bucket, key, range).await?;
        Ok(collect(stream).await.unwrap().0)
    }

    /// Every file under `dir`, relative to it.
    fn files_under(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk(base, &e.path(), out);
                } else {
                    out.push(e.path().strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[tokio::test]
    async fn open_creates_layout_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("objects");
        let b = LocalBackend::open(&root).unwrap();
        assert!(root.join("blobs").is_dir());
        assert!(root.join("tmp").is_dir());
        assert!(root.join("index.sqlite").is_file());
        assert_eq!(b.staging().dir(), root.join("tmp"));
        assert_eq!(b.kind(), "local");
        b.create_bucket("b1").await.unwrap();
        drop(b);
        let b = LocalBackend::open(&root).unwrap();
        assert_eq!(b.list_buckets().await.unwrap().len(), 1);
        let version: i64 = b.inner.db.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        let mode: String = b.inner.db.lock().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.inner.db.lock().pragma_update(None, "user_version", 999).unwrap();
        drop(b);
        let err = LocalBackend::open(tmp.path().join("objects")).unwrap_err();
        assert!(err.message.contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn buckets() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        assert!(b.list_buckets().await.unwrap().is_empty());
        let info = b.create_bucket("zeta").await.unwrap();
        assert_eq!(info.name, "zeta");
        assert!(info.created_ms > 1_600_000_000_000);
        b.create_bucket("alpha").await.unwrap();
        b.create_bucket("mid").await.unwrap();
        assert_eq!(b.create_bucket("zeta").await.unwrap_err().code, "BucketAlreadyOwnedByYou");
        let names: Vec<_> = b.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert_eq!(b.head_bucket("zeta").await.unwrap(), info);
        assert_eq!(b.head_bucket("nope").await.unwrap_err().code, "NoSuchBucket");

        put(&b, "mid", "k", b"x").await.unwrap();
        assert_eq!(b.delete_bucket("mid").await.unwrap_err().code, "BucketNotEmpty");
        b.delete_object("mid", "k").await.unwrap();
        b.delete_bucket("mid").await.unwrap();
        assert_eq!(b.delete_bucket("mid").await.unwrap_err().code, "NoSuchBucket");
        assert_eq!(b.head_bucket("mid").await.unwrap_err().code, "NoSuchBucket");
        assert!(!b.inner.blobs.join("mid").exists());
        let names: Vec<_> = b.list_buckets().await.unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        // Deleting an empty bucket that never held an object.
        b.delete_bucket("alpha").await.unwrap();
        assert_eq!(files_under(&b.inner.blobs), Vec::<String>::new());
        assert_eq!(std::fs::read_dir(&b.inner.blobs).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn bucket_config() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        assert_eq!(b.get_bucket_config("b", "notification").await.unwrap(), None);
        b.put_bucket_config("b", "notification", Some("<x/>")).await.unwrap();
        b.put_bucket_config("b", "other", Some("1")).await.unwrap();
        assert_eq!(b.get_bucket_config("b", "notification").await.unwrap().as_deref(), Some("<x/>"));
        b.put_bucket_config("b", "notification", Some("<y/>")).await.unwrap();
        assert_eq!(b.get_bucket_config("b", "notification").await.unwrap().as_deref(), Some("<y/>"));
        b.put_bucket_config("b", "notification", None).await.unwrap();
        assert_eq!(b.get_bucket_config("b", "notification").await.unwrap(), None);
        assert_eq!(b.get_bucket_config("b", "other").await.unwrap().as_deref(), Some("1"));
        assert_eq!(b.put_bucket_config("x", "n", Some("v")).await.unwrap_err().code, "NoSuchBucket");
        assert_eq!(b.get_bucket_config("x", "n").await.unwrap_err().code, "NoSuchBucket");
        // A deleted bucket's configuration goes with it.
        b.delete_bucket("b").await.unwrap();
        b.create_bucket("b").await.unwrap();
        assert_eq!(b.get_bucket_config("b", "other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn put_get_head_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        let body = data(1000, 1);
        let before = now_ms();
        let stored = put(&b, "b", "dir/file.bin", &body).await.unwrap();
        assert!(stored.last_modified_ms >= before);
        assert_eq!(stored.size, 1000);
        assert_eq!(stored.etag, hex::encode(Md5::digest(&body)));
        assert_eq!(b.head_object("b", "dir/file.bin").await.unwrap(), stored);
        let (meta, stream) = b.get_object("b", "dir/file.bin", None).await.unwrap();
        assert_eq!(meta, stored);
        assert_eq!(meta.user_metadata["device"], "cam-1");
        assert_eq!(collect(stream).await.unwrap().0, body);

        assert_eq!(get(&b, "b", "missing", None).await.unwrap_err().code, "NoSuchKey");
        assert_eq!(b.head_object("b", "missing").await.unwrap_err().code, "NoSuchKey");
        assert_eq!(get(&b, "nope", "k", None).await.unwrap_err().code, "NoSuchBucket");
        assert_eq!(b.head_object("nope", "k").await.unwrap_err().code, "NoSuchBucket");
        assert_eq!(b.delete_object("nope", "k").await.unwrap_err().code, "NoSuchBucket");

        assert_eq!(files_under(&b.inner.blobs).len(), 1);
        assert!(b.delete_object("b", "dir/file.bin").await.unwrap());
        assert!(!b.delete_object("b", "dir/file.bin").await.unwrap());
        assert_eq!(b.head_object("b", "dir/file.bin").await.unwrap_err().code, "NoSuchKey");
        assert!(files_under(&b.inner.blobs).is_empty());
        assert!(files_under(b.staging().dir()).is_empty());
    }

    #[tokio::test]
    async fn put_to_missing_bucket_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        assert_eq!(put(&b, "nope", "k", b"data").await.unwrap_err().code, "NoSuchBucket");
        assert_eq!(put(&b, "..", "k", b"data").await.unwrap_err().code, "InvalidBucketName");
        assert_eq!(put(&b, "a/b", "k", b"data").await.unwrap_err().code, "InvalidBucketName");
        assert!(files_under(&b.inner.blobs).is_empty());
        assert!(files_under(b.staging().dir()).is_empty());
    }

    #[tokio::test]
    async fn overwrite_replaces_the_blob() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        put(&b, "b", "k", b"first").await.unwrap();
        let first_blob = files_under(&b.inner.blobs);
        let second = put(&b, "b", "k", b"second!").await.unwrap();
        let blobs = files_under(&b.inner.blobs);
        assert_eq!(blobs.len(), 1);
        assert_ne!(blobs, first_blob);
        assert_eq!(get(&b, "b", "k", None).await.unwrap(), b"second!");
        assert_eq!(b.head_object("b", "k").await.unwrap(), second);
        assert_eq!(second.size, 7);
    }

    #[tokio::test]
    async fn keys_never_become_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        let keys = ["../../escape", "/absolute", "a/../../b", "..", "nul\u{0}byte", "x\\..\\y"];
        for (i, key) in keys.iter().enumerate() {
            put(&b, "b", key, &[i as u8]).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(get(&b, "b", key, None).await.unwrap(), [i as u8]);
        }
        let files = files_under(tmp.path());
        assert!(files.iter().all(|f| f.starts_with("objects/")), "{files:?}");
        for f in files_under(&b.inner.blobs.join("b")) {
            let (shard, blob) = f.split_once('/').unwrap();
            assert!(is_blob_name(blob) && blob.starts_with(shard), "{f}");
        }
        let listing = b.list_objects("b", &ListRequest { max_keys: 100, ..Default::default() }).await.unwrap();
        let mut expected: Vec<_> = keys.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(listing.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>(), expected);
    }

    #[tokio::test]
    async fn ranges_and_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        let body = data(200 * 1024 + 17, 3);
        put(&b, "b", "k", &body).await.unwrap();
        let (_, stream) = b.get_object("b", "k", None).await.unwrap();
        let (all, chunks) = collect(stream).await.unwrap();
        assert_eq!(all, body);
        assert!(chunks.len() >= 4 && chunks.iter().all(|&c| c > 0 && c <= READ_CHUNK), "{chunks:?}");
        let n = body.len() as u64;
        for (start, end) in [(0, 0), (1, 1), (10, 70_000), (65_535, 65_536), (0, n - 1), (n - 1, n - 1), (5, n - 1)] {
            let (meta, stream) = b.get_object("b", "k", Some((start, end))).await.unwrap();
            assert_eq!(meta.size, n);
            assert_eq!(collect(stream).await.unwrap().0, &body[start as usize..=end as usize], "{start}-{end}");
        }
        for bad in [(n, n), (0, n), (5, 4)] {
            assert_eq!(get(&b, "b", "k", Some(bad)).await.unwrap_err().code, "InvalidRange");
        }

        put(&b, "b", "empty", b"").await.unwrap();
        let (meta, stream) = b.get_object("b", "empty", None).await.unwrap();
        assert_eq!(meta.size, 0);
        assert_eq!(collect(stream).await.unwrap(), (vec![], vec![]));
        assert_eq!(get(&b, "b", "empty", Some((0, 0))).await.unwrap_err().code, "InvalidRange");
    }

    #[tokio::test]
    async fn reader_survives_overwrite_and_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        let body = data(1 << 20, 5);
        put(&b, "b", "k", &body).await.unwrap();

        // One reader mid-stream, one that has not read anything yet.
        let (_, mut reading) = b.get_object("b", "k", None).await.unwrap();
        let first = reading.next().await.unwrap().unwrap();
        let (_, unread) = b.get_object("b", "k", Some((100, 200_000))).await.unwrap();

        put(&b, "b", "k", b"replacement").await.unwrap();
        assert_eq!(get(&b, "b", "k", None).await.unwrap(), b"replacement");
        assert!(b.delete_object("b", "k").await.unwrap());
        assert!(files_under(&b.inner.blobs).is_empty());

        let (rest, _) = collect(reading).await.unwrap();
        assert_eq!([&first[..], &rest[..]].concat(), body);
        assert_eq!(collect(unread).await.unwrap().0, &body[100..=200_000]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_and_gets_of_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let b = Arc::new(open(tmp.path()));
        b.create_bucket("b").await.unwrap();
        put(&b, "b", "k", &data(100_000, 0)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 1..=12u8 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                if i % 3 == 0 {
                    // Whatever version a reader gets, it gets all of it.
                    let (meta, stream) = b.get_object("b", "k", None).await.unwrap();
                    let (body, _) = collect(stream).await.unwrap();
                    assert_eq!(body.len() as u64, meta.size);
                    assert_eq!(hex::encode(Md5::digest(&body)), meta.etag);
                } else {
                    put(&b, "b", "k", &data(100_000 + i as usize, i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(files_under(&b.inner.blobs).len(), 1);
        let (meta, stream) = b.get_object("b", "k", None).await.unwrap();
        let (body, _) = collect(stream).await.unwrap();
        assert_eq!(hex::encode(Md5::digest(&body)), meta.etag);
        assert!(files_under(b.staging().dir()).is_empty());
    }

    #[tokio::test]
    async fn open_sweeps_what_a_crash_left() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("objects");
        let b = LocalBackend::open(&root).unwrap();
        b.create_bucket("b").await.unwrap();
        b.create_bucket("empty").await.unwrap();
        let kept = data(5000, 9);
        put(&b, "b", "kept", &kept).await.unwrap();
        let referenced = files_under(&root.join("blobs"));
        assert_eq!(referenced.len(), 1);
        let referenced_shard = referenced[0].split('/').nth(1).unwrap().to_owned();

        // A crash between rename and commit, in the same shard and another one.
        let orphan = |shard: &str| {
            let dir = root.join("blobs/b").join(shard);
            std::fs::create_dir_all(&dir).unwrap();
            let name = format!("{shard}{}", &uuid::Uuid::new_v4().simple().to_string()[2..]);
            std::fs::write(dir.join(name), b"orphan").unwrap();
        };
        orphan(&referenced_shard);
        orphan(if referenced_shard == "00" { "01" } else { "00" });
        std::fs::write(root.join("blobs/b/junk"), b"?").unwrap();
        std::fs::write(root.join(format!("blobs/b/{referenced_shard}/.x.partial")), b"?").unwrap();
        // A deleted bucket's leftovers, a bucket-delete interrupted mid-way.
        std::fs::create_dir_all(root.join("blobs/ghost/ab")).unwrap();
        std::fs::write(root.join("blobs/ghost/ab/abcdef"), b"?").unwrap();
        std::fs::create_dir_all(root.join("blobs/.deleted-1/00")).unwrap();
        // A body being staged.
        let mut w = b.staging().writer(None).await.unwrap();
        w.write(b"half").await.unwrap();
        let staged = w.finish().await.unwrap().into_path();
        drop(b);

        let b = LocalBackend::open(&root).unwrap();
        let mut left = files_under(&root.join("blobs"));
        assert_eq!(left, referenced);
        assert!(!staged.exists());
        assert!(files_under(&root.join("tmp")).is_empty());
        left = std::fs::read_dir(root.join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["b"]);
        assert_eq!(get(&b, "b", "kept", None).await.unwrap(), kept);
    }

    #[test]
    fn successor_is_the_least_upper_bound_of_a_prefix() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("a").as_deref(), Some("b"));
        assert_eq!(successor("é").as_deref(), Some("ê"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(successor(""), None);
        // Byte order: everything starting with the prefix sorts below it.
        for p in ["a/", "x\u{7F}", "é/", "a\u{10FFFF}", "\u{FFFF}"] {
            let s = successor(p).unwrap();
            for tail in ["", "\u{0}", "zz", "\u{10FFFF}\u{10FFFF}"] {
                assert!(format!("{p}{tail}").as_bytes() < s.as_bytes(), "{p:?} {tail:?}");
            }
        }
    }

    // ---- listings ----

    /// Index rows without blobs: listings read only the index.
    fn insert_keys<'a>(b: &LocalBackend, bucket: &str, keys: impl IntoIterator<Item = &'a String>) {
        let mut conn = b.inner.db.lock();
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT OR IGNORE INTO buckets (name, created_ms) VALUES (?1, 0)", [bucket]).unwrap();
        {
            let mut stmt =
                tx.prepare("INSERT INTO objects (bucket, key, blob, meta_json) VALUES (?1, ?2, ?3, ?4)").unwrap();
            for key in keys {
                let meta = ObjectMeta { key: key.clone(), size: key.len() as u64, ..Default::default() };
                let blob = uuid::Uuid::new_v4().simple().to_string();
                stmt.execute(params![bucket, key, blob, serde_json::to_string(&meta).unwrap()]).unwrap();
            }
        }
        tx.commit().unwrap();
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Entry {
        Key(String),
        Prefix(String),
    }

    impl Entry {
        fn name(&self) -> &str {
            match self {
                Entry::Key(s) | Entry::Prefix(s) => s,
            }
        }
    }

    /// Entries in order, truncated, next_start_after.
    type Page = (Vec<Entry>, bool, Option<String>);

    /// A listing's entries in key order (objects and common prefixes interleave).
    fn page_of(listing: &Listing) -> Page {
        let mut entries: Vec<Entry> = listing.objects.iter().map(|o| Entry::Key(o.key.clone())).collect();
        entries.extend(listing.common_prefixes.iter().map(|p| Entry::Prefix(p.clone())));
        entries.sort_by(|a, b| a.name().cmp(b.name()));
        for o in &listing.objects {
            assert_eq!(o.size, o.key.len() as u64, "metadata belongs to its key");
        }
        (entries, listing.truncated, listing.next_start_after.clone())
    }

    /// The obvious listing: every key, in order, filtered and rolled up.
    fn model(keys: &BTreeSet<String>, req: &ListRequest) -> Page {
        let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut entries: Vec<Entry> = Vec::new();
        for key in keys {
            if !key.starts_with(&req.prefix) || req.start_after.as_ref().is_some_and(|a| key <= a) {
                continue;
            }
            let rest = &key[req.prefix.len()..];
            match delimiter.and_then(|d| rest.find(d).map(|i| key[..req.prefix.len() + i + d.len()].to_string())) {
                Some(cp) => {
                    let seen = entries.last() == Some(&Entry::Prefix(cp.clone()));
                    if !seen && req.start_after.as_ref() != Some(&cp) {
                        entries.push(Entry::Prefix(cp));
                    }
                }
                None => entries.push(Entry::Key(key.clone())),
            }
        }
        if req.max_keys == 0 {
            return (vec![], false, None);
        }
        let truncated = entries.len() > req.max_keys;
        entries.truncate(req.max_keys);
        let next = if truncated { entries.last().map(|e| e.name().to_owned()) } else { None };
        (entries, truncated, next)
    }

    /// Check one page and then the whole pagination from `req` against the model.
    fn check_listing(b: &LocalBackend, bucket: &str, keys: &BTreeSet<String>, req: &ListRequest) {
        let conn = b.inner.db.lock();
        let (listing, _) = list(&conn, bucket, req).unwrap();
        assert_eq!(page_of(&listing), model(keys, req), "{req:?}");
        if req.max_keys == 0 {
            return;
        }
        let mut all = Vec::new();
        let mut page_req = req.clone();
        for _ in 0..=keys.len() + 1 {
            let (listing, _) = list(&conn, bucket, &page_req).unwrap();
            let (entries, truncated, next) = page_of(&listing);
            assert!(entries.len() <= req.max_keys);
            all.extend(entries);
            if !truncated {
                let everything = model(keys, &ListRequest { max_keys: usize::MAX, ..req.clone() });
                assert_eq!(all, everything.0, "pagination of {req:?}");
                return;
            }
            page_req.start_after = next;
        }
        panic!("pagination does not end: {req:?}");
    }

    #[tokio::test]
    async fn listing_basics() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        b.create_bucket("b").await.unwrap();
        for key in ["a.txt", "photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/x.jpg", "z"] {
            put(&b, "b", key, key.as_bytes()).await.unwrap();
        }
        let req = |prefix: &str, delimiter: Option<&str>, start_after: Option<&str>, max_keys| ListRequest {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            start_after: start_after.map(Into::into),
            max_keys,
        };
        let keys = |l: &Listing| l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();

        let l = b.list_objects("b", &req("", Some("/"), None, 1000)).await.unwrap();
        assert_eq!(keys(&l), ["a.txt", "z"]);
        assert_eq!(l.common_prefixes, ["photos/"]);
        assert!(!l.truncated);
        assert_eq!(l.next_start_after, None);
        assert_eq!(l.objects[1].size, 1);
        assert_eq!(l.objects[1].content_type.as_deref(), Some("application/octet-stream"));

        let l = b.list_objects("b", &req("photos/", Some("/"), None, 2)).await.unwrap();
        assert!(keys(&l).is_empty());
        assert_eq!(l.common_prefixes, ["photos/2024/", "photos/2025/"]);
        assert!(l.truncated);
        assert_eq!(l.next_start_after.as_deref(), Some("photos/2025/"));
        let l = b.list_objects("b", &req("photos/", Some("/"), Some("photos/2025/"), 2)).await.unwrap();
        assert_eq!(keys(&l), ["photos/x.jpg"]);
        assert!(l.common_prefixes.is_empty() && !l.truncated);

        let l = b.list_objects("b", &req("photos/2024/", None, Some("photos/2024/a.jpg"), 10)).await.unwrap();
        assert_eq!(keys(&l), ["photos/2024/b.jpg"]);
        let l = b.list_objects("b", &req("", None, None, 3)).await.unwrap();
        assert_eq!(keys(&l), ["a.txt", "photos/2024/a.jpg", "photos/2024/b.jpg"]);
        assert_eq!(l.next_start_after.as_deref(), Some("photos/2024/b.jpg"));
        // A start-after inside a common prefix (not equal to it) still yields it.
        let l = b.list_objects("b", &req("", Some("/"), Some("photos/2024/a.jpg"), 10)).await.unwrap();
        assert_eq!(l.common_prefixes, ["photos/"]);
        assert_eq!(keys(&l), ["z"]);
        // The prefix itself as a key and a start-after below the prefix.
        let l = b.list_objects("b", &req("photos/2025", Some("/"), Some("a"), 10)).await.unwrap();
        assert_eq!(l.common_prefixes, ["photos/2025/"]);
        let l = b.list_objects("b", &req("q", None, None, 10)).await.unwrap();
        assert_eq!(l, Listing::default());
        assert_eq!(b.list_objects("nope", &req("", None, None, 10)).await.unwrap_err().code, "NoSuchBucket");
    }

    #[tokio::test]
    async fn listing_thousands_of_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        let mut keys = BTreeSet::new();
        for d in 0..25 {
            for f in 0..120 {
                keys.insert(format!("photos/2024/d{d:02}/img{f:03}.jpg"));
            }
            keys.insert(format!("photos/2024/d{d:02}"));
            keys.insert(format!("photos/2024/d{d:02}.json"));
        }
        for k in ["photos/readme", "photos/2024/index.html", "zzz", "photos/2024/", "photos//double", "a/b/c"] {
            keys.insert(k.to_string());
        }
        insert_keys(&b, "b", &keys);
        let reqs = [
            ("", None, None),
            ("", Some("/"), None),
            ("photos/", Some("/"), None),
            ("photos/2024/", Some("/"), None),
            ("photos/2024/", Some("/"), Some("photos/2024/d07/")),
            ("photos/2024/", Some("/"), Some("photos/2024/d07/img050.jpg")),
            ("photos/2024/d1", Some("/"), None),
            ("photos/2024/d1", Some("img"), None),
            ("photos/2024/d10/", None, Some("photos/2024/d10/img100.jpg")),
            ("", Some("2024"), None),
            ("", Some("//"), None),
            ("photos", Some("/"), Some("photos/")),
        ];
        for (prefix, delimiter, start_after) in reqs {
            for max_keys in [1, 7, 1000] {
                let req = ListRequest {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(Into::into),
                    start_after: start_after.map(Into::into),
                    max_keys,
                };
                check_listing(&b, "b", &keys, &req);
            }
        }
    }

    #[tokio::test]
    async fn listing_skips_rolled_up_keys_with_a_seek() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        let mut keys: BTreeSet<String> = (0..30_000).map(|i| format!("big/{i:06}")).collect();
        keys.extend((0..30_000).map(|i| format!("c/{i:06}")));
        keys.extend(["a".to_string(), "bigger".to_string(), "d".to_string()]);
        insert_keys(&b, "b", &keys);
        let conn = b.inner.db.lock();
        let req = ListRequest { delimiter: Some("/".into()), max_keys: 1000, ..Default::default() };
        let (listing, rows_read) = list(&conn, "b", &req).unwrap();
        assert_eq!(page_of(&listing), model(&keys, &req));
        assert_eq!(listing.common_prefixes, ["big/", "c/"]);
        assert!(rows_read <= 6, "{rows_read} rows read");

        let req = ListRequest { max_keys: 2, ..req };
        let (listing, rows_read) = list(&conn, "b", &req).unwrap();
        assert_eq!(listing.next_start_after.as_deref(), Some("big/"));
        assert!(rows_read <= 3, "{rows_read} rows read");
        let req = ListRequest { start_after: Some("big/".into()), ..req };
        let (listing, rows_read) = list(&conn, "b", &req).unwrap();
        assert_eq!(page_of(&listing), model(&keys, &req));
        assert_eq!(listing.next_start_after.as_deref(), Some("c/"));
        assert!(rows_read <= 3, "{rows_read} rows read");
    }

    const ALPHABET: &[char] = &['a', 'b', '/', '.', 'é', '\u{D7FF}', '\u{E000}', '\u{10FFFF}'];

    fn word(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(ALPHABET), len).prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(160))]

        #[test]
        fn listing_matches_the_model(
            keys in prop::collection::btree_set(word(1..6), 0..40),
            prefix in word(0..3),
            delimiter in prop::option::of(prop::sample::select(vec!["/", "é", "\u{10FFFF}", "a/", "//", ""])),
            start_after in prop::option::of(word(0..5)),
            max_keys in 0usize..6,
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let b = open(tmp.path());
            insert_keys(&b, "b", &keys);
            let req = ListRequest {
                prefix,
                delimiter: delimiter.map(str::to_owned),
                start_after,
                max_keys,
            };
            check_listing(&b, "b", &keys, &req);
            // Start-afters that are common prefixes or keys of this listing.
            let everything = model(&keys, &ListRequest { max_keys: usize::MAX, start_after: None, ..req.clone() });
            for entry in everything.0.iter().take(4) {
                let req = ListRequest { start_after: Some(entry.name().to_owned()), ..req.clone() };
                check_listing(&b, "b", &keys, &req);
            }
        }
    }
}

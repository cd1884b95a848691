//! Multipart uploads, staged on the local filesystem for every backend.
//!
//! Devices on poor links upload large payloads in parts and retry single
//! parts; the parts live here until the upload is completed (the parts are
//! concatenated into one staged body that the backend commits like any other
//! put) or aborted. Keeping them local means a backend only ever sees whole
//! objects, and the remote backend needs no multipart support of its own.
//!
//! Layout: one directory per upload, named by its id, holding
//! `upload.json` (bucket, key, the object metadata from the create, when it
//! was initiated), and per part a data file `part-NNNNN-<uuid>` and its
//! [`PartInfo`] in `part-NNNNN.json`. A part's JSON is replaced atomically and
//! names its data file, so a re-upload of a part swaps both at once. State
//! survives restarts; [`Uploads::open`] sweeps what a crash left.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::checksum::multipart_etag;
use crate::staging::{create_private_dir, create_private_file, now_ms, remove_any, sync_dir, Staged, Staging};
use crate::storage::{ObjectMeta, PartInfo, StoredChecksum, UploadInfo};
use crate::S3Error;

/// Every part but the last must be at least this large.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_NUMBER: u32 = 10_000;

const UPLOAD_FILE: &str = "upload.json";
/// Lock stripes: part uploads, completes and aborts of one upload serialize
/// their (short) filesystem steps on the stripe of its id.
const STRIPES: usize = 64;
const COPY_BUFFER: usize = 1 << 20;

/// The multipart uploads in progress.
pub struct Uploads {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    stripes: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").field("dir", &self.inner.dir).finish()
    }
}

/// `upload.json`.
#[derive(Debug, Serialize, Deserialize)]
struct UploadRecord {
    bucket: String,
    key: String,
    /// The object's metadata as given at create (headers, user metadata);
    /// size and ETag are filled in at complete.
    meta: ObjectMeta,
    initiated_ms: i64,
}

/// `part-NNNNN.json`.
#[derive(Debug, Serialize, Deserialize)]
struct PartRecord {
    info: PartInfo,
    /// The data file's name in the upload directory.
    file: String,
}

impl Uploads {
    /// Upload state lives under `dir` (e.g. `<data_dir>/objects/uploads`;
    /// same filesystem as the [`Staging`] directory, so parts move in by
    /// rename). Survives restarts. Blocking (sweeps leftovers of interrupted
    /// operations): call it at startup.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Uploads> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let inner = Inner { dir, stripes: (0..STRIPES).map(|_| Mutex::new(())).collect() };
        inner.sweep()?;
        Ok(Uploads { inner: Arc::new(inner) })
    }

    /// Start an upload of `meta.key`; returns the upload id (32 lowercase hex
    /// digits, random).
    pub async fn create(&self, bucket: &str, meta: ObjectMeta) -> Result<String, S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |inner| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let record = UploadRecord { bucket, key: meta.key.clone(), meta, initiated_ms: now_ms() };
            // Complete in a hidden directory first, so an upload directory
            // always has its upload.json.
            let new = inner.dir.join(format!(".new-{id}"));
            let result = (|| {
                create_private_dir(&new)?;
                write_json(&new.join(UPLOAD_FILE), &record)?;
                std::fs::rename(&new, inner.dir.join(&id))?;
                sync_dir(&inner.dir)
            })();
            if let Err(e) = result {
                let _ = std::fs::remove_dir_all(&new);
                return Err(e.into());
            }
            Ok(id)
        })
        .await
    }

    /// Store part `part_number` (1..=10000) of the upload; a re-upload of the
    /// same number replaces it. The staged body is moved (renamed) into the
    /// upload's directory.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Staged,
        checksum: Option<StoredChecksum>,
    ) -> Result<PartInfo, S3Error> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive"));
        }
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |inner| {
            let _guard = inner.lock(&upload_id)?;
            let dir = inner.upload_dir(&bucket, &key, &upload_id)?;
            let info = PartInfo {
                number: part_number,
                etag: body.md5_hex(),
                size: body.size(),
                last_modified_ms: now_ms(),
                checksum,
            };
            let file = format!("part-{part_number:05}-{}", uuid::Uuid::new_v4().simple());
            let data = dir.join(&file);
            body.move_to(&data)?;
            let replaced = (|| {
                let old = read_part(&dir, part_number)?;
                write_json(&dir.join(part_json_name(part_number)), &PartRecord { info: info.clone(), file })?;
                sync_dir(&dir)?;
                Ok::<_, S3Error>(old)
            })();
            match replaced {
                Ok(old) => {
                    if let Some(old) = old {
                        let _ = std::fs::remove_file(dir.join(old.file));
                    }
                    Ok(info)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&data);
                    Err(e)
                }
            }
        })
        .await
    }

    /// The metadata template from create and the parts so far, by number.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(ObjectMeta, Vec<PartInfo>), S3Error> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |inner| {
            let _guard = inner.lock(&upload_id)?;
            let record = inner.record(&bucket, &key, &upload_id)?;
            let dir = inner.dir.join(&upload_id);
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name();
                if let Some(number) = name.to_str().and_then(parse_part_json_name) {
                    if let Some(part) = read_part(&dir, number)? {
                        parts.push(part.info);
                    }
                }
            }
            parts.sort_by_key(|p| p.number);
            Ok((record.meta, parts))
        })
        .await
    }

    /// Check the client's part list (ascending numbers, each part uploaded
    /// with that ETag, all but the last at least 5 MiB), then concatenate
    /// those parts into a new file from `staging`. Returns the object's
    /// metadata (the create's template with size, multipart ETag and parts
    /// count) and the staged body. The upload stays until [`Uploads::remove`]
    /// (after the backend committed the object).
    pub async fn complete(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        staging: &Staging,
    ) -> Result<(ObjectMeta, Staged), S3Error> {
        if parts.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(S3Error::invalid_part_order());
        }
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        let chosen = parts.to_vec();
        // Open every chosen part under the lock: a consistent snapshot that a
        // concurrent re-upload or abort (which unlink files) cannot disturb.
        let (meta, files) = self
            .run(move |inner| {
                let _guard = inner.lock(&upload_id)?;
                let record = inner.record(&bucket, &key, &upload_id)?;
                let dir = inner.dir.join(&upload_id);
                let mut found = Vec::with_capacity(chosen.len());
                for (number, etag) in &chosen {
                    let etag = etag.trim().trim_matches('"');
                    match read_part(&dir, *number)? {
                        Some(part) if part.info.etag.eq_ignore_ascii_case(etag) => found.push(part),
                        _ => return Err(invalid_part()),
                    }
                }
                if let Some(small) = found[..found.len() - 1].iter().find(|p| p.info.size < MIN_PART_SIZE) {
                    return Err(S3Error::entity_too_small()
                        .with("ProposedSize", small.info.size.to_string())
                        .with("MinSizeAllowed", MIN_PART_SIZE.to_string())
                        .with("PartNumber", small.info.number.to_string())
                        .with("ETag", small.info.etag.clone()));
                }
                let mut files = Vec::with_capacity(found.len());
                let mut digests = Vec::with_capacity(found.len());
                for part in found {
                    digests.push(parse_md5(&part.info.etag)?);
                    files.push((std::fs::File::open(dir.join(&part.file))?, part.info.size));
                }
                let mut meta = record.meta;
                meta.key = record.key;
                meta.size = files.iter().map(|(_, size)| size).sum();
                meta.etag = multipart_etag(&digests);
                meta.parts_count = Some(files.len() as u32);
                Ok((meta, files))
            })
            .await?;

        let mut writer = staging.writer(None).await?;
        let mut buf = vec![0u8; COPY_BUFFER];
        for (file, size) in files {
            let mut file = tokio::fs::File::from_std(file);
            let mut copied = 0u64;
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n]).await?;
                copied += n as u64;
            }
            if copied != size {
                return Err(S3Error::internal(format!("a stored part has {copied} bytes, expected {size}")));
            }
        }
        let staged = writer.finish().await?;
        debug_assert_eq!(meta.size, staged.size());
        Ok((meta, staged))
    }

    /// Abort (or clean up after completing) an upload: its parts are deleted.
    pub async fn remove(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |inner| {
            let trash = {
                let _guard = inner.lock(&upload_id)?;
                let dir = inner.upload_dir(&bucket, &key, &upload_id)?;
                // Gone at once for everyone, deleted at leisure.
                let trash = inner.dir.join(format!(".trash-{}", uuid::Uuid::new_v4().simple()));
                std::fs::rename(&dir, &trash)?;
                trash
            };
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                tracing::warn!(path = %trash.display(), error = %e, "cannot remove a multipart upload's parts");
            }
            Ok(())
        })
        .await
    }

    /// The bucket's uploads in progress, by key, then by initiation.
    pub async fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadInfo>, S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |inner| {
            let mut uploads = Vec::new();
            for entry in std::fs::read_dir(&inner.dir)? {
                let name = entry?.file_name();
                let Some(id) = name.to_str().filter(|n| is_upload_id(n)) else { continue };
                // An upload removed meanwhile is simply not listed.
                let Some(record) = read_record(&inner.dir.join(id))? else { continue };
                if record.bucket == bucket {
                    uploads.push(UploadInfo {
                        key: record.key,
                        upload_id: id.to_owned(),
                        initiated_ms: record.initiated_ms,
                    });
                }
            }
            uploads.sort_by(|a, b| (&a.key, a.initiated_ms, &a.upload_id).cmp(&(&b.key, b.initiated_ms, &b.upload_id)));
            Ok(uploads)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, S3Error> + Send + 'static,
    ) -> Result<T, S3Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| S3Error::internal(format!("multipart task failed: {e}")))?
    }
}

impl Inner {
    /// The lock stripe of a valid upload id; an invalid id is unknown (and
    /// never reaches the filesystem).
    fn lock(&self, upload_id: &str) -> Result<parking_lot::MutexGuard<'_, ()>, S3Error> {
        if !is_upload_id(upload_id) {
            return Err(S3Error::no_such_upload(upload_id));
        }
        let stripe = u8::from_str_radix(&upload_id[..2], 16).unwrap_or(0) as usize % STRIPES;
        Ok(self.stripes[stripe].lock())
    }

    /// The upload's record, if it exists and belongs to `bucket`/`key`.
    fn record(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord, S3Error> {
        if !is_upload_id(upload_id) {
            return Err(S3Error::no_such_upload(upload_id));
        }
        match read_record(&self.dir.join(upload_id))? {
            Some(record) if record.bucket == bucket && record.key == key => Ok(record),
            _ => Err(S3Error::no_such_upload(upload_id)),
        }
    }

    fn upload_dir(&self, bucket: &str, key: &str, upload_id: &str) -> Result<PathBuf, S3Error> {
        self.record(bucket, key, upload_id)?;
        Ok(self.dir.join(upload_id))
    }

    /// Remove what interrupted operations left: half-created and half-removed
    /// uploads, temp files, part data no part JSON names.
    fn sweep(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with(".new-") || name.starts_with(".trash-") {
                remove_any(&path)?;
            } else if is_upload_id(name) && entry.file_type()?.is_dir() {
                if path.join(UPLOAD_FILE).is_file() {
                    sweep_upload(&path)?;
                } else {
                    remove_any(&path)?;
                }
            }
        }
        Ok(())
    }
}

fn sweep_upload(dir: &Path) -> std::io::Result<()> {
    let mut referenced = HashSet::new();
    let mut data_files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") || name.ends_with(".partial") {
            remove_any(&dir.join(name))?;
        } else if let Some(number) = parse_part_json_name(name) {
            match read_part(dir, number) {
                Ok(Some(part)) => {
                    referenced.insert(part.file);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(path = %dir.join(name).display(), error = %e, "unreadable multipart part"),
            }
        } else if name.starts_with("part-") {
            data_files.push(name.to_owned());
        }
    }
    for name in data_files {
        if !referenced.contains(&name) {
            remove_any(&dir.join(name))?;
        }
    }
    Ok(())
}

fn read_record(dir: &Path) -> Result<Option<UploadRecord>, S3Error> {
    read_json(&dir.join(UPLOAD_FILE))
}

fn read_part(dir: &Path, number: u32) -> Result<Option<PartRecord>, S3Error> {
    let part: Option<PartRecord> = read_json(&dir.join(part_json_name(number)))?;
    match part {
        // The file name comes from our own JSON; still, it must not leave the
        // upload's directory.
        Some(p) if p.info.number != number || !p.file.starts_with("part-") || p.file.contains(['/', '\\']) => {
            Err(S3Error::internal(format!("corrupt multipart part record {number}")))
        }
        other => Ok(other),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, S3Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| S3Error::internal(format!("corrupt multipart state {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Write `path` atomically (temp file, fsync, rename). Callers hold the
/// upload's lock, so the temp name is theirs alone.
fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let _ = std::fs::remove_file(&tmp);
        let mut file = create_private_file(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn part_json_name(number: u32) -> String {
    format!("part-{number:05}.json")
}

fn parse_part_json_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("part-")?.strip_suffix(".json")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| (1..=MAX_PART_NUMBER).contains(n))
}

/// Upload ids are what [`Uploads::create`] makes: 32 lowercase hex digits.
/// Anything else is unknown, and never touches the filesystem.
fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_md5(hex_digest: &str) -> Result<[u8; 16], S3Error> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_digest, &mut out)
        .map_err(|_| S3Error::internal(format!("stored part ETag {hex_digest:?} is not an MD5")))?;
    Ok(out)
}

fn invalid_part() -> S3Error {
    S3Error::invalid_part(
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        staging: Staging,
        uploads: Uploads,
        uploads_dir: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path().join("tmp")).unwrap();
        let uploads_dir = tmp.path().join("uploads");
        let uploads = Uploads::open(&uploads_dir).unwrap();
        Fixture { _tmp: tmp, staging, uploads, uploads_dir }
    }

    fn template(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            content_type: Some("video/mp4".into()),
            user_metadata: [("camera".to_string(), "7".to_string())].into(),
            ..Default::default()
        }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 11) as u8).collect()
    }

    fn md5_of(data: &[u8]) -> [u8; 16] {
        crate::checksum::md5(data)
    }

    async fn stage(staging: &Staging, body: &[u8]) -> Staged {
        let mut w = staging.writer(None).await.unwrap();
        w.write(body).await.unwrap();
        w.finish().await.unwrap()
    }

    async fn part(f: &Fixture, bucket: &str, key: &str, id: &str, n: u32, body: &[u8]) -> Result<PartInfo, S3Error> {
        let staged = stage(&f.staging, body).await;
        f.uploads.upload_part(bucket, key, id, n, staged, None).await
    }

    async fn read_staged(staged: &Staged) -> Vec<u8> {
        tokio::fs::read(staged.path()).await.unwrap()
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn create_and_list_uploads() {
        let f = fixture();
        let b1 = f.uploads.create("x", template("b")).await.unwrap();
        let a1 = f.uploads.create("x", template("a")).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let a2 = f.uploads.create("x", template("a")).await.unwrap();
        let y = f.uploads.create("y", template("a")).await.unwrap();
        for id in [&b1, &a1, &a2, &y] {
            assert!(is_upload_id(id), "{id}");
        }
        assert_eq!(HashSet::<&String>::from_iter([&b1, &a1, &a2, &y]).len(), 4);
        let listed = f.uploads.list_uploads("x").await.unwrap();
        let order: Vec<_> = listed.iter().map(|u| (u.key.as_str(), u.upload_id.as_str())).collect();
        assert_eq!(order, [("a", a1.as_str()), ("a", a2.as_str()), ("b", b1.as_str())]);
        assert!(listed[0].initiated_ms < listed[1].initiated_ms);
        assert_eq!(f.uploads.list_uploads("y").await.unwrap().len(), 1);
        assert!(f.uploads.list_uploads("z").await.unwrap().is_empty());
        let (meta, parts) = f.uploads.list_parts("x", "b", &b1).await.unwrap();
        assert_eq!(meta, template("b"));
        assert!(parts.is_empty());
        // Only upload directories, nothing half-made.
        assert!(names_in(&f.uploads_dir).iter().all(|n| is_upload_id(n)));
    }

    #[tokio::test]
    async fn upload_and_complete() {
        let f = fixture();
        let id = f.uploads.create("b", template("video.mp4")).await.unwrap();
        let bodies = [data(MIN_PART_SIZE as usize, 1), data(MIN_PART_SIZE as usize + 3, 2), data(100, 3)];
        // Out of order on the wire.
        for (i, n) in [(2usize, 3u32), (0, 1), (1, 2)] {
            let info = part(&f, "b", "video.mp4", &id, n, &bodies[i]).await.unwrap();
            assert_eq!(info.number, n);
            assert_eq!(info.size, bodies[i].len() as u64);
            assert_eq!(info.etag, hex::encode(md5_of(&bodies[i])));
        }
        let (_, parts) = f.uploads.list_parts("b", "video.mp4", &id).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 3]);
        let chosen: Vec<(u32, String)> = parts.iter().map(|p| (p.number, format!("\"{}\"", p.etag))).collect();
        let (meta, staged) = f.uploads.complete("b", "video.mp4", &id, &chosen, &f.staging).await.unwrap();

        let whole = bodies.concat();
        assert!(read_staged(&staged).await == whole);
        assert_eq!(staged.md5(), md5_of(&whole));
        let digests: Vec<u8> = bodies.iter().flat_map(|b| md5_of(b)).collect();
        assert_eq!(meta.etag, format!("{}-3", hex::encode(md5_of(&digests))));
        assert_eq!(meta.size, whole.len() as u64);
        assert_eq!(meta.parts_count, Some(3));
        assert_eq!(meta.key, "video.mp4");
        assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));
        assert_eq!(meta.user_metadata["camera"], "7");

        // Still there until removed.
        assert_eq!(f.uploads.list_uploads("b").await.unwrap().len(), 1);
        f.uploads.remove("b", "video.mp4", &id).await.unwrap();
        assert!(f.uploads.list_uploads("b").await.unwrap().is_empty());
        assert!(names_in(&f.uploads_dir).is_empty());
        assert_eq!(f.uploads.remove("b", "video.mp4", &id).await.unwrap_err().code, "NoSuchUpload");
        assert_eq!(f.uploads.list_parts("b", "video.mp4", &id).await.unwrap_err().code, "NoSuchUpload");
        // The completed body outlives the upload.
        assert!(read_staged(&staged).await == whole);
        drop(staged);
        assert!(names_in(f.staging.dir()).is_empty());
    }

    #[tokio::test]
    async fn complete_a_subset_and_tiny_uploads() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let big = data(MIN_PART_SIZE as usize, 9);
        part(&f, "b", "k", &id, 1, &big).await.unwrap();
        part(&f, "b", "k", &id, 2, b"skipped").await.unwrap();
        let last = part(&f, "b", "k", &id, 10_000, b"tail").await.unwrap();
        let first_etag = hex::encode(md5_of(&big)).to_uppercase();
        let (meta, staged) =
            f.uploads.complete("b", "k", &id, &[(1, first_etag), (10_000, last.etag)], &f.staging).await.unwrap();
        assert!(read_staged(&staged).await == [&big[..], b"tail"].concat());
        assert_eq!(meta.parts_count, Some(2));
        assert!(meta.etag.ends_with("-2"));

        // A single part may be small, even empty.
        let id = f.uploads.create("b", template("empty")).await.unwrap();
        let p = part(&f, "b", "empty", &id, 1, b"").await.unwrap();
        let (meta, staged) = f.uploads.complete("b", "empty", &id, &[(1, p.etag)], &f.staging).await.unwrap();
        assert_eq!((meta.size, staged.size()), (0, 0));
        assert_eq!(meta.etag, format!("{}-1", hex::encode(md5_of(&md5_of(b"")))));
    }

    #[tokio::test]
    async fn complete_checks_the_part_list() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let p1 = part(&f, "b", "k", &id, 1, b"small first part").await.unwrap();
        let p2 = part(&f, "b", "k", &id, 2, b"second").await.unwrap();
        let complete = |parts: Vec<(u32, String)>| {
            let f = &f;
            let id = id.clone();
            async move { f.uploads.complete("b", "k", &id, &parts, &f.staging).await.map(|_| ()).unwrap_err().code }
        };
        let (e1, e2) = (p1.etag.clone(), p2.etag.clone());
        assert_eq!(complete(vec![]).await, "MalformedXML");
        assert_eq!(complete(vec![(2, e2.clone()), (1, e1.clone())]).await, "InvalidPartOrder");
        assert_eq!(complete(vec![(1, e1.clone()), (1, e1.clone())]).await, "InvalidPartOrder");
        assert_eq!(complete(vec![(1, e1.clone()), (3, e2.clone())]).await, "InvalidPart");
        assert_eq!(complete(vec![(1, e2.clone())]).await, "InvalidPart");
        assert_eq!(complete(vec![(1, "not-an-etag".into())]).await, "InvalidPart");
        assert_eq!(complete(vec![(0, e1.clone())]).await, "InvalidPart");
        let err = f.uploads.complete("b", "k", &id, &[(1, e1.clone()), (2, e2.clone())], &f.staging).await.unwrap_err();
        assert_eq!(err.code, "EntityTooSmall");
        assert!(err.extra.contains(&("PartNumber", "1".to_string())));
        // None of that left a staged file behind.
        assert!(names_in(f.staging.dir()).is_empty());
        // The last part alone is fine.
        assert!(f.uploads.complete("b", "k", &id, &[(2, e2)], &f.staging).await.is_ok());
    }

    #[tokio::test]
    async fn part_numbers_and_ids_are_checked() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        for n in [0, 10_001, u32::MAX] {
            let err = part(&f, "b", "k", &id, n, b"x").await.unwrap_err();
            assert_eq!(err.code, "InvalidArgument");
            assert_eq!(err.message, "Part number must be an integer between 1 and 10000, inclusive");
        }
        let upper = id.to_uppercase();
        let longer = format!("{id}0");
        let bad_ids =
            ["", "..", "../../etc/passwd", "../uploads", ".trash-x", upper.as_str(), longer.as_str(), &id[..31]];
        let unknown = uuid::Uuid::new_v4().simple().to_string();
        for bad in bad_ids.iter().copied().chain([unknown.as_str()]) {
            let err = part(&f, "b", "k", bad, 1, b"x").await.unwrap_err();
            assert_eq!((err.code, err.extra.clone()), ("NoSuchUpload", vec![("UploadId", bad.to_string())]));
            assert_eq!(f.uploads.list_parts("b", "k", bad).await.unwrap_err().code, "NoSuchUpload");
            let complete = f.uploads.complete("b", "k", bad, &[(1, "x".into())], &f.staging).await;
            assert_eq!(complete.unwrap_err().code, "NoSuchUpload");
            assert_eq!(f.uploads.remove("b", "k", bad).await.unwrap_err().code, "NoSuchUpload");
        }
        // Another bucket's or key's upload is unknown too.
        for (bucket, key) in [("other", "k"), ("b", "other"), ("b", "k/")] {
            assert_eq!(part(&f, bucket, key, &id, 1, b"x").await.unwrap_err().code, "NoSuchUpload");
            assert_eq!(f.uploads.list_parts(bucket, key, &id).await.unwrap_err().code, "NoSuchUpload");
            assert_eq!(f.uploads.remove(bucket, key, &id).await.unwrap_err().code, "NoSuchUpload");
        }
        // Rejected bodies were deleted; the upload is untouched.
        assert!(names_in(f.staging.dir()).is_empty());
        assert_eq!(names_in(&f.uploads_dir.join(&id)), [UPLOAD_FILE]);
        assert_eq!(names_in(&f.uploads_dir), [id.as_str()]);
    }

    #[tokio::test]
    async fn reupload_replaces_a_part() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        part(&f, "b", "k", &id, 4, b"first version").await.unwrap();
        let second = part(&f, "b", "k", &id, 4, b"second").await.unwrap();
        let (_, parts) = f.uploads.list_parts("b", "k", &id).await.unwrap();
        assert_eq!(parts, std::slice::from_ref(&second));
        assert_eq!(parts[0].etag, hex::encode(md5_of(b"second")));
        // One data file, one JSON, the upload record.
        assert_eq!(names_in(&f.uploads_dir.join(&id)).len(), 3);
        let (_, staged) = f.uploads.complete("b", "k", &id, &[(4, second.etag)], &f.staging).await.unwrap();
        assert_eq!(read_staged(&staged).await, b"second");
    }

    #[tokio::test]
    async fn checksum_is_kept() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let checksum = StoredChecksum { algorithm: "CRC32".into(), value: "AAAAAA==".into() };
        let staged = stage(&f.staging, b"abc").await;
        let info = f.uploads.upload_part("b", "k", &id, 1, staged, Some(checksum.clone())).await.unwrap();
        assert_eq!(info.checksum.as_ref(), Some(&checksum));
        let (_, parts) = f.uploads.list_parts("b", "k", &id).await.unwrap();
        assert_eq!(parts[0].checksum, Some(checksum));
    }

    #[tokio::test]
    async fn state_survives_a_restart_and_leftovers_are_swept() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let big = data(MIN_PART_SIZE as usize + 1, 4);
        let p1 = part(&f, "b", "k", &id, 1, &big).await.unwrap();
        let p2 = part(&f, "b", "k", &id, 2, b"end").await.unwrap();
        let dir = f.uploads_dir.join(&id);
        let before = names_in(&dir);
        // Crash leftovers: a half-written JSON, a part whose JSON never got
        // written, a half-created upload, a half-removed one, an upload
        // directory without its record.
        std::fs::write(dir.join("part-00003.json.tmp"), b"{").unwrap();
        std::fs::write(dir.join(".0123.partial"), b"half a copy").unwrap();
        std::fs::write(dir.join(format!("part-00003-{}", uuid::Uuid::new_v4().simple())), b"orphan").unwrap();
        std::fs::create_dir_all(f.uploads_dir.join(".new-abc")).unwrap();
        std::fs::create_dir_all(f.uploads_dir.join(".trash-abc/x")).unwrap();
        let stray = uuid::Uuid::new_v4().simple().to_string();
        std::fs::create_dir_all(f.uploads_dir.join(&stray)).unwrap();
        drop(f.uploads);

        let uploads = Uploads::open(&f.uploads_dir).unwrap();
        assert_eq!(names_in(&dir), before);
        assert_eq!(names_in(&f.uploads_dir), [id.as_str()]);
        let listed = uploads.list_uploads("b").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].upload_id, id);
        let (meta, parts) = uploads.list_parts("b", "k", &id).await.unwrap();
        assert_eq!(meta, template("k"));
        assert_eq!(parts, [p1.clone(), p2.clone()]);
        let (_, staged) = uploads.complete("b", "k", &id, &[(1, p1.etag), (2, p2.etag)], &f.staging).await.unwrap();
        assert!(read_staged(&staged).await == [&big[..], b"end"].concat());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_part_uploads() {
        let f = Arc::new(fixture());
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let mut tasks = Vec::new();
        // Every part number twice at once, with different bodies.
        for round in 0..2u8 {
            for n in 1..=8u32 {
                let (f, id) = (f.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    let body = data(50_000 + n as usize * 100 + round as usize, n as u8 * 2 + round);
                    part(&f, "b", "k", &id, n, &body).await.unwrap()
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (_, parts) = f.uploads.list_parts("b", "k", &id).await.unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        // Each part's record matches its data: one winner per number, no mix.
        for p in &parts {
            let (meta, staged) =
                f.uploads.complete("b", "k", &id, &[(p.number, p.etag.clone())], &f.staging).await.unwrap();
            assert_eq!(staged.md5_hex(), p.etag);
            assert_eq!(meta.size, p.size);
        }
        assert_eq!(names_in(&f.uploads_dir.join(&id)).len(), 1 + 2 * 8);
        assert!(names_in(f.staging.dir()).is_empty());
    }

    #[tokio::test]
    async fn a_completed_body_is_unaffected_by_a_later_abort() {
        let f = fixture();
        let id = f.uploads.create("b", template("k")).await.unwrap();
        let p = part(&f, "b", "k", &id, 1, b"payload").await.unwrap();
        let (_, staged) = f.uploads.complete("b", "k", &id, &[(1, p.etag)], &f.staging).await.unwrap();
        f.uploads.remove("b", "k", &id).await.unwrap();
        assert_eq!(part(&f, "b", "k", &id, 2, b"late").await.unwrap_err().code, "NoSuchUpload");
        assert_eq!(read_staged(&staged).await, b"payload");
        drop(staged);
        assert!(names_in(f.staging.dir()).is_empty());
    }

    #[test]
    fn multipart_etag_matches_s3() {
        // Two parts "a" and "b": md5(md5("a") || md5("b")) with the count.
        let etag = multipart_etag(&[md5_of(b"a"), md5_of(b"b")]);
        // Computed independently (Python's hashlib).
        assert_eq!(etag, "96e024ba2074fe77e8e965ba43a704be-2");
    }
}

//! Bodies become verified temporary files before they become objects.
//!
//! An upload is written to a temp file in the staging directory while its MD5
//! is computed and its size counted; only once the body is complete, fsync'd
//! and verified does a backend commit it (for the local backend: a rename on
//! the same filesystem). A [`StagedWriter`] or [`Staged`] that is dropped
//! without being committed deletes its file, so a failed or aborted upload
//! leaves nothing behind, and [`Staging::new`] removes what a crash left.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use tokio::task::JoinHandle;

use crate::S3Error;

/// Temp file names start with this; [`Staging::new`] removes leftovers with it
/// (and nothing else, so a misconfigured shared directory is not wiped).
const TEMP_PREFIX: &str = "tmp-";

/// Bytes buffered in memory before one blocking write to disk.
const BUFFER_SIZE: usize = 1 << 20;

/// A directory for temporary upload files.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Use `dir` for temporary files (created 0700 if missing; leftover temp
    /// files from a crash are removed here, so only one `Staging` may use a
    /// directory at a time). Blocking: call it at startup.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Staging> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let is_temp = entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
            if is_temp && entry.file_type()?.is_file() {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => tracing::debug!(path = %entry.path().display(), "removed leftover staging file"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Staging { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new temp file; writes beyond `max_size` bytes fail with
    /// [`S3Error::entity_too_large`].
    pub async fn writer(&self, max_size: Option<u64>) -> Result<StagedWriter, S3Error> {
        let path = self.dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let file = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || create_private_file(&path)).await.map_err(join_error)??
        };
        Ok(StagedWriter {
            file: FileGuard { path },
            sink: Some(Sink { file, md5: Md5::new() }),
            pending: None,
            buf: Vec::with_capacity(BUFFER_SIZE),
            spare: None,
            size: 0,
            max_size,
        })
    }
}

/// Deletes its file on drop unless disarmed.
#[derive(Debug)]
struct FileGuard {
    path: PathBuf,
}

impl FileGuard {
    fn disarm(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The open file and the running digest; owned by whichever side (the writer
/// or a blocking flush) is using it.
struct Sink {
    file: std::fs::File,
    md5: Md5,
}

type Flush = JoinHandle<(Sink, Vec<u8>, std::io::Result<()>)>;

/// Writes a body to a temp file: buffered (1 MiB per blocking write, the next
/// buffer filling while the previous one is written), MD5 computed as the
/// bytes go to disk, bytes counted against the size limit. A write whose
/// future is dropped midway leaves the writer unusable: drop it too.
pub struct StagedWriter {
    file: FileGuard,
    /// None while a flush is in flight (then `pending` holds it).
    sink: Option<Sink>,
    pending: Option<Flush>,
    buf: Vec<u8>,
    /// A buffer returned by the last flush, reused for the next one.
    spare: Option<Vec<u8>>,
    size: u64,
    max_size: Option<u64>,
}

impl fmt::Debug for StagedWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedWriter").field("path", &self.file.path).field("size", &self.size).finish()
    }
}

impl StagedWriter {
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), S3Error> {
        let new_size = self.size + data.len() as u64;
        if let Some(max) = self.max_size {
            if new_size > max {
                return Err(S3Error::entity_too_large(max));
            }
        }
        self.size = new_size;
        while !data.is_empty() {
            let room = BUFFER_SIZE - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() >= BUFFER_SIZE {
                self.flush_buffer().await?;
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flush and fsync; the file is complete.
    pub async fn finish(mut self) -> Result<Staged, S3Error> {
        if !self.buf.is_empty() {
            self.flush_buffer().await?;
        }
        let sink = self.take_sink().await?;
        let md5 = tokio::task::spawn_blocking(move || {
            sink.file.sync_all()?;
            let digest: [u8; 16] = sink.md5.finalize().into();
            Ok::<_, std::io::Error>(digest)
        })
        .await
        .map_err(join_error)??;
        Ok(Staged { file: self.file, size: self.size, md5 })
    }

    /// Wait for the flush in flight, if any, and get the sink back.
    async fn take_sink(&mut self) -> Result<Sink, S3Error> {
        if let Some(pending) = self.pending.take() {
            let (sink, buf, result) = pending.await.map_err(join_error)?;
            self.spare = Some(buf);
            // After a failed write the file has a gap: leave the writer unusable.
            result?;
            self.sink = Some(sink);
        }
        self.sink.take().ok_or_else(|| S3Error::internal("staged file unusable after an earlier error"))
    }

    /// Hand the full buffer to a blocking task (hash + write) and keep filling
    /// a second buffer meanwhile.
    async fn flush_buffer(&mut self) -> Result<(), S3Error> {
        let mut sink = self.take_sink().await?;
        let next = match self.spare.take() {
            Some(mut spare) => {
                spare.clear();
                spare
            }
            None => Vec::with_capacity(BUFFER_SIZE),
        };
        let buf = std::mem::replace(&mut self.buf, next);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            sink.md5.update(&buf);
            let result = sink.file.write_all(&buf);
            (sink, buf, result)
        }));
        Ok(())
    }
}

/// A complete, fsync'd temp file with its size and MD5. Deleted on drop
/// unless [`Staged::into_path`] took it.
#[derive(Debug)]
pub struct Staged {
    file: FileGuard,
    size: u64,
    md5: [u8; 16],
}

impl Staged {
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn md5(&self) -> [u8; 16] {
        self.md5
    }

    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    /// Take ownership of the file (it will no longer be deleted on drop).
    pub fn into_path(self) -> PathBuf {
        self.file.disarm()
    }

    /// Move the file to `dest` (same directory tree: a rename; the caller
    /// fsyncs `dest`'s directory). Should `dest` be on another filesystem
    /// after all, the file is copied next to `dest`, fsync'd and renamed.
    pub(crate) fn move_to(self, dest: &Path) -> std::io::Result<()> {
        match std::fs::rename(self.path(), dest) {
            Ok(()) => {
                self.into_path();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                let name = format!(".{}.partial", uuid::Uuid::new_v4().simple());
                let partial = dest.with_file_name(name);
                let copied = (|| {
                    let mut from = std::fs::File::open(self.path())?;
                    let mut to = create_private_file(&partial)?;
                    std::io::copy(&mut from, &mut to)?;
                    to.sync_all()?;
                    std::fs::rename(&partial, dest)
                })();
                if copied.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                // Dropping `self` removes the source.
                copied
            }
            Err(e) => Err(e),
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> S3Error {
    S3Error::internal(format!("staging task failed: {e}"))
}

/// Create `dir` (and parents) if missing, the last component 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Create a new file (never an existing one), 0600.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Make a directory's entries (a rename into it) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Remove a file or a directory tree; one that is already gone is fine.
pub(crate) fn remove_any(path: &Path) -> std::io::Result<()> {
    let result = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_of(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn small_body_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path().join("staging")).unwrap();
        let mut w = staging.writer(None).await.unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"").await.unwrap();
        w.write(b"world").await.unwrap();
        assert_eq!(w.size(), 11);
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.size(), 11);
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"hello world");
        assert_eq!(staged.md5(), md5_of(b"hello world"));
        assert_eq!(staged.md5_hex(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert!(staged.path().starts_with(staging.dir()));
        assert!(staged.path().file_name().unwrap().to_str().unwrap().starts_with("tmp-"));
    }

    #[tokio::test]
    async fn empty_body() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let staged = staging.writer(Some(0)).await.unwrap().finish().await.unwrap();
        assert_eq!(staged.size(), 0);
        assert_eq!(staged.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(std::fs::metadata(staged.path()).unwrap().len(), 0);
    }

    #[tokio::test]
    async fn large_body_in_odd_pieces() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let data = pattern(3 * BUFFER_SIZE + 12_345);
        let mut w = staging.writer(None).await.unwrap();
        // Pieces of varying sizes, some larger than the buffer.
        let mut rest = &data[..];
        let mut step = 1;
        while !rest.is_empty() {
            let n = step.min(rest.len());
            w.write(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            step = (step * 7 + 13) % (BUFFER_SIZE + BUFFER_SIZE / 2) + 1;
        }
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.size(), data.len() as u64);
        assert_eq!(staged.md5(), md5_of(&data));
        assert!(std::fs::read(staged.path()).unwrap() == data);
    }

    #[tokio::test]
    async fn one_write_of_many_buffers() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let data = pattern(5 * BUFFER_SIZE);
        let mut w = staging.writer(Some(data.len() as u64)).await.unwrap();
        w.write(&data).await.unwrap();
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.md5(), md5_of(&data));
        assert!(std::fs::read(staged.path()).unwrap() == data);
    }

    #[tokio::test]
    async fn size_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut w = staging.writer(Some(10)).await.unwrap();
        w.write(b"12345").await.unwrap();
        w.write(b"67890").await.unwrap();
        let err = w.write(b"x").await.unwrap_err();
        assert_eq!(err.code, "EntityTooLarge");
        assert_eq!(err, S3Error::entity_too_large(10));
        assert_eq!(w.size(), 10);
        // Exactly at the limit is fine.
        let staged = w.finish().await.unwrap();
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"1234567890");

        let mut w = staging.writer(Some(3)).await.unwrap();
        assert_eq!(w.write(b"abcd").await.unwrap_err().code, "EntityTooLarge");
        drop(w);
        drop(staged);
        assert!(files_in(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn dropped_writer_removes_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut w = staging.writer(None).await.unwrap();
        w.write(&pattern(BUFFER_SIZE * 2 + 5)).await.unwrap();
        assert_eq!(files_in(tmp.path()).len(), 1);
        drop(w);
        assert!(files_in(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn dropped_staged_removes_its_file_unless_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut w = staging.writer(None).await.unwrap();
        w.write(b"abc").await.unwrap();
        let staged = w.finish().await.unwrap();
        let path = staged.path().to_path_buf();
        assert!(path.exists());
        drop(staged);
        assert!(!path.exists());

        let mut w = staging.writer(None).await.unwrap();
        w.write(b"abc").await.unwrap();
        let staged = w.finish().await.unwrap();
        let kept = staged.into_path();
        assert_eq!(std::fs::read(&kept).unwrap(), b"abc");
    }

    #[tokio::test]
    async fn move_to_renames_or_copies_across_filesystems() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path().join("staging")).unwrap();
        let mut w = staging.writer(None).await.unwrap();
        w.write(b"moved").await.unwrap();
        let staged = w.finish().await.unwrap();
        let dest = tmp.path().join("dest");
        staged.move_to(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"moved");
        assert!(files_in(staging.dir()).is_empty());

        // /dev/shm is usually another filesystem (tmpfs): the copy path.
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else { return };
        let data = pattern(3 * BUFFER_SIZE + 1);
        let mut w = staging.writer(None).await.unwrap();
        w.write(&data).await.unwrap();
        let staged = w.finish().await.unwrap();
        let dest = other.path().join("dest");
        staged.move_to(&dest).unwrap();
        assert!(std::fs::read(&dest).unwrap() == data);
        assert!(files_in(staging.dir()).is_empty());
        assert_eq!(files_in(other.path()), ["dest"]);
    }

    #[tokio::test]
    async fn concurrent_writers_are_independent() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = std::sync::Arc::new(Staging::new(tmp.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..8usize {
            let staging = staging.clone();
            tasks.push(tokio::spawn(async move {
                let data: Vec<u8> = pattern(BUFFER_SIZE + i * 1000).into_iter().map(|b| b ^ i as u8).collect();
                let mut w = staging.writer(None).await.unwrap();
                for chunk in data.chunks(70_000) {
                    w.write(chunk).await.unwrap();
                }
                let staged = w.finish().await.unwrap();
                assert_eq!(staged.md5(), md5_of(&data));
                assert!(std::fs::read(staged.path()).unwrap() == data);
                staged
            }));
        }
        let mut staged = Vec::new();
        for t in tasks {
            staged.push(t.await.unwrap());
        }
        assert_eq!(files_in(tmp.path()).len(), 8);
        drop(staged);
        assert!(files_in(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn new_removes_leftover_temp_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/staging");
        let staging = Staging::new(&dir).unwrap();
        let mut w = staging.writer(None).await.unwrap();
        w.write(b"partial").await.unwrap();
        let staged = w.finish().await.unwrap();
        // A "crash": the file is never cleaned up by its owner.
        let leftover = staged.into_path();
        std::fs::write(dir.join("keep.txt"), b"not ours").unwrap();
        std::fs::create_dir(dir.join("tmp-dir")).unwrap();
        let staging = Staging::new(&dir).unwrap();
        assert!(!leftover.exists());
        assert_eq!(files_in(staging.dir()), vec!["keep.txt".to_string(), "tmp-dir".to_string()]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn permissions() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("staging");
        let staging = Staging::new(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let staged = staging.writer(None).await.unwrap().finish().await.unwrap();
        assert_eq!(std::fs::metadata(staged.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

//! Where objects live. The [`Backend`] trait is the seam between the S3
//! endpoint and storage: the local filesystem by default ([`local`]), an
//! S3-compatible service for scale-out (`remote`, feature `s3`).
//!
//! Bodies reach a backend only as a [`Staged`](crate::staging::Staged) file
//! that has already been received completely and verified (signatures,
//! checksums, size limits), so a backend never sees a partial upload and an
//! object appears whole or not at all.

use std::collections::BTreeMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::staging::Staged;
use crate::S3Error;

pub mod local;
#[cfg(feature = "s3")]
pub mod remote;

/// An object's body as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// One of S3's additional checksums, as the client sent it (base64 of the
/// big-endian digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    pub value: String,
}

/// What S3 keeps about an object besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Without quotes: hex MD5 of the body, or `hex(md5(part md5s))-N` for a
    /// multipart upload.
    pub etag: String,
    /// Milliseconds since the epoch.
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    /// Other stored standard headers, lowercase names: `content-encoding`,
    /// `content-disposition`, `content-language`, `cache-control`, `expires`.
    pub headers: BTreeMap<String, String>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub user_metadata: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    /// Number of parts for an object made by a multipart upload.
    pub parts_count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: i64,
}

/// A listing request (ListObjectsV2 / ListObjects), already decoded.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// List keys strictly after this one (start-after, a continuation token
    /// or a v1 marker, decoded by the caller).
    pub start_after: Option<String>,
    /// 1..=1000 (the caller clamps).
    pub max_keys: usize,
}

/// One page of a listing. `objects` and `common_prefixes` together hold at
/// most `max_keys` entries, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ObjectMeta>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// When truncated: the last key or common prefix returned; the next page
    /// starts strictly after it.
    pub next_start_after: Option<String>,
}

/// Object storage. Bucket and key names reach a backend already validated
/// ([`crate::names`]); a backend must still never let a key escape its
/// bucket.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and `/thingport/info` (`local`, `s3`).
    fn kind(&self) -> &'static str;

    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error>;
    /// Fails with `BucketNotEmpty` while objects remain.
    async fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error>;
    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error>;
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, S3Error>;
    /// Per-bucket configuration documents (e.g. `notification`), opaque text.
    async fn put_bucket_config(&self, bucket: &str, name: &str, value: Option<&str>) -> Result<(), S3Error>;
    async fn get_bucket_config(&self, bucket: &str, name: &str) -> Result<Option<String>, S3Error>;

    /// Store a complete, verified body under `key`, replacing any previous
    /// object atomically. `meta.size` and `meta.etag` are already set by the
    /// caller from the staged file; the backend sets `last_modified_ms`.
    async fn put_object(&self, bucket: &str, meta: ObjectMeta, body: Staged) -> Result<ObjectMeta, S3Error>;
    /// `range` is an inclusive byte range already checked against the size
    /// (see [`crate::range`]); None reads the whole object.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectMeta, ByteStream), S3Error>;
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error>;
    /// Returns whether an object was removed (S3 answers 204 either way).
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, S3Error>;
    async fn list_objects(&self, bucket: &str, req: &ListRequest) -> Result<Listing, S3Error>;
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub number: u32,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: i64,
    pub checksum: Option<StoredChecksum>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: i64,
}

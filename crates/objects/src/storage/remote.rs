//! The scale-out backend: objects in any S3-compatible service (AWS S3,
//! MinIO, Ceph RGW, Garage, …) through the `object_store` crate. Compiled
//! only with the `s3` feature.
//!
//! # Layout in the remote bucket
//!
//! All Thingport buckets live inside ONE remote bucket, under a configurable
//! prefix (`""` or ending in `/`):
//!
//! | what | remote key |
//! | --- | --- |
//! | object `key` of bucket `b` | `{prefix}data/{b}/{encoded key}` |
//! | bucket `b` (existence, creation time) | `{prefix}buckets/{b}.json`, `{"name":…,"created_ms":…}` |
//! | configuration document `name` of `b` | `{prefix}config/{b}/{name}` |
//!
//! The `data/` area belongs to Thingport: an object written there by another
//! tool under a key that is not a valid encoded key (for example one with an
//! empty segment, `a//b`) makes listings of that bucket fail.
//!
//! # Key encoding
//!
//! `object_store` paths cannot hold every S3 key (no empty segments, so no
//! `a//b`, `/a` or the very common `folder/`; no `.`/`..` segments; no ASCII
//! control characters), so a key is stored under a reversible encoding that
//! leaves ordinary keys unchanged, so the remote bucket stays browsable:
//!
//! - `%` becomes `%25` and an ASCII control character `%XX` (upper-case hex);
//! - an empty, `.` or `..` segment gets the marker `%_` appended (`folder/`
//!   is stored as `folder/%_`, `a//b` as `a/%_/b`, `../x` as `..%_/x`).
//!
//! Every encoded segment is a valid, non-dot path segment, so no key can
//! escape its bucket's area (nor be normalised by URL handling). Prefixes are
//! encoded the same way except that their last, unfinished segment gets no
//! marker, so "key starts with prefix" holds exactly when "encoded key starts
//! with encoded prefix": listings send the encoded prefix to the remote as
//! is. The remote lists in the order of encoded keys, which is S3's byte
//! order except around the escapes (a key with `%`, a control character or
//! an empty/dot segment may sort slightly differently); pagination is
//! consistent because `start_after` is compared in the same encoded order.
//!
//! # Metadata
//!
//! Content-Type, Content-Encoding, Content-Disposition, Content-Language and
//! Cache-Control are the remote object's own headers; user metadata is the
//! remote's `x-amz-meta-*`. Thingport's own facts are stored as
//! `x-amz-meta-thingport-*`: the ETag the client got on PUT
//! (`thingport-etag`), the additional checksum, the parts count, other
//! standard headers such as Expires (`thingport-h-{name}`), and
//! `thingport-no-content-type` when the client sent none (so the remote's
//! default type is not reported back). A user metadata name that itself
//! starts with `thingport-` is stored as `thingport-u-{name}`. Values that
//! are not plain printable ASCII are stored RFC 2047-encoded
//! (`=?UTF-8?B?…?=`, as S3 does itself) and decoded on read; a standard
//! header whose value is not plain ASCII is stored as `thingport-h-{name}`.
//!
//! HEAD and GET therefore return exactly what PUT stored. S3's LIST does not
//! return metadata, so **listings report the remote's ETag**: for an object
//! that went up in one request (≤ 8 MiB) that is the same MD5; for a larger
//! one (uploaded to the remote in 8 MiB+ parts) it is the remote's own
//! `-N` ETag, which differs from the one HEAD/GET return.
//!
//! # Uploads
//!
//! A staged file of at most 8 MiB is sent in one PUT; a larger one with the
//! remote's multipart upload, read from disk part by part (at most
//! [`UPLOAD_CONCURRENCY`] parts in flight), never wholly into memory. An
//! upload interrupted mid-way can leave an incomplete multipart upload in the
//! remote bucket: give it a lifecycle rule that aborts incomplete multipart
//! uploads after a day.
//!
//! # Consistency
//!
//! Bucket creation uses a conditional PUT (`If-None-Match: *`) of the marker,
//! supported by AWS S3, MinIO, Ceph RGW and R2. `put_object` checks the
//! bucket marker first; `delete_bucket` checks emptiness and then removes the
//! marker, so an object PUT racing a bucket deletion on another node can
//! leave an orphan under `data/{b}/` (S3 itself has the same race).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::path::Path as RemotePath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::{Backend, BucketInfo, ByteStream, ListRequest, Listing, ObjectMeta, StoredChecksum};
use crate::staging::Staged;
use crate::S3Error;

/// Bodies up to this size go up in a single PUT; larger ones as a remote
/// multipart upload.
pub const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// The smallest part of a remote multipart upload (S3's minimum is 5 MiB).
pub const MIN_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Parts of one remote multipart upload in flight at once (each holds one
/// part in memory).
pub const UPLOAD_CONCURRENCY: usize = 3;
/// S3's limit on the number of parts.
const MAX_PARTS: u64 = 10_000;
/// S3's largest listing page.
const REMOTE_PAGE: usize = 1000;
/// Bucket markers fetched at once by `list_buckets`.
const MARKER_FETCH_CONCURRENCY: usize = 8;

/// Appended to an empty, `.` or `..` key segment.
const SEGMENT_MARK: &str = "%_";

const META_RESERVED: &str = "thingport-";
const META_ETAG: &str = "thingport-etag";
const META_PARTS: &str = "thingport-parts-count";
const META_CHECKSUM_ALGORITHM: &str = "thingport-checksum-algorithm";
const META_CHECKSUM: &str = "thingport-checksum";
const META_NO_CONTENT_TYPE: &str = "thingport-no-content-type";
/// Prefix for standard headers stored as metadata (`expires`, or any whose
/// value is not plain ASCII).
const META_HEADER: &str = "thingport-h-";
/// Prefix for user metadata whose own name starts with `thingport-`.
const META_USER: &str = "thingport-u-";

/// Where the remote service is and which bucket and prefix hold Thingport's
/// data.
#[derive(Clone, Default)]
pub struct RemoteConfig {
    /// For example `http://127.0.0.1:9000` for MinIO; None means AWS S3 in
    /// `region`. With `virtual_hosted_style` the bucket name is put in front
    /// of the endpoint's host unless the endpoint already starts with it.
    pub endpoint: Option<String>,
    pub region: String,
    /// The one remote bucket (it must exist).
    pub bucket: String,
    /// `""` or a prefix ending with `/` (e.g. `thingport/`).
    pub prefix: String,
    /// Empty (with an empty secret) to use instance / container credentials.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Must be true when the endpoint is `http://`.
    pub allow_http: bool,
    /// `https://bucket.host/key` instead of `https://host/bucket/key`.
    pub virtual_hosted_style: bool,
}

impl fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish()
    }
}

/// Objects in an S3-compatible service. See the module docs for the layout.
pub struct RemoteBackend {
    store: AmazonS3,
    /// `{prefix}`, validated.
    prefix: String,
    /// For logs and Debug only.
    location: String,
}

impl fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBackend").field("location", &self.location).finish_non_exhaustive()
    }
}

impl RemoteBackend {
    /// Build the client (no request is made: a wrong endpoint or credentials
    /// show up on first use).
    pub fn new(cfg: RemoteConfig) -> Result<RemoteBackend, S3Error> {
        let invalid = |m: String| S3Error::invalid_argument(format!("remote storage configuration: {m}"));
        if cfg.bucket.is_empty() || cfg.bucket.contains('/') {
            return Err(invalid(format!("invalid bucket name {:?}", cfg.bucket)));
        }
        let prefix = cfg.prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() {
            let Some(inner) = prefix.strip_suffix('/') else {
                return Err(invalid(format!("prefix {:?} must end with '/'", cfg.prefix)));
            };
            if RemotePath::parse(inner).is_err() || inner.split('/').any(|s| s.is_empty()) {
                return Err(invalid(format!("invalid prefix {:?}", cfg.prefix)));
            }
        }
        if cfg.region.is_empty() {
            return Err(invalid("region must be set".into()));
        }
        // No overall request timeout: a GET body streams to a client at the
        // client's pace (object_store resumes a broken body only within the
        // retry budget). Stalls are caught by the connect and read timeouts.
        let client = ClientOptions::new()
            .with_allow_http(cfg.allow_http)
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(60));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
        };
        let mut builder = AmazonS3Builder::new()
            .with_region(&cfg.region)
            .with_bucket_name(&cfg.bucket)
            .with_client_options(client)
            .with_retry(retry)
            .with_virtual_hosted_style_request(cfg.virtual_hosted_style);
        if !cfg.access_key_id.is_empty() || !cfg.secret_access_key.is_empty() {
            builder = builder.with_access_key_id(&cfg.access_key_id).with_secret_access_key(&cfg.secret_access_key);
        }
        let location = match &cfg.endpoint {
            Some(endpoint) => {
                let Some((scheme, rest)) = endpoint.split_once("://") else {
                    return Err(invalid(format!("endpoint {endpoint:?} is not a URL")));
                };
                if scheme.eq_ignore_ascii_case("http") && !cfg.allow_http {
                    return Err(invalid(format!("endpoint {endpoint:?} is http:// but allow_http is off")));
                }
                let endpoint = if cfg.virtual_hosted_style && !rest.starts_with(&format!("{}.", cfg.bucket)) {
                    format!("{scheme}://{}.{rest}", cfg.bucket)
                } else {
                    endpoint.clone()
                };
                builder = builder.with_endpoint(&endpoint);
                format!("{} bucket {} prefix {:?}", endpoint, cfg.bucket, prefix)
            }
            None => format!("AWS S3 {} bucket {} prefix {:?}", cfg.region, cfg.bucket, prefix),
        };
        let store = builder.build().map_err(|e| invalid(e.to_string()))?;
        Ok(RemoteBackend { store, prefix, location })
    }

    /// `{prefix}data/{bucket}/`: the remote prefix of a bucket's objects.
    fn data_prefix(&self, bucket: &str) -> String {
        format!("{}data/{}/", self.prefix, bucket)
    }

    fn object_path(&self, bucket: &str, key: &str) -> Result<RemotePath, S3Error> {
        check_bucket_name(bucket)?;
        remote_path(format!("{}{}", self.data_prefix(bucket), encode_key(key)))
    }

    fn marker_path(&self, bucket: &str) -> Result<RemotePath, S3Error> {
        check_bucket_name(bucket)?;
        remote_path(format!("{}buckets/{}.json", self.prefix, bucket))
    }

    fn config_path(&self, bucket: &str, name: &str) -> Result<RemotePath, S3Error> {
        check_bucket_name(bucket)?;
        remote_path(format!("{}config/{}/{}", self.prefix, bucket, encode_key(name)))
    }

    /// The bucket's marker, None when the bucket does not exist.
    async fn read_marker(&self, bucket: &str) -> Result<Option<BucketInfo>, S3Error> {
        let path = self.marker_path(bucket)?;
        let result = match self.store.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote_error("reading a bucket marker", e)),
        };
        let last_modified_ms = result.meta.last_modified.timestamp_millis();
        let body = result.bytes().await.map_err(|e| remote_error("reading a bucket marker", e))?;
        let info = match serde_json::from_slice::<BucketInfo>(&body) {
            Ok(info) => BucketInfo { name: bucket.to_string(), created_ms: info.created_ms },
            Err(e) => {
                tracing::warn!(bucket, error = %e, "unreadable remote bucket marker; using its modification time");
                BucketInfo { name: bucket.to_string(), created_ms: last_modified_ms }
            }
        };
        Ok(Some(info))
    }

    async fn require_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error> {
        self.read_marker(bucket).await?.ok_or_else(|| S3Error::no_such_bucket(bucket))
    }

    /// The error for a missing object: NoSuchBucket if the bucket is gone.
    async fn missing_key(&self, bucket: &str, key: &str) -> S3Error {
        match self.read_marker(bucket).await {
            Ok(Some(_)) => S3Error::no_such_key(key),
            Ok(None) => S3Error::no_such_bucket(bucket),
            Err(e) => e,
        }
    }

    /// One remote listing request (`prefix` raw, not segment-based).
    async fn list_page(
        &self,
        prefix: &str,
        offset: Option<&str>,
        delimiter: bool,
        max_keys: usize,
        page_token: Option<String>,
    ) -> Result<PaginatedListResult, S3Error> {
        let opts = PaginatedListOptions {
            offset: offset.map(str::to_string),
            delimiter: delimiter.then_some("/".into()),
            max_keys: Some(max_keys.clamp(1, REMOTE_PAGE)),
            page_token,
            ..Default::default()
        };
        let prefix = (!prefix.is_empty()).then_some(prefix);
        self.store.list_paginated(prefix, opts).await.map_err(|e| remote_error("listing", e))
    }

    /// Every remote key under `prefix` (for small areas: bucket markers,
    /// configuration documents).
    async fn list_all(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, S3Error> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page(prefix, None, false, REMOTE_PAGE, token).await?;
            out.extend(page.result.objects);
            match page.page_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Listing with the remote doing the roll-up (no delimiter, or `/`).
    async fn list_remote(&self, bucket: &str, req: &ListRequest, slash: bool) -> Result<Listing, S3Error> {
        let base = self.data_prefix(bucket);
        let remote_prefix = format!("{base}{}", encode_prefix(&req.prefix));
        let after = req.start_after.as_ref().map(|s| format!("{base}{}", encode_key(s)));
        let max = req.max_keys;
        let mut out = Listing::default();
        let mut count = 0usize;
        let mut last = None;
        let mut token = None;
        'pages: loop {
            let page = self.list_page(&remote_prefix, after.as_deref(), slash, max - count, token.take()).await?;
            let mut entries: Vec<(String, Option<object_store::ObjectMeta>)> = page
                .result
                .common_prefixes
                .into_iter()
                .map(|p| (format!("{}/", p.as_ref()), None))
                .chain(page.result.objects.into_iter().map(|o| (o.location.as_ref().to_string(), Some(o))))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (remote, object) in entries {
                if !remote.starts_with(&remote_prefix) || after.as_ref().is_some_and(|a| remote <= *a) {
                    continue;
                }
                if count == max {
                    out.truncated = true;
                    break 'pages;
                }
                let rel = decode_key(&remote[base.len()..]);
                match object {
                    Some(o) => out.objects.push(listed_meta(rel.clone(), &o)),
                    None => out.common_prefixes.push(rel.clone()),
                }
                last = Some(rel);
                count += 1;
            }
            match page.page_token {
                Some(_) if count == max => {
                    // Possibly nothing more is listable; an empty last page is
                    // allowed by S3's protocol.
                    out.truncated = true;
                    break;
                }
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if out.truncated {
            out.next_start_after = last;
        }
        Ok(out)
    }

    /// Listing with a delimiter other than `/`: the remote lists flat and the
    /// roll-up happens here. After a common prefix, the rest of its group is
    /// skipped with a remote `start-after` just past the group.
    async fn list_rolled(&self, bucket: &str, req: &ListRequest, delimiter: &str) -> Result<Listing, S3Error> {
        let base = self.data_prefix(bucket);
        let remote_prefix = format!("{base}{}", encode_prefix(&req.prefix));
        let after = req.start_after.as_ref().map(|s| format!("{base}{}", encode_key(s)));
        let max = req.max_keys;
        let mut out = Listing::default();
        let mut count = 0usize;
        let mut last: Option<String> = None;
        // The last common prefix emitted, remote-encoded.
        let mut group: Option<String> = None;
        let mut offset = after.clone();
        let mut token = None;
        'pages: loop {
            let page = self.list_page(&remote_prefix, offset.as_deref(), false, REMOTE_PAGE, token.take()).await?;
            let mut objects = page.result.objects;
            objects.sort_by(|a, b| a.location.cmp(&b.location));
            let mut ended_in_group = false;
            for o in objects {
                let remote = o.location.as_ref();
                ended_in_group = false;
                if !remote.starts_with(&remote_prefix) || after.as_ref().is_some_and(|a| remote <= a.as_str()) {
                    continue;
                }
                if group.as_ref().is_some_and(|g| remote.starts_with(g.as_str())) {
                    ended_in_group = true;
                    continue;
                }
                let key = decode_key(&remote[base.len()..]);
                let rolled = key
                    .get(req.prefix.len()..)
                    .filter(|_| key.starts_with(&req.prefix))
                    .and_then(|rest| rest.find(delimiter))
                    .map(|i| key[..req.prefix.len() + i + delimiter.len()].to_string());
                if let Some(cp) = rolled {
                    let cp_remote = format!("{base}{}", encode_prefix(&cp));
                    if after.as_ref().is_some_and(|a| cp_remote <= *a) {
                        // The group holding start_after: already listed.
                        group = Some(cp_remote);
                        ended_in_group = true;
                        continue;
                    }
                    if count == max {
                        out.truncated = true;
                        break 'pages;
                    }
                    out.common_prefixes.push(cp.clone());
                    last = Some(cp);
                    group = Some(cp_remote);
                    ended_in_group = true;
                } else {
                    if count == max {
                        out.truncated = true;
                        break 'pages;
                    }
                    out.objects.push(listed_meta(key.clone(), &o));
                    last = Some(key);
                }
                count += 1;
            }
            match page.page_token {
                None => break,
                Some(t) => {
                    // Jump past the rest of the group instead of paging
                    // through it: U+10FFFF sorts after every other character.
                    // (Plain paging if the remote did not move on.)
                    let jump = group.as_ref().filter(|_| ended_in_group).map(|g| format!("{g}\u{10FFFF}"));
                    match jump {
                        Some(jump) if offset.as_ref() != Some(&jump) => offset = Some(jump),
                        _ => token = Some(t),
                    }
                }
            }
        }
        if out.truncated {
            out.next_start_after = last;
        }
        Ok(out)
    }

    async fn upload(&self, path: &RemotePath, attributes: Attributes, body: &Staged) -> Result<(), S3Error> {
        let size = body.size();
        if size <= MULTIPART_THRESHOLD {
            let data = tokio::fs::read(body.path()).await?;
            let opts = PutOptions { attributes, ..Default::default() };
            self.store
                .put_opts(path, PutPayload::from(Bytes::from(data)), opts)
                .await
                .map_err(|e| remote_error("uploading an object", e))?;
            return Ok(());
        }
        let part_size = part_size(size);
        let mut file = tokio::fs::File::open(body.path()).await?;
        let opts = PutMultipartOptions { attributes, ..Default::default() };
        let upload = self
            .store
            .put_multipart_opts(path, opts)
            .await
            .map_err(|e| remote_error("starting a multipart upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size as usize);
        let sent: Result<(), S3Error> = async {
            loop {
                writer.wait_for_capacity(UPLOAD_CONCURRENCY).await.map_err(|e| remote_error("uploading a part", e))?;
                let mut buf = BytesMut::with_capacity(part_size as usize);
                while buf.len() < part_size as usize {
                    if file.read_buf(&mut buf).await? == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    return Ok(());
                }
                writer.put(buf.freeze());
            }
        }
        .await;
        match sent {
            Ok(()) => {
                writer.finish().await.map_err(|e| remote_error("completing a multipart upload", e))?;
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(path = %path, error = %abort, "could not abort a remote multipart upload");
                }
                Err(e)
            }
        }
    }
}

#[async_trait::async_trait]
impl Backend for RemoteBackend {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error> {
        let path = self.marker_path(bucket)?;
        if self.read_marker(bucket).await?.is_some() {
            return Err(S3Error::bucket_already_owned(bucket));
        }
        let info = BucketInfo { name: bucket.to_string(), created_ms: now_ms() };
        let json = serde_json::to_vec(&info).map_err(|e| S3Error::internal(e.to_string()))?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/json".into());
        let opts = PutOptions { mode: PutMode::Create, attributes, ..Default::default() };
        match self.store.put_opts(&path, PutPayload::from(json), opts).await {
            Ok(_) => Ok(info),
            Err(object_store::Error::AlreadyExists { .. }) => Err(S3Error::bucket_already_owned(bucket)),
            Err(e) => Err(remote_error("creating a bucket marker", e)),
        }
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        self.require_bucket(bucket).await?;
        let page = self.list_page(&self.data_prefix(bucket), None, false, 1, None).await?;
        if !page.result.objects.is_empty() {
            return Err(S3Error::bucket_not_empty(bucket));
        }
        let configs = self.list_all(&format!("{}config/{}/", self.prefix, bucket)).await?;
        for config in configs {
            self.store.delete(&config.location).await.map_err(|e| remote_error("deleting a bucket config", e))?;
        }
        match self.store.delete(&self.marker_path(bucket)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote_error("deleting a bucket marker", e)),
        }
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, S3Error> {
        self.require_bucket(bucket).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, S3Error> {
        let area = format!("{}buckets/", self.prefix);
        let names: Vec<String> = self
            .list_all(&area)
            .await?
            .into_iter()
            .filter_map(|o| {
                let name = o.location.as_ref().strip_prefix(&area)?.strip_suffix(".json")?;
                (check_bucket_name(name).is_ok()).then(|| name.to_string())
            })
            .collect();
        let found: Vec<Option<BucketInfo>> = futures_util::stream::iter(names)
            .map(|name| async move { self.read_marker(&name).await })
            .buffered(MARKER_FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut buckets: Vec<BucketInfo> = found.into_iter().flatten().collect();
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets)
    }

    async fn put_bucket_config(&self, bucket: &str, name: &str, value: Option<&str>) -> Result<(), S3Error> {
        let path = self.config_path(bucket, name)?;
        self.require_bucket(bucket).await?;
        match value {
            Some(value) => {
                let payload = PutPayload::from(Bytes::copy_from_slice(value.as_bytes()));
                self.store.put(&path, payload).await.map_err(|e| remote_error("writing a bucket config", e))?;
                Ok(())
            }
            None => match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(remote_error("deleting a bucket config", e)),
            },
        }
    }

    async fn get_bucket_config(&self, bucket: &str, name: &str) -> Result<Option<String>, S3Error> {
        let path = self.config_path(bucket, name)?;
        let result = match self.store.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                self.require_bucket(bucket).await?;
                return Ok(None);
            }
            Err(e) => return Err(remote_error("reading a bucket config", e)),
        };
        let body = result.bytes().await.map_err(|e| remote_error("reading a bucket config", e))?;
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| S3Error::internal("a remote bucket configuration document is not UTF-8"))?;
        Ok(Some(text))
    }

    async fn put_object(&self, bucket: &str, mut meta: ObjectMeta, body: Staged) -> Result<ObjectMeta, S3Error> {
        let path = self.object_path(bucket, &meta.key)?;
        self.require_bucket(bucket).await?;
        meta.size = body.size();
        if meta.etag.is_empty() {
            meta.etag = body.md5_hex();
        }
        self.upload(&path, to_attributes(&meta), &body).await?;
        drop(body);
        meta.last_modified_ms = match self.store.head(&path).await {
            Ok(remote) => remote.last_modified.timestamp_millis(),
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "could not read back an uploaded object's time");
                now_ms()
            }
        };
        Ok(meta)
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectMeta, ByteStream), S3Error> {
        let path = self.object_path(bucket, key)?;
        let opts = GetOptions {
            range: range.map(|(start, end)| GetRange::Bounded(start..end.saturating_add(1))),
            ..Default::default()
        };
        let result = match self.store.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(self.missing_key(bucket, key).await),
            Err(e) => return Err(remote_error("reading an object", e)),
        };
        let meta = stored_meta(key, &result.meta, &result.attributes);
        let stream: ByteStream = Box::pin(result.into_stream().map_err(std::io::Error::from));
        Ok((meta, stream))
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
        let path = self.object_path(bucket, key)?;
        let opts = GetOptions { head: true, ..Default::default() };
        match self.store.get_opts(&path, opts).await {
            Ok(r) => Ok(stored_meta(key, &r.meta, &r.attributes)),
            Err(object_store::Error::NotFound { .. }) => Err(self.missing_key(bucket, key).await),
            Err(e) => Err(remote_error("reading an object's metadata", e)),
        }
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, S3Error> {
        let path = self.object_path(bucket, key)?;
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                self.require_bucket(bucket).await?;
                return Ok(false);
            }
            Err(e) => return Err(remote_error("reading an object's metadata", e)),
        }
        match self.store.delete(&path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(remote_error("deleting an object", e)),
        }
    }

    async fn list_objects(&self, bucket: &str, req: &ListRequest) -> Result<Listing, S3Error> {
        check_bucket_name(bucket)?;
        let listing = async {
            if req.max_keys == 0 {
                return Ok(Listing::default());
            }
            match req.delimiter.as_deref() {
                None | Some("") => self.list_remote(bucket, req, false).await,
                Some("/") => self.list_remote(bucket, req, true).await,
                Some(d) => self.list_rolled(bucket, req, d).await,
            }
        };
        let (info, listing) = tokio::join!(self.read_marker(bucket), listing);
        if info?.is_none() {
            return Err(S3Error::no_such_bucket(bucket));
        }
        listing
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Any object_store failure other than the ones mapped to S3 errors. The
/// message is the remote's (object_store never puts credentials in it).
fn remote_error(what: &str, e: object_store::Error) -> S3Error {
    tracing::warn!(error = %e, "remote storage failed {what}");
    S3Error::internal(format!("remote storage failed {what}: {e}"))
}

/// Bucket names reach a backend validated; this only guards the layout.
fn check_bucket_name(bucket: &str) -> Result<(), S3Error> {
    let ok = !bucket.is_empty()
        && bucket != "."
        && bucket != ".."
        && !bucket.contains('/')
        && !bucket.contains('%')
        && !bucket.chars().any(|c| c.is_ascii_control());
    if ok {
        Ok(())
    } else {
        Err(S3Error::invalid_bucket_name(bucket))
    }
}

fn remote_path(raw: String) -> Result<RemotePath, S3Error> {
    RemotePath::parse(&raw).map_err(|e| S3Error::internal(format!("cannot map a key to a remote path: {e}")))
}

/// S3 part sizes: at least [`MIN_PART_SIZE`], whole MiBs, at most
/// [`MAX_PARTS`] parts.
fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(MIN_PART_SIZE)
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == '%' || c.is_ascii_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
}

fn encode_segment(out: &mut String, segment: &str, complete: bool) {
    escape_into(out, segment);
    if complete && (segment.is_empty() || segment == "." || segment == "..") {
        out.push_str(SEGMENT_MARK);
    }
}

/// A whole key (or configuration name) as its remote relative path.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_segment(&mut out, segment, true);
    }
    out
}

/// A listing prefix: like [`encode_key`], but the last segment may continue.
pub fn encode_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 4);
    let segments: Vec<&str> = prefix.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_segment(&mut out, segment, i + 1 < segments.len());
    }
    out
}

/// The inverse of [`encode_key`] / [`encode_prefix`]; lenient with text it
/// did not produce (kept as is).
pub fn decode_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if bytes.get(i + 1) == Some(&b'_') {
                i += 2;
                continue;
            }
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether a header value can be sent (and comes back) unchanged.
fn is_plain(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with("=?")
        && value.trim() == value
        && !value.contains("  ")
}

fn encode_value(value: &str) -> String {
    if is_plain(value) {
        value.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

fn decode_value(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("=?utf-8?b?") && lower.ends_with("?=") && value.len() >= 12 {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&value[10..value.len() - 2]) {
            if let Ok(text) = String::from_utf8(bytes) {
                return text;
            }
        }
    }
    value.to_string()
}

fn standard_attribute(name: &str) -> Option<Attribute> {
    match name {
        "content-type" => Some(Attribute::ContentType),
        "content-encoding" => Some(Attribute::ContentEncoding),
        "content-disposition" => Some(Attribute::ContentDisposition),
        "content-language" => Some(Attribute::ContentLanguage),
        "cache-control" => Some(Attribute::CacheControl),
        _ => None,
    }
}

/// A header for the remote: native when possible, else `thingport-h-`.
fn insert_header(attributes: &mut Attributes, name: &str, value: &str) {
    match standard_attribute(name) {
        Some(attribute) if is_plain(value) => {
            attributes.insert(attribute, value.to_string().into());
        }
        _ => {
            attributes.insert(Attribute::Metadata(format!("{META_HEADER}{name}").into()), encode_value(value).into());
        }
    }
}

/// What the remote stores for an object.
fn to_attributes(meta: &ObjectMeta) -> Attributes {
    let mut attributes = Attributes::new();
    let mut put_meta = |name: String, value: &str| {
        attributes.insert(Attribute::Metadata(name.into()), encode_value(value).into());
    };
    put_meta(META_ETAG.to_string(), &meta.etag);
    if let Some(parts) = meta.parts_count {
        put_meta(META_PARTS.to_string(), &parts.to_string());
    }
    if let Some(checksum) = &meta.checksum {
        put_meta(META_CHECKSUM_ALGORITHM.to_string(), &checksum.algorithm);
        put_meta(META_CHECKSUM.to_string(), &checksum.value);
    }
    if meta.content_type.is_none() {
        put_meta(META_NO_CONTENT_TYPE.to_string(), "1");
    }
    for (name, value) in &meta.user_metadata {
        let name = name.to_ascii_lowercase();
        let stored = if name.starts_with(META_RESERVED) { format!("{META_USER}{name}") } else { name };
        put_meta(stored, value);
    }
    if let Some(content_type) = &meta.content_type {
        insert_header(&mut attributes, "content-type", content_type);
    }
    for (name, value) in &meta.headers {
        insert_header(&mut attributes, &name.to_ascii_lowercase(), value);
    }
    attributes
}

fn strip_etag(etag: &str) -> String {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"').to_string()
}

/// An object's meta from a listing entry (no metadata: the remote's ETag).
fn listed_meta(key: String, remote: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        key,
        size: remote.size,
        etag: remote.e_tag.as_deref().map(strip_etag).unwrap_or_default(),
        last_modified_ms: remote.last_modified.timestamp_millis(),
        ..Default::default()
    }
}

/// An object's meta from a HEAD or GET.
fn stored_meta(key: &str, remote: &object_store::ObjectMeta, attributes: &Attributes) -> ObjectMeta {
    let mut meta = listed_meta(key.to_string(), remote);
    let mut headers = BTreeMap::new();
    let mut no_content_type = false;
    let mut checksum_algorithm = None;
    let mut checksum_value = None;
    // Native values first, `thingport-h-` (exact) ones override them.
    let mut exact_headers = BTreeMap::new();
    for (attribute, value) in attributes {
        let value: &str = value;
        match attribute {
            Attribute::ContentType => meta.content_type = Some(value.to_string()),
            Attribute::ContentEncoding => {
                headers.insert("content-encoding".to_string(), value.to_string());
            }
            Attribute::ContentDisposition => {
                headers.insert("content-disposition".to_string(), value.to_string());
            }
            Attribute::ContentLanguage => {
                headers.insert("content-language".to_string(), value.to_string());
            }
            Attribute::CacheControl => {
                headers.insert("cache-control".to_string(), value.to_string());
            }
            Attribute::Metadata(name) => {
                let name = name.to_ascii_lowercase();
                let value = decode_value(value);
                if let Some(user) = name.strip_prefix(META_USER) {
                    meta.user_metadata.insert(user.to_string(), value);
                } else if let Some(header) = name.strip_prefix(META_HEADER) {
                    exact_headers.insert(header.to_string(), value);
                } else if name == META_ETAG {
                    meta.etag = value;
                } else if name == META_PARTS {
                    meta.parts_count = value.parse().ok();
                } else if name == META_CHECKSUM_ALGORITHM {
                    checksum_algorithm = Some(value);
                } else if name == META_CHECKSUM {
                    checksum_value = Some(value);
                } else if name == META_NO_CONTENT_TYPE {
                    no_content_type = true;
                } else if !name.starts_with(META_RESERVED) {
                    meta.user_metadata.insert(name, value);
                }
            }
            _ => {}
        }
    }
    if no_content_type {
        meta.content_type = None;
    }
    for (name, value) in exact_headers {
        if name == "content-type" {
            meta.content_type = Some(value);
        } else {
            headers.insert(name, value);
        }
    }
    meta.headers = headers;
    if let (Some(algorithm), Some(value)) = (checksum_algorithm, checksum_value) {
        meta.checksum = Some(StoredChecksum { algorithm, value });
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_unchanged() {
        for key in ["a", "photos/2024/img 1.jpg", "dev-1/rec.mp4", "ünïcödé/ключ", "a.b/c..d/.e"] {
            assert_eq!(encode_key(key), key);
            assert_eq!(decode_key(key), key);
        }
    }

    #[test]
    fn odd_keys_round_trip_into_valid_paths() {
        for key in [
            "folder/",
            "a//b",
            "/lead",
            "//",
            "/",
            ".",
            "..",
            "../x",
            "a/../../b",
            "a/./b",
            "100%",
            "%2E%2E/x",
            "%_",
            "tab\there",
            "nl\n",
            "del\u{7f}",
            "x/%_/y",
        ] {
            let encoded = encode_key(key);
            assert_eq!(decode_key(&encoded), key, "{encoded}");
            let full = format!("tp/data/b/{encoded}");
            let path = RemotePath::parse(&full).unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(path.as_ref(), full, "{key:?}");
            assert!(!encoded.split('/').any(|s| s.is_empty() || s == "." || s == ".."), "{key:?}");
        }
    }

    #[test]
    fn prefixes_match_exactly_when_encoded_prefixes_do() {
        let keys = ["a", "a/", "a//b", "a/.", "a/./x", "a/.b", "a/..", "a%", "a%/", "a/b", "ab", "/", "/x", "x/%_"];
        let prefixes = ["", "a", "a/", "a//", "a/.", "a/./", "a/..", "a%", "/", "x/%", "x/%_", "a/.b"];
        for key in keys {
            for prefix in prefixes {
                assert_eq!(
                    key.starts_with(prefix),
                    encode_key(key).starts_with(&encode_prefix(prefix)),
                    "key {key:?} prefix {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn order_is_byte_order_for_ordinary_keys() {
        let mut keys = vec!["b", "a/b", "a", "a-b", "a/a", "aa", "Z", "é", "a0"];
        let mut encoded: Vec<String> = keys.iter().map(|k| encode_key(k)).collect();
        keys.sort();
        encoded.sort();
        let decoded: Vec<String> = encoded.iter().map(|e| decode_key(e)).collect();
        assert_eq!(decoded, keys);
    }

    #[test]
    fn metadata_values() {
        for value in ["plain", "ünï", " lead", "trail ", "two  spaces", "=?UTF-8?B?x?=", "tab\t", ""] {
            let stored = encode_value(value);
            assert!(stored.bytes().all(|b| (0x20..0x7f).contains(&b)), "{stored:?}");
            assert_eq!(decode_value(&stored), value);
        }
        assert_eq!(encode_value("text/plain; charset=utf-8"), "text/plain; charset=utf-8");
    }

    #[test]
    fn attributes_round_trip() {
        let meta = ObjectMeta {
            key: "k".into(),
            size: 3,
            etag: "abc-2".into(),
            last_modified_ms: 5,
            content_type: Some("text/plain".into()),
            headers: BTreeMap::from([
                ("cache-control".to_string(), "no-cache".to_string()),
                ("expires".to_string(), "Thu, 01 Dec 1994 16:00:00 GMT".to_string()),
                ("content-disposition".to_string(), "attachment; filename=\"ü.txt\"".to_string()),
            ]),
            user_metadata: BTreeMap::from([
                ("device".to_string(), "d1".to_string()),
                ("thingport-etag".to_string(), "user's own".to_string()),
                ("name".to_string(), "Grüße".to_string()),
            ]),
            checksum: Some(StoredChecksum { algorithm: "CRC32".into(), value: "AAAAAA==".into() }),
            parts_count: Some(2),
        };
        let attributes = to_attributes(&meta);
        let remote = object_store::ObjectMeta {
            location: RemotePath::from("x"),
            last_modified: "1970-01-01T00:00:00.005Z".parse().unwrap(),
            size: 3,
            e_tag: Some("\"remote\"".into()),
            version: None,
        };
        assert_eq!(stored_meta("k", &remote, &attributes), meta);

        let bare = ObjectMeta { key: "k".into(), size: 3, etag: "e".into(), last_modified_ms: 5, ..Default::default() };
        let mut attributes = to_attributes(&bare);
        attributes.insert(Attribute::ContentType, "binary/octet-stream".into());
        assert_eq!(stored_meta("k", &remote, &attributes), bare);
    }

    #[test]
    fn configuration() {
        let cfg = |endpoint: Option<&str>, virtual_hosted_style: bool| RemoteConfig {
            endpoint: endpoint.map(str::to_string),
            region: "eu-central-1".into(),
            bucket: "iot".into(),
            prefix: "tp/".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            allow_http: false,
            virtual_hosted_style,
        };
        let b = RemoteBackend::new(cfg(Some("https://s3.example.com"), true)).unwrap();
        assert!(b.location.starts_with("https://iot.s3.example.com "), "{}", b.location);
        let b = RemoteBackend::new(cfg(Some("https://iot.s3.example.com"), true)).unwrap();
        assert!(b.location.starts_with("https://iot.s3.example.com "), "{}", b.location);
        let b = RemoteBackend::new(cfg(Some("https://minio.local:9000"), false)).unwrap();
        assert!(b.location.starts_with("https://minio.local:9000 "), "{}", b.location);
        let b = RemoteBackend::new(cfg(None, false)).unwrap();
        assert_eq!(b.prefix, "tp/");
        assert!(!format!("{b:?} {:?}", cfg(None, false)).contains("wJalr"));
        assert!(RemoteBackend::new(cfg(Some("http://minio.local"), false)).is_err());
        assert!(RemoteBackend::new(cfg(Some("minio.local"), false)).is_err());
        let mut c = cfg(None, false);
        c.prefix = "./".into();
        assert!(RemoteBackend::new(c).is_err());
    }

    #[test]
    fn part_sizes() {
        assert_eq!(part_size(9 * 1024 * 1024), MIN_PART_SIZE);
        let huge = 200 * 1024 * 1024 * 1024u64;
        let size = part_size(huge);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % (1024 * 1024), 0);
    }
}

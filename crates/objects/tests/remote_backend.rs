//! The S3-compatible backend against a real third-party S3 server (moto in
//! server mode, or MinIO): set `THINGPORT_TEST_S3_ENDPOINT`, e.g.
//! `http://127.0.0.1:5055`. Without it every test prints a skip notice and
//! passes. Each test makes its own remote bucket.
#![cfg(feature = "s3")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use futures_util::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use objects::staging::{Staged, Staging};
use objects::storage::remote::{RemoteBackend, RemoteConfig, MULTIPART_THRESHOLD};
use objects::storage::StoredChecksum;
use objects::{Backend, ListRequest, Listing, ObjectMeta, S3Error};

const ENV: &str = "THINGPORT_TEST_S3_ENDPOINT";

fn endpoint() -> Option<String> {
    match std::env::var(ENV) {
        Ok(e) if !e.is_empty() => Some(e.trim_end_matches('/').to_string()),
        _ => {
            // Straight to stderr: the test harness captures eprintln!.
            let _ = writeln!(std::io::stderr(), "skipped: {ENV} not set");
            None
        }
    }
}

/// Create a bucket on the S3 server with a plain unsigned HTTP request (moto
/// and MinIO in its default test setup accept it; object_store cannot create
/// buckets).
fn create_remote_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.strip_prefix("http://").expect("the test endpoint must be http://");
    let mut stream = TcpStream::connect(host).expect("connect to the S3 test server");
    write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default();
    assert!(status.contains(" 200 "), "creating remote bucket {bucket}: {status}");
}

struct Fixture {
    backend: RemoteBackend,
    staging: Staging,
    endpoint: String,
    remote_bucket: String,
    _dir: tempfile::TempDir,
}

fn config(endpoint: &str, bucket: &str, prefix: &str) -> RemoteConfig {
    RemoteConfig {
        endpoint: Some(endpoint.to_string()),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        prefix: prefix.into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        allow_http: true,
        virtual_hosted_style: false,
    }
}

fn fixture(prefix: &str) -> Option<Fixture> {
    let endpoint = endpoint()?;
    let remote_bucket = format!("tp-test-{}", uuid::Uuid::new_v4().simple());
    create_remote_bucket(&endpoint, &remote_bucket);
    let backend = RemoteBackend::new(config(&endpoint, &remote_bucket, prefix)).expect("backend");
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::new(dir.path().join("staging")).unwrap();
    Some(Fixture { backend, staging, endpoint, remote_bucket, _dir: dir })
}

impl Fixture {
    async fn stage(&self, data: &[u8]) -> Staged {
        let mut writer = self.staging.writer(None).await.unwrap();
        for chunk in data.chunks(1 << 20) {
            writer.write(chunk).await.unwrap();
        }
        writer.finish().await.unwrap()
    }

    /// PUT with the caller's usual preparation: size and MD5 ETag from the
    /// staged file.
    async fn put(&self, bucket: &str, key: &str, data: &[u8]) -> ObjectMeta {
        let staged = self.stage(data).await;
        let meta = ObjectMeta { key: key.into(), size: staged.size(), etag: staged.md5_hex(), ..Default::default() };
        self.backend.put_object(bucket, meta, staged).await.unwrap()
    }

    async fn get(&self, bucket: &str, key: &str, range: Option<(u64, u64)>) -> (ObjectMeta, Vec<u8>) {
        let (meta, stream) = self.backend.get_object(bucket, key, range).await.unwrap();
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        (meta, chunks.concat())
    }

    /// Every remote key in the remote bucket, raw.
    async fn remote_keys(&self) -> Vec<String> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region("us-east-1")
            .with_bucket_name(&self.remote_bucket)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_allow_http(true)
            .build()
            .unwrap();
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let opts = PaginatedListOptions { page_token: token.take(), ..Default::default() };
            let page = store.list_paginated(None, opts).await.unwrap();
            keys.extend(page.result.objects.into_iter().map(|o| o.location.to_string()));
            match page.page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        keys
    }
}

fn code(e: S3Error) -> &'static str {
    e.code
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Deterministic test bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn buckets() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    assert_eq!(b.kind(), "s3");
    assert!(b.list_buckets().await.unwrap().is_empty());

    let created = b.create_bucket("photos").await.unwrap();
    assert_eq!(created.name, "photos");
    assert_eq!(code(b.create_bucket("photos").await.unwrap_err()), "BucketAlreadyOwnedByYou");
    b.create_bucket("alpha").await.unwrap();
    assert_eq!(b.head_bucket("photos").await.unwrap(), created);

    let names: Vec<String> = b.list_buckets().await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["alpha", "photos"]);
    assert_eq!(code(b.head_bucket("nope").await.unwrap_err()), "NoSuchBucket");

    // Not empty while an object remains.
    f.put("photos", "a.jpg", b"x").await;
    assert_eq!(code(b.delete_bucket("photos").await.unwrap_err()), "BucketNotEmpty");
    // A configuration document does not count and goes with the bucket.
    b.put_bucket_config("photos", "notification", Some("<x/>")).await.unwrap();
    assert!(b.delete_object("photos", "a.jpg").await.unwrap());
    b.delete_bucket("photos").await.unwrap();
    assert_eq!(code(b.head_bucket("photos").await.unwrap_err()), "NoSuchBucket");
    assert_eq!(code(b.delete_bucket("photos").await.unwrap_err()), "NoSuchBucket");
    let names: Vec<String> = b.list_buckets().await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["alpha"]);

    // Recreated: empty, no leftover configuration.
    b.create_bucket("photos").await.unwrap();
    assert_eq!(b.get_bucket_config("photos", "notification").await.unwrap(), None);
    assert_eq!(f.remote_keys().await, ["tp/buckets/alpha.json", "tp/buckets/photos.json"]);
}

/// Two nodes creating the same bucket at once: the conditional PUT of the
/// marker lets exactly one win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bucket_creation() {
    let Some(f) = fixture("") else { return };
    let results = futures_util::future::join_all((0..6).map(|_| f.backend.create_bucket("race"))).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost: Vec<&str> = results.iter().filter_map(|r| r.as_ref().err().map(|e| e.code)).collect();
    assert_eq!(won, 1, "{results:?}");
    assert!(lost.iter().all(|c| *c == "BucketAlreadyOwnedByYou"), "{lost:?}");
}

#[tokio::test]
async fn bucket_configs() {
    let Some(f) = fixture("") else { return };
    let b = &f.backend;
    b.create_bucket("cfg").await.unwrap();
    assert_eq!(b.get_bucket_config("cfg", "notification").await.unwrap(), None);
    b.put_bucket_config("cfg", "notification", Some("<NotificationConfiguration>ü</NotificationConfiguration>"))
        .await
        .unwrap();
    assert_eq!(
        b.get_bucket_config("cfg", "notification").await.unwrap().as_deref(),
        Some("<NotificationConfiguration>ü</NotificationConfiguration>")
    );
    b.put_bucket_config("cfg", "notification", Some("v2")).await.unwrap();
    assert_eq!(b.get_bucket_config("cfg", "notification").await.unwrap().as_deref(), Some("v2"));
    b.put_bucket_config("cfg", "notification", None).await.unwrap();
    b.put_bucket_config("cfg", "notification", None).await.unwrap();
    assert_eq!(b.get_bucket_config("cfg", "notification").await.unwrap(), None);

    assert_eq!(code(b.get_bucket_config("nope", "notification").await.unwrap_err()), "NoSuchBucket");
    assert_eq!(code(b.put_bucket_config("nope", "notification", Some("x")).await.unwrap_err()), "NoSuchBucket");
    assert_eq!(code(b.put_bucket_config("nope", "notification", None).await.unwrap_err()), "NoSuchBucket");
}

#[tokio::test]
async fn objects_put_get_head_delete() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    b.create_bucket("dev").await.unwrap();
    let data = pattern(100_000, 1);

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let put = f.put("dev", "rec/one.bin", &data).await;
    assert_eq!(put.size, 100_000);
    assert_eq!(put.etag, md5_hex(&data));
    assert!((put.last_modified_ms - before).abs() < 60_000, "{} vs {before}", put.last_modified_ms);

    let head = b.head_object("dev", "rec/one.bin").await.unwrap();
    assert_eq!(head, put);

    let (meta, body) = f.get("dev", "rec/one.bin", None).await;
    assert_eq!(meta, put);
    assert_eq!(body, data);

    // Inclusive ranges.
    let (meta, body) = f.get("dev", "rec/one.bin", Some((10, 19))).await;
    assert_eq!(meta.size, 100_000);
    assert_eq!(body, &data[10..20]);
    let (_, body) = f.get("dev", "rec/one.bin", Some((99_999, 99_999))).await;
    assert_eq!(body, &data[99_999..]);
    let (_, body) = f.get("dev", "rec/one.bin", Some((0, 99_999))).await;
    assert_eq!(body, data);

    // Empty object.
    let empty = f.put("dev", "empty", b"").await;
    assert_eq!(empty.size, 0);
    assert_eq!(empty.etag, "d41d8cd98f00b204e9800998ecf8427e");
    let (_, body) = f.get("dev", "empty", None).await;
    assert!(body.is_empty());

    // Overwrite.
    let put2 = f.put("dev", "rec/one.bin", b"second").await;
    let (meta, body) = f.get("dev", "rec/one.bin", None).await;
    assert_eq!(body, b"second");
    assert_eq!(meta.etag, put2.etag);
    assert_eq!(meta.size, 6);

    // Errors.
    assert_eq!(code(b.head_object("dev", "missing").await.unwrap_err()), "NoSuchKey");
    assert_eq!(code(b.get_object("dev", "missing", None).await.map(|_| ()).unwrap_err()), "NoSuchKey");
    assert_eq!(code(b.head_object("nope", "x").await.unwrap_err()), "NoSuchBucket");
    assert_eq!(code(b.get_object("nope", "x", None).await.map(|_| ()).unwrap_err()), "NoSuchBucket");
    let staged = f.stage(b"x").await;
    let meta = ObjectMeta { key: "x".into(), size: 1, etag: staged.md5_hex(), ..Default::default() };
    assert_eq!(code(b.put_object("nope", meta, staged).await.unwrap_err()), "NoSuchBucket");
    assert_eq!(code(b.delete_object("nope", "x").await.unwrap_err()), "NoSuchBucket");

    // Delete reports whether something was removed.
    assert!(b.delete_object("dev", "rec/one.bin").await.unwrap());
    assert!(!b.delete_object("dev", "rec/one.bin").await.unwrap());
    assert_eq!(code(b.head_object("dev", "rec/one.bin").await.unwrap_err()), "NoSuchKey");
    // The staged files are gone with their Staged values.
    assert_eq!(std::fs::read_dir(f.staging.dir()).unwrap().count(), 0);
}

#[tokio::test]
async fn metadata_round_trip() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    b.create_bucket("meta").await.unwrap();
    let data = b"{\"t\":21.5}";
    let staged = f.stage(data).await;
    let meta = ObjectMeta {
        key: "readings/1.json".into(),
        size: staged.size(),
        etag: staged.md5_hex(),
        content_type: Some("application/json; charset=utf-8".into()),
        headers: BTreeMap::from([
            ("cache-control".to_string(), "max-age=60".to_string()),
            ("content-disposition".to_string(), "attachment; filename=\"grüße.json\"".to_string()),
            ("content-encoding".to_string(), "identity".to_string()),
            ("content-language".to_string(), "de-DE".to_string()),
            ("expires".to_string(), "Thu, 01 Dec 2044 16:00:00 GMT".to_string()),
        ]),
        user_metadata: BTreeMap::from([
            ("device".to_string(), "sensor-7".to_string()),
            ("location".to_string(), "Zürich  Süd".to_string()),
            ("thingport-etag".to_string(), "the user's".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        checksum: Some(StoredChecksum { algorithm: "CRC32C".into(), value: "yZRlqg==".into() }),
        parts_count: None,
        ..Default::default()
    };
    let put = b.put_object("meta", meta.clone(), staged).await.unwrap();
    let expected = ObjectMeta { last_modified_ms: put.last_modified_ms, ..meta };
    assert_eq!(put, expected);
    assert_eq!(b.head_object("meta", "readings/1.json").await.unwrap(), expected);
    let (got, body) = f.get("meta", "readings/1.json", Some((1, 3))).await;
    assert_eq!(got, expected);
    assert_eq!(body, &data[1..4]);

    // No Content-Type given: none comes back (not the remote's default).
    let plain = f.put("meta", "plain", b"p").await;
    let head = b.head_object("meta", "plain").await.unwrap();
    assert_eq!(head.content_type, None);
    assert_eq!(head, plain);

    // Listings carry the remote's ETag: the same MD5 for a single-request upload.
    let listing = b.list_objects("meta", &ListRequest { max_keys: 1000, ..Default::default() }).await.unwrap();
    let etags: Vec<(&str, &str)> = listing.objects.iter().map(|o| (o.key.as_str(), o.etag.as_str())).collect();
    assert_eq!(etags, [("plain", plain.etag.as_str()), ("readings/1.json", expected.etag.as_str())]);
    assert_eq!(listing.objects[1].size, data.len() as u64);
    assert_eq!(listing.objects[1].last_modified_ms, expected.last_modified_ms);
}

#[tokio::test]
async fn large_object_goes_up_in_parts() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    b.create_bucket("big").await.unwrap();
    let size = 2 * MULTIPART_THRESHOLD as usize + 123_457;
    let data = pattern(size, 7);
    let staged = f.stage(&data).await;
    // The ETag the client got from Thingport's own multipart upload.
    let etag = "0123456789abcdef0123456789abcdef-3".to_string();
    let meta = ObjectMeta {
        key: "fw/image.bin".into(),
        size: staged.size(),
        etag: etag.clone(),
        content_type: Some("application/octet-stream".into()),
        parts_count: Some(3),
        ..Default::default()
    };
    let put = b.put_object("big", meta, staged).await.unwrap();
    assert_eq!(put.etag, etag);
    let head = b.head_object("big", "fw/image.bin").await.unwrap();
    assert_eq!(head, put);
    assert_eq!(head.size, size as u64);

    let (meta, body) = f.get("big", "fw/image.bin", None).await;
    assert_eq!(meta.etag, etag);
    assert_eq!(meta.parts_count, Some(3));
    assert_eq!(body.len(), size);
    assert!(body == data, "body differs");

    // A range across the 8 MiB part boundary.
    let start = MULTIPART_THRESHOLD - 10;
    let (_, body) = f.get("big", "fw/image.bin", Some((start, start + 19))).await;
    assert_eq!(body, &data[start as usize..start as usize + 20]);

    // Listing: the remote's own ETag (documented), size from the remote.
    let listing = b.list_objects("big", &ListRequest { max_keys: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listing.objects.len(), 1);
    assert_eq!(listing.objects[0].size, size as u64);
    assert!(listing.objects[0].etag.ends_with("-3"), "{}", listing.objects[0].etag);
}

/// S3's listing semantics over a sorted key set, as the reference.
fn model(keys: &[&str], req: &ListRequest) -> Listing {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    let mut entries: Vec<(String, bool)> = Vec::new();
    for key in sorted {
        let Some(rest) = key.strip_prefix(req.prefix.as_str()) else { continue };
        let entry = match req.delimiter.as_deref().filter(|d| !d.is_empty()).and_then(|d| rest.find(d).map(|i| (d, i)))
        {
            Some((d, i)) => (format!("{}{}", req.prefix, &rest[..i + d.len()]), true),
            None => (key.to_string(), false),
        };
        if entries.last() != Some(&entry) {
            entries.push(entry);
        }
    }
    if let Some(after) = &req.start_after {
        entries.retain(|(s, _)| s.as_str() > after.as_str());
    }
    let truncated = entries.len() > req.max_keys;
    entries.truncate(req.max_keys);
    Listing {
        objects: entries
            .iter()
            .filter(|(_, cp)| !cp)
            .map(|(k, _)| ObjectMeta { key: k.clone(), ..Default::default() })
            .collect(),
        common_prefixes: entries.iter().filter(|(_, cp)| *cp).map(|(s, _)| s.clone()).collect(),
        truncated,
        next_start_after: if truncated { entries.last().map(|(s, _)| s.clone()) } else { None },
    }
}

/// Keys only, for comparing with the model.
fn shape(l: &Listing) -> (Vec<String>, Vec<String>, bool, Option<String>) {
    (
        l.objects.iter().map(|o| o.key.clone()).collect(),
        l.common_prefixes.clone(),
        l.truncated,
        l.next_start_after.clone(),
    )
}

#[tokio::test]
async fn listings() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    b.create_bucket("ls").await.unwrap();
    b.create_bucket("other").await.unwrap();
    f.put("other", "photos/z.jpg", b"o").await;
    // Ordinary keys, a folder marker, an empty segment, dot segments, '%'.
    let keys = [
        "a.txt",
        "b-1/x",
        "b-1/y",
        "b-2",
        "folder/",
        "folder/a",
        "folder/sub/b",
        "folder//c",
        "photos/2023/a.jpg",
        "photos/2024-01/b.jpg",
        "photos/2024-02/c.jpg",
        "photos/2024-02/d.jpg",
        "photos/readme",
        "rates/100%.csv",
        "z/../escape",
        "y/./dot",
    ];
    for (i, key) in keys.iter().enumerate() {
        f.put("ls", key, format!("body {i}").as_bytes()).await;
    }
    // Everything stayed inside the bucket's area, ordinary keys verbatim.
    let raw = f.remote_keys().await;
    assert!(raw.contains(&"tp/data/ls/photos/2024-01/b.jpg".to_string()), "{raw:?}");
    assert!(raw.contains(&"tp/data/ls/folder/%_".to_string()), "{raw:?}");
    assert!(raw.contains(&"tp/data/ls/z/..%_/escape".to_string()), "{raw:?}");
    assert!(raw
        .iter()
        .all(|k| k.starts_with("tp/data/ls/") || k.starts_with("tp/data/other/") || k.starts_with("tp/buckets/")));
    for key in keys {
        let (_, body) = f.get("ls", key, None).await;
        assert!(body.starts_with(b"body "), "{key}");
    }

    let prefixes = ["", "photos/", "photos/2024", "folder/", "folder", "b-", "z/", "nothing", "rates/100%"];
    let delimiters = [None, Some("/"), Some("-"), Some("/2"), Some("%")];
    for prefix in prefixes {
        for delimiter in delimiters {
            let full_req = ListRequest {
                prefix: prefix.into(),
                delimiter: delimiter.map(str::to_string),
                start_after: None,
                max_keys: 1000,
            };
            let full = b.list_objects("ls", &full_req).await.unwrap();
            assert_eq!(shape(&full), shape(&model(&keys, &full_req)), "prefix {prefix:?} delimiter {delimiter:?}");
            for o in &full.objects {
                assert!(o.size > 0 && !o.etag.is_empty() && o.last_modified_ms > 0, "{o:?}");
            }
            // Walk pages of 1, 2 and 3 entries: each page as the model says,
            // and together the full listing.
            for max_keys in [1, 2, 3] {
                let mut req = ListRequest { max_keys, ..full_req.clone() };
                let mut objects = Vec::new();
                let mut common_prefixes = Vec::new();
                for _ in 0..100 {
                    let page = b.list_objects("ls", &req).await.unwrap();
                    assert_eq!(
                        shape(&page),
                        shape(&model(&keys, &req)),
                        "prefix {prefix:?} delimiter {delimiter:?} after {:?} max {max_keys}",
                        req.start_after
                    );
                    objects.extend(page.objects.iter().map(|o| o.key.clone()));
                    common_prefixes.extend(page.common_prefixes.iter().cloned());
                    if !page.truncated {
                        break;
                    }
                    req.start_after = page.next_start_after.clone();
                }
                assert_eq!(objects, shape(&full).0);
                assert_eq!(common_prefixes, full.common_prefixes);
            }
        }
    }

    // start_after given by the client (a v1 marker / StartAfter).
    let req = ListRequest {
        prefix: "photos/".into(),
        start_after: Some("photos/2024-01/b.jpg".into()),
        max_keys: 10,
        ..Default::default()
    };
    let page = b.list_objects("ls", &req).await.unwrap();
    assert_eq!(shape(&page), shape(&model(&keys, &req)));
    let req = ListRequest {
        delimiter: Some("/".into()),
        start_after: Some("folder/a".into()),
        max_keys: 10,
        ..Default::default()
    };
    let page = b.list_objects("ls", &req).await.unwrap();
    assert_eq!(shape(&page), shape(&model(&keys, &req)));

    // Another bucket's objects never show; a missing bucket is an error.
    let other = b.list_objects("other", &ListRequest { max_keys: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(shape(&other).0, ["photos/z.jpg"]);
    let err = b.list_objects("nope", &ListRequest { max_keys: 10, ..Default::default() }).await.unwrap_err();
    assert_eq!(code(err), "NoSuchBucket");
}

/// A group larger than one remote page under a delimiter rolled up locally:
/// the rest of the group is skipped without paging through it.
#[tokio::test]
async fn rolled_up_group_larger_than_a_remote_page() {
    let Some(f) = fixture("tp/") else { return };
    let b = &f.backend;
    b.create_bucket("many").await.unwrap();
    let mut keys: Vec<String> = (0..1005).map(|i| format!("g-{i:04}")).collect();
    keys.extend(["a-1".to_string(), "h-1".to_string(), "h-2".to_string(), "i".to_string()]);
    let staged_keys = keys.clone();
    futures_util::stream::iter(staged_keys)
        .map(|key| {
            let f = &f;
            async move {
                f.put("many", &key, key.as_bytes()).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let req = ListRequest { delimiter: Some("-".into()), max_keys: 1000, ..Default::default() };
    let listing = b.list_objects("many", &req).await.unwrap();
    assert_eq!(listing.common_prefixes, ["a-", "g-", "h-"]);
    assert_eq!(shape(&listing).0, ["i"]);
    assert!(!listing.truncated);

    let req = ListRequest { delimiter: Some("-".into()), max_keys: 2, ..Default::default() };
    let page = b.list_objects("many", &req).await.unwrap();
    assert_eq!(page.common_prefixes, ["a-", "g-"]);
    assert!(page.truncated);
    let req = ListRequest { start_after: page.next_start_after, ..req };
    let page = b.list_objects("many", &req).await.unwrap();
    assert_eq!(page.common_prefixes, ["h-"]);
    assert_eq!(shape(&page).0, ["i"]);
    assert!(!page.truncated);

    // Without a delimiter: pages across the remote's 1000-key pages.
    let req =
        ListRequest { prefix: "g-".into(), start_after: Some("g-0990".into()), max_keys: 1000, ..Default::default() };
    let listing = b.list_objects("many", &req).await.unwrap();
    assert_eq!(listing.objects.len(), 14);
    let req = ListRequest { max_keys: 1000, ..Default::default() };
    let listing = b.list_objects("many", &req).await.unwrap();
    assert_eq!(listing.objects.len(), 1000);
    assert!(listing.truncated);
    let req = ListRequest { start_after: listing.next_start_after, ..req };
    let rest = b.list_objects("many", &req).await.unwrap();
    assert_eq!(rest.objects.len(), keys.len() - 1000);
    assert!(!rest.truncated);

    assert_eq!(code(b.delete_bucket("many").await.unwrap_err()), "BucketNotEmpty");
}

#[tokio::test]
async fn configuration_is_checked() {
    let Some(endpoint) = endpoint() else { return };
    let bad = |mutate: fn(&mut RemoteConfig)| {
        let mut cfg = config(&endpoint, "b", "tp/");
        mutate(&mut cfg);
        RemoteBackend::new(cfg).unwrap_err()
    };
    assert_eq!(bad(|c| c.prefix = "tp".into()).code, "InvalidArgument");
    assert_eq!(bad(|c| c.prefix = "a//".into()).code, "InvalidArgument");
    assert_eq!(bad(|c| c.bucket = String::new()).code, "InvalidArgument");
    assert_eq!(bad(|c| c.allow_http = false).code, "InvalidArgument");
    // The secret never shows in Debug output.
    let mut cfg = config(&endpoint, "b", "tp/");
    cfg.secret_access_key = "s3cr3t-value".into();
    assert!(!format!("{cfg:?}").contains("s3cr3t"), "{cfg:?}");
    let backend = RemoteBackend::new(cfg).unwrap();
    assert!(!format!("{backend:?}").contains("s3cr3t"), "{backend:?}");
}

#[tokio::test]
async fn unreachable_remote_is_an_internal_error() {
    if endpoint().is_none() {
        return;
    }
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), "b", "");
    cfg.secret_access_key = "s3cr3t-value".into();
    let backend = RemoteBackend::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let err = backend.head_bucket("x").await.unwrap_err();
    assert_eq!(err.code, "InternalError");
    assert_eq!(err.status, 500);
    assert!(!err.message.contains("s3cr3t"), "{}", err.message);
    eprintln!("unreachable remote failed after {:?}: {}", started.elapsed(), err.message);
}

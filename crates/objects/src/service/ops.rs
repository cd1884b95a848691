//! The S3 operations: authenticate, authorize, then one function per
//! operation. Responses follow S3's headers and XML documents.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;

use super::body::{self, PayloadMode};
use super::request::{self, now_ms, Op, S3Request, Signed};
use super::{AccessRequest, Authorized, ClientAddr, S3Service};
use crate::events::{EventInfo, NotificationConfig};
use crate::storage::{ListRequest, ObjectMeta};
use crate::{xml, S3Error};

/// Largest XML request body (CompleteMultipartUpload with 10 000 parts fits).
const MAX_XML_BODY: usize = 4 * 1024 * 1024;
/// Name of the bucket configuration holding the notification rules.
const NOTIFICATION: &str = "notification";
/// Standard headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: [&str; 5] =
    ["content-encoding", "content-disposition", "content-language", "cache-control", "expires"];
/// Content type of objects stored without one (as S3).
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Who a request is, for the operations and events.
pub(crate) struct Ctx<'a> {
    pub svc: &'a S3Service,
    pub auth: Authorized,
    pub request_id: &'a str,
    pub source_ip: String,
}

pub(crate) async fn dispatch(svc: &S3Service, req: Request, request_id: &str) -> Result<Response, S3Error> {
    let (parts, body) = req.into_parts();
    let source_ip = parts.extensions.get::<ClientAddr>().map(|a| a.0.ip());
    let req = request::parse(&svc.cfg, parts)?;
    if req.op == Op::PostObject {
        return super::post::post_object(svc, req, body, source_ip, request_id).await;
    }
    let presigned = req.param("X-Amz-Signature").is_some() || req.param("X-Amz-Algorithm").is_some();
    let (mode, payload_hash) = PayloadMode::of(&req, presigned)?;
    let signed = request::authenticate(svc, &req, &payload_hash)?;
    let copy_source = match req.op {
        Op::CopyObject => Some(parse_copy_source(req.header("x-amz-copy-source").unwrap_or(""))?),
        _ => None,
    };
    let declared = match mode {
        PayloadMode::SignedChunks { .. } | PayloadMode::UnsignedChunks => {
            req.header("x-amz-decoded-content-length").and_then(|v| v.parse().ok())
        }
        _ => req.content_length(),
    };
    let auth = svc.access.authorize(&AccessRequest {
        access_key_id: &signed.verified.access_key_id,
        presigned,
        op: req.op,
        method: req.parts.method.as_str(),
        bucket: req.bucket.as_deref(),
        key: req.key.as_deref(),
        copy_source: copy_source.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
        content_length: declared,
        content_type: req.header("content-type"),
        source_ip,
    })?;
    let ctx = Ctx { svc, auth, request_id, source_ip: source_ip.map(|i| i.to_string()).unwrap_or_default() };
    let result = run(&ctx, &req, body, &mode, &signed, copy_source).await;
    svc.access.finished(&ctx.auth, result.is_ok());
    result
}

async fn run(
    ctx: &Ctx<'_>,
    req: &S3Request,
    body: Body,
    mode: &PayloadMode,
    signed: &Signed,
    copy_source: Option<(String, String)>,
) -> Result<Response, S3Error> {
    let svc = ctx.svc;
    let backend = &svc.backend;
    match req.op {
        Op::ListBuckets => {
            let buckets = backend.list_buckets().await?;
            Ok(xml_response(StatusCode::OK, xml::list_buckets(&buckets, &svc.cfg.owner_id)))
        }
        Op::CreateBucket => {
            let bucket = req.bucket()?;
            body::read_small(body, mode, MAX_XML_BODY).await?;
            backend.create_bucket(bucket).await?;
            let mut resp = empty(StatusCode::OK);
            set(&mut resp, "location", &format!("/{bucket}"));
            Ok(resp)
        }
        Op::DeleteBucket => {
            let bucket = req.bucket()?;
            if !svc.uploads.list_uploads(bucket).await?.is_empty() {
                return Err(S3Error::bucket_not_empty(bucket));
            }
            backend.delete_bucket(bucket).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Op::HeadBucket => {
            backend.head_bucket(req.bucket()?).await?;
            let mut resp = empty(StatusCode::OK);
            set(&mut resp, "x-amz-bucket-region", &svc.cfg.region);
            Ok(resp)
        }
        Op::GetBucketLocation => {
            backend.head_bucket(req.bucket()?).await?;
            Ok(xml_response(StatusCode::OK, xml::location_constraint(&svc.cfg.region)))
        }
        Op::GetBucketVersioning => {
            backend.head_bucket(req.bucket()?).await?;
            Ok(xml_response(
                StatusCode::OK,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>".into(),
            ))
        }
        Op::GetBucketNotification => {
            let bucket = req.bucket()?;
            backend.head_bucket(bucket).await?;
            let cfg = notification_config(svc, bucket).await?.unwrap_or_default();
            Ok(xml_response(StatusCode::OK, xml::notification_configuration(&cfg)))
        }
        Op::PutBucketNotification => {
            let bucket = req.bucket()?;
            let bytes = body::read_small(body, mode, MAX_XML_BODY).await?;
            backend.head_bucket(bucket).await?;
            let cfg = xml::parse_notification_configuration(&bytes)?;
            let value = if cfg.rules.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&cfg).map_err(|e| S3Error::internal(e.to_string()))?)
            };
            backend.put_bucket_config(bucket, NOTIFICATION, value.as_deref()).await?;
            Ok(empty(StatusCode::OK))
        }
        Op::ListObjects | Op::ListObjectsV2 => list_objects(ctx, req).await,
        Op::ListMultipartUploads => {
            let bucket = req.bucket()?;
            backend.head_bucket(bucket).await?;
            let uploads = svc.uploads.list_uploads(bucket).await?;
            Ok(xml_response(StatusCode::OK, xml::list_multipart_uploads(bucket, &uploads, &svc.cfg.owner_id)))
        }
        Op::DeleteObjects => {
            let bucket = req.bucket()?;
            let bytes = body::read_small(body, mode, MAX_XML_BODY).await?;
            backend.head_bucket(bucket).await?;
            let (keys, quiet) = xml::parse_delete(&bytes)?;
            let mut deleted = Vec::new();
            let mut errors = Vec::new();
            for key in keys {
                if let Err(e) = crate::names::check_key(&key) {
                    errors.push((key, e));
                    continue;
                }
                match backend.delete_object(bucket, &key).await {
                    Ok(existed) => {
                        if existed {
                            emit(ctx, "ObjectRemoved:Delete", bucket, &key, None).await;
                        }
                        deleted.push(key);
                    }
                    Err(e) => errors.push((key, e)),
                }
            }
            Ok(xml_response(StatusCode::OK, xml::delete_result(&deleted, &errors, quiet)))
        }
        Op::PostObject => Err(S3Error::internal("POST uploads are handled before authentication")),
        Op::PutObject => put_object(ctx, req, body, mode, signed).await,
        Op::CopyObject => copy_object(ctx, req, copy_source).await,
        Op::GetObject | Op::HeadObject => get_object(ctx, req).await,
        Op::DeleteObject => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            backend.head_bucket(bucket).await?;
            if backend.delete_object(bucket, key).await? {
                emit(ctx, "ObjectRemoved:Delete", bucket, key, None).await;
            }
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Op::CreateMultipartUpload => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            body::read_small(body, mode, MAX_XML_BODY).await?;
            backend.head_bucket(bucket).await?;
            let meta = meta_from_headers(req, key);
            let upload_id = svc.uploads.create(bucket, meta).await?;
            let mut resp = xml_response(StatusCode::OK, xml::initiate_multipart_upload(bucket, key, &upload_id));
            if let Some(alg) = req.header("x-amz-checksum-algorithm") {
                set(&mut resp, "x-amz-checksum-algorithm", alg);
            }
            Ok(resp)
        }
        Op::UploadPart => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            let upload_id = req.param("uploadId").unwrap_or_default();
            let number: u32 = req.param("partNumber").and_then(|n| n.parse().ok()).ok_or_else(|| {
                S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
            })?;
            let max = limit(ctx);
            let (staged, checksum) = body::stage(svc, req, body, mode, Some(signed), max).await?;
            let part = svc.uploads.upload_part(bucket, key, upload_id, number, staged, checksum.clone()).await?;
            let mut resp = empty(StatusCode::OK);
            set(&mut resp, "etag", &format!("\"{}\"", part.etag));
            if let Some(c) = checksum {
                set(&mut resp, &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
            }
            Ok(resp)
        }
        Op::CompleteMultipartUpload => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            let upload_id = req.param("uploadId").unwrap_or_default();
            let bytes = body::read_small(body, mode, MAX_XML_BODY).await?;
            let parts = xml::parse_complete_multipart_upload(&bytes)?;
            let (meta, staged) = svc.uploads.complete(bucket, key, upload_id, &parts, &svc.staging).await?;
            if meta.size > limit(ctx) {
                return Err(S3Error::entity_too_large(limit(ctx)));
            }
            let stored = backend.put_object(bucket, meta, staged).await?;
            // The object is stored: a failed clean-up (or a concurrent complete) must not fail the request.
            if let Err(e) = svc.uploads.remove(bucket, key, upload_id).await {
                tracing::warn!(bucket, key, upload_id, error = %e, "could not remove a completed multipart upload");
            }
            emit(ctx, "ObjectCreated:CompleteMultipartUpload", bucket, key, Some(&stored)).await;
            let location = format!("/{bucket}/{}", sigv4::uri_encode(key, false));
            let mut resp = xml_response(
                StatusCode::OK,
                xml::complete_multipart_upload(&location, bucket, key, &format!("\"{}\"", stored.etag)),
            );
            set(&mut resp, "etag", &format!("\"{}\"", stored.etag));
            Ok(resp)
        }
        Op::AbortMultipartUpload => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            svc.uploads.remove(bucket, key, req.param("uploadId").unwrap_or_default()).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Op::ListParts => {
            let (bucket, key) = (req.bucket()?, req.key()?);
            let upload_id = req.param("uploadId").unwrap_or_default();
            let (_, parts) = svc.uploads.list_parts(bucket, key, upload_id).await?;
            let max_parts = req.param("max-parts").and_then(|v| v.parse().ok()).unwrap_or(1000usize).clamp(1, 1000);
            let marker: u32 = req.param("part-number-marker").and_then(|v| v.parse().ok()).unwrap_or(0);
            let after: Vec<_> = parts.into_iter().filter(|p| p.number > marker).collect();
            let truncated = after.len() > max_parts;
            let page = &after[..after.len().min(max_parts)];
            Ok(xml_response(
                StatusCode::OK,
                xml::list_parts(bucket, key, upload_id, page, max_parts, marker, truncated, &svc.cfg.owner_id),
            ))
        }
    }
}

/// The size limit of this request: the endpoint's, lowered by the grant's.
pub(crate) fn limit(ctx: &Ctx<'_>) -> u64 {
    ctx.auth.max_size.map_or(ctx.svc.cfg.max_object_size, |m| m.min(ctx.svc.cfg.max_object_size))
}

async fn put_object(
    ctx: &Ctx<'_>,
    req: &S3Request,
    body: Body,
    mode: &PayloadMode,
    signed: &Signed,
) -> Result<Response, S3Error> {
    let svc = ctx.svc;
    let (bucket, key) = (req.bucket()?, req.key()?);
    svc.backend.head_bucket(bucket).await?;
    if req.header("if-none-match") == Some("*") && svc.backend.head_object(bucket, key).await.is_ok() {
        return Err(precondition_failed());
    }
    let (staged, checksum) = body::stage(svc, req, body, mode, Some(signed), limit(ctx)).await?;
    let mut meta = meta_from_headers(req, key);
    meta.size = staged.size();
    meta.etag = staged.md5_hex();
    meta.checksum = checksum;
    let stored = svc.backend.put_object(bucket, meta, staged).await?;
    emit(ctx, "ObjectCreated:Put", bucket, key, Some(&stored)).await;
    let mut resp = empty(StatusCode::OK);
    set(&mut resp, "etag", &format!("\"{}\"", stored.etag));
    if let Some(c) = &stored.checksum {
        set(&mut resp, &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
    }
    Ok(resp)
}

async fn copy_object(ctx: &Ctx<'_>, req: &S3Request, source: Option<(String, String)>) -> Result<Response, S3Error> {
    use futures_util::StreamExt;
    let svc = ctx.svc;
    let (bucket, key) = (req.bucket()?, req.key()?);
    let (src_bucket, src_key) = source.ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source is required"))?;
    svc.backend.head_bucket(bucket).await?;
    let (src_meta, mut stream) = svc.backend.get_object(&src_bucket, &src_key, None).await?;
    let mut writer = svc.staging.writer(Some(limit(ctx))).await?;
    while let Some(chunk) = stream.next().await {
        writer.write(&chunk?).await?;
    }
    let staged = writer.finish().await?;
    let replace = req.header("x-amz-metadata-directive").is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    if !replace && src_bucket == bucket && src_key == key {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the \
             object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut meta = if replace { meta_from_headers(req, key) } else { ObjectMeta { key: key.to_string(), ..src_meta } };
    meta.size = staged.size();
    meta.etag = staged.md5_hex();
    meta.parts_count = None;
    let stored = svc.backend.put_object(bucket, meta, staged).await?;
    emit(ctx, "ObjectCreated:Copy", bucket, key, Some(&stored)).await;
    Ok(xml_response(StatusCode::OK, xml::copy_object_result(&format!("\"{}\"", stored.etag), stored.last_modified_ms)))
}

async fn get_object(ctx: &Ctx<'_>, req: &S3Request) -> Result<Response, S3Error> {
    let svc = ctx.svc;
    let (bucket, key) = (req.bucket()?, req.key()?);
    let head = match svc.backend.head_object(bucket, key).await {
        Err(e) if e.code == "NoSuchKey" => {
            svc.backend.head_bucket(bucket).await?;
            return Err(e);
        }
        other => other?,
    };
    if let Some(status) = precondition(req, &head)? {
        let mut resp = empty(status);
        set(&mut resp, "etag", &format!("\"{}\"", head.etag));
        return Ok(resp);
    }
    let range = match req.header("range") {
        Some(r) if req.op == Op::GetObject => crate::range::parse_range(r, head.size)?,
        _ => None,
    };
    let (status, length) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, b - a + 1),
        None => (StatusCode::OK, head.size),
    };
    let (meta, body) = if req.op == Op::HeadObject {
        (head, Body::empty())
    } else {
        let (meta, stream) = svc.backend.get_object(bucket, key, range).await?;
        (meta, Body::from_stream(stream))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    set(&mut resp, "content-length", &length.to_string());
    set(&mut resp, "etag", &format!("\"{}\"", meta.etag));
    set(&mut resp, "last-modified", &xml::http_date(meta.last_modified_ms));
    set(&mut resp, "accept-ranges", "bytes");
    set(&mut resp, "content-type", meta.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE));
    for (name, value) in &meta.headers {
        set(&mut resp, name, value);
    }
    for (name, value) in &meta.user_metadata {
        set(&mut resp, &format!("x-amz-meta-{name}"), value);
    }
    if let Some((a, b)) = range {
        set(&mut resp, "content-range", &crate::range::content_range(a, b, meta.size));
    }
    if let Some(n) = meta.parts_count {
        set(&mut resp, "x-amz-mp-parts-count", &n.to_string());
    }
    let checksum_mode = req.header("x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    if let (true, None, Some(c)) = (checksum_mode, range, &meta.checksum) {
        set(&mut resp, &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
    }
    // Response header overrides of a signed request (pre-signed downloads).
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
        ("response-content-language", "content-language"),
        ("response-cache-control", "cache-control"),
        ("response-expires", "expires"),
    ] {
        if let Some(v) = req.param(param) {
            set(&mut resp, header, v);
        }
    }
    Ok(resp)
}

/// Conditional GET/HEAD: Some(304/412) when the condition says so.
fn precondition(req: &S3Request, meta: &ObjectMeta) -> Result<Option<StatusCode>, S3Error> {
    let etag_matches =
        |list: &str| list.split(',').map(|t| t.trim().trim_matches('"')).any(|t| t == "*" || t == meta.etag);
    if let Some(m) = req.header("if-match") {
        if !etag_matches(m) {
            return Err(precondition_failed());
        }
    }
    if let Some(m) = req.header("if-none-match") {
        if etag_matches(m) {
            return Ok(Some(StatusCode::NOT_MODIFIED));
        }
    }
    Ok(None)
}

fn precondition_failed() -> S3Error {
    S3Error::new(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
}

async fn list_objects(ctx: &Ctx<'_>, req: &S3Request) -> Result<Response, S3Error> {
    let svc = ctx.svc;
    let bucket = req.bucket()?;
    let v2 = req.op == Op::ListObjectsV2;
    let max_keys = match req.param("max-keys") {
        Some(v) => v.parse::<usize>().map_err(|_| S3Error::invalid_argument("max-keys must be a number"))?.min(1000),
        None => 1000,
    };
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req.param("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let token = req.param("continuation-token");
    let start_after = if v2 {
        match token {
            Some(t) => Some(decode_token(t)?),
            None => req.param("start-after").map(str::to_string),
        }
    } else {
        req.param("marker").filter(|m| !m.is_empty()).map(str::to_string)
    };
    let listing = if max_keys == 0 {
        svc.backend.head_bucket(bucket).await?;
        Default::default()
    } else {
        svc.backend
            .list_objects(
                bucket,
                &ListRequest { prefix: prefix.clone(), delimiter: delimiter.clone(), start_after, max_keys },
            )
            .await?
    };
    let next = listing.next_start_after.as_deref().filter(|_| listing.truncated);
    let next_token = next.map(encode_token);
    let params = xml::ListParams {
        bucket,
        prefix: &prefix,
        delimiter: delimiter.as_deref(),
        max_keys,
        encoding_type_url: req.param("encoding-type") == Some("url"),
        start_after: req.param("start-after"),
        continuation_token: token,
        next_continuation_token: next_token.as_deref(),
        marker: req.param("marker"),
        next_marker: next,
        fetch_owner: req.param("fetch-owner") == Some("true"),
        owner_id: &svc.cfg.owner_id,
    };
    let body = if v2 { xml::list_objects_v2(&params, &listing) } else { xml::list_objects_v1(&params, &listing) };
    Ok(xml_response(StatusCode::OK, body))
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
fn parse_copy_source(v: &str) -> Result<(String, String), S3Error> {
    let v = v.split_once('?').map_or(v, |(p, _)| p);
    let v = v.strip_prefix('/').unwrap_or(v);
    let decoded = percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not valid UTF-8"))?;
    let (bucket, key) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source must be bucket/key"))?;
    if !crate::names::valid_bucket_name(bucket) {
        return Err(S3Error::invalid_bucket_name(bucket));
    }
    crate::names::check_key(key)?;
    Ok((bucket.to_string(), key.to_string()))
}

/// The metadata a PUT / CreateMultipartUpload / CopyObject(REPLACE) sets.
pub(crate) fn meta_from_headers(req: &S3Request, key: &str) -> ObjectMeta {
    meta_from_fields(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())), key)
}

/// The same from any (lowercase name, value) pairs (headers or form fields).
pub(crate) fn meta_from_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>, key: &str) -> ObjectMeta {
    let mut meta = ObjectMeta { key: key.to_string(), ..ObjectMeta::default() };
    let mut headers = BTreeMap::new();
    for (name, value) in fields {
        let lower = name.to_ascii_lowercase();
        if lower == "content-type" {
            meta.content_type = Some(value.to_string());
        } else if STORED_HEADERS.contains(&lower.as_str()) {
            headers.insert(lower, value.to_string());
        } else if let Some(m) = lower.strip_prefix("x-amz-meta-") {
            meta.user_metadata.insert(m.to_string(), value.to_string());
        }
    }
    meta.headers = headers;
    meta
}

/// Publish object events: to the bucket's notification targets when it has
/// a configuration, else on the default event topic.
pub(crate) async fn emit(ctx: &Ctx<'_>, event_name: &str, bucket: &str, key: &str, meta: Option<&ObjectMeta>) {
    let svc = ctx.svc;
    let config = match notification_config(svc, bucket).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(bucket, error = %e, "could not read the bucket's notification configuration");
            None
        }
    };
    let (kind, detail) = event_name.split_once(':').unwrap_or((event_name, ""));
    let default_topic = format!("{}/{bucket}/{kind}/{detail}", svc.cfg.event_topic_prefix);
    let targets: Vec<(String, String)> = match &config {
        None => vec![(default_topic, String::new())],
        Some(cfg) => cfg
            .matching(event_name, key)
            .into_iter()
            .map(|rule| {
                let topic = rule
                    .target
                    .as_deref()
                    .and_then(|arn| arn.strip_prefix("arn:aws:iot:"))
                    .and_then(|rest| rest.split_once(":topic/").map(|(_, t)| t.to_string()))
                    .unwrap_or_else(|| default_topic.clone());
                (topic, rule.id.clone())
            })
            .collect(),
    };
    let sequencer = now_ms() as u64;
    for (topic, configuration_id) in targets {
        let record = crate::events::record(&EventInfo {
            event_name,
            region: &svc.cfg.region,
            bucket,
            key,
            size: meta.map(|m| m.size),
            etag: meta.map(|m| m.etag.as_str()),
            principal_id: &ctx.auth.principal_id,
            source_ip: &ctx.source_ip,
            request_id: ctx.request_id,
            time_ms: now_ms(),
            configuration_id: &configuration_id,
            sequencer,
            thing_name: ctx.auth.thing_name.as_deref(),
            certificate_id: ctx.auth.certificate_id.as_deref(),
        });
        svc.events.publish(&topic, record);
    }
}

async fn notification_config(svc: &S3Service, bucket: &str) -> Result<Option<NotificationConfig>, S3Error> {
    match svc.backend.get_bucket_config(bucket, NOTIFICATION).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| S3Error::internal(e.to_string())),
    }
}

pub(crate) fn xml_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    set(&mut resp, "content-type", "application/xml");
    resp
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

pub(crate) fn set(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        resp.headers_mut().insert(n, v);
    }
}

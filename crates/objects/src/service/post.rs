//! Browser-style POST uploads (S3 "POST Object"): a multipart form whose
//! fields carry a base64 policy document and its SigV4 signature, followed by
//! the file. The policy's conditions bind the key, the content type and the
//! size range; the file is staged and checked before it becomes an object.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use super::ops::{self, emit, limit, meta_from_fields, Ctx};
use super::request::{now_ms, S3Request};
use super::{AccessRequest, S3Service};
use crate::S3Error;

/// Largest form field other than the file.
const MAX_FIELD: u64 = 64 * 1024;

pub(crate) async fn post_object(
    svc: &S3Service,
    req: S3Request,
    body: Body,
    source_ip: Option<std::net::IpAddr>,
    request_id: &str,
) -> Result<Response, S3Error> {
    let bucket = req.bucket()?.to_string();
    let content_type = req.header("content-type").unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        S3Error::new(412, "PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data")
    })?;
    let limits = multer::SizeLimit::new().per_field(MAX_FIELD).for_field("file", u64::MAX);
    let mut form = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let bad_form = |e: multer::Error| {
        S3Error::new(
            400,
            "MalformedPOSTRequest",
            format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
        )
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let file = loop {
        let Some(field) = form.next_field().await.map_err(bad_form)? else {
            return Err(S3Error::invalid_argument("POST requires exactly one file upload per request.")
                .with("ArgumentName", "file"));
        };
        let name = field.name().unwrap_or("").to_string();
        if name.eq_ignore_ascii_case("file") {
            break field;
        }
        let value = field.text().await.map_err(bad_form)?;
        fields.push((name, value));
    };
    let get = |n: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    let filename = file.file_name().unwrap_or("").to_string();
    let key = get("key")
        .ok_or_else(|| {
            S3Error::invalid_argument("Bucket POST must contain a field named 'key'.").with("ArgumentName", "key")
        })?
        .replace("${filename}", &filename);
    crate::names::check_key(&key)?;

    // Signature over the policy document.
    let policy_b64 = get("policy").ok_or_else(|| S3Error::access_denied("Bucket POST must contain a signed policy"))?;
    if get("AWSAccessKeyId").is_some() {
        return Err(super::request::sigv2_refused());
    }
    if get("x-amz-algorithm") != Some(sigv4::ALGORITHM) {
        return Err(S3Error::invalid_argument("x-amz-algorithm must be AWS4-HMAC-SHA256"));
    }
    let credential = get("x-amz-credential").unwrap_or("");
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(S3Error::invalid_argument("x-amz-credential must be AKID/YYYYMMDD/REGION/s3/aws4_request"));
    };
    if *service != "s3" {
        return Err(S3Error::invalid_argument("x-amz-credential must be scoped to the service 's3'"));
    }
    let secret = svc.access.secret_for(akid).ok_or_else(|| {
        S3Error::new(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    })?;
    let signing_key = sigv4::signing_key(&secret, date, region, service);
    let expected = sigv4::signature(&signing_key, policy_b64);
    if !sigv4::signatures_equal(&expected, get("x-amz-signature").unwrap_or("")) {
        return Err(S3Error::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    let policy = crate::post_policy::parse(policy_b64)?;
    let mut checked = fields.clone();
    checked.push(("bucket".into(), bucket.clone()));
    if let Some(kv) = checked.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case("key")) {
        kv.1 = key.clone();
    }
    let now = now_ms();
    policy.check(&checked, None, now)?;

    let auth = svc.access.authorize(&AccessRequest {
        access_key_id: akid,
        presigned: true,
        op: super::Op::PostObject,
        method: "POST",
        bucket: Some(&bucket),
        key: Some(&key),
        copy_source: None,
        content_length: None,
        content_type: get("content-type"),
        source_ip,
    })?;
    let ctx = Ctx { svc, auth, request_id, source_ip: source_ip.map(|i| i.to_string()).unwrap_or_default() };
    let result = store(&ctx, &bucket, &key, &fields, file, &policy, &checked, now).await;
    svc.access.finished(&ctx.auth, result.is_ok());
    result
}

#[allow(clippy::too_many_arguments)]
async fn store(
    ctx: &Ctx<'_>,
    bucket: &str,
    key: &str,
    fields: &[(String, String)],
    mut file: multer::Field<'_>,
    policy: &crate::post_policy::PostPolicy,
    checked: &[(String, String)],
    now: i64,
) -> Result<Response, S3Error> {
    let svc = ctx.svc;
    svc.backend.head_bucket(bucket).await?;
    let mut max = limit(ctx);
    if let Some((_, hi)) = policy.content_length_range() {
        max = max.min(hi);
    }
    let mut writer = svc.staging.writer(Some(max)).await?;
    while let Some(chunk) = file.chunk().await.map_err(|e| S3Error::new(400, "IncompleteBody", e.to_string()))? {
        writer.write(&chunk).await?;
    }
    policy.check(checked, Some(writer.size()), now)?;
    let staged = writer.finish().await?;
    let mut meta = meta_from_fields(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())), key);
    meta.size = staged.size();
    meta.etag = staged.md5_hex();
    let stored = svc.backend.put_object(bucket, meta, staged).await?;
    emit(ctx, "ObjectCreated:Post", bucket, key, Some(&stored)).await;

    let get = |n: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    let etag = format!("\"{}\"", stored.etag);
    let location = format!("/{bucket}/{}", sigv4::uri_encode(key, false));
    if let Some(redirect) = get("success_action_redirect").or(get("redirect")).filter(|r| !r.is_empty()) {
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let target = format!(
            "{redirect}{sep}bucket={}&key={}&etag={}",
            sigv4::uri_encode(bucket, true),
            sigv4::uri_encode(key, true),
            sigv4::uri_encode(&etag, true)
        );
        let mut resp = ops::empty(StatusCode::SEE_OTHER);
        ops::set(&mut resp, "location", &target);
        return Ok(resp);
    }
    let mut resp = match get("success_action_status") {
        Some("200") => ops::empty(StatusCode::OK),
        Some("201") => ops::xml_response(StatusCode::CREATED, crate::xml::post_response(&location, bucket, key, &etag)),
        _ => ops::empty(StatusCode::NO_CONTENT),
    };
    ops::set(&mut resp, "etag", &etag);
    ops::set(&mut resp, "location", &location);
    Ok(resp)
}

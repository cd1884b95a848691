//! Reading a request: which bucket and key it addresses, which S3 operation
//! it is, and who signed it.

use axum::http::request::Parts;
use percent_encoding::percent_decode_str;

use super::{S3Service, ServiceConfig};
use crate::S3Error;

/// The S3 operations the endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketVersioning,
    GetBucketNotification,
    PutBucketNotification,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PostObject,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Op {
    /// Whether the operation writes or removes objects (IAM's `s3:PutObject` /
    /// `s3:DeleteObject` family) rather than reading.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Op::PutObject
                | Op::PostObject
                | Op::CopyObject
                | Op::DeleteObject
                | Op::DeleteObjects
                | Op::CreateMultipartUpload
                | Op::UploadPart
                | Op::CompleteMultipartUpload
                | Op::AbortMultipartUpload
                | Op::CreateBucket
                | Op::DeleteBucket
                | Op::PutBucketNotification
        )
    }

    /// The IAM action name (`s3:GetObject`, …) this operation needs.
    pub fn action(self) -> &'static str {
        match self {
            Op::ListBuckets => "s3:ListAllMyBuckets",
            Op::CreateBucket => "s3:CreateBucket",
            Op::DeleteBucket => "s3:DeleteBucket",
            Op::HeadBucket | Op::ListObjects | Op::ListObjectsV2 => "s3:ListBucket",
            Op::GetBucketLocation => "s3:GetBucketLocation",
            Op::GetBucketVersioning => "s3:GetBucketVersioning",
            Op::GetBucketNotification => "s3:GetBucketNotification",
            Op::PutBucketNotification => "s3:PutBucketNotification",
            Op::ListMultipartUploads => "s3:ListBucketMultipartUploads",
            Op::DeleteObjects | Op::DeleteObject => "s3:DeleteObject",
            Op::PostObject
            | Op::PutObject
            | Op::CopyObject
            | Op::CreateMultipartUpload
            | Op::UploadPart
            | Op::CompleteMultipartUpload => "s3:PutObject",
            Op::GetObject | Op::HeadObject => "s3:GetObject",
            Op::AbortMultipartUpload => "s3:AbortMultipartUpload",
            Op::ListParts => "s3:ListMultipartUploadParts",
        }
    }
}

/// A request as the operations see it.
pub(crate) struct S3Request {
    pub parts: Parts,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers as (name, value) with lowercase names, for SigV4 and lookups.
    pub headers: Vec<(String, String)>,
    pub op: Op,
}

impl S3Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn bucket(&self) -> Result<&str, S3Error> {
        self.bucket.as_deref().ok_or_else(|| S3Error::invalid_request("this operation needs a bucket"))
    }

    pub fn key(&self) -> Result<&str, S3Error> {
        self.key.as_deref().ok_or_else(|| S3Error::invalid_request("this operation needs an object key"))
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

fn decode(s: &str) -> Result<String, S3Error> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::invalid_argument("the request path or query is not valid UTF-8 after percent-decoding"))
}

/// Decode a query string: `+` is a space, as S3 reads it.
pub(crate) fn decode_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
            Ok((decode(&n.replace('+', " "))?, decode(&v.replace('+', " "))?))
        })
        .collect()
}

/// Parse the request line and headers into bucket, key and operation.
pub(crate) fn parse(cfg: &ServiceConfig, parts: Parts) -> Result<S3Request, S3Error> {
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_ascii_lowercase(), v.to_string())))
        .collect();
    let query = decode_query(parts.uri.query().unwrap_or(""))?;
    let host = headers.iter().find(|(n, _)| n == "host").map(|(_, v)| v.as_str()).unwrap_or("");
    let host = host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |h| h.0);
    let vhost_bucket = cfg
        .virtual_host_suffix
        .as_deref()
        .and_then(|suffix| host.strip_suffix(suffix)?.strip_suffix('.'))
        .filter(|b| !b.is_empty())
        .map(str::to_string);
    let raw_path = parts.uri.path();
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let (bucket, key) = match vhost_bucket {
        Some(b) => (Some(b), (!path.is_empty()).then(|| decode(path)).transpose()?),
        None => match path.split_once('/') {
            None if path.is_empty() => (None, None),
            None => (Some(decode(path)?), None),
            Some((b, "")) => (Some(decode(b)?), None),
            Some((b, k)) => (Some(decode(b)?), Some(decode(k)?)),
        },
    };
    if let Some(b) = &bucket {
        if !crate::names::valid_bucket_name(b) {
            return Err(S3Error::invalid_bucket_name(b));
        }
    }
    if let Some(k) = &key {
        crate::names::check_key(k)?;
    }
    let has = |n: &str| query.iter().any(|(q, _)| q == n);
    let header = |n: &str| headers.iter().any(|(h, _)| h == n);
    let method = parts.method.as_str();
    const UNSUPPORTED: [&str; 14] = [
        "acl",
        "tagging",
        "policy",
        "cors",
        "lifecycle",
        "website",
        "replication",
        "encryption",
        "object-lock",
        "retention",
        "legal-hold",
        "torrent",
        "restore",
        "select",
    ];
    if let Some(sub) = UNSUPPORTED.iter().find(|s| has(s)) {
        return Err(S3Error::not_implemented(format!("the ?{sub} subresource is not supported by Thingport")));
    }
    let op = match (method, bucket.is_some(), key.is_some()) {
        ("GET", false, _) => Op::ListBuckets,
        ("PUT", true, false) if has("notification") => Op::PutBucketNotification,
        ("PUT", true, false) if has("versioning") => {
            return Err(S3Error::not_implemented("bucket versioning is not supported by Thingport"))
        }
        ("PUT", true, false) => Op::CreateBucket,
        ("DELETE", true, false) => Op::DeleteBucket,
        ("HEAD", true, false) => Op::HeadBucket,
        ("GET", true, false) if has("location") => Op::GetBucketLocation,
        ("GET", true, false) if has("versioning") => Op::GetBucketVersioning,
        ("GET", true, false) if has("notification") => Op::GetBucketNotification,
        ("GET", true, false) if has("uploads") => Op::ListMultipartUploads,
        ("GET", true, false) if query.iter().any(|(n, v)| n == "list-type" && v == "2") => Op::ListObjectsV2,
        ("GET", true, false) => Op::ListObjects,
        ("POST", true, false) if has("delete") => Op::DeleteObjects,
        ("POST", true, false) => Op::PostObject,
        ("PUT", true, true) if has("uploadId") && header("x-amz-copy-source") => {
            return Err(S3Error::not_implemented("UploadPartCopy is not supported by Thingport"))
        }
        ("PUT", true, true) if has("uploadId") => Op::UploadPart,
        ("PUT", true, true) if header("x-amz-copy-source") => Op::CopyObject,
        ("PUT", true, true) => Op::PutObject,
        ("GET", true, true) if has("uploadId") => Op::ListParts,
        ("GET", true, true) => Op::GetObject,
        ("HEAD", true, true) => Op::HeadObject,
        ("DELETE", true, true) if has("uploadId") => Op::AbortMultipartUpload,
        ("DELETE", true, true) => Op::DeleteObject,
        ("POST", true, true) if has("uploads") => Op::CreateMultipartUpload,
        ("POST", true, true) if has("uploadId") => Op::CompleteMultipartUpload,
        _ => return Err(S3Error::method_not_allowed(format!("{method} is not allowed on this resource"))),
    };
    Ok(S3Request { parts, bucket, key, query, headers, op })
}

/// Who signed a request, and what the body's chunk signatures chain from.
pub(crate) struct Signed {
    pub verified: sigv4::Verified,
    /// The derived signing key (for aws-chunked chunk signatures).
    pub signing_key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
}

/// Verify the request's SigV4 signature (header or pre-signed query).
/// `payload_hash` is the `x-amz-content-sha256` value (or the empty-body
/// hash when absent).
pub(crate) fn authenticate(svc: &S3Service, req: &S3Request, payload_hash: &str) -> Result<Signed, S3Error> {
    let v2 =
        req.param("AWSAccessKeyId").is_some() || req.header("authorization").is_some_and(|a| a.starts_with("AWS "));
    if v2 {
        return Err(sigv2_refused());
    }
    let sreq = sigv4::Request {
        method: req.parts.method.as_str(),
        raw_path: req.parts.uri.path(),
        raw_query: req.parts.uri.query().unwrap_or(""),
        headers: &req.headers,
        payload_hash,
    };
    let now = now_secs();
    let secret = std::cell::RefCell::new(None::<String>);
    let verified = sigv4::verify(
        &sreq,
        sigv4::UriEncoding::Single,
        |akid| {
            let s = svc.access.secret_for(akid);
            secret.borrow_mut().clone_from(&s);
            s
        },
        now,
        svc.cfg.max_skew_secs,
    )
    .map_err(|e| auth_error(e, req, now))?;
    if verified.service != "s3" {
        return Err(S3Error::new(
            400,
            "AuthorizationHeaderMalformed",
            format!("the credential should be scoped to the service 's3', not '{}'", verified.service),
        ));
    }
    let secret = secret.into_inner().ok_or_else(|| S3Error::internal("signing secret vanished"))?;
    let amz_date = sigv4::format_amz_date(verified.signed_at);
    let date = &amz_date[..8];
    let signing_key = sigv4::signing_key(&secret, date, &verified.region, &verified.service);
    let scope = sigv4::credential_scope(date, &verified.region, &verified.service);
    Ok(Signed { verified, signing_key, amz_date, scope })
}

/// Signature Version 2 (boto3's default for pre-signed URLs and POSTs).
pub(crate) fn sigv2_refused() -> S3Error {
    S3Error::new(
        400,
        "InvalidRequest",
        "Signature Version 2 is not supported; sign with Signature Version 4 (AWS4-HMAC-SHA256). \
         boto3: Config(signature_version=\"s3v4\"); AWS CLI: aws configure set default.s3.signature_version s3v4",
    )
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) use crate::staging::now_ms;

/// SigV4 failures as S3 reports them.
fn auth_error(e: sigv4::AuthError, req: &S3Request, now: i64) -> S3Error {
    use sigv4::AuthError as E;
    match e {
        E::MissingAuthentication => S3Error::access_denied(
            "Anonymous access is not allowed: sign the request with SigV4 (an access key of the management API) \
             or use a pre-signed URL",
        ),
        E::Malformed(m) if req.param("X-Amz-Signature").is_some() || req.param("X-Amz-Algorithm").is_some() => {
            S3Error::new(400, "AuthorizationQueryParametersError", m)
        }
        E::Malformed(m) => S3Error::new(400, "AuthorizationHeaderMalformed", m),
        E::UnknownAccessKey(_) => {
            S3Error::new(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        }
        E::SignatureDoesNotMatch { canonical_request, string_to_sign } => S3Error::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
        .with("StringToSign", string_to_sign)
        .with("CanonicalRequest", canonical_request),
        E::RequestTimeTooSkewed => S3Error::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .with("ServerTime", crate::xml::iso8601(now * 1000)),
        E::Expired => {
            let mut err = S3Error::access_denied("Request has expired");
            if let (Some(exp), Some(date)) = (req.param("X-Amz-Expires"), req.param("X-Amz-Date")) {
                err = err.with("X-Amz-Expires", exp);
                if let (Some(t), Ok(secs)) = (sigv4::parse_amz_date(date), exp.parse::<i64>()) {
                    err = err.with("Expires", crate::xml::iso8601((t + secs) * 1000));
                }
            }
            err.with("ServerTime", crate::xml::iso8601(now * 1000))
        }
        E::ExpiresTooLong => S3Error::new(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        E::UnsupportedAlgorithm(a) => S3Error::new(
            400,
            "InvalidRequest",
            format!("The authorization mechanism you have provided ({a}) is not supported. Please use AWS4-HMAC-SHA256."),
        ),
        other => S3Error::access_denied(other.to_string()),
    }
}

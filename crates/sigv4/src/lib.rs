//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): canonicalisation, signing
//! and verification, as used by boto3 / the AWS CLI / the AWS SDKs.
//!
//! This crate is pure: no I/O and no clock reads. Times are unix seconds
//! (`i64`, UTC) passed in by the caller; [`format_amz_date`] /
//! [`parse_amz_date`] convert to and from the SigV4 `YYYYMMDD'T'HHMMSS'Z'`
//! form.
//!
//! * [`verify`] checks a header-signed (`Authorization: AWS4-HMAC-SHA256 …`)
//!   or query-presigned (`X-Amz-Signature=…`) request and reports who
//!   signed it, for which region and service.
//! * [`sign_headers`] and [`presign_query`] produce signatures (for the CLI
//!   and tests).
//! * The building blocks ([`canonical_uri`], [`canonical_query`],
//!   [`canonical_request`], [`string_to_sign`], [`signing_key`], …) are
//!   public for debugging and for S3's streaming (`aws-chunked`) payload
//!   signatures ([`chunk_signature`]).
//!
//! # Canonicalisation rules
//!
//! * **URI** — see [`UriEncoding`] and [`canonical_uri`]: every service but
//!   S3 normalises the raw path and encodes it again (double encoding); S3
//!   encodes once and keeps the path as is.
//! * **Query** — see [`canonical_query`]: names and values are decoded and
//!   re-encoded, sorted by name then value. A raw `+` is a literal plus
//!   (`%2B`), following AWS's test suite; [`verify`] also accepts a
//!   signature made with `+` read as a space.
//! * **Headers** — lowercase names, values trimmed with inner runs of
//!   whitespace collapsed to one space, repeated headers joined with `,` in
//!   the order received, sorted by name.
//! * **Payload** — `Request::payload_hash` is used verbatim, so
//!   `UNSIGNED-PAYLOAD` and the `STREAMING-…` markers of
//!   `x-amz-content-sha256` work by passing them through.
//!
//! Secrets never appear in `Debug` output or in errors.
#![forbid(unsafe_code)]

mod encoding;
mod time;

use std::fmt;

use aws_lc_rs::{constant_time, digest, hmac};

pub use encoding::{canonical_query, canonical_uri, uri_encode};
pub use time::{format_amz_date, parse_amz_date};

use encoding::{canonical_query_from, parse_query, Plus, QueryParam};

/// The only algorithm supported.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-content-sha256` value for an unsigned body (S3).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` value for an `aws-chunked` body whose chunks are
/// signed (S3); see [`chunk_signature`].
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// Hex SHA-256 of the empty string.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Longest validity of a presigned request (7 days), as AWS enforces.
pub const MAX_PRESIGNED_EXPIRES_SECS: i64 = 604_800;
/// AWS's allowed clock skew for header-signed requests (15 minutes).
pub const DEFAULT_MAX_SKEW_SECS: i64 = 900;
/// The credential scope terminator.
const TERMINATOR: &str = "aws4_request";

/// A request as received, before any decoding.
///
/// * `method` — the request method as sent (`GET`, `POST`, …).
/// * `raw_path` — the path exactly as on the wire (percent-encoded, no
///   query).
/// * `raw_query` — the query string without `?`; may be empty.
/// * `headers` — all headers; names are case-insensitive and a name may
///   repeat (values are then joined with `,` in this order).
/// * `payload_hash` — the lowercase hex SHA-256 of the body, or the literal
///   `UNSIGNED-PAYLOAD` / `STREAMING-…` marker when the client sent that in
///   `x-amz-content-sha256`. Used verbatim.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
}

/// Which canonical-URI rule applies: S3 encodes the path once and does not
/// normalise; every other AWS service (iot, iotdata, kms, iotdevicegateway,
/// …) URI-encodes the already-encoded path again (double encoding) and
/// normalises it. See [`canonical_uri`].
///
/// For presigned requests it also picks the payload hash: S3 presigned URLs
/// sign `UNSIGNED-PAYLOAD` (see [`verify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriEncoding {
    /// S3.
    Single,
    /// Everything else.
    Double,
}

/// An access key pair. The secret never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into() }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// A successfully verified request: who signed it and for what scope. The
/// caller decides whether the region and service are acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    /// Region from the credential scope, e.g. `us-east-1`.
    pub region: String,
    /// Service from the credential scope, e.g. `iot`, `s3`.
    pub service: String,
    /// The signing time (`X-Amz-Date` / `Date`), unix seconds.
    pub signed_at: i64,
    /// Whether the signature came from the query string.
    pub presigned: bool,
    /// The request signature (lowercase hex). For an S3 `aws-chunked`
    /// upload (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) this is the seed for
    /// [`chunk_signature`].
    pub signature: String,
}

/// Why a request was not authenticated. Never contains a secret.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header and no `X-Amz-Signature` /
    /// `X-Amz-Algorithm` query parameter.
    #[error("request is not signed")]
    MissingAuthentication,
    /// The signature data is incomplete or unparseable (the message says
    /// what).
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// No secret for this access key id.
    #[error("unknown access key id {0:?}")]
    UnknownAccessKey(String),
    /// The signature is wrong. Carries what the server signed, as AWS does
    /// in its error response, to help debugging a client.
    #[error("the request signature does not match")]
    SignatureDoesNotMatch { canonical_request: String, string_to_sign: String },
    /// Header-signed request (or presigned one dated in the future) too far
    /// from the server's clock.
    #[error("request time too skewed")]
    RequestTimeTooSkewed,
    /// Presigned request past `X-Amz-Date` + `X-Amz-Expires`.
    #[error("request has expired")]
    Expired,
    /// `X-Amz-Expires` above 604800 seconds (7 days).
    #[error("X-Amz-Expires must be at most 604800 seconds")]
    ExpiresTooLong,
    /// Some other signing algorithm (SigV2, SigV4a, …).
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
}

fn malformed(msg: impl Into<String>) -> AuthError {
    AuthError::Malformed(msg.into())
}

// ---------------------------------------------------------------------------
// Primitives

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, data).as_ref())
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The derived signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date),
/// region), service), "aws4_request")`. `date` is `YYYYMMDD`.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = format!("AWS4{secret_access_key}");
    let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// `date/region/service/aws4_request`; `date` is `YYYYMMDD`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical_request)>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Hex HMAC-SHA256 of a string to sign under a signing key.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex_lower(&hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The string to sign for one chunk of an S3 `aws-chunked` upload
/// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`):
/// `AWS4-HMAC-SHA256-PAYLOAD\n<ts>\n<scope>\n<prev_sig>\n<sha256("")>\n<chunk_hash>`.
/// The first chunk's `prev_signature` is the request's seed signature
/// ([`Verified::signature`]); each later one is the previous chunk's.
pub fn chunk_string_to_sign(prev_signature: &str, amz_date: &str, scope: &str, chunk_hash: &str) -> String {
    format!("{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{prev_signature}\n{EMPTY_PAYLOAD_SHA256}\n{chunk_hash}")
}

/// The signature of one `aws-chunked` chunk (see [`chunk_string_to_sign`]).
/// Compare it with the chunk's `chunk-signature` using
/// [`signatures_equal`].
pub fn chunk_signature(
    signing_key: &[u8; 32],
    prev_signature: &str,
    amz_date: &str,
    scope: &str,
    chunk_hash: &str,
) -> String {
    signature(signing_key, &chunk_string_to_sign(prev_signature, amz_date, scope, chunk_hash))
}

/// Constant-time comparison of two signatures (or any two strings).
pub fn signatures_equal(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

// ---------------------------------------------------------------------------
// Canonical request

/// Trim a header value and collapse inner runs of whitespace to one space.
fn trim_all(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name:value\n` lines for the given lowercase signed header names, in that
/// order. `extra` headers (already lowercase) take part as if received.
fn canonical_headers(
    headers: &[(String, String)],
    extra: &[(&str, &str)],
    signed: &[&str],
) -> Result<String, AuthError> {
    let mut out = String::new();
    for &name in signed {
        let values: Vec<String> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(extra.iter().copied())
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim_all(v))
            .collect();
        if values.is_empty() {
            return Err(malformed(format!("signed header {name:?} is not present in the request")));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

fn assemble(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}")
}

/// The canonical request for `req` with the given signed header names
/// (lowercase, in the order they are to appear; normally sorted). The query
/// is canonicalised as in [`canonical_query`] (all parameters, `+` literal),
/// the payload hash is `req.payload_hash`. Fails only if a signed header is
/// missing from `req.headers`.
pub fn canonical_request(req: &Request, uri: UriEncoding, signed_headers: &[&str]) -> Result<String, AuthError> {
    let headers = canonical_headers(req.headers, &[], signed_headers)?;
    Ok(assemble(
        req.method,
        &canonical_uri(req.raw_path, uri),
        &canonical_query(req.raw_query),
        &headers,
        &signed_headers.join(";"),
        req.payload_hash,
    ))
}

// ---------------------------------------------------------------------------
// Signing

/// Sign a request with an `Authorization` header (for our CLI and tests).
///
/// Returns the headers to add: `authorization`, `x-amz-date` (from `now`)
/// and `x-amz-content-sha256` (= `req.payload_hash`). Every header in
/// `req.headers` is signed (it must contain `host`), as are the added
/// `x-amz-date` and `x-amz-content-sha256`; any `authorization`,
/// `x-amz-date` or `x-amz-content-sha256` already in `req.headers` is
/// ignored (replaced by the returned ones).
pub fn sign_headers(
    req: &Request,
    uri: UriEncoding,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: i64,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let replaced = ["authorization", "x-amz-date", "x-amz-content-sha256"];
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(n, _)| !replaced.iter().any(|r| n.eq_ignore_ascii_case(r)))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let extra = [("x-amz-date", amz_date.as_str()), ("x-amz-content-sha256", req.payload_hash)];
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).chain(extra.iter().map(|(n, _)| *n)).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let canonical_headers =
        canonical_headers(&headers, &extra, &names).expect("every name was taken from the headers themselves");
    let creq = assemble(
        req.method,
        &canonical_uri(req.raw_path, uri),
        &canonical_query(req.raw_query),
        &canonical_headers,
        &signed_headers,
        req.payload_hash,
    );
    let date = &amz_date[..8];
    let scope = credential_scope(date, region, service);
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let sig = signature(&key, &sts);
    vec![
        (
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={sig}",
                creds.access_key_id
            ),
        ),
        ("x-amz-date".to_owned(), amz_date),
        ("x-amz-content-sha256".to_owned(), req.payload_hash.to_owned()),
    ]
}

/// The `X-Amz-*` query parameters that presigning adds (and that are
/// dropped from an existing query before presigning again).
const PRESIGN_PARAMS: [&str; 6] =
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"];

/// The payload hash of a presigned request: S3 signs `UNSIGNED-PAYLOAD`
/// unless an `X-Amz-Content-Sha256` query parameter says otherwise; other
/// services sign `req.payload_hash`.
fn presigned_payload_hash(req: &Request, uri: UriEncoding, params: &[QueryParam]) -> String {
    match uri {
        UriEncoding::Double => req.payload_hash.to_owned(),
        UriEncoding::Single => params
            .iter()
            .find(|p| p.name == b"X-Amz-Content-Sha256")
            .map(|p| String::from_utf8_lossy(&p.value).into_owned())
            .unwrap_or_else(|| UNSIGNED_PAYLOAD.to_owned()),
    }
}

/// Pre-sign a request: returns the full query string to use (without
/// `?`): the parameters of `req.raw_query` kept as they are (minus any old
/// `X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature`),
/// followed by `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders` and `X-Amz-Signature`.
///
/// Every header in `req.headers` is signed; it must contain `host`. The
/// payload hash is `UNSIGNED-PAYLOAD` for [`UriEncoding::Single`] (S3,
/// unless the query carries `X-Amz-Content-Sha256`) and `req.payload_hash`
/// otherwise. `expires_secs` is used as given; [`verify`] rejects more
/// than [`MAX_PRESIGNED_EXPIRES_SECS`].
pub fn presign_query(
    req: &Request,
    uri: UriEncoding,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: i64,
    expires_secs: u32,
) -> String {
    let amz_date = format_amz_date(now);
    let date = &amz_date[..8];
    let scope = credential_scope(date, region, service);

    let mut names: Vec<String> = req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort_unstable();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let signed_headers = names.join(";");

    let mut query: Vec<&str> = req
        .raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .filter(|piece| {
            let name = piece.split_once('=').map_or(*piece, |(n, _)| n);
            let name = encoding::percent_decode(name, Plus::Literal);
            !PRESIGN_PARAMS.iter().any(|p| p.as_bytes() == name)
        })
        .collect();
    let credential = uri_encode(&format!("{}/{scope}", creds.access_key_id), true);
    let auth = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={credential}&X-Amz-Date={amz_date}\
         &X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        uri_encode(&signed_headers, true)
    );
    query.push(&auth);
    let query = query.join("&");

    let params = parse_query(&query, Plus::Literal);
    let payload_hash = presigned_payload_hash(req, uri, &params);
    let canonical_headers =
        canonical_headers(req.headers, &[], &names).expect("every name was taken from the headers themselves");
    let creq = assemble(
        req.method,
        &canonical_uri(req.raw_path, uri),
        &canonical_query_from(&params, None),
        &canonical_headers,
        &signed_headers,
        &payload_hash,
    );
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let key = signing_key(&creds.secret_access_key, date, region, service);
    format!("{query}&X-Amz-Signature={}", signature(&key, &sts))
}

// ---------------------------------------------------------------------------
// Verification

/// What the client claims, parsed from the `Authorization` header or the
/// presign query parameters.
struct Claim {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    amz_date: String,
    signed_at: i64,
    signed_headers: String,
    signature: String,
}

/// `AKID/20150830/us-east-1/service/aws4_request` → (key id, date, region,
/// service).
fn parse_credential(credential: &str) -> Result<(String, String, String, String), AuthError> {
    let mut parts = credential.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(key)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("Credential must be <access key id>/<date>/<region>/<service>/aws4_request"));
    };
    if terminator != TERMINATOR {
        return Err(malformed("credential scope must end with aws4_request"));
    }
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed("empty access key id, region or service in Credential"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("credential scope date must be YYYYMMDD"));
    }
    Ok((key.into(), date.into(), region.into(), service.into()))
}

fn parse_signed_headers(list: &str) -> Result<Vec<&str>, AuthError> {
    let names: Vec<&str> = list.split(';').collect();
    for name in &names {
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(malformed(format!(
                "SignedHeaders must be lowercase header names separated by ';', got {list:?}"
            )));
        }
    }
    if !names.contains(&"host") {
        return Err(malformed("'host' must be a signed header"));
    }
    Ok(names)
}

fn check_signature_syntax(sig: &str) -> Result<(), AuthError> {
    if sig.len() == 64 && sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(malformed("Signature must be 64 lowercase hex digits"))
    }
}

/// Build a claim from its parts, checking their consistency.
fn make_claim(
    credential: &str,
    amz_date: String,
    signed_at: i64,
    signed_headers: &str,
    signature: &str,
) -> Result<Claim, AuthError> {
    let (access_key_id, date, region, service) = parse_credential(credential)?;
    if !amz_date.starts_with(&date) {
        return Err(malformed(format!("credential scope date {date} does not match request date {amz_date}")));
    }
    parse_signed_headers(signed_headers)?;
    check_signature_syntax(signature)?;
    Ok(Claim {
        access_key_id,
        date,
        region,
        service,
        amz_date,
        signed_at,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
    })
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

fn single_header<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, AuthError> {
    match header_values(headers, name).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.trim())),
        _ => Err(malformed(format!("more than one {name} header"))),
    }
}

/// Parse `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` and
/// the request date.
fn header_claim(authorization: &str, headers: &[(String, String)]) -> Result<Claim, AuthError> {
    let authorization = authorization.trim();
    let (scheme, rest) = authorization.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((authorization, ""));
    if scheme != ALGORITHM {
        if scheme.is_empty() {
            return Err(malformed("empty Authorization header"));
        }
        return Err(AuthError::UnsupportedAlgorithm(scheme.chars().take(64).collect()));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let item = item.trim();
        let Some((key, value)) = item.split_once('=') else {
            return Err(malformed(
                "Authorization must be AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
            ));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(malformed(
                    "unknown component in Authorization header (expected Credential, SignedHeaders, Signature)",
                ))
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(malformed("repeated component in Authorization header"));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
        return Err(malformed("Authorization header needs Credential, SignedHeaders and Signature"));
    };

    let (amz_date, signed_at) = if let Some(v) = single_header(headers, "x-amz-date")? {
        let t = parse_amz_date(v).ok_or_else(|| malformed("X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z'"))?;
        (v.to_owned(), t)
    } else if let Some(v) = single_header(headers, "date")? {
        let t = parse_amz_date(v)
            .or_else(|| time::parse_http_date(v))
            .ok_or_else(|| malformed("unparseable Date header"))?;
        (format_amz_date(t), t)
    } else {
        return Err(malformed("the request needs an X-Amz-Date or Date header"));
    };
    make_claim(credential, amz_date, signed_at, signed_headers, signature)
}

/// The value of a presign query parameter, which must appear at most once.
fn query_param<'q>(params: &'q [QueryParam], name: &str) -> Result<Option<&'q str>, AuthError> {
    let mut found = params.iter().filter(|p| p.name == name.as_bytes());
    let first = found.next();
    if found.next().is_some() {
        return Err(malformed(format!("repeated {name} query parameter")));
    }
    first.map(|p| std::str::from_utf8(&p.value).map_err(|_| malformed(format!("{name} is not UTF-8")))).transpose()
}

fn required_param<'q>(params: &'q [QueryParam], name: &str) -> Result<&'q str, AuthError> {
    query_param(params, name)?.ok_or_else(|| malformed(format!("missing {name} query parameter")))
}

/// Parse the `X-Amz-*` presign parameters; returns the claim and
/// `X-Amz-Expires` (if given).
fn query_claim(params: &[QueryParam]) -> Result<(Claim, Option<i64>), AuthError> {
    let algorithm = required_param(params, "X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm(algorithm.chars().take(64).collect()));
    }
    let credential = required_param(params, "X-Amz-Credential")?;
    let amz_date = required_param(params, "X-Amz-Date")?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| malformed("X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z'"))?;
    let signed_headers = required_param(params, "X-Amz-SignedHeaders")?;
    let signature = required_param(params, "X-Amz-Signature")?;
    let expires = match query_param(params, "X-Amz-Expires")? {
        None => None,
        Some(v) => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("X-Amz-Expires must be a number of seconds"));
            }
            // Anything longer than 7 digits is over the limit anyway.
            let secs =
                if v.trim_start_matches('0').len() > 7 { i64::MAX } else { v.parse::<i64>().unwrap_or(i64::MAX) };
            if secs > MAX_PRESIGNED_EXPIRES_SECS {
                return Err(AuthError::ExpiresTooLong);
            }
            Some(secs)
        }
    };
    let claim = make_claim(credential, amz_date.to_owned(), signed_at, signed_headers, signature)?;
    Ok((claim, expires))
}

/// Verify a header-signed or query-presigned SigV4 request.
///
/// * Header-signed: `Authorization: AWS4-HMAC-SHA256 Credential=…,
///   SignedHeaders=…, Signature=…` plus `x-amz-date` (or `date`, in SigV4
///   or IMF-fixdate form). The signing time must be within
///   `max_skew_secs` of `now` (AWS: 900, [`DEFAULT_MAX_SKEW_SECS`]), else
///   [`AuthError::RequestTimeTooSkewed`].
/// * Presigned: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
///   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` query
///   parameters. Valid from `X-Amz-Date` (less `max_skew_secs`, else
///   `RequestTimeTooSkewed`) until `X-Amz-Date + X-Amz-Expires` (then
///   [`AuthError::Expired`]); `X-Amz-Expires` over 604800 is
///   [`AuthError::ExpiresTooLong`]. If `X-Amz-Expires` is absent (some IoT
///   websocket signers omit it) the header-signed skew window applies. The
///   canonical query leaves out `X-Amz-Signature`. For
///   [`UriEncoding::Single`] (S3) the payload hash is `UNSIGNED-PAYLOAD`
///   (or the `X-Amz-Content-Sha256` query parameter) and
///   `req.payload_hash` is ignored; otherwise it is `req.payload_hash`.
///
/// In both, `host` must be among the signed headers, the scope date must be
/// the date of `X-Amz-Date`, and the signature is compared in constant
/// time. `secret_for` maps an access key id to its secret and is only
/// called once the request is otherwise well-formed and in time.
///
/// A raw `+` in the query is first read as a literal plus (AWS's rule); if
/// that signature does not match, the query is re-read with `+` as a space
/// (what `URLSearchParams`-style signers produce) before giving up. Both
/// readings are of the same bytes, signed by the key holder, so this
/// accepts no forgery; callers whose query decoder treats `+` as a space
/// (form-urlencoded) should be aware that the signer may have meant `+`.
///
/// Returns who signed and for which region/service; accepting those is the
/// caller's decision. An error never contains the secret.
pub fn verify(
    req: &Request,
    uri: UriEncoding,
    secret_for: impl Fn(&str) -> Option<String>,
    now: i64,
    max_skew_secs: i64,
) -> Result<Verified, AuthError> {
    let params = parse_query(req.raw_query, Plus::Literal);
    let presigned = params.iter().any(|p| p.name == b"X-Amz-Signature" || p.name == b"X-Amz-Algorithm");
    let authorization = single_header(req.headers, "authorization")?;
    let skew = i128::from(max_skew_secs.max(0));
    let now = i128::from(now);

    let claim = match (authorization, presigned) {
        (None, false) => return Err(AuthError::MissingAuthentication),
        (Some(_), true) => {
            return Err(malformed("only one of the Authorization header and X-Amz-Signature may be used"))
        }
        (Some(authorization), false) => {
            let claim = header_claim(authorization, req.headers)?;
            if (now - i128::from(claim.signed_at)).abs() > skew {
                return Err(AuthError::RequestTimeTooSkewed);
            }
            claim
        }
        (None, true) => {
            let (claim, expires) = query_claim(&params)?;
            let signed_at = i128::from(claim.signed_at);
            match expires {
                Some(expires) => {
                    if signed_at - now > skew {
                        return Err(AuthError::RequestTimeTooSkewed);
                    }
                    if now > signed_at + i128::from(expires) {
                        return Err(AuthError::Expired);
                    }
                }
                None => {
                    if (now - signed_at).abs() > skew {
                        return Err(AuthError::RequestTimeTooSkewed);
                    }
                }
            }
            claim
        }
    };

    let signed_names: Vec<&str> = claim.signed_headers.split(';').collect();
    let canonical_headers = canonical_headers(req.headers, &[], &signed_names)?;
    let secret =
        secret_for(&claim.access_key_id).ok_or_else(|| AuthError::UnknownAccessKey(claim.access_key_id.clone()))?;
    let canonical_uri = canonical_uri(req.raw_path, uri);
    let payload_hash = if presigned { presigned_payload_hash(req, uri, &params) } else { req.payload_hash.to_owned() };
    let skip: Option<&[u8]> = presigned.then_some(b"X-Amz-Signature".as_slice());
    let scope = credential_scope(&claim.date, &claim.region, &claim.service);
    let key = signing_key(&secret, &claim.date, &claim.region, &claim.service);

    let attempt = |query: &str| {
        let creq =
            assemble(req.method, &canonical_uri, query, &canonical_headers, &claim.signed_headers, &payload_hash);
        let sts = string_to_sign(&claim.amz_date, &scope, &creq);
        let ok = signatures_equal(&signature(&key, &sts), &claim.signature);
        (ok, creq, sts)
    };

    let (mut ok, canonical_request, string_to_sign) = attempt(&canonical_query_from(&params, skip));
    if !ok && req.raw_query.contains('+') {
        let spaced = parse_query(req.raw_query, Plus::Space);
        ok = attempt(&canonical_query_from(&spaced, skip)).0;
    }
    if !ok {
        return Err(AuthError::SignatureDoesNotMatch { canonical_request, string_to_sign });
    }
    Ok(Verified {
        access_key_id: claim.access_key_id,
        region: claim.region,
        service: claim.service,
        signed_at: claim.signed_at,
        presigned,
        signature: claim.signature,
    })
}

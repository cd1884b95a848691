//! Request bodies: plain, `UNSIGNED-PAYLOAD`, or `aws-chunked` with chunk
//! signatures and trailing checksums. Object bodies are streamed into a
//! staged file while every declared digest (`x-amz-content-sha256`,
//! `Content-MD5`, `x-amz-checksum-*`) is computed, and are only handed on
//! when all of them match and the size is within the limit.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

use super::request::{S3Request, Signed};
use super::S3Service;
use crate::checksum::{ChecksumAlgorithm, Hasher};
use crate::chunked::{ChunkSigning, ChunkedDecoder};
use crate::staging::Staged;
use crate::storage::StoredChecksum;
use crate::S3Error;

/// How the payload was signed (from `x-amz-content-sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadMode {
    /// The hex SHA-256 of the body is signed: verify it at the end.
    Hashed(String),
    /// `UNSIGNED-PAYLOAD` (and every pre-signed URL).
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
    SignedChunks { trailer: bool },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    UnsignedChunks,
}

impl PayloadMode {
    /// Read `x-amz-content-sha256`. Returns the mode and the value SigV4
    /// signs.
    pub fn of(req: &S3Request, presigned: bool) -> Result<(PayloadMode, String), S3Error> {
        if presigned {
            return Ok((PayloadMode::Unsigned, sigv4::UNSIGNED_PAYLOAD.into()));
        }
        let Some(v) = req.header("x-amz-content-sha256") else {
            // Header-signed requests must declare it; requests without any
            // authentication fail later with AccessDenied.
            return Ok((PayloadMode::Hashed(sigv4::EMPTY_PAYLOAD_SHA256.into()), sigv4::EMPTY_PAYLOAD_SHA256.into()));
        };
        let mode = match v {
            "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::SignedChunks { trailer: false },
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::SignedChunks { trailer: true },
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::UnsignedChunks,
            h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                PayloadMode::Hashed(h.to_ascii_lowercase())
            }
            other => {
                return Err(S3Error::new(
                    400,
                    "InvalidArgument",
                    format!("x-amz-content-sha256 must be a SHA-256 hex digest or a known payload mode, not {other:?}"),
                ))
            }
        };
        Ok((mode, v.to_string()))
    }

    fn decoder(&self, signed: Option<&Signed>) -> Result<Option<ChunkedDecoder>, S3Error> {
        Ok(match self {
            PayloadMode::SignedChunks { trailer } => {
                let s = signed.ok_or_else(|| S3Error::invalid_request("a streaming signed payload must be signed"))?;
                Some(ChunkedDecoder::new(
                    ChunkSigning::Signed {
                        seed_signature: s.verified.signature.clone(),
                        signing_key: s.signing_key,
                        amz_date: s.amz_date.clone(),
                        scope: s.scope.clone(),
                    },
                    *trailer,
                ))
            }
            PayloadMode::UnsignedChunks => Some(ChunkedDecoder::new(ChunkSigning::Unsigned, true)),
            _ => None,
        })
    }
}

fn xamz_sha_mismatch() -> S3Error {
    S3Error::new(
        400,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

/// The additional checksum a request declares: the algorithm, and the value
/// from its header (None when it comes in the trailer).
fn declared_checksum(req: &S3Request) -> Result<Option<(ChecksumAlgorithm, Option<String>)>, S3Error> {
    for (name, value) in &req.headers {
        if let Some(alg) = ChecksumAlgorithm::from_header_name(name) {
            return Ok(Some((alg, Some(value.trim().to_string()))));
        }
    }
    if let Some(t) = req.header("x-amz-trailer") {
        let alg = ChecksumAlgorithm::from_header_name(t.trim())
            .ok_or_else(|| S3Error::invalid_argument(format!("unsupported x-amz-trailer {t:?}")))?;
        return Ok(Some((alg, None)));
    }
    if let Some(a) = req.header("x-amz-sdk-checksum-algorithm").or(req.header("x-amz-checksum-algorithm")) {
        // The algorithm is named but no value sent: compute it to store it.
        if let Some(alg) = ChecksumAlgorithm::parse(a) {
            return Ok(Some((alg, None)));
        }
    }
    Ok(None)
}

/// Stream an object body into a staged file, verifying everything the
/// request declares. `max` is the size limit for this request.
pub(crate) async fn stage(
    svc: &S3Service,
    req: &S3Request,
    body: Body,
    mode: &PayloadMode,
    signed: Option<&Signed>,
    max: u64,
) -> Result<(Staged, Option<StoredChecksum>), S3Error> {
    let declared_len = match mode {
        PayloadMode::SignedChunks { .. } | PayloadMode::UnsignedChunks => {
            match req.header("x-amz-decoded-content-length") {
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    S3Error::invalid_argument("x-amz-decoded-content-length must be a number of bytes")
                })?),
                None => None,
            }
        }
        _ => req.content_length(),
    };
    if let Some(len) = declared_len {
        if len > max {
            return Err(S3Error::entity_too_large(max));
        }
    }
    let content_md5 = req.header("content-md5").map(crate::checksum::decode_content_md5).transpose()?;
    let checksum = declared_checksum(req)?;
    let mut hasher = checksum.as_ref().map(|(alg, _)| Hasher::new(*alg));
    let mut sha = match mode {
        PayloadMode::Hashed(_) => Some(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256)),
        _ => None,
    };
    let mut decoder = mode.decoder(signed)?;
    let mut writer = svc.staging.writer(Some(max)).await?;
    let mut stream = body.into_data_stream();
    let mut decoded = Vec::with_capacity(64 * 1024);
    while let Some(frame) = stream.next().await {
        let frame: Bytes =
            frame.map_err(|e| S3Error::new(400, "IncompleteBody", format!("reading the body failed: {e}")))?;
        let data: &[u8] = match decoder.as_mut() {
            Some(d) => {
                decoded.clear();
                d.feed(&frame, &mut decoded)?;
                &decoded
            }
            None => &frame,
        };
        if data.is_empty() {
            continue;
        }
        if let Some(h) = hasher.as_mut() {
            h.update(data);
        }
        if let Some(s) = sha.as_mut() {
            s.update(data);
        }
        writer.write(data).await?;
    }
    let trailer = match decoder {
        Some(d) => d.finish()?,
        None => Vec::new(),
    };
    if let Some(len) = declared_len {
        if writer.size() != len {
            return Err(S3Error::incomplete_body());
        }
    }
    if let (Some(s), PayloadMode::Hashed(expected)) = (sha, mode) {
        if hex::encode(s.finish()) != *expected {
            return Err(xamz_sha_mismatch());
        }
    }
    let staged = writer.finish().await?;
    if let Some(md5) = content_md5 {
        if md5 != staged.md5() {
            return Err(S3Error::bad_digest("The Content-MD5 you specified did not match what we received."));
        }
    }
    let stored = match (checksum, hasher) {
        (Some((alg, header_value)), Some(h)) => {
            let computed = h.finish_base64();
            let expected = header_value
                .or_else(|| trailer.iter().find(|(n, _)| n.as_str() == alg.header_name()).map(|(_, v)| v.clone()));
            if let Some(expected) = expected {
                if expected != computed {
                    return Err(S3Error::bad_digest(format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.header_name()
                    )));
                }
            }
            Some(StoredChecksum { algorithm: alg.name().to_string(), value: computed })
        }
        _ => None,
    };
    Ok((staged, stored))
}

/// Read a small body (an XML request) whole, verifying its declared hash.
pub(crate) async fn read_small(body: Body, mode: &PayloadMode, limit: usize) -> Result<Bytes, S3Error> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        S3Error::new(400, "MaxMessageLengthExceeded", format!("request body larger than {limit} bytes"))
    })?;
    match mode {
        PayloadMode::Hashed(expected) if sigv4::sha256_hex(&bytes) != *expected => Err(xamz_sha_mismatch()),
        PayloadMode::SignedChunks { .. } | PayloadMode::UnsignedChunks => {
            Err(S3Error::invalid_request("aws-chunked bodies are only accepted for object data"))
        }
        _ => Ok(bytes),
    }
}

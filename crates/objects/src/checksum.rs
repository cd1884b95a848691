//! ETags and S3's additional checksums (`x-amz-checksum-*`).
//!
//! S3 clients verify what they upload in two ways: the ETag (hex MD5 of the
//! body, or for a multipart upload the MD5 of the parts' MD5s with a `-N`
//! suffix) and, since 2022, one "additional checksum" per request — CRC32,
//! CRC32C, CRC64NVME, SHA1 or SHA256 — sent as the base64 of the big-endian
//! digest in a header or an `aws-chunked` trailer. boto3 ≥ 1.36 and the AWS
//! CLI send a CRC32 trailer on every PutObject/UploadPart by default, so the
//! endpoint must compute these incrementally while the body streams in and
//! compare them before the object is stored.
//!
//! Everything here is pure: [`Hasher`] is fed the body piece by piece, and the
//! free functions compute ETags and decode `Content-MD5`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::Digest as _;

use crate::S3Error;

/// One of S3's additional checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in S3's documentation order.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// `CRC32`, `crc32c`, `CRC64NVME`, `SHA1`, `SHA256` (case-insensitive),
    /// as in `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s.trim()))
    }

    /// `x-amz-checksum-crc32` etc. (case-insensitive) → the algorithm.
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// The upper-case name S3 uses in XML and in `x-amz-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The lowercase header (and trailer) carrying the value.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The XML element carrying the value (`ChecksumCRC32`, …) in
    /// CompleteMultipartUpload, ListParts and GetObjectAttributes bodies.
    pub fn xml_element(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
            ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
            ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
        }
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Whether `value` is a well-formed checksum for this algorithm: the
    /// standard base64 of exactly [`digest_len`](Self::digest_len) bytes.
    /// S3 answers `400 InvalidRequest` for a malformed value before looking
    /// at the body.
    pub fn is_valid_value(self, value: &str) -> bool {
        BASE64.decode(value.trim()).is_ok_and(|raw| raw.len() == self.digest_len())
    }

    /// The base64 checksum of a whole buffer.
    pub fn checksum_base64(self, data: &[u8]) -> String {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish_base64()
    }
}

/// The CRC-64/NVME parameters (used by S3's `CRC64NVME`).
static CRC64_NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc::Digest<'static, u64>),
    Sha(aws_lc_rs::digest::Context),
}

/// An incremental additional-checksum computation.
pub struct Hasher {
    alg: ChecksumAlgorithm,
    state: State,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl Hasher {
    pub fn new(alg: ChecksumAlgorithm) -> Self {
        let state = match alg {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(CRC64_NVME.digest()),
            ChecksumAlgorithm::Sha1 => {
                State::Sha(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY))
            }
            ChecksumAlgorithm::Sha256 => State::Sha(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256)),
        };
        Hasher { alg, state }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(d) => d.update(data),
            State::Sha(ctx) => ctx.update(data),
        }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.alg
    }

    /// The raw big-endian digest.
    pub fn finish_bytes(self) -> Vec<u8> {
        match self.state {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            State::Sha(ctx) => ctx.finish().as_ref().to_vec(),
        }
    }

    /// The value as S3 sends it: standard base64 (with padding) of the
    /// big-endian digest.
    pub fn finish_base64(self) -> String {
        BASE64.encode(self.finish_bytes())
    }
}

/// An incremental MD5, for ETags.
#[derive(Default, Clone)]
pub struct Md5Hasher(md5::Md5);

impl std::fmt::Debug for Md5Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Hasher")
    }
}

impl Md5Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

/// MD5 of a buffer.
pub fn md5(data: &[u8]) -> [u8; 16] {
    md5::Md5::digest(data).into()
}

/// Decode a `Content-MD5` header: the standard base64 of 16 bytes.
/// Anything else is `400 InvalidDigest`, as S3 answers.
pub fn decode_content_md5(header: &str) -> Result<[u8; 16], S3Error> {
    let raw = BASE64.decode(header.trim()).map_err(|_| S3Error::invalid_digest())?;
    raw.try_into().map_err(|_| S3Error::invalid_digest())
}

/// S3's ETag for a multipart upload (without quotes):
/// `hex(md5(md5(part 1) ‖ md5(part 2) ‖ …))-N`.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = md5::Md5::new();
    for d in part_md5s {
        h.update(d);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

/// S3's composite ("checksum of checksums") value for a multipart upload:
/// the checksum of the concatenated raw part checksums, base64, then `-N`.
/// `part_values` are the parts' base64 values in part order. Returns None if
/// one of them is not a valid value for `alg`.
pub fn composite_checksum(alg: ChecksumAlgorithm, part_values: &[&str]) -> Option<String> {
    let mut h = Hasher::new(alg);
    for v in part_values {
        let raw = BASE64.decode(v.trim()).ok()?;
        if raw.len() != alg.digest_len() {
            return None;
        }
        h.update(&raw);
    }
    Some(format!("{}-{}", h.finish_base64(), part_values.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64_u32(v: u32) -> String {
        BASE64.encode(v.to_be_bytes())
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::parse(alg.name()), Some(alg));
            assert_eq!(ChecksumAlgorithm::parse(&alg.name().to_lowercase()), Some(alg));
            assert_eq!(ChecksumAlgorithm::from_header_name(alg.header_name()), Some(alg));
            assert_eq!(ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()), Some(alg));
            assert!(alg.xml_element().ends_with(alg.name()));
        }
        assert_eq!(ChecksumAlgorithm::parse("crc64nvme"), Some(ChecksumAlgorithm::Crc64Nvme));
        assert_eq!(ChecksumAlgorithm::parse("MD5"), None);
        assert_eq!(ChecksumAlgorithm::parse(""), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-algorithm"), None);
    }

    // Expected values computed independently with python3:
    // zlib.crc32(b"hello world") = 0x0d4a1185; the CRC-32C and CRC-64/NVME
    // "check" values (of "123456789") are from the CRC catalogue.
    #[test]
    fn crc_check_values() {
        assert_eq!(ChecksumAlgorithm::Crc32.checksum_base64(b"123456789"), b64_u32(0xCBF4_3926));
        assert_eq!(ChecksumAlgorithm::Crc32.checksum_base64(b"hello world"), b64_u32(0x0D4A_1185));
        assert_eq!(ChecksumAlgorithm::Crc32c.checksum_base64(b"123456789"), b64_u32(0xE306_9283));
        assert_eq!(
            ChecksumAlgorithm::Crc64Nvme.checksum_base64(b"123456789"),
            BASE64.encode(0xAE8B_1486_0A79_9888u64.to_be_bytes())
        );
        // Empty input: all CRCs are 0.
        assert_eq!(ChecksumAlgorithm::Crc32.checksum_base64(b""), "AAAAAA==");
        assert_eq!(ChecksumAlgorithm::Crc32c.checksum_base64(b""), "AAAAAA==");
        assert_eq!(ChecksumAlgorithm::Crc64Nvme.checksum_base64(b""), "AAAAAAAAAAA=");
    }

    #[test]
    fn aws_documented_crc32c_of_the_streaming_example() {
        // The sigv4-streaming-trailers example: 66560 bytes of 'a' carry the
        // trailer x-amz-checksum-crc32c:sOO8/Q==.
        assert_eq!(ChecksumAlgorithm::Crc32c.checksum_base64(&[b'a'; 66560]), "sOO8/Q==");
    }

    #[test]
    fn sha_values() {
        // hashlib.sha1(b"hello world").digest() / sha256, base64.
        assert_eq!(ChecksumAlgorithm::Sha1.checksum_base64(b"hello world"), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(
            ChecksumAlgorithm::Sha256.checksum_base64(b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert_eq!(
            ChecksumAlgorithm::Sha256.checksum_base64(b""),
            BASE64.encode(hex::decode(sigv4::EMPTY_PAYLOAD_SHA256).unwrap())
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for alg in ChecksumAlgorithm::ALL {
            let one = alg.checksum_base64(&data);
            for split in [0, 1, 63, 64, 65, 4096, 9_999, 10_000] {
                let mut h = Hasher::new(alg);
                h.update(&data[..split]);
                h.update(&[]);
                h.update(&data[split..]);
                assert_eq!(h.algorithm(), alg);
                assert_eq!(h.finish_base64(), one, "{alg:?} split at {split}");
            }
            assert!(alg.is_valid_value(&one));
            assert_eq!(BASE64.decode(&one).unwrap().len(), alg.digest_len());
        }
    }

    #[test]
    fn valid_values() {
        assert!(ChecksumAlgorithm::Crc32.is_valid_value("DUoRhQ=="));
        assert!(!ChecksumAlgorithm::Crc32.is_valid_value("DUoRhQ"));
        assert!(!ChecksumAlgorithm::Crc32.is_valid_value("AAAAAAAAAAA="));
        assert!(!ChecksumAlgorithm::Crc64Nvme.is_valid_value("DUoRhQ=="));
        assert!(!ChecksumAlgorithm::Sha256.is_valid_value("not base64!"));
    }

    #[test]
    fn md5_and_content_md5() {
        // hashlib.md5(b"hello world").hexdigest()
        assert_eq!(hex::encode(md5(b"hello world")), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(hex::encode(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        let mut h = Md5Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), md5(b"hello world"));

        // base64.b64encode(hashlib.md5(b"hello world").digest())
        assert_eq!(decode_content_md5("XrY7u+Ae7tCTyyK7j1rNww==").unwrap(), md5(b"hello world"));
        assert_eq!(decode_content_md5(" XrY7u+Ae7tCTyyK7j1rNww== ").unwrap(), md5(b"hello world"));
        for bad in ["", "XrY7u+Ae7tCTyyK7j1rNww", "5eb63bbbe01eeed093cb22bb8f5acdc3", "AAAA", "!!!!"] {
            let e = decode_content_md5(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "InvalidDigest"), "{bad:?}");
        }
    }

    #[test]
    fn multipart_etag_matches_s3() {
        // python3: parts = [md5(b"a"*5MiB).digest(), md5(b"b").digest()];
        // md5(b"".join(parts)).hexdigest() + "-2"
        let p1 = md5(&vec![b'a'; 5 * 1024 * 1024]);
        let p2 = md5(b"b");
        let mut cat = Vec::new();
        cat.extend_from_slice(&p1);
        cat.extend_from_slice(&p2);
        let expected = format!("{}-2", hex::encode(md5(&cat)));
        assert_eq!(multipart_etag(&[p1, p2]), expected);
        // A fixed vector: the single-part upload of "hello world".
        // md5(md5(b"hello world").digest()).hexdigest() + "-1"
        assert_eq!(multipart_etag(&[md5(b"hello world")]), "241d8a27c836427bd7f04461b60e7359-1");
        assert_eq!(multipart_etag(&[]), "d41d8cd98f00b204e9800998ecf8427e-0");
    }

    #[test]
    fn composite() {
        let a = ChecksumAlgorithm::Crc32.checksum_base64(b"part one");
        let b = ChecksumAlgorithm::Crc32.checksum_base64(b"part two");
        let mut cat = BASE64.decode(&a).unwrap();
        cat.extend(BASE64.decode(&b).unwrap());
        let expected = format!("{}-2", ChecksumAlgorithm::Crc32.checksum_base64(&cat));
        assert_eq!(composite_checksum(ChecksumAlgorithm::Crc32, &[&a, &b]).unwrap(), expected);
        assert_eq!(composite_checksum(ChecksumAlgorithm::Crc32, &[&a, "AAAA"]), None);
        assert_eq!(composite_checksum(ChecksumAlgorithm::Sha256, &[&a]), None);
    }
}

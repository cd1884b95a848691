//! Decoding `Content-Encoding: aws-chunked` request bodies, incrementally.
//!
//! S3 clients frame upload bodies in their own chunked encoding when they
//! sign the body as it streams (`x-amz-content-sha256:
//! STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: every chunk carries a
//! signature chained from the request's seed signature) or send a checksum
//! after the body (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`, which boto3 ≥ 1.36
//! and the AWS CLI use for every PutObject/UploadPart over HTTPS). The
//! framing must be removed — and signatures verified — before a single byte
//! can be treated as the object.
//!
//! The wire format (S3 "sigv4-streaming" and "sigv4-streaming-trailers"):
//!
//! ```text
//! signed:    <hex size>;chunk-signature=<sig>\r\n<data>\r\n … 0;chunk-signature=<sig>\r\n
//! unsigned:  <hex size>\r\n<data>\r\n … 0\r\n
//! then, with a trailer:  name:value\r\n …  [x-amz-trailer-signature:<sig>\r\n]  \r\n
//! without a trailer:     \r\n
//! ```
//!
//! A chunk's signature is HMAC-SHA256 under the request's signing key of
//! `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous sig>\n<sha256("")>\n
//! <sha256(data)>` ([`sigv4::chunk_signature`]), the first "previous" being
//! the seed signature of the `Authorization` header. The trailer signature
//! is HMAC-SHA256 of `AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<final
//! chunk's sig>\n<sha256(trailers)>` where the trailers are `name:value\n`
//! lines sorted by name (as the AWS SDK for Java v2's `SigV4TrailerProvider`
//! builds it). The final `\r\n` is required: botocore's `AwsChunkedWrapper`,
//! the AWS SDK for Java v2 and the AWS documentation's examples all send it.
//!
//! [`ChunkedDecoder`] is a push parser: it accepts the body in pieces of any
//! size, with chunk boundaries anywhere (inside a size line, a signature or a
//! CRLF), and appends decoded payload to a caller's buffer. It never buffers
//! more than one header or trailer line (bounded: 4 KiB, trailers 16 KiB in
//! all) and refuses chunks over 64 MiB, so a hostile body costs bounded
//! memory.
//!
//! **Signed mode emits unverified data.** A chunk's signature can only be
//! checked once all its data has been seen, and chunks may be up to 64 MiB;
//! rather than hold a chunk in memory, the decoder passes data on as it
//! arrives, hashes it, and fails at the end of the chunk if the signature
//! does not match. The caller must therefore treat everything decoded as
//! provisional until [`ChunkedDecoder::finish`] succeeds, and discard it on
//! any error — Thingport stages bodies to a temporary file that only becomes
//! an object after `finish`.

use aws_lc_rs::digest;

use crate::S3Error;

/// Longest chunk-size line accepted (size and extensions, without the CRLF).
pub const MAX_LINE: usize = 4096;
/// Largest chunk accepted.
pub const MAX_CHUNK: u64 = 64 * 1024 * 1024;
/// Largest trailer section accepted (all trailer lines with their CRLFs,
/// not counting the final empty line).
pub const MAX_TRAILER: usize = 16 * 1024;

/// How the chunks are authenticated.
#[derive(Clone)]
pub enum ChunkSigning {
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: plain chunks, integrity from the
    /// trailing checksum.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: from the verified
    /// request — its signature (the seed), the derived signing key, its
    /// `x-amz-date` and its credential scope (`date/region/s3/aws4_request`).
    Signed { seed_signature: String, signing_key: [u8; 32], amz_date: String, scope: String },
}

impl std::fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkSigning::Unsigned => f.write_str("Unsigned"),
            ChunkSigning::Signed { seed_signature, amz_date, scope, .. } => f
                .debug_struct("Signed")
                .field("seed_signature", seed_signature)
                .field("signing_key", &"<redacted>")
                .field("amz_date", amz_date)
                .field("scope", scope)
                .finish(),
        }
    }
}

/// The rolling signature state of a signed body.
struct Signer {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    /// The previous chunk's signature (initially the seed).
    prev: String,
}

impl Signer {
    /// Check a chunk's claimed signature against its data hash and advance
    /// the chain.
    fn verify_chunk(&mut self, claimed: &str, data_sha256_hex: &str) -> Result<(), S3Error> {
        let expected = sigv4::chunk_signature(&self.key, &self.prev, &self.amz_date, &self.scope, data_sha256_hex);
        if !sigv4::signatures_equal(&expected, claimed) {
            return Err(signature_mismatch());
        }
        self.prev = expected;
        Ok(())
    }

    /// Check the trailer signature (`trailers` without the signature line).
    fn verify_trailer(&self, claimed: &str, trailers: &[(String, String)]) -> Result<(), S3Error> {
        let mut sorted: Vec<&(String, String)> = trailers.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut canonical = String::new();
        for (name, value) in sorted {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        let sts = trailer_string_to_sign(&self.amz_date, &self.scope, &self.prev, &canonical);
        let expected = sigv4::signature(&self.key, &sts);
        if sigv4::signatures_equal(&expected, claimed) {
            Ok(())
        } else {
            Err(signature_mismatch())
        }
    }
}

/// The string to sign of an `aws-chunked` trailer:
/// `AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<prev sig>\n<sha256(canonical)>`
/// where `canonical` is the trailers as `name:value\n` lines.
pub fn trailer_string_to_sign(amz_date: &str, scope: &str, prev_signature: &str, canonical: &str) -> String {
    format!(
        "{}-TRAILER\n{amz_date}\n{scope}\n{prev_signature}\n{}",
        sigv4::ALGORITHM,
        sigv4::sha256_hex(canonical.as_bytes())
    )
}

fn signature_mismatch() -> S3Error {
    S3Error::new(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

fn malformed(what: &str) -> S3Error {
    S3Error::invalid_request(format!("Malformed aws-chunked body: {what}."))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    Header,
    /// Inside a chunk's data.
    Data {
        remaining: u64,
    },
    /// After a chunk's data: `seen` bytes of its CRLF read.
    DataEnd {
        seen: u8,
    },
    /// After the zero chunk, in trailer mode: reading trailer lines.
    Trailer,
    /// After the zero chunk, without trailer: the final empty line.
    FinalLine,
    Done,
}

/// Incremental decoder of one `aws-chunked` body. See the module
/// documentation.
pub struct ChunkedDecoder {
    signer: Option<Signer>,
    trailer: bool,
    state: State,
    /// The partial line being read (header or trailer), without CRLF.
    line: Vec<u8>,
    /// Signed mode: the current chunk's claimed signature and data hash.
    claimed: String,
    hash: Option<digest::Context>,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    trailer_bytes: usize,
    /// The first error; the decoder is unusable after it.
    failed: Option<S3Error>,
}

impl std::fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("signed", &self.signer.is_some())
            .field("trailer", &self.trailer)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ChunkedDecoder {
    /// `trailer`: whether a trailer section follows the zero chunk (the
    /// `…-TRAILER` modes).
    pub fn new(signing: ChunkSigning, trailer: bool) -> Self {
        let signer = match signing {
            ChunkSigning::Unsigned => None,
            ChunkSigning::Signed { seed_signature, signing_key, amz_date, scope } => {
                Some(Signer { key: signing_key, amz_date, scope, prev: seed_signature })
            }
        };
        ChunkedDecoder {
            signer,
            trailer,
            state: State::Header,
            line: Vec::new(),
            claimed: String::new(),
            hash: None,
            trailers: Vec::new(),
            trailer_signature: None,
            trailer_bytes: 0,
            failed: None,
        }
    }

    /// Feed the next raw body bytes; decoded payload bytes are appended to
    /// `out`. In signed mode they are not yet verified (see the module
    /// documentation). After an error every later call fails the same way.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.feed_inner(input, out);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// The body ended. `Err(IncompleteBody)` if the final chunk (and
    /// trailer) were not complete. Returns the trailer headers (names
    /// lowercased, values trimmed) in the order received, without
    /// `x-amz-trailer-signature` (verified in signed trailer mode).
    pub fn finish(self) -> Result<Vec<(String, String)>, S3Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.state != State::Done {
            return Err(S3Error::incomplete_body());
        }
        Ok(self.trailers)
    }

    /// True once the final chunk (and trailer) were seen; bytes after that
    /// are an error.
    pub fn is_done(&self) -> bool {
        self.state == State::Done && self.failed.is_none()
    }

    fn feed_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line(&mut input, MAX_LINE)? {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len());
                    let (data, rest) = input.split_at(n);
                    out.extend_from_slice(data);
                    if let Some(h) = &mut self.hash {
                        h.update(data);
                    }
                    input = rest;
                    let remaining = remaining - n as u64;
                    self.state = State::Data { remaining };
                    if remaining == 0 {
                        self.end_chunk_data()?;
                        self.state = State::DataEnd { seen: 0 };
                    }
                }
                State::DataEnd { seen } => {
                    let want = if seen == 0 { b'\r' } else { b'\n' };
                    if input[0] != want {
                        return Err(malformed("chunk data does not end with CRLF where its size says"));
                    }
                    input = &input[1..];
                    self.state = if seen == 0 { State::DataEnd { seen: 1 } } else { State::Header };
                }
                State::Trailer => {
                    let budget = MAX_TRAILER.saturating_sub(self.trailer_bytes);
                    if let Some(line) = self.take_line(&mut input, budget.saturating_sub(2))? {
                        self.trailer_bytes += line.len() + 2;
                        self.trailer_line(&line)?;
                    }
                }
                State::FinalLine => {
                    if let Some(line) = self.take_line(&mut input, 0)? {
                        if !line.is_empty() {
                            return Err(malformed("unexpected data after the final chunk"));
                        }
                        self.state = State::Done;
                    }
                }
                State::Done => return Err(malformed("data after the end of the body")),
            }
        }
        Ok(())
    }

    /// Accumulate up to the next `\n`; returns the completed line without
    /// its CRLF, or None if more input is needed. A line (without CRLF)
    /// longer than `limit`, a bare LF or a CR inside a line is an error.
    fn take_line(&mut self, input: &mut &[u8], limit: usize) -> Result<Option<Vec<u8>>, S3Error> {
        let (segment, found) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], true),
            None => (*input, false),
        };
        // The pending line may end with the CR of its CRLF.
        if self.line.len() + segment.len() > limit + 1 {
            return Err(match self.state {
                State::Trailer => {
                    S3Error::invalid_request(format!("The aws-chunked trailer exceeds {MAX_TRAILER} bytes."))
                }
                State::FinalLine => malformed("unexpected data after the final chunk"),
                _ => malformed(&format!("a chunk header is longer than {MAX_LINE} bytes")),
            });
        }
        self.line.extend_from_slice(segment);
        if !found {
            *input = &[];
            return Ok(None);
        }
        *input = &input[segment.len() + 1..];
        let mut line = std::mem::take(&mut self.line);
        if line.pop() != Some(b'\r') {
            return Err(malformed("a line does not end with CRLF"));
        }
        if line.contains(&b'\r') || line.len() > limit {
            return Err(malformed("stray CR or overlong line"));
        }
        Ok(Some(line))
    }

    /// A complete chunk-size line.
    fn start_chunk(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let line = std::str::from_utf8(line).map_err(|_| malformed("a chunk header is not text"))?;
        let (size, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        let size = parse_size(size.trim_end_matches([' ', '\t']))?;
        if self.signer.is_some() {
            let sig = ext
                .and_then(|e| e.strip_prefix("chunk-signature="))
                .ok_or_else(|| malformed("a signed chunk has no chunk-signature"))?;
            self.claimed = sig.to_owned();
            self.hash = Some(digest::Context::new(&digest::SHA256));
        }
        if size == 0 {
            self.end_chunk_data()?;
            self.state = if self.trailer { State::Trailer } else { State::FinalLine };
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// All of a chunk's data was seen: verify its signature (signed mode).
    fn end_chunk_data(&mut self) -> Result<(), S3Error> {
        if let (Some(signer), Some(hash)) = (self.signer.as_mut(), self.hash.take()) {
            let hex = hex::encode(hash.finish());
            signer.verify_chunk(&self.claimed, &hex)?;
        }
        Ok(())
    }

    /// A complete trailer line (empty: the end of the body).
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        if line.is_empty() {
            if let Some(signer) = &self.signer {
                let claimed = self.trailer_signature.as_deref().ok_or_else(signature_mismatch)?;
                signer.verify_trailer(claimed, &self.trailers)?;
            }
            self.state = State::Done;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| malformed("a trailer is not UTF-8"))?;
        let (name, value) = line.split_once(':').ok_or_else(|| malformed("a trailer line has no ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(malformed("a trailer name is not a header name"));
        }
        if name == "x-amz-trailer-signature" {
            if self.signer.is_none() {
                return Err(malformed("a trailer signature in an unsigned body"));
            }
            if self.trailer_signature.replace(value).is_some() {
                return Err(malformed("more than one trailer signature"));
            }
            return Ok(());
        }
        if self.trailers.iter().any(|(n, _)| *n == name) {
            return Err(malformed("a trailer is repeated"));
        }
        self.trailers.push((name, value));
        Ok(())
    }
}

/// A chunk size: 1+ hex digits, at most [`MAX_CHUNK`].
fn parse_size(s: &str) -> Result<u64, S3Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("a chunk size is not hexadecimal"));
    }
    let mut size: u64 = 0;
    for b in s.bytes() {
        let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
        size = size * 16 + digit;
        if size > MAX_CHUNK {
            return Err(S3Error::invalid_request(format!("An aws-chunked chunk is larger than {MAX_CHUNK} bytes.")));
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- the AWS documentation's examples (sigv4-streaming and
    // sigv4-streaming-trailers): 65 KiB of 'a' in a 64 KiB and a 1 KiB
    // chunk, signed with the example key on 20130524 in us-east-1.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20130524T000000Z";

    fn example_signing(seed: &str) -> ChunkSigning {
        ChunkSigning::Signed {
            seed_signature: seed.into(),
            signing_key: sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3"),
            amz_date: DATE.into(),
            scope: sigv4::credential_scope("20130524", "us-east-1", "s3"),
        }
    }

    /// sigv4-streaming: seed signature of the example's Authorization header
    /// and the documented chunk signatures.
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn aws_example_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={}\r\n", SIGS[0]).as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", SIGS[1]).as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", SIGS[2]).as_bytes());
        body
    }

    /// sigv4-streaming-trailers: seed and chunk signatures as documented.
    /// The documented trailer signature (63bddb24…) cannot be reproduced
    /// from the documented string to sign; the value here is computed with
    /// the documented formula (its string to sign matches the one the
    /// versitygw test-suite expects, hash 1e376db7…).
    const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const TRAILER_SIGS: [&str; 3] = [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ];
    const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

    fn aws_trailer_body(trailer_value: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={}\r\n", TRAILER_SIGS[0]).as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", TRAILER_SIGS[1]).as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", TRAILER_SIGS[2]).as_bytes());
        body.extend_from_slice(format!("x-amz-checksum-crc32c:{trailer_value}\r\n").as_bytes());
        body.extend_from_slice(format!("x-amz-trailer-signature:{TRAILER_SIG}\r\n\r\n").as_bytes());
        body
    }

    type Decoded = Result<(Vec<u8>, Vec<(String, String)>), S3Error>;

    /// Decode `body` fed in the given pieces.
    fn decode(signing: ChunkSigning, trailer: bool, pieces: &[&[u8]]) -> Decoded {
        let mut d = ChunkedDecoder::new(signing, trailer);
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out)?;
        }
        let done = d.is_done();
        let trailers = d.finish()?;
        assert!(done);
        Ok((out, trailers))
    }

    fn decode_split(signing: &ChunkSigning, trailer: bool, body: &[u8], at: usize) -> Decoded {
        decode(signing.clone(), trailer, &[&body[..at], &body[at..]])
    }

    #[test]
    fn the_documented_chunk_signatures_are_what_sigv4_computes() {
        let key = sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3");
        let scope = sigv4::credential_scope("20130524", "us-east-1", "s3");
        let s1 = sigv4::chunk_signature(&key, SEED, DATE, &scope, &sigv4::sha256_hex(&[b'a'; 65536]));
        let s2 = sigv4::chunk_signature(&key, &s1, DATE, &scope, &sigv4::sha256_hex(&[b'a'; 1024]));
        let s3 = sigv4::chunk_signature(&key, &s2, DATE, &scope, sigv4::EMPTY_PAYLOAD_SHA256);
        assert_eq!([s1.as_str(), &s2, &s3], SIGS);
        // The trailer's string to sign, as versitygw's test-suite expects it.
        let sts = trailer_string_to_sign(DATE, &scope, TRAILER_SIGS[2], "x-amz-checksum-crc32c:sOO8/Q==\n");
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256-TRAILER\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\n\
             1e376db7e1a34a8ef1c4bcee131a2d60a1cb62503747488624e10995f448d774"
        );
        assert_eq!(sigv4::signature(&key, &sts), TRAILER_SIG);
    }

    #[test]
    fn aws_signed_example() {
        let body = aws_example_body();
        assert_eq!(body.len(), 66824, "Content-Length of the documented request");
        let signing = example_signing(SEED);
        let (out, trailers) = decode(signing.clone(), false, &[&body]).unwrap();
        assert_eq!(out, vec![b'a'; 66560]);
        assert!(trailers.is_empty());
        // Splits around every structural boundary, and byte by byte there.
        let marks = [0, 88, 88 + 65536, 65626, 65626 + 86, 65626 + 86 + 1024, body.len() - 86, body.len()];
        for m in marks {
            for at in m.saturating_sub(3)..(m + 4).min(body.len() + 1) {
                let (out, _) = decode_split(&signing, false, &body, at).unwrap();
                assert_eq!(out.len(), 66560, "split at {at}");
            }
        }
        for at in (0..body.len()).step_by(997) {
            decode_split(&signing, false, &body, at).unwrap();
        }
        let tiny: Vec<&[u8]> = body.chunks(7).collect();
        assert_eq!(decode(signing, false, &tiny).unwrap().0.len(), 66560);
    }

    #[test]
    fn aws_signed_trailer_example() {
        let body = aws_trailer_body("sOO8/Q==");
        let signing = example_signing(TRAILER_SEED);
        let (out, trailers) = decode(signing.clone(), true, &[&body]).unwrap();
        assert_eq!(out, vec![b'a'; 66560]);
        assert_eq!(trailers, vec![("x-amz-checksum-crc32c".to_string(), "sOO8/Q==".to_string())]);
        assert_eq!(crate::checksum::ChecksumAlgorithm::Crc32c.checksum_base64(&out), "sOO8/Q==");
        let tail = body.len() - 200;
        for at in tail..=body.len() {
            assert_eq!(decode_split(&signing, true, &body, at).unwrap().1, trailers, "split at {at}");
        }
        // A changed trailer value breaks the trailer signature.
        let e = decode(signing, true, &[&aws_trailer_body("AAAAAA==")]).unwrap_err();
        assert_eq!((e.status, e.code), (403, "SignatureDoesNotMatch"));
    }

    #[test]
    fn tampering_is_detected() {
        let signing = example_signing(SEED);
        let body = aws_example_body();
        // Data changed (first chunk, then last byte of the second chunk).
        for pos in [88, 88 + 1000, 65626 + 86 + 1023] {
            let mut b = body.clone();
            b[pos] = b'b';
            let e = decode(signing.clone(), false, &[&b]).unwrap_err();
            assert_eq!((e.status, e.code), (403, "SignatureDoesNotMatch"), "byte {pos}");
        }
        // A signature changed: the first, and the final (empty) chunk's.
        for pos in [30, body.len() - 10] {
            let mut b = body.clone();
            b[pos] = if b[pos] == b'0' { b'1' } else { b'0' };
            let e = decode(signing.clone(), false, &[&b]).unwrap_err();
            assert_eq!(e.code, "SignatureDoesNotMatch", "byte {pos}");
        }
        // The wrong seed (e.g. a body replayed under another request).
        let e = decode(example_signing(TRAILER_SEED), false, &[&body]).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
        // Chunks reordered / dropped: the chain breaks.
        let mut b = body.clone();
        b.drain(0..65626);
        assert!(decode(signing.clone(), false, &[&b]).is_err());
        // The error sticks.
        let mut d = ChunkedDecoder::new(signing, false);
        let mut bad = body.clone();
        bad[100] = b'z';
        let mut out = Vec::new();
        assert!(d.feed(&bad[..66000], &mut out).is_err());
        assert!(d.feed(&bad[66000..], &mut out).is_err());
        assert!(!d.is_done());
        assert_eq!(d.finish().unwrap_err().code, "SignatureDoesNotMatch");
    }

    #[test]
    fn truncated_signed_bodies_are_incomplete() {
        let signing = example_signing(SEED);
        let body = aws_example_body();
        let cuts: Vec<usize> = (0..100).chain(65600..65720).chain(body.len() - 100..body.len()).collect();
        for cut in cuts {
            let e = decode(signing.clone(), false, &[&body[..cut]]).unwrap_err();
            assert!(e.code == "IncompleteBody" || e.code == "SignatureDoesNotMatch", "cut at {cut}: {e}");
            assert_eq!(e.status / 100, 4);
        }
        // Missing only the final CRLF: still incomplete (every client sends it).
        let e = decode(signing, false, &[&body[..body.len() - 2]]).unwrap_err();
        assert_eq!(e, S3Error::incomplete_body());
    }

    /// botocore 1.43's `AwsChunkedWrapper(BytesIO(b"hello world"),
    /// Crc32Checksum, "x-amz-checksum-crc32", chunk_size=4).read()`.
    const BOTOCORE_UNSIGNED: &[u8] =
        b"4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

    #[test]
    fn botocore_unsigned_trailer() {
        let expect = (b"hello world".to_vec(), vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]);
        for at in 0..=BOTOCORE_UNSIGNED.len() {
            assert_eq!(decode_split(&ChunkSigning::Unsigned, true, BOTOCORE_UNSIGNED, at).unwrap(), expect);
        }
        let bytes: Vec<&[u8]> = BOTOCORE_UNSIGNED.chunks(1).collect();
        assert_eq!(decode(ChunkSigning::Unsigned, true, &bytes).unwrap(), expect);
        assert_eq!(crate::checksum::ChecksumAlgorithm::Crc32.checksum_base64(b"hello world"), "DUoRhQ==");
        // Every truncation is incomplete.
        for cut in 0..BOTOCORE_UNSIGNED.len() {
            let e = decode(ChunkSigning::Unsigned, true, &[&BOTOCORE_UNSIGNED[..cut]]).unwrap_err();
            assert_eq!(e, S3Error::incomplete_body(), "cut at {cut}");
        }
        // An empty body: botocore sends b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n".
        let (out, t) = decode(ChunkSigning::Unsigned, true, &[b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"]).unwrap();
        assert!(out.is_empty());
        assert_eq!(t[0].1, "AAAAAA==");
    }

    #[test]
    fn trailer_names_and_values_are_normalised() {
        let body = b"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32 :  NSRBwg== \r\nx-amz-meta-other:v\r\n\r\n";
        let (out, t) = decode(ChunkSigning::Unsigned, true, &[body]).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(
            t,
            vec![("x-amz-checksum-crc32".into(), "NSRBwg==".into()), ("x-amz-meta-other".into(), "v".into())]
        );
        // Chunk extensions are ignored in unsigned mode; upper-case hex works.
        let (out, _) = decode(ChunkSigning::Unsigned, true, &[b"A;ext=1\r\n0123456789\r\n0\r\n\r\n"]).unwrap();
        assert_eq!(out, b"0123456789");
        // Without a trailer section: 0 CRLF CRLF.
        let (out, t) = decode(ChunkSigning::Unsigned, false, &[b"1\r\nx\r\n0\r\n\r\n"]).unwrap();
        assert_eq!((out, t), (b"x".to_vec(), vec![]));
    }

    fn bad(signing: ChunkSigning, trailer: bool, body: &[u8]) -> S3Error {
        let e = decode(signing, trailer, &[body]).unwrap_err();
        assert_eq!(e.status / 100, 4, "{e}");
        e
    }

    #[test]
    fn malformed_framing() {
        let u = || ChunkSigning::Unsigned;
        for body in [
            &b"x\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b" 1\r\nx\r\n0\r\n\r\n",
            b"1\nx\r\n0\r\n\r\n",
            b"1\r\nxy\r\n0\r\n\r\n",
            b"1\r\nx\n\n0\r\n\r\n",
            b"1\r\nx\r\n0\r\nno colon\r\n\r\n",
            b"1\r\nx\r\n0\r\n:v\r\n\r\n",
            b"1\r\nx\r\n0\r\nbad name:v\r\n\r\n",
            b"1\r\nx\r\n0\r\na:1\r\na:2\r\n\r\n",
            b"1\r\nx\r\n0\r\nx-amz-trailer-signature:abc\r\n\r\n",
            b"1\r\nx\r\n0\r\na:\rb\r\n\r\n",
            b"1\r\nx\r\n0\r\n\r\nextra",
            b"1\r\nx\r\n0\r\n\r\n\r\n",
        ] {
            let e = bad(u(), true, body);
            assert_ne!(e, S3Error::incomplete_body(), "{}", String::from_utf8_lossy(body));
        }
        let e = bad(u(), false, b"0\r\na:b\r\n\r\n");
        assert_eq!(e.code, "InvalidRequest");
        assert!(e.message.contains("after the final chunk"), "{e}");
        // Signed: the chunk-signature extension is required.
        let e = bad(example_signing(SEED), false, b"1\r\nx\r\n");
        assert_eq!(e.code, "InvalidRequest");
        // Signed trailer mode: the trailer signature is required.
        let mut body = aws_trailer_body("sOO8/Q==");
        let sig_line = format!("x-amz-trailer-signature:{TRAILER_SIG}\r\n");
        let at = body.len() - sig_line.len() - 2;
        body.drain(at..at + sig_line.len());
        assert_eq!(bad(example_signing(TRAILER_SEED), true, &body).code, "SignatureDoesNotMatch");
    }

    #[test]
    fn limits() {
        let u = || ChunkSigning::Unsigned;
        // A header line over 4 KiB, fed in small pieces: refused before the
        // buffer grows past the limit.
        let mut d = ChunkedDecoder::new(u(), true);
        let mut out = Vec::new();
        let long = format!("1;{}", "e".repeat(10_000));
        let mut err = None;
        for piece in long.as_bytes().chunks(100) {
            if let Err(e) = d.feed(piece, &mut out) {
                err = Some(e);
                break;
            }
            assert!(d.line.len() <= MAX_LINE + 1);
        }
        assert_eq!(err.unwrap().code, "InvalidRequest");
        // Exactly at the limit is fine.
        let ok = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE - 2));
        decode(u(), true, &[ok.as_bytes()]).unwrap();
        let over = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE - 1));
        assert_eq!(bad(u(), true, over.as_bytes()).code, "InvalidRequest");
        // Chunk sizes.
        assert_eq!(bad(u(), true, b"4000001\r\n").code, "InvalidRequest");
        assert_eq!(bad(u(), true, b"ffffffffffffffffffffffff\r\n").code, "InvalidRequest");
        let mut d = ChunkedDecoder::new(u(), true);
        d.feed(b"4000000\r\n", &mut out).unwrap();
        // The trailer section.
        let mut body = b"0\r\n".to_vec();
        for i in 0..2000 {
            body.extend_from_slice(format!("x-amz-meta-h{i}:value\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        let e = bad(u(), true, &body);
        assert!(e.message.contains("trailer"), "{e}");
        let mut ok = b"0\r\n".to_vec();
        ok.extend_from_slice(format!("a:{}\r\n", "v".repeat(MAX_TRAILER - 4)).as_bytes());
        ok.extend_from_slice(b"\r\n");
        decode(u(), true, &[&ok]).unwrap();
        let mut over = b"0\r\n".to_vec();
        over.extend_from_slice(format!("a:{}\r\n", "v".repeat(MAX_TRAILER - 3)).as_bytes());
        over.extend_from_slice(b"\r\n");
        assert_eq!(bad(u(), true, &over).code, "InvalidRequest");
    }

    #[test]
    fn data_after_the_end() {
        let mut d = ChunkedDecoder::new(ChunkSigning::Unsigned, true);
        let mut out = Vec::new();
        d.feed(BOTOCORE_UNSIGNED, &mut out).unwrap();
        assert!(d.is_done());
        assert!(d.feed(b"x", &mut out).is_err());
        assert!(!d.is_done());
        assert!(d.finish().is_err());
    }

    #[test]
    fn signing_key_is_not_in_debug_output() {
        let s = example_signing(SEED);
        let key = sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3");
        let dbg = format!("{s:?}");
        assert!(dbg.contains("<redacted>") && !dbg.contains(&format!("{key:?}")), "{dbg}");
        assert!(!format!("{:?}", ChunkedDecoder::new(s, false)).contains("signing_key"));
    }

    // ---- an encoder for the property tests

    fn encode(payload: &[u8], sizes: &[usize], signing: &ChunkSigning, trailers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut rest = payload;
        for &s in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = s.max(1).min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        chunks.push(&[]);
        let mut prev = match signing {
            ChunkSigning::Signed { seed_signature, .. } => seed_signature.clone(),
            ChunkSigning::Unsigned => String::new(),
        };
        for c in &chunks {
            match signing {
                ChunkSigning::Signed { signing_key, amz_date, scope, .. } => {
                    prev = sigv4::chunk_signature(signing_key, &prev, amz_date, scope, &sigv4::sha256_hex(c));
                    body.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", c.len()).as_bytes());
                }
                ChunkSigning::Unsigned => body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes()),
            }
            if !c.is_empty() {
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
            }
        }
        if !trailers.is_empty() {
            let mut canonical = String::new();
            let mut sorted = trailers.to_vec();
            sorted.sort();
            for (n, v) in &sorted {
                canonical.push_str(&format!("{n}:{v}\n"));
            }
            for (n, v) in trailers {
                body.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
            }
            if let ChunkSigning::Signed { signing_key, amz_date, scope, .. } = signing {
                let sts = trailer_string_to_sign(amz_date, scope, &prev, &canonical);
                body.extend_from_slice(
                    format!("x-amz-trailer-signature:{}\r\n", sigv4::signature(signing_key, &sts)).as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    #[test]
    fn encoder_reproduces_the_aws_example() {
        let body = encode(&[b'a'; 66560], &[65536], &example_signing(SEED), &[]);
        assert_eq!(body, aws_example_body());
        let body =
            encode(&[b'a'; 66560], &[65536], &example_signing(TRAILER_SEED), &[("x-amz-checksum-crc32c", "sOO8/Q==")]);
        assert_eq!(body, aws_trailer_body("sOO8/Q=="));
    }

    #[test]
    fn every_split_of_a_small_signed_trailer_body() {
        let signing = example_signing(SEED);
        let trailers =
            [("x-amz-checksum-sha256", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="), ("x-amz-checksum-crc32", "x")];
        let body = encode(b"test payload!", &[5], &signing, &trailers);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let (out, t) = decode(signing.clone(), true, &[&body[..a], &body[a..b], &body[b..]]).unwrap();
                assert_eq!(out, b"test payload!");
                assert_eq!(t.len(), 2);
            }
        }
        for cut in 0..body.len() {
            let e = decode(signing.clone(), true, &[&body[..cut]]).unwrap_err();
            assert_eq!(e, S3Error::incomplete_body(), "cut at {cut}");
        }
    }

    fn signing_strategy() -> impl Strategy<Value = ChunkSigning> {
        prop_oneof![Just(ChunkSigning::Unsigned), "[0-9a-f]{64}".prop_map(|seed| example_signing(&seed)),]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn any_chunking_decodes_to_the_payload(
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
            sizes in proptest::collection::vec(1usize..700, 1..5),
            splits in proptest::collection::vec(0usize..4000, 0..12),
            signing in signing_strategy(),
            with_trailer in any::<bool>(),
        ) {
            let crc = crate::checksum::ChecksumAlgorithm::Crc32.checksum_base64(&payload);
            let trailers: Vec<(&str, &str)> = if with_trailer { vec![("x-amz-checksum-crc32", &crc)] } else { vec![] };
            let body = encode(&payload, &sizes, &signing, &trailers);
            let mut cuts: Vec<usize> = splits.into_iter().map(|s| s % (body.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&body[last..c]);
                last = c;
            }
            pieces.push(&body[last..]);
            let (out, t) = decode(signing, with_trailer, &pieces).unwrap();
            prop_assert_eq!(out, payload);
            let expected: Vec<(String, String)> = trailers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(t, expected);
        }

        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), signing in signing_strategy(), trailer in any::<bool>()) {
            let mut d = ChunkedDecoder::new(signing, trailer);
            let mut out = Vec::new();
            let _ = d.feed(&body, &mut out);
            prop_assert!(out.len() <= body.len());
            let _ = d.finish();
        }

        #[test]
        fn flipping_any_byte_of_a_signed_body_fails(payload in proptest::collection::vec(any::<u8>(), 1..300), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let signing = example_signing(SEED);
            let body = encode(&payload, &[100], &signing, &[("x-amz-checksum-crc32", "AAAAAA==")]);
            let mut b = body.clone();
            let i = pos.index(b.len());
            b[i] ^= flip;
            let r = decode(signing, true, &[&b]);
            // Only changes that leave the decoded payload and trailers intact
            // (hex-digit case in a size, whitespace in a trailer) may pass.
            if let Ok((out, t)) = r {
                prop_assert_eq!(out, payload);
                prop_assert_eq!(t, vec![("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string())]);
            }
        }
    }
}

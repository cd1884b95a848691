//! The payload envelope (format v1, magic `TPE1`): encrypts a payload or a
//! file of any size with a data key, in fixed-size authenticated chunks, so
//! that both ends can stream it with one chunk of memory, and optionally
//! signs it with the device's own key.
//!
//! ```text
//! header  = "TPE1" ‖ u8 flags (bit 0: signed) ‖ u32 BE chunk_size
//!         ‖ u16 BE len ‖ data key id (UTF-8) ‖ u32 BE len ‖ aad
//!         ‖ u32 BE len ‖ KMS ciphertext blob of the data key (may be empty)
//!         ‖ base nonce (12 random bytes)
//! record  = u8 kind (0 data, 1 final) ‖ u32 BE len ‖ AES-256-GCM ciphertext ‖ tag
//! trailer = u16 BE len ‖ signature            (only when signed)
//! ```
//!
//! Chunk `i` (from 0) uses nonce `base_nonce XOR i` (`i` as a 96-bit
//! big-endian integer) and AAD `SHA-256(header) ‖ u64 BE i ‖ kind`. Every data
//! chunk holds exactly `chunk_size` plaintext bytes; exactly one final chunk
//! (0 to `chunk_size` bytes) ends the data. Because the index and the kind are
//! authenticated, truncation, reordering, a missing final chunk and extra data
//! are all detected; because the header hash is, so is any change to the
//! header (including the `signed` flag, the AAD and the KMS blob).
//!
//! The signature is over the 32-byte `SHA-256(header ‖ all records)`, made
//! with the device's private key: ECDSA P-256 / SHA-256 or P-384 / SHA-384
//! (ASN.1 DER), or RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt. The
//! digest is the signed *message* (so it is hashed once more by the signature
//! scheme). `docs/payload-keys.md` has the byte-level description for other
//! implementations.

use std::fmt;

use aws_lc_rs::aead::LessSafeKey;
use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use zeroize::{Zeroize, Zeroizing};

use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::keyinfo::{self, Curve, PrivateKind, PublicKeyInfo, RSA_MAX_BITS, RSA_MIN_BITS};
use crate::KeyError;

/// The first four bytes of every v1 envelope.
pub const ENVELOPE_MAGIC: &[u8; 4] = b"TPE1";
/// Smallest chunk size (plaintext bytes per chunk).
pub const MIN_CHUNK_SIZE: u32 = 1024;
/// Largest chunk size (plaintext bytes per chunk).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Default chunk size: 64 KiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Longest data key id in a header (bytes).
pub const MAX_HEADER_KEY_ID_LEN: usize = 2048;
/// Longest caller AAD in a header (bytes).
pub const MAX_HEADER_AAD_LEN: usize = 64 * 1024;
/// Longest KMS ciphertext blob in a header (bytes).
pub const MAX_HEADER_KMS_BLOB_LEN: usize = 8 * 1024;
/// Longest signature accepted (bytes; RSA-4096 needs 512).
pub const MAX_SIGNATURE_LEN: usize = 1024;

/// Header flag: the envelope ends with a signature.
const FLAG_SIGNED: u8 = 0x01;
/// Record kind of a (full) data chunk.
const KIND_DATA: u8 = 0;
/// Record kind of the last chunk.
const KIND_FINAL: u8 = 1;
/// `kind ‖ u32 len`.
const RECORD_HEADER_LEN: usize = 5;
/// SHA-256 output length.
const HASH_LEN: usize = 32;

/// The envelope header: what is bound to the payload besides the data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// Id of the data key (so a reader knows which key to ask for), at most [`MAX_HEADER_KEY_ID_LEN`] bytes.
    pub key_id: String,
    /// Caller-supplied authenticated data, e.g. canonical JSON binding thing name and object key; at most [`MAX_HEADER_AAD_LEN`] bytes.
    pub aad: Vec<u8>,
    /// Plaintext bytes per chunk, [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// The data key as a KMS ciphertext blob (may be empty), at most [`MAX_HEADER_KMS_BLOB_LEN`] bytes.
    pub kms_blob: Vec<u8>,
    /// Whether the envelope ends with a signature by the device's key.
    pub signed: bool,
}

impl EnvelopeHeader {
    /// A header with the default chunk size, no KMS blob, unsigned.
    pub fn new(key_id: impl Into<String>, aad: impl Into<Vec<u8>>) -> Self {
        EnvelopeHeader {
            key_id: key_id.into(),
            aad: aad.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            kms_blob: Vec::new(),
            signed: false,
        }
    }

    fn validate(&self) -> Result<(), KeyError> {
        check_chunk_size(self.chunk_size)?;
        for (what, len, max) in [
            ("key id", self.key_id.len(), MAX_HEADER_KEY_ID_LEN),
            ("aad", self.aad.len(), MAX_HEADER_AAD_LEN),
            ("KMS blob", self.kms_blob.len(), MAX_HEADER_KMS_BLOB_LEN),
        ] {
            if len > max {
                return Err(KeyError::InvalidArgument(format!("envelope {what} is {len} bytes (at most {max})")));
            }
        }
        Ok(())
    }

    /// The header's bytes with `base_nonce`.
    fn encode(&self, base_nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ENVELOPE_MAGIC.len() + 15 + self.key_id.len() + self.aad.len() + self.kms_blob.len() + NONCE_LEN,
        );
        out.extend_from_slice(ENVELOPE_MAGIC);
        out.push(if self.signed { FLAG_SIGNED } else { 0 });
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&(self.key_id.len() as u16).to_be_bytes());
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&(self.aad.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.aad);
        out.extend_from_slice(&(self.kms_blob.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.kms_blob);
        out.extend_from_slice(base_nonce);
        out
    }
}

fn check_chunk_size(chunk_size: u32) -> Result<(), KeyError> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(KeyError::InvalidArgument(format!(
            "chunk size {chunk_size} out of range ({MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE})"
        )));
    }
    Ok(())
}

/// Reads a header from the start of `input`: `Ok(None)` while `input` does
/// not yet hold the whole header; `Ok(Some((header, header_len)))` once it
/// does. Errors as soon as the bytes seen so far cannot start a v1 envelope.
pub fn parse_header(input: &[u8]) -> Result<Option<(EnvelopeHeader, usize)>, KeyError> {
    let magic_len = ENVELOPE_MAGIC.len().min(input.len());
    if input[..magic_len] != ENVELOPE_MAGIC[..magic_len] {
        return Err(KeyError::MalformedEnvelope("not a Thingport envelope (magic is not TPE1)".into()));
    }
    let mut reader = Reader { input, pos: ENVELOPE_MAGIC.len() };
    let Some(flags) = reader.take(1) else { return Ok(None) };
    let flags = flags[0];
    if flags & !FLAG_SIGNED != 0 {
        return Err(KeyError::MalformedEnvelope(format!("unknown header flags {flags:#04x}")));
    }
    let Some(chunk_size) = reader.u32() else { return Ok(None) };
    check_chunk_size(chunk_size).map_err(|_| {
        KeyError::MalformedEnvelope(format!(
            "chunk size {chunk_size} out of range ({MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE})"
        ))
    })?;
    let Some(key_id) = reader.field(2, MAX_HEADER_KEY_ID_LEN, "key id")? else { return Ok(None) };
    let key_id =
        std::str::from_utf8(key_id).map_err(|_| KeyError::MalformedEnvelope("key id is not UTF-8".into()))?.to_owned();
    let Some(aad) = reader.field(4, MAX_HEADER_AAD_LEN, "aad")? else { return Ok(None) };
    let aad = aad.to_vec();
    let Some(kms_blob) = reader.field(4, MAX_HEADER_KMS_BLOB_LEN, "KMS blob")? else { return Ok(None) };
    let kms_blob = kms_blob.to_vec();
    if reader.take(NONCE_LEN).is_none() {
        return Ok(None);
    }
    let header = EnvelopeHeader { key_id, aad, chunk_size, kms_blob, signed: flags & FLAG_SIGNED != 0 };
    Ok(Some((header, reader.pos)))
}

/// A cursor over a possibly incomplete header; `None` means "need more bytes".
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.input.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed field (`prefix` = 2 or 4 bytes, big-endian).
    fn field(&mut self, prefix: usize, max: usize, what: &str) -> Result<Option<&'a [u8]>, KeyError> {
        let Some(len) = self.take(prefix) else { return Ok(None) };
        let len = len.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len > max {
            return Err(KeyError::MalformedEnvelope(format!("{what} length {len} exceeds {max}")));
        }
        Ok(self.take(len))
    }
}

/// The per-envelope AEAD state shared by both directions.
struct ChunkCipher {
    key: LessSafeKey,
    base_nonce: [u8; NONCE_LEN],
    header_hash: [u8; HASH_LEN],
}

impl ChunkCipher {
    fn new(data_key: &[u8], header_bytes: &[u8]) -> Result<Self, KeyError> {
        let key = gcm::key(data_key, "data key")?;
        let base_nonce = header_bytes[header_bytes.len() - NONCE_LEN..]
            .try_into()
            .map_err(|_| KeyError::MalformedEnvelope("header too short".into()))?;
        let mut header_hash = [0u8; HASH_LEN];
        header_hash.copy_from_slice(digest::digest(&SHA256, header_bytes).as_ref());
        Ok(ChunkCipher { key, base_nonce, header_hash })
    }

    /// `base_nonce XOR i` (i as a 96-bit big-endian integer).
    fn nonce(&self, index: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.base_nonce;
        for (n, i) in nonce[NONCE_LEN - 8..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= i;
        }
        nonce
    }

    /// `SHA-256(header) ‖ u64 BE i ‖ kind`.
    fn aad(&self, index: u64, kind: u8) -> [u8; HASH_LEN + 9] {
        let mut aad = [0u8; HASH_LEN + 9];
        aad[..HASH_LEN].copy_from_slice(&self.header_hash);
        aad[HASH_LEN..HASH_LEN + 8].copy_from_slice(&index.to_be_bytes());
        aad[HASH_LEN + 8] = kind;
        aad
    }
}

/// The device's private key, for signing envelopes. `Debug` shows only the algorithm.
pub struct Signer {
    key: SignerKey,
}

enum SignerKey {
    Ecdsa(EcdsaKeyPair, Curve),
    Rsa(RsaKeyPair),
}

impl Signer {
    /// Loads a PEM private key (PKCS#8, SEC1 or PKCS#1): EC P-256, EC P-384 or RSA 2048–4096 bits.
    pub fn from_pem(private_key_pem: &str) -> Result<Signer, KeyError> {
        let loaded = keyinfo::load_private_key(private_key_pem)?;
        let key = match loaded.kind {
            PrivateKind::Ec(curve) => SignerKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(curve.ecdsa_signing(), &loaded.der)
                    .map_err(|e| KeyError::InvalidPrivateKey(format!("EC {} key rejected: {e}", curve.name())))?,
                curve,
            ),
            PrivateKind::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(&loaded.der)
                    .map_err(|e| KeyError::InvalidPrivateKey(format!("RSA key rejected: {e}")))?;
                let bits = pair.public_modulus_len() * 8;
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(KeyError::UnsupportedKey(format!("RSA with {bits} bits")));
                }
                SignerKey::Rsa(pair)
            }
        };
        Ok(Signer { key })
    }

    /// The signature algorithm: `ECDSA_P256_SHA256`, `ECDSA_P384_SHA384` or `RSASSA_PSS_SHA256`.
    pub fn algorithm(&self) -> &'static str {
        match &self.key {
            SignerKey::Ecdsa(_, Curve::P256) => "ECDSA_P256_SHA256",
            SignerKey::Ecdsa(_, Curve::P384) => "ECDSA_P384_SHA384",
            SignerKey::Rsa(_) => "RSASSA_PSS_SHA256",
        }
    }

    /// The public key as SubjectPublicKeyInfo DER (what [`Decryptor::finish`] verifies with).
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        let der = match &self.key {
            SignerKey::Ecdsa(pair, _) => pair.public_key().as_der(),
            SignerKey::Rsa(pair) => pair.public_key().as_der(),
        };
        der.map(|d| d.as_ref().to_vec()).map_err(|_| KeyError::Crypto("public key encoding"))
    }

    /// Signs the 32-byte transcript digest (as the message).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.key {
            SignerKey::Ecdsa(pair, _) => {
                pair.sign(&rng, message).map(|sig| sig.as_ref().to_vec()).map_err(|_| KeyError::Crypto("ECDSA signing"))
            }
            SignerKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PSS_SHA256, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto("RSA-PSS signing"))?;
                Ok(sig)
            }
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

/// Verifies `sig` over `message` with a device public key (SubjectPublicKeyInfo DER).
fn verify_signature(spki_der: &[u8], message: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    let result = match keyinfo::parse_spki(spki_der)? {
        PublicKeyInfo::Rsa { .. } => {
            UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, spki_der).verify(message, sig)
        }
        PublicKeyInfo::Ec { curve, .. } => {
            UnparsedPublicKey::new(curve.ecdsa_verification(), spki_der).verify(message, sig)
        }
    };
    result.map_err(|_| KeyError::SignatureInvalid)
}

/// Streaming encryption. Holds at most one chunk of plaintext (wiped on drop).
pub struct Encryptor {
    cipher: ChunkCipher,
    header: EnvelopeHeader,
    chunk_size: usize,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    /// SHA-256 of everything written so far; only kept for signed envelopes.
    transcript: Option<digest::Context>,
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor").field("header", &self.header).field("chunks", &self.index).finish_non_exhaustive()
    }
}

impl Encryptor {
    /// Returns the encryptor and the header bytes to write first. `data_key` must be 32 bytes.
    pub fn new(data_key: &[u8], header: EnvelopeHeader) -> Result<(Encryptor, Vec<u8>), KeyError> {
        header.validate()?;
        let header_bytes = header.encode(&gcm::random_nonce()?);
        let cipher = ChunkCipher::new(data_key, &header_bytes)?;
        let transcript = header.signed.then(|| {
            let mut transcript = digest::Context::new(&SHA256);
            transcript.update(&header_bytes);
            transcript
        });
        let chunk_size = header.chunk_size as usize;
        let encryptor = Encryptor {
            cipher,
            header,
            chunk_size,
            buf: Zeroizing::new(Vec::with_capacity(chunk_size)),
            index: 0,
            transcript,
        };
        Ok((encryptor, header_bytes))
    }

    /// The header this encryptor writes.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// Encrypts more plaintext, appending records to `out`. A full chunk is
    /// written once the next byte arrives (the last chunk is written by
    /// [`finish`](Self::finish)), so at most one chunk is held back.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
        let cs = self.chunk_size;
        let mut input = plaintext;
        while !input.is_empty() {
            if self.buf.len() == cs {
                seal_record(&self.cipher, &mut self.transcript, &mut self.index, KIND_DATA, &self.buf, out)?;
                self.buf.clear();
            }
            if self.buf.is_empty() && input.len() > cs {
                // Whole chunk straight from the input, more data follows it.
                seal_record(&self.cipher, &mut self.transcript, &mut self.index, KIND_DATA, &input[..cs], out)?;
                input = &input[cs..];
                continue;
            }
            let take = (cs - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Final chunk, then the signature when the header says `signed` (a
    /// signer is required then: [`KeyError::SignatureRequired`]; and refused
    /// otherwise: [`KeyError::NotSigned`]).
    pub fn finish(mut self, signer: Option<&Signer>, out: &mut Vec<u8>) -> Result<(), KeyError> {
        match (self.header.signed, signer) {
            (true, None) => return Err(KeyError::SignatureRequired),
            (false, Some(_)) => return Err(KeyError::NotSigned),
            _ => {}
        }
        seal_record(&self.cipher, &mut self.transcript, &mut self.index, KIND_FINAL, &self.buf, out)?;
        if let (Some(signer), Some(transcript)) = (signer, self.transcript) {
            let digest = transcript.finish();
            let sig = signer.sign(digest.as_ref())?;
            if sig.len() > MAX_SIGNATURE_LEN {
                return Err(KeyError::UnsupportedKey(format!("signature of {} bytes", sig.len())));
            }
            out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
            out.extend_from_slice(&sig);
        }
        Ok(())
    }
}

/// Appends record `index` (kind, length, ciphertext ‖ tag of `plaintext`) to `out`.
fn seal_record(
    cipher: &ChunkCipher,
    transcript: &mut Option<digest::Context>,
    index: &mut u64,
    kind: u8,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), KeyError> {
    let start = out.len();
    out.reserve(RECORD_HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(kind);
    out.extend_from_slice(&((plaintext.len() + TAG_LEN) as u32).to_be_bytes());
    let body = out.len();
    out.extend_from_slice(plaintext);
    gcm::seal_tail(&cipher.key, cipher.nonce(*index), &cipher.aad(*index, kind), out, body)?;
    if let Some(transcript) = transcript {
        transcript.update(&out[start..]);
    }
    *index = index.checked_add(1).ok_or_else(|| KeyError::InvalidArgument("too many chunks".into()))?;
    Ok(())
}

/// Where the decryptor is in the record stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Expecting `kind ‖ u32 len`.
    RecordHeader,
    /// Expecting `len` bytes of ciphertext ‖ tag.
    RecordBody { kind: u8, len: usize },
    /// Expecting the signature's u16 length.
    SignatureLen,
    /// Expecting `len` bytes of signature.
    Signature { len: usize },
    /// Everything read; only the end of input may follow.
    Done,
    /// An error happened; it is returned again.
    Failed(KeyError),
}

/// Streaming decryption. Accepts the records in arbitrary pieces, buffers at
/// most one record, and appends to `out` only plaintext whose chunk has been
/// authenticated. The signature (if any) is checked by
/// [`finish`](Self::finish): do not act on the plaintext before it returns `Ok`.
pub struct Decryptor {
    cipher: ChunkCipher,
    header: EnvelopeHeader,
    chunk_size: usize,
    state: State,
    buf: Vec<u8>,
    index: u64,
    /// SHA-256 of everything read so far; only kept for signed envelopes.
    transcript: Option<digest::Context>,
    signature: Vec<u8>,
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("header", &self.header)
            .field("chunks", &self.index)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// `header_bytes` exactly as in the envelope (the first `header_len`
    /// bytes, see [`parse_header`]); `data_key` must be 32 bytes.
    pub fn new(data_key: &[u8], header_bytes: &[u8]) -> Result<Decryptor, KeyError> {
        let header = match parse_header(header_bytes)? {
            Some((header, len)) if len == header_bytes.len() => header,
            Some(_) => return Err(KeyError::InvalidArgument("header_bytes holds more than the header".into())),
            None => return Err(KeyError::InvalidArgument("header_bytes holds an incomplete header".into())),
        };
        let cipher = ChunkCipher::new(data_key, header_bytes)?;
        let transcript = header.signed.then(|| {
            let mut transcript = digest::Context::new(&SHA256);
            transcript.update(header_bytes);
            transcript
        });
        let chunk_size = header.chunk_size as usize;
        Ok(Decryptor {
            cipher,
            header,
            chunk_size,
            state: State::RecordHeader,
            buf: Vec::new(),
            index: 0,
            transcript,
            signature: Vec::new(),
        })
    }

    /// The envelope's header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// Feeds the bytes after the header, split anywhere; appends plaintext of
    /// each authenticated chunk to `out`. After an error every later call
    /// returns the same error.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let result = self.update_inner(input, out);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
            self.buf.clear();
        }
        result
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
        while !input.is_empty() {
            match self.state {
                State::RecordHeader => {
                    let Some(head) = self.gather(&mut input, RECORD_HEADER_LEN) else { return Ok(()) };
                    let kind = head[0];
                    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                    let valid = match kind {
                        KIND_DATA => len == self.chunk_size + TAG_LEN,
                        KIND_FINAL => (TAG_LEN..=self.chunk_size + TAG_LEN).contains(&len),
                        _ => return Err(KeyError::MalformedEnvelope(format!("unknown record kind {kind}"))),
                    };
                    if !valid {
                        return Err(KeyError::MalformedEnvelope(format!(
                            "record {} of kind {kind} has length {len} (chunk size {})",
                            self.index, self.chunk_size
                        )));
                    }
                    if let Some(transcript) = &mut self.transcript {
                        transcript.update(&head);
                    }
                    self.state = State::RecordBody { kind, len };
                }
                State::RecordBody { kind, len } => {
                    if self.buf.is_empty() && input.len() >= len {
                        // The whole record is in the input: no copy into the buffer.
                        let (body, rest) = input.split_at(len);
                        self.open_record(kind, body, out)?;
                        input = rest;
                    } else {
                        let Some(mut body) = self.gather(&mut input, len) else { return Ok(()) };
                        self.open_record(kind, &body, out)?;
                        // Keep the allocation for the next record.
                        body.clear();
                        self.buf = body;
                    }
                }
                State::SignatureLen => {
                    let Some(head) = self.gather(&mut input, 2) else { return Ok(()) };
                    let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
                    if len == 0 || len > MAX_SIGNATURE_LEN {
                        return Err(KeyError::MalformedEnvelope(format!("signature length {len}")));
                    }
                    self.state = State::Signature { len };
                }
                State::Signature { len } => {
                    let Some(sig) = self.gather(&mut input, len) else { return Ok(()) };
                    self.signature = sig;
                    self.state = State::Done;
                }
                State::Done => return Err(KeyError::TrailingData),
                State::Failed(ref e) => return Err(e.clone()),
            }
        }
        Ok(())
    }

    /// Moves bytes from `input` into the buffer until it holds `n`; then
    /// returns them (leaving the buffer empty), else `None` (input used up).
    fn gather(&mut self, input: &mut &[u8], n: usize) -> Option<Vec<u8>> {
        if self.buf.is_empty() && input.len() >= n {
            let (item, rest) = input.split_at(n);
            *input = rest;
            return Some(item.to_vec());
        }
        let take = (n - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if self.buf.len() == n {
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    fn open_record(&mut self, kind: u8, body: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
        let index = self.index;
        let start = out.len();
        out.extend_from_slice(body);
        gcm::open_tail(
            &self.cipher.key,
            self.cipher.nonce(index),
            &self.cipher.aad(index, kind),
            out,
            start,
            KeyError::AuthenticationFailed,
        )?;
        if let Some(transcript) = &mut self.transcript {
            transcript.update(body);
        }
        self.index = index.checked_add(1).ok_or_else(|| KeyError::MalformedEnvelope("too many chunks".into()))?;
        self.state = match (kind, self.header.signed) {
            (KIND_FINAL, true) => State::SignatureLen,
            (KIND_FINAL, false) => State::Done,
            _ => State::RecordHeader,
        };
        Ok(())
    }

    /// Checks the final chunk was seen ([`KeyError::Truncated`] otherwise),
    /// and the signature with the signer's SubjectPublicKeyInfo DER when the
    /// envelope is signed (required then: `None` →
    /// [`KeyError::SignatureRequired`]). A key given for an unsigned envelope
    /// is refused ([`KeyError::NotSigned`]): a caller who expects a signature
    /// must not silently accept an envelope without one. Returns whether a
    /// signature was verified.
    pub fn finish(self, signer_spki: Option<&[u8]>) -> Result<bool, KeyError> {
        match self.state {
            State::Done => {}
            State::Failed(e) => return Err(e),
            _ => return Err(KeyError::Truncated),
        }
        match (self.header.signed, signer_spki) {
            (true, None) => Err(KeyError::SignatureRequired),
            (false, Some(_)) => Err(KeyError::NotSigned),
            (false, None) => Ok(false),
            (true, Some(spki)) => {
                let transcript = self.transcript.ok_or(KeyError::Crypto("signed envelope without a transcript"))?;
                let digest = transcript.finish();
                verify_signature(spki, digest.as_ref(), &self.signature)?;
                Ok(true)
            }
        }
    }
}

/// Encrypts a whole payload: header ‖ records ‖ (signature).
pub fn encrypt(
    data_key: &[u8],
    header: EnvelopeHeader,
    plaintext: &[u8],
    signer: Option<&Signer>,
) -> Result<Vec<u8>, KeyError> {
    let chunk_size = header.chunk_size.max(1) as usize;
    let chunks = plaintext.len() / chunk_size + 1;
    let (mut encryptor, mut out) = Encryptor::new(data_key, header)?;
    out.reserve(plaintext.len() + chunks * (RECORD_HEADER_LEN + TAG_LEN) + 2 + MAX_SIGNATURE_LEN);
    encryptor.update(plaintext, &mut out)?;
    encryptor.finish(signer, &mut out)?;
    Ok(out)
}

/// Decrypts a whole envelope; returns the header, the plaintext and whether
/// a signature was verified (see [`Decryptor::finish`] for `signer_spki`).
pub fn decrypt(
    data_key: &[u8],
    envelope: &[u8],
    signer_spki: Option<&[u8]>,
) -> Result<(EnvelopeHeader, Vec<u8>, bool), KeyError> {
    let Some((_, header_len)) = parse_header(envelope)? else { return Err(KeyError::Truncated) };
    let mut decryptor = Decryptor::new(data_key, &envelope[..header_len])?;
    let mut plaintext = Vec::with_capacity(envelope.len() - header_len);
    let result = decryptor.update(&envelope[header_len..], &mut plaintext).and_then(|()| {
        let header = decryptor.header().clone();
        decryptor.finish(signer_spki).map(|signed| (header, signed))
    });
    match result {
        Ok((header, signed)) => Ok((header, plaintext, signed)),
        Err(e) => {
            plaintext.zeroize();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_base_xor_index() {
        let cipher = ChunkCipher::new(&[0u8; 32], &[0xffu8; 40]).unwrap();
        assert_eq!(cipher.nonce(0), [0xff; 12]);
        let mut expected = [0xffu8; 12];
        expected[11] = 0xfe;
        assert_eq!(cipher.nonce(1), expected);
        expected[11] = 0xff;
        expected[4] = 0xfe;
        assert_eq!(cipher.nonce(1 << 56), expected);
        let aad = cipher.aad(0x0102, KIND_FINAL);
        assert_eq!(&aad[HASH_LEN..], &[0, 0, 0, 0, 0, 0, 1, 2, 1]);
    }

    #[test]
    fn header_encoding_is_as_documented() {
        let mut header = EnvelopeHeader::new("dk-1", b"{}".to_vec());
        header.kms_blob = b"BLOB".to_vec();
        header.signed = true;
        let bytes = header.encode(&[9u8; 12]);
        let mut expected = b"TPE1\x01\x00\x01\x00\x00\x00\x04dk-1\x00\x00\x00\x02{}\x00\x00\x00\x04BLOB".to_vec();
        expected.extend_from_slice(&[9u8; 12]);
        assert_eq!(bytes, expected);
        assert_eq!(parse_header(&bytes).unwrap(), Some((header, bytes.len())));
        for len in 0..bytes.len() {
            assert_eq!(parse_header(&bytes[..len]).unwrap(), None, "prefix {len}");
        }
    }

    #[test]
    fn header_errors_early() {
        assert!(matches!(parse_header(b"TPX"), Err(KeyError::MalformedEnvelope(_))));
        assert!(matches!(parse_header(b"TPE1\x02"), Err(KeyError::MalformedEnvelope(_))));
        assert!(matches!(parse_header(b"TPE1\x00\x00\x00\x00\x10"), Err(KeyError::MalformedEnvelope(_))));
        assert!(matches!(parse_header(b"TPE1\x00\x02\x00\x00\x00\xff\xff"), Err(KeyError::MalformedEnvelope(_))));
        assert_eq!(parse_header(b"").unwrap(), None);
        assert_eq!(parse_header(b"TP").unwrap(), None);
    }
}

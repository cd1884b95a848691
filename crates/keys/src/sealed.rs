//! Master keys: sealing their material at rest under the root key, and the
//! KMS-style ciphertext blob that `Encrypt` / `GenerateDataKey` hand out.
//!
//! **Sealed material** (at rest):
//!
//! ```text
//! 0x01 (format) ‖ nonce (12 random bytes) ‖ AES-256-GCM(material) ‖ tag (16)
//! AAD = 0x01 ‖ caller's aad (e.g. key id and version)
//! ```
//!
//! **Ciphertext blob** (given to callers; like a KMS `CiphertextBlob`):
//!
//! ```text
//! "TPK" ‖ 0x01 ‖ u8 len ‖ key id (UTF-8) ‖ u32 BE version ‖ nonce (12) ‖ ciphertext ‖ tag (16)
//! AAD = everything before the nonce ‖ canonical encryption context
//! ```
//!
//! The key id and version are in clear so that `Decrypt` can find the master
//! key version without being told the key id. The canonical encryption
//! context is the pairs in byte order of their keys, each as
//! `u32 BE len ‖ key ‖ u32 BE len ‖ value` (empty for an empty context); the
//! context is authenticated, never stored, so `Decrypt` must be given the same
//! one. Any failure to open a blob is [`KeyError::InvalidCiphertext`].

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::gcm::{self, NONCE_LEN, TAG_LEN};
use crate::KeyError;

/// KMS encryption context: string pairs bound to a ciphertext as authenticated data.
pub type EncryptionContext = BTreeMap<String, String>;

/// Largest plaintext [`encrypt_blob`] takes (the KMS `Encrypt` limit).
pub const MAX_BLOB_PLAINTEXT: usize = 4096;
/// Longest key id a blob can carry.
pub const MAX_KEY_ID_LEN: usize = 255;

/// Magic of a ciphertext blob.
const BLOB_MAGIC: &[u8; 3] = b"TPK";
/// Ciphertext blob format version.
const BLOB_VERSION: u8 = 0x01;
/// Sealed material format version.
const SEALED_VERSION: u8 = 0x01;

/// Seal master key material under the root key (at rest). AES-256-GCM,
/// random nonce; `aad` binds e.g. key id + version.
///
/// # Panics
/// Only if the system random number generator fails.
pub fn seal(root_key: &[u8; 32], material: &[u8], aad: &[u8]) -> Vec<u8> {
    seal_checked(root_key, material, aad).expect("AES-256-GCM sealing with a 32-byte key only fails if the RNG fails")
}

fn seal_checked(root_key: &[u8; 32], material: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
    let key = gcm::key(root_key, "root key")?;
    let nonce = gcm::random_nonce()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + material.len() + TAG_LEN);
    out.push(SEALED_VERSION);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(material);
    gcm::seal_tail(&key, nonce, &sealed_aad(aad), &mut out, start)?;
    Ok(out)
}

/// Opens what [`seal`] produced, with the same root key and `aad`.
pub fn open(root_key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_VERSION {
        return Err(KeyError::InvalidCiphertext);
    }
    let key = gcm::key(root_key, "root key")?;
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| KeyError::InvalidCiphertext)?;
    let mut out = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    gcm::open_tail(&key, nonce, &sealed_aad(aad), &mut out, 0, KeyError::InvalidCiphertext)?;
    Ok(out)
}

fn sealed_aad(aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + aad.len());
    out.push(SEALED_VERSION);
    out.extend_from_slice(aad);
    out
}

/// A KMS-style ciphertext blob: the key id and version in clear (so Decrypt
/// can find the key without KeyId), then AES-256-GCM under the master key
/// version's `material` (32 bytes), with the encryption context bound as
/// authenticated data. At most [`MAX_BLOB_PLAINTEXT`] bytes of plaintext
/// ([`KeyError::TooLarge`]); the key id must be 1 to [`MAX_KEY_ID_LEN`] bytes.
pub fn encrypt_blob(
    key_id: &str,
    version: u32,
    material: &[u8],
    plaintext: &[u8],
    context: &EncryptionContext,
) -> Result<Vec<u8>, KeyError> {
    if plaintext.len() > MAX_BLOB_PLAINTEXT {
        return Err(KeyError::TooLarge { len: plaintext.len(), max: MAX_BLOB_PLAINTEXT });
    }
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(KeyError::InvalidArgument(format!(
            "a key id must be 1 to {MAX_KEY_ID_LEN} bytes, got {}",
            key_id.len()
        )));
    }
    let key = gcm::key(material, "master key material")?;
    let mut out = Vec::with_capacity(BLOB_MAGIC.len() + 6 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(BLOB_MAGIC);
    out.push(BLOB_VERSION);
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    let mut aad = out.clone();
    aad.extend_from_slice(&canonical_context(context));
    let nonce = gcm::random_nonce()?;
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    gcm::seal_tail(&key, nonce, &aad, &mut out, start)?;
    Ok(out)
}

/// The (key id, version) a blob was made under; malformed → [`KeyError::InvalidCiphertext`].
pub fn blob_key(blob: &[u8]) -> Result<(String, u32), KeyError> {
    let parsed = parse_blob(blob)?;
    Ok((parsed.key_id.to_owned(), parsed.version))
}

/// Decrypts a blob with the material of the master key version it names.
/// Any failure (tampering, wrong material, wrong context) → [`KeyError::InvalidCiphertext`].
pub fn decrypt_blob(material: &[u8], blob: &[u8], context: &EncryptionContext) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let parsed = parse_blob(blob)?;
    let key = gcm::key(material, "master key material")?;
    let mut aad = blob[..parsed.prefix_len].to_vec();
    aad.extend_from_slice(&canonical_context(context));
    let mut out = Zeroizing::new(parsed.ciphertext.to_vec());
    gcm::open_tail(&key, parsed.nonce, &aad, &mut out, 0, KeyError::InvalidCiphertext)?;
    Ok(out)
}

/// The canonical form of an encryption context: pairs in byte order of their
/// keys, each `u32 BE len ‖ key ‖ u32 BE len ‖ value`.
pub fn canonical_context(context: &EncryptionContext) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in context {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

/// The parts of a ciphertext blob.
struct ParsedBlob<'a> {
    key_id: &'a str,
    version: u32,
    /// Length of everything before the nonce.
    prefix_len: usize,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext ‖ tag.
    ciphertext: &'a [u8],
}

fn parse_blob(blob: &[u8]) -> Result<ParsedBlob<'_>, KeyError> {
    let bad = || KeyError::InvalidCiphertext;
    if blob.len() < 5 || &blob[..3] != BLOB_MAGIC || blob[3] != BLOB_VERSION {
        return Err(bad());
    }
    let id_len = blob[4] as usize;
    let id_end = 5 + id_len;
    let prefix_len = id_end + 4;
    if id_len == 0 || blob.len() < prefix_len + NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    let key_id = std::str::from_utf8(&blob[5..id_end]).map_err(|_| bad())?;
    let version = u32::from_be_bytes(blob[id_end..prefix_len].try_into().map_err(|_| bad())?);
    let nonce = blob[prefix_len..prefix_len + NONCE_LEN].try_into().map_err(|_| bad())?;
    let ciphertext = &blob[prefix_len + NONCE_LEN..];
    if ciphertext.len() > MAX_BLOB_PLAINTEXT + TAG_LEN {
        return Err(bad());
    }
    Ok(ParsedBlob { key_id, version, prefix_len, nonce, ciphertext })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn seal_round_trip_and_binding() {
        let root = [7u8; 32];
        let sealed = seal(&root, b"material", b"key-1/v1");
        assert_eq!(&open(&root, &sealed, b"key-1/v1").unwrap()[..], b"material");
        assert_eq!(open(&root, &sealed, b"key-1/v2"), Err(KeyError::InvalidCiphertext));
        assert_eq!(open(&[8u8; 32], &sealed, b"key-1/v1"), Err(KeyError::InvalidCiphertext));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&root, &bad, b"key-1/v1"), Err(KeyError::InvalidCiphertext), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert_eq!(open(&root, &sealed[..len], b"key-1/v1"), Err(KeyError::InvalidCiphertext));
        }
        // Random nonce: two seals differ.
        assert_ne!(seal(&root, b"material", b""), seal(&root, b"material", b""));
        assert!(open(&root, &seal(&root, b"", b""), b"").unwrap().is_empty());
    }

    #[test]
    fn blob_round_trip() {
        let material = [3u8; 32];
        let context = ctx(&[("thing", "cam-7"), ("purpose", "upload")]);
        let blob = encrypt_blob("alias-or-id", 42, &material, b"data key bytes", &context).unwrap();
        assert_eq!(blob_key(&blob).unwrap(), ("alias-or-id".to_string(), 42));
        assert_eq!(&decrypt_blob(&material, &blob, &context).unwrap()[..], b"data key bytes");
        assert!(&blob.starts_with(b"TPK\x01\x0balias-or-id\x00\x00\x00\x2a"));
    }

    #[test]
    fn blob_context_key_and_tamper() {
        let material = [3u8; 32];
        let context = ctx(&[("a", "1")]);
        let blob = encrypt_blob("k", 1, &material, b"secret", &context).unwrap();
        let fail = Err(KeyError::InvalidCiphertext);
        assert_eq!(decrypt_blob(&material, &blob, &ctx(&[])), fail);
        assert_eq!(decrypt_blob(&material, &blob, &ctx(&[("a", "2")])), fail);
        assert_eq!(decrypt_blob(&material, &blob, &ctx(&[("a", "1"), ("b", "")])), fail);
        assert_eq!(decrypt_blob(&[4u8; 32], &blob, &context), fail);
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x80;
            assert_eq!(decrypt_blob(&material, &bad, &context), fail, "byte {i}");
        }
        for len in 0..blob.len() {
            assert_eq!(decrypt_blob(&material, &blob[..len], &context), fail, "length {len}");
        }
        assert_eq!(blob_key(b"TPK"), Err(KeyError::InvalidCiphertext));
        assert_eq!(blob_key(b"XYZ\x01\x01k\x00\x00\x00\x01"), Err(KeyError::InvalidCiphertext));
    }

    #[test]
    fn context_is_unambiguous() {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        assert_ne!(canonical_context(&ctx(&[("ab", "c")])), canonical_context(&ctx(&[("a", "bc")])));
        assert_eq!(canonical_context(&ctx(&[("b", "2"), ("a", "1")])), b"\0\0\0\x01a\0\0\0\x011\0\0\0\x01b\0\0\0\x012");
        assert!(canonical_context(&ctx(&[])).is_empty());
    }

    #[test]
    fn blob_limits() {
        let material = [3u8; 32];
        let none = ctx(&[]);
        assert!(encrypt_blob("k", 1, &material, &[0u8; MAX_BLOB_PLAINTEXT], &none).is_ok());
        assert_eq!(
            encrypt_blob("k", 1, &material, &[0u8; MAX_BLOB_PLAINTEXT + 1], &none),
            Err(KeyError::TooLarge { len: MAX_BLOB_PLAINTEXT + 1, max: MAX_BLOB_PLAINTEXT })
        );
        assert!(matches!(encrypt_blob("", 1, &material, b"x", &none), Err(KeyError::InvalidArgument(_))));
        assert!(matches!(encrypt_blob(&"k".repeat(256), 1, &material, b"x", &none), Err(KeyError::InvalidArgument(_))));
        assert!(encrypt_blob(&"k".repeat(255), 1, &material, b"x", &none).is_ok());
        assert!(matches!(encrypt_blob("k", 1, &[0u8; 16], b"x", &none), Err(KeyError::InvalidKeyLength(_))));
    }
}

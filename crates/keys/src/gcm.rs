//! AES-256-GCM and randomness, shared by every format in the crate.
//!
//! All three formats (ECIES wraps, sealed material and ciphertext blobs,
//! envelope chunks) use AES-256-GCM with a 12-byte nonce and a 16-byte tag;
//! this module is the one place that builds keys and draws nonces.

use aws_lc_rs::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::KeyError;

/// AES-256 key length.
pub(crate) const KEY_LEN: usize = 32;
/// GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// An AES-256-GCM key; `what` names the key in the error for a wrong length.
pub(crate) fn key(bytes: &[u8], what: &str) -> Result<LessSafeKey, KeyError> {
    if bytes.len() != KEY_LEN {
        return Err(KeyError::InvalidKeyLength(format!("{what} must be {KEY_LEN} bytes, got {}", bytes.len())));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::Crypto("AES-256-GCM key setup"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Fills `out` from the system's secure random number generator.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), KeyError> {
    SystemRandom::new().fill(out).map_err(|_| KeyError::Crypto("random number generation"))
}

/// A fresh random nonce.
pub(crate) fn random_nonce() -> Result<[u8; NONCE_LEN], KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    Ok(nonce)
}

/// Encrypts `in_out[start..]` in place and appends the tag.
pub(crate) fn seal_tail(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut Vec<u8>,
    start: usize,
) -> Result<(), KeyError> {
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut in_out[start..],
        )
        .map_err(|_| KeyError::Crypto("AES-256-GCM encryption"))?;
    in_out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Decrypts `in_out[start..]` (ciphertext ‖ tag) in place and drops the tag.
/// On failure the bytes from `start` are wiped and cut off, so no
/// unauthenticated byte stays, and `failure` is returned.
pub(crate) fn open_tail(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut Vec<u8>,
    start: usize,
    failure: KeyError,
) -> Result<(), KeyError> {
    let opened = key
        .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), &mut in_out[start..])
        .map(|plaintext| plaintext.len());
    match opened {
        Ok(len) => {
            in_out.truncate(start + len);
            Ok(())
        }
        Err(_) => {
            in_out[start..].fill(0);
            in_out.truncate(start);
            Err(failure)
        }
    }
}

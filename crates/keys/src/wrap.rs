//! Wrapping a data key for one device: only the holder of the private key
//! behind the device's certificate can unwrap it.
//!
//! The scheme follows the certificate's key:
//!
//! * **RSA** (2048–4096 bits): RSAES-OAEP with SHA-256 and MGF1-SHA-256, no
//!   label ([`WrapAlgorithm::RsaOaepSha256`], the same as AWS KMS's
//!   `RSAES_OAEP_SHA_256`). The wrapped key is the bare OAEP ciphertext
//!   (as long as the modulus).
//! * **EC P-256 / P-384**: ECIES v1, defined here and in
//!   `docs/payload-keys.md`:
//!
//! ```text
//! 0x01 ‖ curve (0x01 P-256, 0x02 P-384) ‖ ephemeral point (uncompressed SEC1, 65 / 97 bytes)
//!      ‖ nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)
//! key  = HKDF-SHA256(IKM = ECDH x-coordinate, salt = ephemeral point ‖ recipient point,
//!                    info = "thingport-ecies-v1", L = 32)
//! AAD  = the first two bytes ‖ ephemeral point
//! ```
//!
//! Unwrapping never says why it failed ([`KeyError::UnwrapFailed`] for a
//! wrong key, an altered byte or a malformed input alike).

use std::fmt;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    OAEP_SHA256_MGF1SHA256,
};
use zeroize::Zeroizing;

use crate::gcm::{self, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::keyinfo::{self, Curve, PrivateKind, PublicKeyInfo};
use crate::KeyError;

/// Longest data key [`wrap`] accepts: what RSA-2048 OAEP-SHA-256 can carry
/// (256 − 2·32 − 2 bytes). The same limit holds for every algorithm, so a
/// data key that can be wrapped for one device can be wrapped for any.
pub const MAX_WRAPPED_KEY_LEN: usize = 190;

/// ECIES format version (first byte of an ECIES-wrapped key).
const ECIES_VERSION: u8 = 0x01;
/// HKDF `info` of ECIES v1.
const ECIES_INFO: &[u8] = b"thingport-ecies-v1";

/// How a data key is wrapped for a device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapAlgorithm {
    /// RSAES-OAEP, SHA-256 and MGF1-SHA-256, no label (`RSAES_OAEP_SHA_256`).
    RsaOaepSha256,
    /// ECIES v1 on P-256 (`ECIES_P256_HKDF_SHA256_AES_256_GCM`).
    EciesP256,
    /// ECIES v1 on P-384 (`ECIES_P384_HKDF_SHA256_AES_256_GCM`).
    EciesP384,
}

impl WrapAlgorithm {
    /// Every algorithm, in the order of the enum.
    pub const ALL: [WrapAlgorithm; 3] =
        [WrapAlgorithm::RsaOaepSha256, WrapAlgorithm::EciesP256, WrapAlgorithm::EciesP384];

    /// The name used in APIs: `RSAES_OAEP_SHA_256`, `ECIES_P256_HKDF_SHA256_AES_256_GCM`,
    /// `ECIES_P384_HKDF_SHA256_AES_256_GCM`.
    pub fn name(self) -> &'static str {
        match self {
            WrapAlgorithm::RsaOaepSha256 => "RSAES_OAEP_SHA_256",
            WrapAlgorithm::EciesP256 => "ECIES_P256_HKDF_SHA256_AES_256_GCM",
            WrapAlgorithm::EciesP384 => "ECIES_P384_HKDF_SHA256_AES_256_GCM",
        }
    }

    /// The algorithm with this [`name`](Self::name) (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        WrapAlgorithm::ALL.into_iter().find(|alg| alg.name() == s)
    }

    /// The curve byte of an ECIES-wrapped key.
    fn curve_byte(curve: Curve) -> u8 {
        match curve {
            Curve::P256 => 0x01,
            Curve::P384 => 0x02,
        }
    }
}

impl fmt::Display for WrapAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SubjectPublicKeyInfo DER of an X.509 certificate (DER).
pub fn spki_from_certificate(cert_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| KeyError::InvalidCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(KeyError::InvalidCertificate(format!("{} bytes after the certificate", rest.len())));
    }
    Ok(cert.public_key().raw.to_vec())
}

/// The wrap algorithm for a public key (SubjectPublicKeyInfo DER): RSA of
/// 2048–4096 bits, EC P-256 or EC P-384. Anything else (Ed25519, P-521,
/// RSA-1024, …) is [`KeyError::UnsupportedKey`].
pub fn algorithm_for(spki_der: &[u8]) -> Result<WrapAlgorithm, KeyError> {
    Ok(match keyinfo::parse_spki(spki_der)? {
        PublicKeyInfo::Rsa { .. } => WrapAlgorithm::RsaOaepSha256,
        PublicKeyInfo::Ec { curve: Curve::P256, .. } => WrapAlgorithm::EciesP256,
        PublicKeyInfo::Ec { curve: Curve::P384, .. } => WrapAlgorithm::EciesP384,
    })
}

/// Wrap `data_key` (1 to [`MAX_WRAPPED_KEY_LEN`] bytes) for the holder of the
/// private key of `spki_der`. Randomised: wrapping twice gives different bytes.
pub fn wrap(spki_der: &[u8], data_key: &[u8]) -> Result<(WrapAlgorithm, Vec<u8>), KeyError> {
    if data_key.is_empty() || data_key.len() > MAX_WRAPPED_KEY_LEN {
        return Err(KeyError::InvalidKeyLength(format!(
            "a data key to wrap must be 1 to {MAX_WRAPPED_KEY_LEN} bytes, got {}",
            data_key.len()
        )));
    }
    match keyinfo::parse_spki(spki_der)? {
        PublicKeyInfo::Rsa { .. } => {
            let public = PublicEncryptingKey::from_der(spki_der)
                .map_err(|e| KeyError::InvalidPublicKey(format!("RSA key rejected: {e}")))?;
            let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| KeyError::Crypto("RSA-OAEP key setup"))?;
            let mut out = vec![0u8; oaep.ciphertext_size()];
            let len = oaep
                .encrypt(&OAEP_SHA256_MGF1SHA256, data_key, &mut out, None)
                .map_err(|_| KeyError::Crypto("RSA-OAEP encryption"))?
                .len();
            out.truncate(len);
            Ok((WrapAlgorithm::RsaOaepSha256, out))
        }
        PublicKeyInfo::Ec { curve, point } => {
            let alg = match curve {
                Curve::P256 => WrapAlgorithm::EciesP256,
                Curve::P384 => WrapAlgorithm::EciesP384,
            };
            Ok((alg, ecies_wrap(curve, &point, data_key)?))
        }
    }
}

/// Device side: unwrap with the PEM private key (PKCS#8, SEC1
/// `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`). The scheme follows the key.
pub fn unwrap(private_key_pem: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key = keyinfo::load_private_key(private_key_pem)?;
    match key.kind {
        PrivateKind::Rsa => {
            let private = PrivateDecryptingKey::from_pkcs8(&key.der)
                .map_err(|e| KeyError::InvalidPrivateKey(format!("RSA key rejected: {e}")))?;
            let oaep = OaepPrivateDecryptingKey::new(private).map_err(|_| KeyError::Crypto("RSA-OAEP key setup"))?;
            if wrapped.len() != oaep.key_size_bytes() {
                return Err(KeyError::UnwrapFailed);
            }
            let mut out = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
            let len = oaep
                .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, None)
                .map_err(|_| KeyError::UnwrapFailed)?
                .len();
            out.truncate(len);
            if out.is_empty() {
                return Err(KeyError::UnwrapFailed);
            }
            Ok(out)
        }
        PrivateKind::Ec(curve) => ecies_unwrap(curve, &key.der, wrapped),
    }
}

/// ECIES v1 encryption of `data_key` for `recipient_point` (uncompressed).
fn ecies_wrap(curve: Curve, recipient_point: &[u8], data_key: &[u8]) -> Result<Vec<u8>, KeyError> {
    let ephemeral = EphemeralPrivateKey::generate(curve.agreement(), &SystemRandom::new())
        .map_err(|_| KeyError::Crypto("ECDH key generation"))?;
    let ephemeral_public = ephemeral.compute_public_key().map_err(|_| KeyError::Crypto("ECDH public key"))?;
    let ephemeral_point = ephemeral_public.as_ref();
    if ephemeral_point.len() != curve.point_len() {
        return Err(KeyError::Crypto("ECDH public key has an unexpected length"));
    }
    let key = agreement::agree_ephemeral(
        ephemeral,
        UnparsedPublicKey::new(curve.agreement(), recipient_point),
        KeyError::Crypto("ECDH key agreement"),
        |shared| derive_key(shared, ephemeral_point, recipient_point),
    )?;
    let aead_key = gcm::key(&key[..], "ECIES key")?;

    let header_len = 2 + curve.point_len();
    let mut out = Vec::with_capacity(header_len + NONCE_LEN + data_key.len() + TAG_LEN);
    out.push(ECIES_VERSION);
    out.push(WrapAlgorithm::curve_byte(curve));
    out.extend_from_slice(ephemeral_point);
    let nonce = gcm::random_nonce()?;
    out.extend_from_slice(&nonce);
    let aad = out[..header_len].to_vec();
    let start = out.len();
    out.extend_from_slice(data_key);
    gcm::seal_tail(&aead_key, nonce, &aad, &mut out, start)?;
    Ok(out)
}

/// ECIES v1 decryption with the device's PKCS#8 key on `curve`.
fn ecies_unwrap(curve: Curve, pkcs8: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let point_len = curve.point_len();
    let header_len = 2 + point_len;
    if wrapped.len() <= header_len + NONCE_LEN + TAG_LEN
        || wrapped[0] != ECIES_VERSION
        || wrapped[1] != WrapAlgorithm::curve_byte(curve)
        || wrapped[2] != 0x04
    {
        return Err(KeyError::UnwrapFailed);
    }
    let ephemeral_point = &wrapped[2..header_len];
    let nonce: [u8; NONCE_LEN] =
        wrapped[header_len..header_len + NONCE_LEN].try_into().map_err(|_| KeyError::UnwrapFailed)?;
    let ciphertext = &wrapped[header_len + NONCE_LEN..];

    let private = agreement::PrivateKey::from_private_key_der(curve.agreement(), pkcs8)
        .map_err(|e| KeyError::InvalidPrivateKey(format!("EC {} key rejected: {e}", curve.name())))?;
    let own_public = private.compute_public_key().map_err(|_| KeyError::Crypto("ECDH public key"))?;
    let key = agreement::agree(
        &private,
        UnparsedPublicKey::new(curve.agreement(), ephemeral_point),
        KeyError::UnwrapFailed,
        |shared| derive_key(shared, ephemeral_point, own_public.as_ref()),
    )?;
    let aead_key = gcm::key(&key[..], "ECIES key")?;

    let mut out = Zeroizing::new(ciphertext.to_vec());
    gcm::open_tail(&aead_key, nonce, &wrapped[..header_len], &mut out, 0, KeyError::UnwrapFailed)?;
    Ok(out)
}

/// HKDF-SHA256(IKM = shared secret, salt = ephemeral point ‖ recipient point,
/// info = "thingport-ecies-v1", L = 32).
fn derive_key(
    shared: &[u8],
    ephemeral_point: &[u8],
    recipient_point: &[u8],
) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let mut salt = Vec::with_capacity(ephemeral_point.len() + recipient_point.len());
    salt.extend_from_slice(ephemeral_point);
    salt.extend_from_slice(recipient_point);
    let prk = Salt::new(HKDF_SHA256, &salt).extract(shared);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    prk.expand(&[ECIES_INFO], HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key[..]))
        .map_err(|_| KeyError::Crypto("HKDF"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in WrapAlgorithm::ALL {
            assert_eq!(WrapAlgorithm::parse(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
        assert_eq!(WrapAlgorithm::parse("rsaes_oaep_sha_256"), None);
        assert_eq!(WrapAlgorithm::parse("RSAES_OAEP_SHA_1"), None);
    }

    #[test]
    fn hkdf_matches_rfc5869_structure() {
        // The derived key depends on every input.
        let a = derive_key(b"secret", b"eph", b"rcpt").unwrap();
        assert_ne!(*a, *derive_key(b"secreu", b"eph", b"rcpt").unwrap());
        assert_ne!(*a, *derive_key(b"secret", b"epg", b"rcpt").unwrap());
        assert_ne!(*a, *derive_key(b"secret", b"eph", b"rcpu").unwrap());
        // Salt is the plain concatenation (documented), so moving the boundary does not matter.
        assert_eq!(*a, *derive_key(b"secret", b"ephr", b"cpt").unwrap());
    }
}

//! Telling what a device key is: the algorithm, curve and size behind a
//! SubjectPublicKeyInfo or a PEM private key.
//!
//! Both wrapping (which scheme to use for a certificate) and envelope
//! signatures (which signature algorithm a device key implies) need the same
//! answer, so it is worked out once here. Private keys arrive in whatever PEM
//! form the device's tooling wrote; [`pki::normalize_private_key`] turns them
//! into PKCS#8, and the DER is kept in a [`Zeroizing`] buffer from then on.

use aws_lc_rs::agreement;
use aws_lc_rs::rsa::PublicEncryptingKey;
use aws_lc_rs::signature::{
    self, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_ASN1_SIGNING,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;
use zeroize::Zeroizing;

use crate::KeyError;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_X25519: &str = "1.3.101.110";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// Smallest RSA modulus accepted (bits).
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted (bits).
pub(crate) const RSA_MAX_BITS: usize = 4096;

/// The elliptic curves supported for ECIES and ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// The ECDH algorithm on this curve.
    pub(crate) fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
        }
    }

    /// Length of an uncompressed SEC1 point (`0x04 ‖ X ‖ Y`).
    pub(crate) fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }

    /// ECDSA verification with the hash that goes with the curve, ASN.1 DER signatures.
    pub(crate) fn ecdsa_verification(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &ECDSA_P384_SHA384_ASN1,
        }
    }

    /// ECDSA signing with the hash that goes with the curve, ASN.1 DER signatures.
    pub(crate) fn ecdsa_signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    /// "P-256" / "P-384".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }
}

/// A device public key, as far as this crate cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyInfo {
    /// RSA with a modulus of `bits` bits (already checked to be 2048..=4096).
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// EC on a supported curve, with its point uncompressed (`0x04 ‖ X ‖ Y`).
    Ec {
        /// The curve.
        curve: Curve,
        /// The uncompressed point.
        point: Vec<u8>,
    },
}

/// Parses and checks a SubjectPublicKeyInfo (DER).
pub(crate) fn parse_spki(spki_der: &[u8]) -> Result<PublicKeyInfo, KeyError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| KeyError::InvalidPublicKey(format!("not a SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(KeyError::InvalidPublicKey(format!("{} bytes after the SubjectPublicKeyInfo", rest.len())));
    }
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA_ENCRYPTION => {
            let key = PublicEncryptingKey::from_der(spki_der)
                .map_err(|e| KeyError::InvalidPublicKey(format!("RSA key rejected: {e}")))?;
            let bits = key.key_size_bits();
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(KeyError::UnsupportedKey(format!("RSA with {bits} bits")));
            }
            Ok(PublicKeyInfo::Rsa { bits })
        }
        OID_EC_PUBLIC_KEY => {
            let curve_oid =
                spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|oid| oid.to_id_string());
            let curve = match curve_oid.as_deref() {
                Some(OID_P256) => Curve::P256,
                Some(OID_P384) => Curve::P384,
                Some(OID_P521) => return Err(KeyError::UnsupportedKey("EC P-521".into())),
                Some(other) => return Err(KeyError::UnsupportedKey(format!("EC on the curve {other}"))),
                None => return Err(KeyError::UnsupportedKey("EC without a named curve".into())),
            };
            let point = spki.subject_public_key.data.as_ref();
            if point.first() != Some(&0x04) || point.len() != curve.point_len() {
                return Err(KeyError::UnsupportedKey(format!(
                    "EC {} key whose point is not uncompressed ({} bytes)",
                    curve.name(),
                    point.len()
                )));
            }
            // Checks the point is on the curve.
            agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(curve.agreement(), point))
                .map_err(|e| KeyError::InvalidPublicKey(format!("EC {} point rejected: {e}", curve.name())))?;
            Ok(PublicKeyInfo::Ec { curve, point: point.to_vec() })
        }
        OID_ED25519 => Err(KeyError::UnsupportedKey("Ed25519".into())),
        OID_ED448 => Err(KeyError::UnsupportedKey("Ed448".into())),
        OID_X25519 => Err(KeyError::UnsupportedKey("X25519".into())),
        OID_RSASSA_PSS => Err(KeyError::UnsupportedKey("RSASSA-PSS-only RSA key".into())),
        other => Err(KeyError::UnsupportedKey(format!("key algorithm {other}"))),
    }
}

/// Kinds of private key this crate can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrivateKind {
    /// RSA (any size aws-lc-rs accepts; sizes are checked where they matter).
    Rsa,
    /// EC on a supported curve.
    Ec(Curve),
}

/// A private key as PKCS#8 DER, wiped from memory when dropped. No `Debug`.
pub(crate) struct PrivateKeyDer {
    /// What the key is.
    pub(crate) kind: PrivateKind,
    /// PKCS#8 `PrivateKeyInfo`.
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Reads a PEM private key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub(crate) fn load_private_key(private_key_pem: &str) -> Result<PrivateKeyDer, KeyError> {
    // PkiError messages describe the form of the key, never its bytes.
    let normalized =
        pki::normalize_private_key(private_key_pem).map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
    let der = Zeroizing::new(
        pem::parse(normalized.expose())
            .map_err(|_| KeyError::InvalidPrivateKey("normalized key is not PEM".into()))?
            .into_contents(),
    );
    for curve in [Curve::P256, Curve::P384] {
        if agreement::PrivateKey::from_private_key_der(curve.agreement(), &der).is_ok() {
            return Ok(PrivateKeyDer { kind: PrivateKind::Ec(curve), der });
        }
    }
    if signature::RsaKeyPair::from_pkcs8(&der).is_ok() {
        return Ok(PrivateKeyDer { kind: PrivateKind::Rsa, der });
    }
    Err(KeyError::UnsupportedKey("private key is neither RSA nor EC P-256/P-384 (Ed25519 or EC P-521?)".into()))
}

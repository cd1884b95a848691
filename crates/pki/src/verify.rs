//! Public-key classification and signature checks with aws-lc-rs.
//!
//! rcgen's `CertificateSigningRequestParams::from_pem` does verify a CSR's
//! signature (through x509-parser), but it cannot be used for device CSRs: it
//! reports P-521 keys and RSA-1024 keys as "invalid signature", it takes the
//! key's curve from the *signature* algorithm (a P-384 key signed with SHA-256,
//! OpenSSL's default, would be re-encoded as a P-256 key), and it refuses CSRs
//! that request extensions it does not model (e.g. subjectKeyIdentifier).
//! Thingport therefore classifies keys itself (for errors such as "RSA keys
//! must be at least 2048 bits") and maps each (signature algorithm, key) pair
//! to an aws-lc-rs verifier here. The same code backs [`verify_signed_by`].

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::PkiError;

pub(crate) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
pub(crate) const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// Smallest and largest RSA modulus Thingport accepts (aws-lc-rs verifies 2048-8192).
pub(crate) const RSA_MIN_BITS: u32 = 2048;
pub(crate) const RSA_MAX_BITS: u32 = 8192;

/// A named elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub(crate) fn bits(self) -> u32 {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }
}

/// What kind of key a SubjectPublicKeyInfo holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa {
        bits: u32,
    },
    Ec(Curve),
    /// EC on a curve we do not support; carries the curve OID (or a note).
    EcOther(String),
    Ed25519,
    /// Anything else; carries the algorithm OID.
    Other(String),
}

impl KeyKind {
    /// Classifies a public key. Never fails: unknown keys become `Other`.
    pub(crate) fn of(spki: &SubjectPublicKeyInfo<'_>) -> KeyKind {
        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            OID_RSA_ENCRYPTION => match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyKind::Rsa { bits: modulus_bits(rsa.modulus) },
                _ => KeyKind::Other("RSA (unparsable public key)".into()),
            },
            OID_RSASSA_PSS => KeyKind::Other("RSASSA-PSS key (1.2.840.113549.1.1.10)".into()),
            OID_EC_PUBLIC_KEY => {
                let curve =
                    spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|oid| oid.to_id_string());
                match curve.as_deref() {
                    Some(OID_P256) => KeyKind::Ec(Curve::P256),
                    Some(OID_P384) => KeyKind::Ec(Curve::P384),
                    Some(OID_P521) => KeyKind::Ec(Curve::P521),
                    Some(other) => KeyKind::EcOther(format!("EC curve {}", curve_name(other))),
                    None => KeyKind::EcOther("EC with explicit or missing curve parameters".into()),
                }
            }
            OID_ED25519 => KeyKind::Ed25519,
            other => KeyKind::Other(format!("with OID {other}")),
        }
    }

    /// "RSA", "EC", "Ed25519" or the OID description.
    pub(crate) fn algorithm_name(&self) -> String {
        match self {
            KeyKind::Rsa { .. } => "RSA".into(),
            KeyKind::Ec(_) | KeyKind::EcOther(_) => "EC".into(),
            KeyKind::Ed25519 => "Ed25519".into(),
            KeyKind::Other(s) => s.clone(),
        }
    }

    /// Modulus bits for RSA, curve size for EC, 256 for Ed25519, else 0.
    pub(crate) fn bits(&self) -> u32 {
        match self {
            KeyKind::Rsa { bits } => *bits,
            KeyKind::Ec(c) => c.bits(),
            KeyKind::Ed25519 => 256,
            _ => 0,
        }
    }

    /// Accepts exactly the device keys AWS IoT accepts: RSA 2048-8192, EC P-256/P-384/P-521.
    pub(crate) fn check_device_key(&self) -> Result<(), PkiError> {
        match self {
            KeyKind::Rsa { bits } if *bits < RSA_MIN_BITS => Err(PkiError::RsaKeyTooSmall { bits: *bits }),
            KeyKind::Rsa { bits } if *bits > RSA_MAX_BITS => Err(PkiError::RsaKeyTooLarge { bits: *bits }),
            KeyKind::Rsa { .. } | KeyKind::Ec(_) => Ok(()),
            KeyKind::EcOther(s) => Err(PkiError::UnsupportedKeyAlgorithm(s.clone())),
            KeyKind::Ed25519 => Err(PkiError::UnsupportedKeyAlgorithm("Ed25519".into())),
            KeyKind::Other(s) => Err(PkiError::UnsupportedKeyAlgorithm(s.clone())),
        }
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.3.132.0.10" => "secp256k1 (1.3.132.0.10)".into(),
        "1.2.840.10045.3.1.1" => "P-192 (1.2.840.10045.3.1.1)".into(),
        "1.3.132.0.33" => "P-224 (1.3.132.0.33)".into(),
        o if o.starts_with("1.3.36.3.3.2.8.1.1.") => format!("brainpool ({o})"),
        o => o.to_owned(),
    }
}

/// Bit length of a big-endian unsigned integer (DER INTEGER content).
pub(crate) fn modulus_bits(modulus: &[u8]) -> u32 {
    let Some(first) = modulus.iter().position(|b| *b != 0) else {
        return 0;
    };
    let significant = &modulus[first..];
    let len = u32::try_from(significant.len()).unwrap_or(u32::MAX / 8);
    (len - 1) * 8 + (8 - significant[0].leading_zeros())
}

/// Verifies `signature` over `data` made by the key in `spki`.
///
/// `Ok(false)` means the signature is well-formed input but wrong;
/// `Err` means the algorithm or key is not supported.
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    signature_algorithm: &AlgorithmIdentifier<'_>,
    signature: &[u8],
    data: &[u8],
) -> Result<bool, PkiError> {
    let sig_oid = signature_algorithm.algorithm.to_id_string();
    let kind = KeyKind::of(spki);
    let mismatch = || {
        PkiError::UnsupportedSignatureAlgorithm(format!(
            "{} with a {} key",
            signature_name(&sig_oid),
            kind.algorithm_name()
        ))
    };

    if sig_oid == OID_RSASSA_PSS {
        if !matches!(kind, KeyKind::Rsa { .. }) {
            return Err(mismatch());
        }
        check_rsa_size(&kind)?;
        let alg = pss_algorithm(signature_algorithm)?;
        let key = UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref());
        return Ok(key.verify(data, signature).is_ok());
    }

    let alg: &'static dyn VerificationAlgorithm = match (sig_oid.as_str(), &kind) {
        ("1.2.840.113549.1.1.11", KeyKind::Rsa { .. }) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", KeyKind::Rsa { .. }) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", KeyKind::Rsa { .. }) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", KeyKind::Ec(Curve::P256)) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::Ec(Curve::P256)) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyKind::Ec(Curve::P256)) => &signature::ECDSA_P256_SHA512_ASN1,
        ("1.2.840.10045.4.3.2", KeyKind::Ec(Curve::P384)) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::Ec(Curve::P384)) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyKind::Ec(Curve::P384)) => &signature::ECDSA_P384_SHA512_ASN1,
        ("1.2.840.10045.4.3.2", KeyKind::Ec(Curve::P521)) => &signature::ECDSA_P521_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::Ec(Curve::P521)) => &signature::ECDSA_P521_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyKind::Ec(Curve::P521)) => &signature::ECDSA_P521_SHA512_ASN1,
        (OID_ED25519, KeyKind::Ed25519) => &signature::ED25519,
        (
            "1.2.840.113549.1.1.11"
            | "1.2.840.113549.1.1.12"
            | "1.2.840.113549.1.1.13"
            | "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.2.840.10045.4.3.4"
            | OID_ED25519,
            _,
        ) => {
            // A known signature algorithm with a key it cannot go with. If the key
            // itself is unsupported, that is the more useful thing to report.
            if matches!(kind, KeyKind::EcOther(_) | KeyKind::Other(_)) {
                kind.check_device_key()?;
            }
            return Err(mismatch());
        }
        _ => return Err(PkiError::UnsupportedSignatureAlgorithm(signature_name(&sig_oid).to_owned())),
    };
    check_rsa_size(&kind)?;
    let key = UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref());
    Ok(key.verify(data, signature).is_ok())
}

/// Maps RSASSA-PSS parameters to an aws-lc-rs verifier. aws-lc-rs (like
/// webpki) verifies PSS only with MGF1 over the same hash and a salt as long as
/// the hash, which is also what TLS 1.3 uses.
fn pss_algorithm(
    signature_algorithm: &AlgorithmIdentifier<'_>,
) -> Result<&'static dyn VerificationAlgorithm, PkiError> {
    let unsupported = |why: String| {
        PkiError::UnsupportedSignatureAlgorithm(format!(
            "RSASSA-PSS {why}; PSS needs SHA-256/384/512, MGF1 with the same hash and a salt as long as the hash (openssl: -sigopt rsa_pss_saltlen:digest)"
        ))
    };
    let params = signature_algorithm.parameters.as_ref().ok_or_else(|| unsupported("without parameters".into()))?;
    let params =
        RsaSsaPssParams::try_from(params).map_err(|e| unsupported(format!("with unreadable parameters ({e})")))?;
    let hash = params.hash_algorithm_oid().to_id_string();
    let (alg, hash_len): (&'static dyn VerificationAlgorithm, u32) = match hash.as_str() {
        "2.16.840.1.101.3.4.2.1" => (&signature::RSA_PSS_2048_8192_SHA256, 32),
        "2.16.840.1.101.3.4.2.2" => (&signature::RSA_PSS_2048_8192_SHA384, 48),
        "2.16.840.1.101.3.4.2.3" => (&signature::RSA_PSS_2048_8192_SHA512, 64),
        "1.3.14.3.2.26" => return Err(unsupported("with SHA-1 (SHA-1 is not accepted)".into())),
        other => return Err(unsupported(format!("with hash {other}"))),
    };
    let mgf = params
        .mask_gen_algorithm()
        .map_err(|e| unsupported(format!("with an unreadable mask generation function ({e})")))?;
    if mgf.mgf.to_id_string() != "1.2.840.113549.1.1.8" || mgf.hash.to_id_string() != hash {
        return Err(unsupported("with a mask generation function other than MGF1 over the signature hash".into()));
    }
    if params.salt_length() != hash_len {
        return Err(unsupported(format!("with a {}-byte salt", params.salt_length())));
    }
    if params.trailer_field() != 1 {
        return Err(unsupported("with a non-standard trailer field".into()));
    }
    Ok(alg)
}

fn check_rsa_size(kind: &KeyKind) -> Result<(), PkiError> {
    match kind {
        KeyKind::Rsa { bits } if *bits < RSA_MIN_BITS => Err(PkiError::RsaKeyTooSmall { bits: *bits }),
        KeyKind::Rsa { bits } if *bits > RSA_MAX_BITS => Err(PkiError::RsaKeyTooLarge { bits: *bits }),
        _ => Ok(()),
    }
}

fn signature_name(oid: &str) -> &str {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption (MD5 is not accepted)",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "sha1WithRSAEncryption (SHA-1 is not accepted)",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1 (SHA-1 is not accepted)",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        OID_ED25519 => "Ed25519",
        other => other,
    }
}

/// true when `cert_der` is signed by `issuer_der`'s key (signature check only).
///
/// Names, validity and extensions are not looked at; TLS handshakes do the full
/// path validation. Errors mean one of the inputs is not a certificate or uses an
/// algorithm that cannot be checked.
pub fn verify_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<bool, PkiError> {
    let cert = parse_x509(cert_der)?;
    let issuer = parse_x509(issuer_der)?;
    verify_signature(
        issuer.public_key(),
        &cert.signature_algorithm,
        cert.signature_value.data.as_ref(),
        cert.tbs_certificate.as_ref(),
    )
}

/// Parses DER as X.509, refusing trailing bytes.
pub(crate) fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::MalformedCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::MalformedCertificate(format!("{} unexpected bytes after the certificate", rest.len())));
    }
    Ok(cert)
}

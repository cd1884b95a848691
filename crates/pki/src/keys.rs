//! Private keys: generation, import, and device CSRs.
//!
//! Operators and devices hand us keys in whatever form their tooling wrote:
//! OpenSSL 3 writes PKCS#8 (`PRIVATE KEY`), older tools and `openssl ecparam` /
//! `genrsa -traditional` write SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
//! Inside Thingport every key is PKCS#8, so this module converts once at the
//! boundary and hands the result out as a [`PrivateKeyPem`], whose `Debug` output
//! never contains the key.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    ECDSA_P521_SHA512_ASN1_SIGNING,
};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PKCS_RSA_SHA256,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use crate::encoding::encode_pem;
use crate::PkiError;

/// The key types Thingport generates for devices (the same set AWS IoT accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// ECDSA on NIST P-256 (the default: small and fast).
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
}

const ACCEPTED_KEY_TYPES: &str =
    "ec, ec-p256, p256, ec-p384, p384, rsa, rsa2048, rsa-2048, rsa3072, rsa-3072, rsa4096, rsa-4096";

impl KeyType {
    /// Every key type, in the order of the enum.
    pub const ALL: [KeyType; 5] =
        [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096];

    /// Canonical name, accepted back by [`FromStr`]: `ec-p256`, `ec-p384`, `rsa-2048`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// True for the RSA variants.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ec" | "ec-p256" | "p256" | "ecp256" | "p-256" | "ec-p-256" => Ok(KeyType::EcP256),
            "ec-p384" | "p384" | "ecp384" | "p-384" | "ec-p-384" => Ok(KeyType::EcP384),
            "rsa" | "rsa2048" | "rsa-2048" => Ok(KeyType::Rsa2048),
            "rsa3072" | "rsa-3072" => Ok(KeyType::Rsa3072),
            "rsa4096" | "rsa-4096" => Ok(KeyType::Rsa4096),
            _ => Err(PkiError::UnknownKeyType { given: s.to_owned(), accepted: ACCEPTED_KEY_TYPES }),
        }
    }
}

/// A private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
///
/// `Debug` prints `<private key>` so that a key can never reach a log line by
/// accident; [`PrivateKeyPem::expose`] is the one deliberate way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// The PEM text. Only for writing the key where it belongs (a file with
    /// restrictive permissions, an API response to the key's owner).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Builds from PKCS#8 DER (the caller has checked it is a usable key).
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Self {
        PrivateKeyPem(encode_pem("PRIVATE KEY", der))
    }

    /// The key as an rcgen signing key.
    pub(crate) fn key_pair(&self) -> Result<KeyPair, PkiError> {
        let block =
            pem::parse(&self.0).map_err(|e| PkiError::InvalidPrivateKey(format!("stored key is not PEM: {e}")))?;
        load_pkcs8(block.contents())
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<private key>")
    }
}

/// Generates a new private key of the given type.
pub fn generate_key(kind: KeyType) -> Result<PrivateKeyPem, PkiError> {
    Ok(PrivateKeyPem::from_pkcs8_der(generate_key_pair(kind)?.serialized_der()))
}

/// Generates a key and returns it as an rcgen key pair, ready to sign or be certified.
pub(crate) fn generate_key_pair(kind: KeyType) -> Result<KeyPair, PkiError> {
    let generated = match kind {
        KeyType::EcP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyType::EcP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096),
    };
    generated.map_err(|e| PkiError::KeyGeneration(format!("{kind}: {e}")))
}

/// Accepts PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY") PEM; returns PKCS#8.
///
/// The first private-key block is used, so files that also hold certificates or
/// `EC PARAMETERS` (as `openssl ecparam -genkey` writes without `-noout`) work.
/// Accepted keys: RSA 2048-8192 bits, EC P-256/P-384/P-521, Ed25519.
pub fn normalize_private_key(pem: &str) -> Result<PrivateKeyPem, PkiError> {
    let der = pkcs8_from_pem(pem)?;
    // Prove that the key is usable for signing before handing it out.
    load_pkcs8(&der)?;
    Ok(PrivateKeyPem::from_pkcs8_der(&der))
}

/// CSR for a device key (subject CN = common_name), PEM.
pub fn make_csr(key: &PrivateKeyPem, common_name: &str) -> Result<String, PkiError> {
    if common_name.trim().is_empty() {
        return Err(PkiError::InvalidSubject { field: "common_name", reason: "must not be empty".into() });
    }
    let key_pair = key.key_pair()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key_pair)?;
    Ok(csr.pem()?)
}

/// Finds the first private key block in `pem` and converts it to PKCS#8 DER.
fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, PkiError> {
    let blocks = pem::parse_many(pem).map_err(|e| PkiError::InvalidPrivateKey(format!("not valid PEM: {e}")))?;
    let block = blocks.iter().find(|b| b.tag().ends_with("PRIVATE KEY")).ok_or_else(|| {
        let found: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
        PkiError::InvalidPrivateKey(if found.is_empty() {
            "no PEM block found; expected -----BEGIN PRIVATE KEY----- (or EC/RSA PRIVATE KEY)".to_owned()
        } else {
            format!(
                "no private key block found (found: {}); expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY",
                found.join(", ")
            )
        })
    })?;

    match block.tag() {
        "PRIVATE KEY" => Ok(block.contents().to_vec()),
        "ENCRYPTED PRIVATE KEY" => Err(PkiError::EncryptedPrivateKey),
        "EC PRIVATE KEY" => {
            if block.headers().get("Proc-Type").is_some() {
                return Err(PkiError::EncryptedPrivateKey);
            }
            sec1_to_pkcs8(block.contents())
        }
        "RSA PRIVATE KEY" => {
            if block.headers().get("Proc-Type").is_some() {
                return Err(PkiError::EncryptedPrivateKey);
            }
            let key = RsaKeyPair::from_der(block.contents()).map_err(|e| {
                PkiError::InvalidPrivateKey(format!(
                    "RSA PRIVATE KEY (PKCS#1) rejected: {e}; RSA keys must be 2048-8192 bits"
                ))
            })?;
            let pkcs8 = key
                .as_der()
                .map_err(|_| PkiError::InvalidPrivateKey("could not re-encode the RSA key as PKCS#8".into()))?;
            Ok(pkcs8.as_ref().to_vec())
        }
        other => Err(PkiError::InvalidPrivateKey(format!(
            "unsupported PEM block {other:?}; expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY"
        ))),
    }
}

/// SEC1 (RFC 5915) EC key to PKCS#8, trying each supported curve.
fn sec1_to_pkcs8(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    const CURVES: [&EcdsaSigningAlgorithm; 3] =
        [&ECDSA_P256_SHA256_ASN1_SIGNING, &ECDSA_P384_SHA384_ASN1_SIGNING, &ECDSA_P521_SHA512_ASN1_SIGNING];
    for alg in CURVES {
        if let Ok(key) = EcdsaKeyPair::from_private_key_der(alg, der) {
            let doc = key
                .to_pkcs8v1()
                .map_err(|_| PkiError::InvalidPrivateKey("could not re-encode the EC key as PKCS#8".into()))?;
            return Ok(doc.as_ref().to_vec());
        }
    }
    Err(PkiError::InvalidPrivateKey(
        "EC PRIVATE KEY (SEC1) could not be read; supported curves are P-256, P-384 and P-521".into(),
    ))
}

/// PKCS#8 DER to an rcgen key pair (algorithm detected from the key).
pub(crate) fn load_pkcs8(der: &[u8]) -> Result<KeyPair, PkiError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der));
    KeyPair::try_from(&der).map_err(|_| {
        PkiError::InvalidPrivateKey(
            "PKCS#8 key could not be loaded; supported keys: RSA 2048-8192 bits, EC P-256, P-384, P-521, Ed25519"
                .into(),
        )
    })
}

//! Device identities for the tests: one certificate and key per key type,
//! issued once by a test CA and shared by every test of a binary.

#![allow(dead_code)]

use std::sync::OnceLock;

use pki::{CertificateAuthority, KeyType, Subject};

/// A device's certificate and private key.
pub struct Device {
    pub kind: KeyType,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub spki: Vec<u8>,
}

fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| CertificateAuthority::generate("Keys Test CA").unwrap())
}

/// The shared device of this key type.
pub fn device(kind: KeyType) -> &'static Device {
    static DEVICES: [OnceLock<Device>; 5] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = KeyType::ALL.iter().position(|k| *k == kind).unwrap();
    DEVICES[slot].get_or_init(|| new_device(kind))
}

/// A fresh device (a different key than [`device`]).
pub fn new_device(kind: KeyType) -> Device {
    let issued = ca().issue_device_certificate(kind, &Subject::with_common_name(format!("dev-{kind}"))).unwrap();
    let cert_der = issued.cert_der().unwrap();
    let spki = keys::spki_from_certificate(&cert_der).unwrap();
    Device { kind, cert_pem: issued.cert_pem, cert_der, key_pem: issued.key.expose().to_owned(), spki }
}

/// An Ed25519 self-signed certificate and its PKCS#8 key (PEM): a key this crate refuses.
pub fn ed25519() -> (Vec<u8>, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ed".to_string()]).unwrap().self_signed(&key).unwrap();
    (cert.der().to_vec(), key.serialize_pem())
}

/// The key types the tests cover (RSA-4096 only where stated: it is slow to make).
pub const KINDS: [KeyType; 4] = [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::EcP256, KeyType::EcP384];

/// The PKCS#8 DER inside a `PRIVATE KEY` PEM.
fn pkcs8_der(pkcs8_pem: &str) -> Vec<u8> {
    let block = pem::parse(pkcs8_pem).unwrap();
    assert_eq!(block.tag(), "PRIVATE KEY");
    block.into_contents()
}

/// Reads one DER TLV at the start of `der`: (tag, content, rest).
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, start) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        other => panic!("DER length form {other:#x} not expected in a test key"),
    };
    (tag, &der[start..start + len], &der[start + len..])
}

/// The same EC key as SEC1 (`EC PRIVATE KEY`) PEM.
pub fn to_sec1_pem(pkcs8_pem: &str, kind: KeyType) -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};
    let alg = match kind {
        KeyType::EcP256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
        KeyType::EcP384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        other => panic!("{other} is not EC"),
    };
    let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8_der(pkcs8_pem)).unwrap();
    let sec1 = pair.private_key().as_der().unwrap();
    pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1.as_ref()))
}

/// The same RSA key as PKCS#1 (`RSA PRIVATE KEY`) PEM: the OCTET STRING inside the PKCS#8.
pub fn to_pkcs1_pem(pkcs8_pem: &str) -> String {
    let der = pkcs8_der(pkcs8_pem);
    let (tag, body, _) = tlv(&der);
    assert_eq!(tag, 0x30);
    let (_, _version, rest) = tlv(body);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, private_key, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    pem::encode(&pem::Pem::new("RSA PRIVATE KEY", private_key))
}

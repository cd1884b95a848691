//! Wrapping data keys for device certificates and unwrapping them with the
//! device's private key, for every supported key type and key encoding, and
//! refusing what must be refused.

mod common;

use common::{device, ed25519, new_device, to_pkcs1_pem, to_sec1_pem, KINDS};
use keys::wrap::MAX_WRAPPED_KEY_LEN;
use keys::{algorithm_for, spki_from_certificate, unwrap, wrap, KeyError, WrapAlgorithm};
use pki::KeyType;

fn expected_algorithm(kind: KeyType) -> WrapAlgorithm {
    match kind {
        KeyType::EcP256 => WrapAlgorithm::EciesP256,
        KeyType::EcP384 => WrapAlgorithm::EciesP384,
        _ => WrapAlgorithm::RsaOaepSha256,
    }
}

fn expected_len(kind: KeyType, data_key_len: usize) -> usize {
    match kind {
        KeyType::EcP256 => 2 + 65 + 12 + data_key_len + 16,
        KeyType::EcP384 => 2 + 97 + 12 + data_key_len + 16,
        KeyType::Rsa2048 => 256,
        KeyType::Rsa3072 => 384,
        KeyType::Rsa4096 => 512,
    }
}

#[test]
fn round_trip_every_key_type() {
    for kind in KINDS {
        let dev = device(kind);
        assert_eq!(algorithm_for(&dev.spki).unwrap(), expected_algorithm(kind), "{kind}");
        let data_key = [0x5au8; 32];
        let (alg, wrapped) = wrap(&dev.spki, &data_key).unwrap();
        assert_eq!(alg, expected_algorithm(kind));
        assert_eq!(wrapped.len(), expected_len(kind, 32), "{kind}");
        assert_eq!(&unwrap(&dev.key_pem, &wrapped).unwrap()[..], &data_key, "{kind}");
        // Randomised.
        assert_ne!(wrap(&dev.spki, &data_key).unwrap().1, wrapped, "{kind}");
    }
}

#[test]
fn rsa_4096_round_trip() {
    let dev = device(KeyType::Rsa4096);
    let (alg, wrapped) = wrap(&dev.spki, b"sixteen byte key").unwrap();
    assert_eq!((alg, wrapped.len()), (WrapAlgorithm::RsaOaepSha256, 512));
    assert_eq!(&unwrap(&dev.key_pem, &wrapped).unwrap()[..], b"sixteen byte key");
}

#[test]
fn ecies_layout() {
    for (kind, curve_byte, point_len) in [(KeyType::EcP256, 1u8, 65usize), (KeyType::EcP384, 2, 97)] {
        let (_, wrapped) = wrap(&device(kind).spki, &[1u8; 32]).unwrap();
        assert_eq!(wrapped[0], 0x01, "format version");
        assert_eq!(wrapped[1], curve_byte);
        assert_eq!(wrapped[2], 0x04, "uncompressed ephemeral point");
        assert_eq!(wrapped.len(), 2 + point_len + 12 + 32 + 16);
    }
}

#[test]
fn sec1_and_pkcs1_private_keys_unwrap() {
    for kind in KINDS {
        let dev = device(kind);
        let legacy = if kind.is_rsa() { to_pkcs1_pem(&dev.key_pem) } else { to_sec1_pem(&dev.key_pem, kind) };
        assert!(legacy.contains(if kind.is_rsa() { "RSA PRIVATE KEY" } else { "EC PRIVATE KEY" }));
        let (_, wrapped) = wrap(&dev.spki, b"k").unwrap();
        assert_eq!(&unwrap(&legacy, &wrapped).unwrap()[..], b"k", "{kind}");
    }
}

#[test]
fn data_key_lengths() {
    for kind in KINDS {
        let dev = device(kind);
        for len in [1, 16, 32, 64, MAX_WRAPPED_KEY_LEN] {
            let data_key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (_, wrapped) = wrap(&dev.spki, &data_key).unwrap();
            assert_eq!(&unwrap(&dev.key_pem, &wrapped).unwrap()[..], &data_key[..], "{kind} {len}");
        }
        for len in [0, MAX_WRAPPED_KEY_LEN + 1] {
            assert!(matches!(wrap(&dev.spki, &vec![0u8; len]), Err(KeyError::InvalidKeyLength(_))), "{kind} {len}");
        }
    }
}

#[test]
fn tampered_wrapped_bytes_fail() {
    for kind in KINDS {
        let dev = device(kind);
        let (_, wrapped) = wrap(&dev.spki, &[7u8; 32]).unwrap();
        for i in 0..wrapped.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = wrapped.clone();
                bad[i] ^= bit;
                assert_eq!(unwrap(&dev.key_pem, &bad), Err(KeyError::UnwrapFailed), "{kind} byte {i}");
            }
        }
        for len in 0..wrapped.len() {
            assert_eq!(unwrap(&dev.key_pem, &wrapped[..len]), Err(KeyError::UnwrapFailed), "{kind} length {len}");
        }
        let mut longer = wrapped.clone();
        longer.push(0);
        assert_eq!(unwrap(&dev.key_pem, &longer), Err(KeyError::UnwrapFailed), "{kind}");
    }
}

#[test]
fn wrong_private_key_fails() {
    for kind in KINDS {
        let (_, wrapped) = wrap(&device(kind).spki, &[9u8; 32]).unwrap();
        let other = new_device(kind);
        assert_eq!(unwrap(&other.key_pem, &wrapped), Err(KeyError::UnwrapFailed), "{kind}");
        // A key of another type.
        for wrong in KINDS.into_iter().filter(|k| *k != kind) {
            assert_eq!(unwrap(&device(wrong).key_pem, &wrapped), Err(KeyError::UnwrapFailed), "{kind} with {wrong}");
        }
    }
}

#[test]
fn ed25519_is_refused() {
    let (cert_der, key_pem) = ed25519();
    let spki = spki_from_certificate(&cert_der).unwrap();
    assert!(matches!(algorithm_for(&spki), Err(KeyError::UnsupportedKey(m)) if m.contains("Ed25519")));
    assert!(matches!(wrap(&spki, &[0u8; 32]), Err(KeyError::UnsupportedKey(_))));
    let (_, wrapped) = wrap(&device(KeyType::EcP256).spki, &[0u8; 32]).unwrap();
    assert!(matches!(unwrap(&key_pem, &wrapped), Err(KeyError::UnsupportedKey(_))));
}

#[test]
fn p521_is_refused() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["p521".to_string()]).unwrap().self_signed(&key).unwrap();
    let spki = spki_from_certificate(cert.der()).unwrap();
    assert!(matches!(algorithm_for(&spki), Err(KeyError::UnsupportedKey(m)) if m.contains("P-521")));
}

#[test]
fn malformed_inputs() {
    assert!(matches!(spki_from_certificate(b"not a certificate"), Err(KeyError::InvalidCertificate(_))));
    let dev = device(KeyType::EcP256);
    let mut trailing = dev.cert_der.clone();
    trailing.push(0);
    assert!(matches!(spki_from_certificate(&trailing), Err(KeyError::InvalidCertificate(_))));
    assert!(matches!(algorithm_for(b"\x30\x00"), Err(KeyError::InvalidPublicKey(_))));
    // The certificate itself is not a SubjectPublicKeyInfo.
    assert!(algorithm_for(&dev.cert_der).is_err());
    assert!(matches!(unwrap("not a key", &[1u8; 100]), Err(KeyError::InvalidPrivateKey(_))));
    assert!(matches!(unwrap(&dev.cert_pem, &[1u8; 100]), Err(KeyError::InvalidPrivateKey(_))));
}

//! Fixed test vectors, made with the Python reference implementation and
//! printed in `docs/payload-keys.md`: they pin the byte formats so that a
//! change that both implementations might share (a renamed HKDF info, a
//! different AAD) cannot pass unnoticed, and give C implementers something to
//! check against.

use keys::{blob_key, decrypt, decrypt_blob, unwrap, EncryptionContext};

/// ECIES v1 recipient: P-256, private scalar
/// 73f69dde2cbc63b108f65de42d3ef6665295a7532073f0cbb828132e35148c64.
const ECIES_P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgc/ad3iy8Y7EI9l3k
LT72ZlKVp1Mgc/DLuCgTLjUUjGShRANCAATRsnreGqrlkMQEvt/zq413bxYpNX+B
VDYnasYPoaQOb49LLsxpPvDSZd7JyE3dNZXcRw3zTX1BrqxdvhD+NDLz
-----END PRIVATE KEY-----
";

/// Data key 00 01 … 1f wrapped with ephemeral scalar
/// 3fb3555d0e2a25ac1421f13e471c3d89e4509c74d95e727d1d38942adfbcd131 and nonce 00 01 … 0b.
const ECIES_P256_WRAPPED: &str =
    "01010443ede5e8a220a24f01b3fecd4fbbfa8523cd62c4810a12e27a271c6dd83c510493904a761afe22f3\
1bb984da1e85ecdb2144e52a09aac8ef3328b234c533f577000102030405060708090a0b781ba9190ce22345239489978d928e4b01f1171ea0\
aba422069e1ac0625c45db606881bb6cde11e305f34ab4c01a2ec5";

/// Data key 11 × 32, key id "dk", AAD "{}", chunk size 1024, no KMS blob,
/// base nonce a0 a1 … ab, plaintext "hello, thingport", unsigned.
const ENVELOPE: &str = "5450453100000004000002646b000000027b7d00000000a0a1a2a3a4a5a6a7a8a9aaab01000000200bd11c21\
2f38a3e75076dd3c0f2a4f9886e5147c63b5e52a4d4c44191f972260";

/// Key id "k-1", version 3, material 22 × 32, plaintext 00 01 … 1f,
/// context {"purpose": "upload", "thing": "cam-7"}, nonce b0 b1 … bb.
const BLOB: &str = "54504b01036b2d3100000003b0b1b2b3b4b5b6b7b8b9babbe0e0a0f47bfff6a201945005f87536b049e279ee3c55\
f70ae69d2bde9c16d858f42d182e32fd478088c0704c2031e25b";

fn counting(n: u8) -> Vec<u8> {
    (0..n).collect()
}

#[test]
fn ecies_p256_vector() {
    let wrapped = hex::decode(ECIES_P256_WRAPPED).unwrap();
    assert_eq!(&unwrap(ECIES_P256_KEY, &wrapped).unwrap()[..], &counting(32)[..]);
}

#[test]
fn envelope_vector() {
    let envelope = hex::decode(ENVELOPE).unwrap();
    let (header, plaintext, signed) = decrypt(&[0x11; 32], &envelope, None).unwrap();
    assert_eq!((header.key_id.as_str(), header.aad.as_slice(), header.chunk_size), ("dk", &b"{}"[..], 1024));
    assert_eq!((plaintext.as_slice(), signed), (&b"hello, thingport"[..], false));
}

#[test]
fn blob_vector() {
    let blob = hex::decode(BLOB).unwrap();
    assert_eq!(blob_key(&blob).unwrap(), ("k-1".to_string(), 3));
    let context: EncryptionContext =
        [("thing", "cam-7"), ("purpose", "upload")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(&decrypt_blob(&[0x22; 32], &blob, &context).unwrap()[..], &counting(32)[..]);
}

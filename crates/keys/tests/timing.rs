//! Throughput of the envelope against bare AES-256-GCM over the same 100 MiB
//! (ignored by default; run `cargo test --release -p keys --test timing -- --ignored --nocapture`).
//! Bare GCM is one in-place call over the whole buffer; the envelope also
//! copies the data into its output, and a signed one hashes it with SHA-256.

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use keys::envelope::DEFAULT_CHUNK_SIZE;
use keys::{parse_header, Decryptor, Encryptor, EnvelopeHeader, Signer};

const SIZE: usize = 100 * 1024 * 1024;
const PIECE: usize = 1024 * 1024;
const ROUNDS: usize = 3;

fn mib_per_s(elapsed: Duration) -> f64 {
    SIZE as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS).map(|_| f()).min().unwrap()
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn envelope_vs_raw_aes_gcm_100_mib() {
    let key = [7u8; 32];
    let plaintext: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();

    // Output buffers are reused, so that page faults of fresh allocations are not timed.
    let mut envelope = Vec::with_capacity(SIZE + SIZE / 1000 + 4096);
    let env_encrypt = best(|| {
        envelope.clear();
        let start = Instant::now();
        let (mut encryptor, header) = Encryptor::new(&key, EnvelopeHeader::new("dk", b"{}".to_vec())).unwrap();
        envelope.extend_from_slice(&header);
        for piece in plaintext.chunks(PIECE) {
            encryptor.update(piece, &mut envelope).unwrap();
        }
        encryptor.finish(None, &mut envelope).unwrap();
        start.elapsed()
    });

    let mut out = Vec::with_capacity(SIZE);
    let env_decrypt = best(|| {
        out.clear();
        let start = Instant::now();
        let (_, header_len) = parse_header(&envelope).unwrap().unwrap();
        let mut decryptor = Decryptor::new(&key, &envelope[..header_len]).unwrap();
        for piece in envelope[header_len..].chunks(PIECE) {
            decryptor.update(piece, &mut out).unwrap();
        }
        decryptor.finish(None).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(out.len(), SIZE);
        elapsed
    });

    // Signed: the same plus SHA-256 over the whole envelope and one P-256 signature.
    let device_key = pki::generate_key(pki::KeyType::EcP256).unwrap();
    let signer = Signer::from_pem(device_key.expose()).unwrap();
    let spki = signer.public_key_der().unwrap();
    let mut signed_header = EnvelopeHeader::new("dk", b"{}".to_vec());
    signed_header.signed = true;
    let mut signed = Vec::with_capacity(SIZE + SIZE / 1000 + 4096);
    let signed_encrypt = best(|| {
        signed.clear();
        let start = Instant::now();
        let (mut encryptor, header) = Encryptor::new(&key, signed_header.clone()).unwrap();
        signed.extend_from_slice(&header);
        for piece in plaintext.chunks(PIECE) {
            encryptor.update(piece, &mut signed).unwrap();
        }
        encryptor.finish(Some(&signer), &mut signed).unwrap();
        start.elapsed()
    });
    let signed_decrypt = best(|| {
        out.clear();
        let start = Instant::now();
        let (_, header_len) = parse_header(&signed).unwrap().unwrap();
        let mut decryptor = Decryptor::new(&key, &signed[..header_len]).unwrap();
        for piece in signed[header_len..].chunks(PIECE) {
            decryptor.update(piece, &mut out).unwrap();
        }
        assert!(decryptor.finish(Some(&spki)).unwrap());
        start.elapsed()
    });

    let raw_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let mut buf = plaintext.clone();
    let mut tag = None;
    let raw_encrypt = best(|| {
        buf.copy_from_slice(&plaintext);
        let start = Instant::now();
        tag = Some(
            raw_key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut buf).unwrap(),
        );
        start.elapsed()
    });
    let sealed = buf.clone();
    let mut in_out = Vec::with_capacity(SIZE + 16);
    let raw_decrypt = best(|| {
        in_out.clear();
        in_out.extend_from_slice(&sealed);
        in_out.extend_from_slice(tag.as_ref().unwrap().as_ref());
        let start = Instant::now();
        let len =
            raw_key.open_in_place(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), &mut in_out).unwrap().len();
        let elapsed = start.elapsed();
        assert_eq!(len, SIZE);
        elapsed
    });

    let overhead = envelope.len() - SIZE;
    println!("100 MiB, envelope with {} KiB chunks (best of {ROUNDS}):", DEFAULT_CHUNK_SIZE / 1024);
    println!("  envelope encrypt  {:8.0} MiB/s", mib_per_s(env_encrypt));
    println!("  raw GCM  encrypt  {:8.0} MiB/s", mib_per_s(raw_encrypt));
    println!("  envelope decrypt  {:8.0} MiB/s", mib_per_s(env_decrypt));
    println!("  raw GCM  decrypt  {:8.0} MiB/s", mib_per_s(raw_decrypt));
    println!("  signed   encrypt  {:8.0} MiB/s  (ECDSA P-256)", mib_per_s(signed_encrypt));
    println!("  signed   decrypt  {:8.0} MiB/s  (and verify)", mib_per_s(signed_decrypt));
    println!("  envelope size overhead: {overhead} bytes ({:.3}%)", overhead as f64 * 100.0 / SIZE as f64);
}

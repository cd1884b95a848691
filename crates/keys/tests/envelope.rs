//! The streaming envelope: round trips at the chunk boundaries, fed in every
//! split, and detection of every alteration, truncation, reordering and
//! signature problem.

mod common;

use common::{device, new_device, to_pkcs1_pem, to_sec1_pem};
use keys::envelope::{MAX_CHUNK_SIZE, MAX_HEADER_AAD_LEN, MAX_HEADER_KEY_ID_LEN, MIN_CHUNK_SIZE};
use keys::{decrypt, encrypt, parse_header, Decryptor, Encryptor, EnvelopeHeader, KeyError, Signer};
use pki::KeyType;
use proptest::prelude::*;

const CS: usize = MIN_CHUNK_SIZE as usize;
const KEY: [u8; 32] = [0x11; 32];

fn header(signed: bool) -> EnvelopeHeader {
    EnvelopeHeader {
        key_id: "dk-0001".into(),
        aad: br#"{"object":"uploads/cam-7/a.bin","thing":"cam-7"}"#.to_vec(),
        chunk_size: CS as u32,
        kms_blob: b"TPK\x01 pretend blob".to_vec(),
        signed,
    }
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn header_len(envelope: &[u8]) -> usize {
    parse_header(envelope).unwrap().unwrap().1
}

/// (kind, start, end) of every record (end excludes the trailer).
fn records(envelope: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut pos = header_len(envelope);
    let mut out = Vec::new();
    loop {
        let kind = envelope[pos];
        let len = u32::from_be_bytes(envelope[pos + 1..pos + 5].try_into().unwrap()) as usize;
        out.push((kind, pos, pos + 5 + len));
        pos += 5 + len;
        if kind == 1 {
            return out;
        }
    }
}

/// Decrypts with a [`Decryptor`], feeding the bytes after the header cut at `cuts` (offsets into the body).
fn decrypt_cut(key: &[u8], envelope: &[u8], cuts: &[usize], spki: Option<&[u8]>) -> Result<(Vec<u8>, bool), KeyError> {
    let hl = header_len(envelope);
    let mut decryptor = Decryptor::new(key, &envelope[..hl])?;
    let body = &envelope[hl..];
    let mut out = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain([body.len()].iter()) {
        let cut = cut.clamp(last, body.len());
        decryptor.update(&body[last..cut], &mut out)?;
        last = cut;
    }
    let signed = decryptor.finish(spki)?;
    Ok((out, signed))
}

/// Encrypts with an [`Encryptor`], feeding the plaintext cut at `cuts`.
fn encrypt_cut(header: EnvelopeHeader, pt: &[u8], cuts: &[usize], signer: Option<&Signer>) -> Vec<u8> {
    let (mut encryptor, mut out) = Encryptor::new(&KEY, header).unwrap();
    let mut last = 0;
    for &cut in cuts.iter().chain([pt.len()].iter()) {
        let cut = cut.clamp(last, pt.len());
        encryptor.update(&pt[last..cut], &mut out).unwrap();
        last = cut;
    }
    encryptor.finish(signer, &mut out).unwrap();
    out
}

#[test]
fn round_trips_at_chunk_boundaries() {
    for len in [0, 1, CS - 1, CS, CS + 1, 3 * CS + CS / 2] {
        let pt = plaintext(len);
        let env = encrypt(&KEY, header(false), &pt, None).unwrap();
        let (h, out, signed) = decrypt(&KEY, &env, None).unwrap();
        assert_eq!((h, out.as_slice(), signed), (header(false), pt.as_slice(), false), "len {len}");

        // Full data chunks, then one final chunk of 0..=CS bytes (the only one for an empty payload).
        let recs = records(&env);
        assert_eq!(recs.len(), len.div_ceil(CS).max(1), "len {len}");
        for (i, (kind, start, end)) in recs.iter().enumerate() {
            let last = i == recs.len() - 1;
            assert_eq!(*kind, u8::from(last));
            if !last {
                assert_eq!(end - start, 5 + CS + 16);
            }
        }
        assert_eq!(recs.last().unwrap().2, env.len(), "nothing after the final chunk when unsigned");

        // Streaming in assorted piece sizes, both ways.
        for piece in [1, 7, 100, CS - 1, CS, CS + 1, 5 * CS] {
            let cuts: Vec<usize> = (1..=len / piece).map(|i| i * piece).collect();
            let env2 = encrypt_cut(header(false), &pt, &cuts, None);
            assert_eq!(env2.len(), env.len());
            assert_eq!(decrypt(&KEY, &env2, None).unwrap().1, pt);
            let body_len = env.len() - header_len(&env);
            let cuts: Vec<usize> = (1..=body_len / piece).map(|i| i * piece).collect();
            assert_eq!(decrypt_cut(&KEY, &env, &cuts, None).unwrap(), (pt.clone(), false), "len {len} piece {piece}");
        }
    }
}

#[test]
fn every_split_of_a_small_example() {
    let signer = Signer::from_pem(&device(KeyType::EcP256).key_pem).unwrap();
    let spki = &device(KeyType::EcP256).spki;
    let pt = plaintext(2 * CS + CS / 2);
    let env = encrypt(&KEY, header(true), &pt, Some(&signer)).unwrap();
    let body_len = env.len() - header_len(&env);

    // Every single cut, on both sides.
    for cut in 0..=body_len {
        assert_eq!(decrypt_cut(&KEY, &env, &[cut], Some(spki)).unwrap(), (pt.clone(), true), "cut {cut}");
    }
    for cut in 0..=pt.len() {
        let env2 = encrypt_cut(header(true), &pt, &[cut], Some(&signer));
        assert_eq!(decrypt(&KEY, &env2, Some(spki)).unwrap().1, pt, "cut {cut}");
    }
    // Byte by byte.
    let cuts: Vec<usize> = (0..body_len).collect();
    assert_eq!(decrypt_cut(&KEY, &env, &cuts, Some(spki)).unwrap(), (pt.clone(), true));
    let cuts: Vec<usize> = (0..pt.len()).collect();
    assert_eq!(decrypt(&KEY, &encrypt_cut(header(true), &pt, &cuts, Some(&signer)), Some(spki)).unwrap().1, pt);

    // Every pair of cuts (on a coarse grid) over a smaller example.
    let pt = plaintext(CS + 100);
    let env = encrypt(&KEY, header(false), &pt, None).unwrap();
    let body_len = env.len() - header_len(&env);
    for a in (0..=body_len).step_by(5) {
        for b in (a..=body_len).step_by(7) {
            assert_eq!(decrypt_cut(&KEY, &env, &[a, b], None).unwrap().0, pt, "cuts {a} {b}");
        }
    }
}

#[test]
fn plaintext_is_released_chunk_by_chunk_and_only_when_authenticated() {
    let pt = plaintext(3 * CS + 10);
    let env = encrypt(&KEY, header(false), &pt, None).unwrap();
    let hl = header_len(&env);
    let ends: Vec<usize> = records(&env).iter().map(|r| r.2).collect();
    let mut decryptor = Decryptor::new(&KEY, &env[..hl]).unwrap();
    let mut out = Vec::new();
    let mut done = 0;
    for pos in hl..env.len() {
        decryptor.update(&env[pos..pos + 1], &mut out).unwrap();
        if ends.contains(&(pos + 1)) {
            done += 1;
        }
        // Plaintext grows exactly when a record completes.
        assert_eq!(out.len(), (done * CS).min(pt.len()), "after byte {pos}");
    }
    assert_eq!(out, pt);
    assert!(!decryptor.finish(None).unwrap());

    // A chunk that fails authentication releases nothing of itself.
    let mut bad = env.clone();
    let (_, start, end) = records(&env)[1];
    bad[end - 1] ^= 1;
    let mut decryptor = Decryptor::new(&KEY, &bad[..hl]).unwrap();
    let mut out = Vec::new();
    assert_eq!(decryptor.update(&bad[hl..start + 10], &mut out), Ok(()));
    assert_eq!(out.len(), CS);
    assert_eq!(decryptor.update(&bad[start + 10..], &mut out), Err(KeyError::AuthenticationFailed));
    assert_eq!(out, &pt[..CS]);
    // The decryptor stays failed.
    assert_eq!(decryptor.update(b"", &mut out), Err(KeyError::AuthenticationFailed));
    assert_eq!(decryptor.finish(None), Err(KeyError::AuthenticationFailed));
}

#[test]
fn any_altered_byte_is_detected() {
    let dev = device(KeyType::EcP256);
    let signer = Signer::from_pem(&dev.key_pem).unwrap();
    let pt = plaintext(2 * CS + 300);
    for signed in [false, true] {
        let env = encrypt(&KEY, header(signed), &pt, signed.then_some(&signer)).unwrap();
        let spki = signed.then_some(dev.spki.as_slice());
        for i in 0..env.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = env.clone();
                bad[i] ^= bit;
                assert!(decrypt(&KEY, &bad, spki).is_err(), "signed {signed}: byte {i} bit {bit:#x} not detected");
            }
        }
    }
}

#[test]
fn truncation_anywhere_is_detected() {
    let dev = device(KeyType::EcP384);
    let signer = Signer::from_pem(&dev.key_pem).unwrap();
    for signed in [false, true] {
        let env = encrypt(&KEY, header(signed), &plaintext(2 * CS + 1), signed.then_some(&signer)).unwrap();
        let spki = signed.then_some(dev.spki.as_slice());
        let hl = header_len(&env);
        for len in 0..env.len() {
            let got = decrypt(&KEY, &env[..len], spki);
            assert_eq!(got, Err(KeyError::Truncated), "signed {signed}: cut at {len}");
            if len >= hl {
                let mut decryptor = Decryptor::new(&KEY, &env[..hl]).unwrap();
                decryptor.update(&env[hl..len], &mut Vec::new()).unwrap();
                assert_eq!(decryptor.finish(spki), Err(KeyError::Truncated), "signed {signed}: cut at {len}");
            } else {
                assert_eq!(parse_header(&env[..len]), Ok(None));
            }
        }
        assert!(decrypt(&KEY, &env, spki).is_ok());
    }
}

#[test]
fn reordered_dropped_duplicated_and_extra_records_are_detected() {
    let pt = plaintext(3 * CS + 5);
    let env = encrypt(&KEY, header(false), &pt, None).unwrap();
    let hl = header_len(&env);
    let recs = records(&env);
    assert_eq!(recs.len(), 4);
    let rec = |i: usize| &env[recs[i].1..recs[i].2];
    let build = |order: &[usize]| {
        let mut out = env[..hl].to_vec();
        for &i in order {
            out.extend_from_slice(rec(i));
        }
        out
    };
    assert_eq!(decrypt(&KEY, &build(&[0, 1, 2, 3]), None).unwrap().1, pt);
    assert_eq!(decrypt(&KEY, &build(&[1, 0, 2, 3]), None), Err(KeyError::AuthenticationFailed), "swapped");
    assert_eq!(decrypt(&KEY, &build(&[0, 2, 1, 3]), None), Err(KeyError::AuthenticationFailed), "swapped");
    assert_eq!(decrypt(&KEY, &build(&[0, 0, 1, 2, 3]), None), Err(KeyError::AuthenticationFailed), "duplicate");
    assert_eq!(decrypt(&KEY, &build(&[0, 2, 3]), None), Err(KeyError::AuthenticationFailed), "dropped");
    assert_eq!(decrypt(&KEY, &build(&[0, 1, 2]), None), Err(KeyError::Truncated), "no final chunk");
    assert_eq!(decrypt(&KEY, &build(&[0, 1, 2, 3, 3]), None), Err(KeyError::TrailingData), "second final chunk");
    let mut extra = env.clone();
    extra.push(0);
    assert_eq!(decrypt(&KEY, &extra, None), Err(KeyError::TrailingData));

    // A final chunk relabelled as data (lengths made plausible) fails authentication.
    let full = encrypt(&KEY, header(false), &plaintext(2 * CS), None).unwrap();
    let (kind, start, _) = records(&full)[1];
    assert_eq!(kind, 1);
    let mut relabelled = full.clone();
    relabelled[start] = 0;
    assert_eq!(decrypt(&KEY, &relabelled, None), Err(KeyError::AuthenticationFailed));
    let (_, start0, _) = records(&full)[0];
    let mut relabelled = full.clone();
    relabelled[start0] = 1;
    assert_eq!(decrypt(&KEY, &relabelled, None), Err(KeyError::AuthenticationFailed));

    // Records of one envelope under the header of another (same data key).
    let other = encrypt(&KEY, header(false), &pt, None).unwrap();
    let mut spliced = other[..header_len(&other)].to_vec();
    spliced.extend_from_slice(&env[hl..]);
    assert_eq!(decrypt(&KEY, &spliced, None), Err(KeyError::AuthenticationFailed));
}

#[test]
fn wrong_data_key_fails() {
    let env = encrypt(&KEY, header(false), b"payload", None).unwrap();
    assert_eq!(decrypt(&[0x12; 32], &env, None), Err(KeyError::AuthenticationFailed));
    assert!(matches!(decrypt(&[0x11; 16], &env, None), Err(KeyError::InvalidKeyLength(_))));
    assert!(matches!(encrypt(&[0x11; 31], header(false), b"", None), Err(KeyError::InvalidKeyLength(_))));
}

#[test]
fn signatures_for_every_signing_key_type() {
    for kind in [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::EcP256, KeyType::EcP384] {
        let dev = device(kind);
        let signer = Signer::from_pem(&dev.key_pem).unwrap();
        assert_eq!(signer.public_key_der().unwrap(), dev.spki, "{kind}: the signer's SPKI is the certificate's");
        let pt = plaintext(CS + 17);
        let env = encrypt(&KEY, header(true), &pt, Some(&signer)).unwrap();
        assert_eq!(decrypt(&KEY, &env, Some(&dev.spki)).unwrap(), (header(true), pt.clone(), true), "{kind}");

        let sig_len = u16::from_be_bytes(env[records(&env)[1].2..][..2].try_into().unwrap()) as usize;
        match kind {
            KeyType::Rsa2048 => assert_eq!(sig_len, 256),
            KeyType::Rsa3072 => assert_eq!(sig_len, 384),
            KeyType::EcP256 => assert!((8..=72).contains(&sig_len)),
            _ => assert!((8..=104).contains(&sig_len)),
        }

        // Another device's key, or no key, does not do.
        let other = new_device(kind);
        assert_eq!(decrypt(&KEY, &env, Some(&other.spki)), Err(KeyError::SignatureInvalid), "{kind}");
        assert_eq!(decrypt(&KEY, &env, None), Err(KeyError::SignatureRequired), "{kind}");
        let wrong_type = device(if kind.is_rsa() { KeyType::EcP256 } else { KeyType::Rsa2048 });
        assert_eq!(decrypt(&KEY, &env, Some(&wrong_type.spki)), Err(KeyError::SignatureInvalid), "{kind}");

        // Stripping the signature and clearing the flag breaks every chunk.
        let end = records(&env).last().unwrap().2;
        let mut stripped = env[..end].to_vec();
        stripped[4] = 0;
        assert_eq!(decrypt(&KEY, &stripped, None), Err(KeyError::AuthenticationFailed), "{kind}");

        // Legacy PEM forms sign too.
        let legacy = if kind.is_rsa() { to_pkcs1_pem(&dev.key_pem) } else { to_sec1_pem(&dev.key_pem, kind) };
        let env = encrypt(&KEY, header(true), b"x", Some(&Signer::from_pem(&legacy).unwrap())).unwrap();
        assert!(decrypt(&KEY, &env, Some(&dev.spki)).unwrap().2, "{kind}");
    }
}

#[test]
fn signer_rules() {
    let dev = device(KeyType::EcP256);
    let signer = Signer::from_pem(&dev.key_pem).unwrap();
    let unsigned = encrypt(&KEY, header(false), b"x", None).unwrap();
    assert_eq!(decrypt(&KEY, &unsigned, Some(&dev.spki)), Err(KeyError::NotSigned));
    assert_eq!(encrypt(&KEY, header(false), b"x", Some(&signer)), Err(KeyError::NotSigned));
    assert_eq!(encrypt(&KEY, header(true), b"x", None), Err(KeyError::SignatureRequired));

    let (_, ed_key) = common::ed25519();
    assert!(matches!(Signer::from_pem(&ed_key), Err(KeyError::UnsupportedKey(_))));
    assert!(matches!(Signer::from_pem("nope"), Err(KeyError::InvalidPrivateKey(_))));

    // Debug never shows the key.
    let shown = format!("{signer:?}");
    assert!(shown.contains("ECDSA_P256_SHA256") && !shown.contains("BEGIN") && shown.len() < 60, "{shown}");
    let (encryptor, _) = Encryptor::new(&KEY, header(false)).unwrap();
    let shown = format!("{encryptor:?}");
    assert!(!shown.contains("17, 17, 17") && !shown.contains("1111"), "{shown}");
}

#[test]
fn header_limits_and_parsing() {
    let bad = |h: EnvelopeHeader| matches!(Encryptor::new(&KEY, h), Err(KeyError::InvalidArgument(_)));
    assert!(bad(EnvelopeHeader { chunk_size: MIN_CHUNK_SIZE - 1, ..header(false) }));
    assert!(bad(EnvelopeHeader { chunk_size: MAX_CHUNK_SIZE + 1, ..header(false) }));
    assert!(bad(EnvelopeHeader { key_id: "k".repeat(MAX_HEADER_KEY_ID_LEN + 1), ..header(false) }));
    assert!(bad(EnvelopeHeader { aad: vec![0; MAX_HEADER_AAD_LEN + 1], ..header(false) }));
    assert!(bad(EnvelopeHeader { kms_blob: vec![0; 8 * 1024 + 1], ..header(false) }));
    let big = EnvelopeHeader {
        chunk_size: MAX_CHUNK_SIZE,
        key_id: "k".repeat(MAX_HEADER_KEY_ID_LEN),
        aad: vec![1; MAX_HEADER_AAD_LEN],
        kms_blob: vec![2; 8 * 1024],
        signed: false,
    };
    let env = encrypt(&KEY, big.clone(), b"abc", None).unwrap();
    assert_eq!(decrypt(&KEY, &env, None).unwrap(), (big, b"abc".to_vec(), false));

    let env = encrypt(&KEY, header(true), b"abc", Some(&Signer::from_pem(&device(KeyType::EcP256).key_pem).unwrap()))
        .unwrap();
    let hl = header_len(&env);
    for len in 0..hl {
        assert_eq!(parse_header(&env[..len]), Ok(None), "prefix {len}");
    }
    assert_eq!(parse_header(&env[..hl]).unwrap(), Some((header(true), hl)));
    assert_eq!(parse_header(&env).unwrap(), Some((header(true), hl)));
    assert!(matches!(Decryptor::new(&KEY, &env[..hl + 1]), Err(KeyError::InvalidArgument(_))));
    assert!(matches!(Decryptor::new(&KEY, &env[..hl - 1]), Err(KeyError::InvalidArgument(_))));
    assert_eq!(Decryptor::new(&KEY, &env[..hl]).unwrap().header(), &header(true));
    assert!(matches!(decrypt(&KEY, b"TPE2....", None), Err(KeyError::MalformedEnvelope(_))));
    assert_eq!(decrypt(&KEY, b"TPE1", None), Err(KeyError::Truncated));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streaming_round_trip(
        len in 0usize..5000,
        chunk_size in 1024u32..1400,
        enc_cuts in proptest::collection::vec(0usize..5000, 0..6),
        dec_cuts in proptest::collection::vec(0usize..6000, 0..6),
    ) {
        let pt = plaintext(len);
        let mut enc_cuts = enc_cuts;
        enc_cuts.sort_unstable();
        let mut dec_cuts = dec_cuts;
        dec_cuts.sort_unstable();
        let h = EnvelopeHeader { chunk_size, ..header(false) };
        let env = encrypt_cut(h, &pt, &enc_cuts, None);
        prop_assert_eq!(decrypt_cut(&KEY, &env, &dec_cuts, None).unwrap(), (pt, false));
    }

    #[test]
    fn any_flip_fails(len in 0usize..3000, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let env = encrypt(&KEY, header(false), &plaintext(len), None).unwrap();
        let mut bad = env.clone();
        let i = at.index(bad.len());
        bad[i] ^= 1 << bit;
        prop_assert!(decrypt(&KEY, &bad, None).is_err());
    }
}

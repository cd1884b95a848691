//! The seed corpus of the `mqtt_decode` fuzz target (`fuzz/corpus/mqtt_decode`).
//!
//! `cargo test -p mqtt --test fuzz_corpus -- --ignored` regenerates it from
//! the sample packets; the ordinary test checks that every seed is a valid
//! packet, so the fuzzer starts from inputs that reach deep into the decoder.

mod common;

use std::path::PathBuf;

use common::*;
use mqtt::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mqtt_decode")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (tag, proto, samples) in [("v5", Protocol::V5, samples_v5()), ("v311", Protocol::V311, samples_v311())] {
        for (i, p) in samples.iter().enumerate() {
            let name = format!("{tag}-{i:02}-{}", p.name().to_ascii_lowercase());
            out.push((name, enc(p, proto)));
        }
    }
    // A whole 3.1.1 session in one input: the decode loop walks through it.
    let session: Vec<u8> = samples_v311().iter().flat_map(|p| enc(p, Protocol::V311)).collect();
    out.push(("v311-session".to_owned(), session));
    out
}

#[test]
#[ignore = "writes fuzz/corpus/mqtt_decode; run explicitly to regenerate"]
fn regenerate_seed_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
}

#[test]
fn seed_corpus_is_valid() {
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // The crate is being built outside the repository.
        return;
    };
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let decodes_fully = [Protocol::V5, Protocol::V311].into_iter().any(|proto| {
            let mut buf = bytes::BytesMut::from(&data[..]);
            let mut packets = 0;
            while let Ok(Some(_)) = decode(&mut buf, proto, MAX) {
                packets += 1;
            }
            packets > 0 && buf.is_empty()
        });
        assert!(decodes_fully, "{} is not a sequence of valid packets", path.display());
        fuzz_one(&data);
        count += 1;
    }
    assert!(count >= seeds().len(), "seed corpus incomplete: {count} files");
}

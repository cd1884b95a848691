//! Interoperability with the Python reference implementation for devices,
//! `examples/python/payload_keys.py` (only the `cryptography` package): keys
//! wrapped by one side unwrap on the other, and envelopes (signed) made by one
//! side decrypt and verify on the other, for RSA, EC P-256 and EC P-384 keys.
//!
//! Uses `THINGPORT_PYTHON`, else the repository's `.venv/bin/python` (made by
//! `scripts/test-deps.sh`); each test prints "skipped: …" and passes when
//! neither exists or `cryptography` cannot be imported.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{device, to_pkcs1_pem, to_sec1_pem, Device};
use keys::{decrypt, encrypt, unwrap, wrap, EnvelopeHeader, KeyError, Signer};
use pki::KeyType;
use serde_json::{json, Value};

const KINDS: [KeyType; 4] = [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::EcP256, KeyType::EcP384];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python to use, if there is one with `cryptography`.
fn python() -> Option<&'static PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let candidate = match std::env::var_os("THINGPORT_PYTHON") {
                Some(p) => PathBuf::from(p),
                None => repo_root().join(".venv/bin/python"),
            };
            let ok = candidate.exists()
                && Command::new(&candidate)
                    .args(["-c", "import cryptography"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            ok.then_some(candidate)
        })
        .as_ref()
}

fn have_python(test: &str) -> bool {
    if python().is_none() {
        println!(
            "skipped: {test}: no Python with `cryptography` (set THINGPORT_PYTHON or run scripts/test-deps.sh to make .venv)"
        );
        return false;
    }
    true
}

/// Runs `payload_keys.py COMMAND` with `request` as JSON on stdin; the JSON answer, or its error text.
fn py(command: &str, request: Value) -> Result<Value, String> {
    let script = repo_root().join("examples/python/payload_keys.py");
    let mut child = Command::new(python().unwrap())
        .arg(&script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("python {command}: no JSON answer ({e}); stderr: {}", String::from_utf8_lossy(&output.stderr))
    });
    if output.status.success() {
        Ok(answer)
    } else {
        Err(answer["error"].as_str().unwrap_or("unknown error").to_owned())
    }
}

fn hex_field(answer: &Value, field: &str) -> Vec<u8> {
    hex::decode(answer[field].as_str().unwrap_or_else(|| panic!("no {field} in {answer}"))).unwrap()
}

/// The device key in its legacy PEM form (SEC1 for EC, PKCS#1 for RSA).
fn legacy_pem(dev: &Device) -> String {
    if dev.kind.is_rsa() {
        to_pkcs1_pem(&dev.key_pem)
    } else {
        to_sec1_pem(&dev.key_pem, dev.kind)
    }
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

#[test]
fn rust_wraps_python_unwraps() {
    if !have_python("rust_wraps_python_unwraps") {
        return;
    }
    for kind in KINDS {
        let dev = device(kind);
        for (pem, data_key) in [(dev.key_pem.clone(), vec![0xa5u8; 32]), (legacy_pem(dev), (0u8..16).collect())] {
            let (_, wrapped) = wrap(&dev.spki, &data_key).unwrap();
            let answer = py("unwrap", json!({"private_key_pem": pem, "wrapped": hex::encode(&wrapped)})).unwrap();
            assert_eq!(hex_field(&answer, "data_key"), data_key, "{kind}");
            // Python refuses an altered wrapped key too.
            let mut bad = wrapped.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(py("unwrap", json!({"private_key_pem": pem, "wrapped": hex::encode(&bad)})).is_err(), "{kind}");
        }
    }
}

#[test]
fn python_wraps_rust_unwraps() {
    if !have_python("python_wraps_rust_unwraps") {
        return;
    }
    for kind in KINDS {
        let dev = device(kind);
        let data_key = [0x3cu8; 32];
        let answer = py("wrap", json!({"pem": dev.cert_pem, "data_key": hex::encode(data_key)})).unwrap();
        let wrapped = hex_field(&answer, "wrapped");
        assert_eq!(&unwrap(&dev.key_pem, &wrapped).unwrap()[..], &data_key, "{kind}");
        assert_eq!(&unwrap(&legacy_pem(dev), &wrapped).unwrap()[..], &data_key, "{kind}");
        if !kind.is_rsa() {
            assert_eq!(wrapped[0], 0x01, "{kind}: ECIES v1");
        }
    }
}

#[test]
fn rust_encrypts_python_decrypts() {
    if !have_python("rust_encrypts_python_decrypts") {
        return;
    }
    let data_key = [0x42u8; 32];
    for kind in KINDS {
        let dev = device(kind);
        let signer = Signer::from_pem(&dev.key_pem).unwrap();
        for (len, chunk_size) in [(0usize, 1024u32), (1024, 1024), (2560, 1024), (100_000, 65_536)] {
            let header = EnvelopeHeader {
                key_id: "dk-7".into(),
                aad: br#"{"object":"uploads/cam-7/a.bin","thing":"cam-7"}"#.to_vec(),
                chunk_size,
                kms_blob: b"TPK\x01blob".to_vec(),
                signed: true,
            };
            let pt = plaintext(len);
            let env = encrypt(&data_key, header.clone(), &pt, Some(&signer)).unwrap();
            let request = |env: &[u8]| json!({"data_key": hex::encode(data_key), "envelope": hex::encode(env), "signer_cert_pem": dev.cert_pem});
            let answer = py("decrypt", request(&env)).unwrap();
            assert_eq!(hex_field(&answer, "plaintext"), pt, "{kind} {len}");
            assert_eq!(answer["signed"], json!(true));
            let h = &answer["header"];
            assert_eq!(h["key_id"], json!("dk-7"));
            assert_eq!(h["chunk_size"], json!(chunk_size));
            assert_eq!(hex_field(h, "aad"), header.aad);
            assert_eq!(hex_field(h, "kms_blob"), header.kms_blob);
            if len == 2560 {
                // Python detects tampering and a wrong signer as well.
                let mut bad = env.clone();
                bad[env.len() / 2] ^= 1;
                assert!(py("decrypt", request(&bad)).is_err(), "{kind}");
                let other = device(if kind == KeyType::EcP256 { KeyType::EcP384 } else { KeyType::EcP256 });
                let wrong = json!({"data_key": hex::encode(data_key), "envelope": hex::encode(&env), "signer_cert_pem": other.cert_pem});
                assert!(py("decrypt", wrong).is_err(), "{kind}");
            }
        }
    }
}

#[test]
fn python_encrypts_rust_decrypts() {
    if !have_python("python_encrypts_rust_decrypts") {
        return;
    }
    let data_key = [0x24u8; 32];
    for kind in KINDS {
        let dev = device(kind);
        for (len, chunk_size, pem) in [
            (0usize, 1024u32, dev.key_pem.clone()),
            (2048, 1024, dev.key_pem.clone()),
            (3000, 1024, legacy_pem(dev)),
            (150_000, 65_536, dev.key_pem.clone()),
        ] {
            let pt = plaintext(len);
            let answer = py(
                "encrypt",
                json!({
                    "data_key": hex::encode(data_key),
                    "key_id": "dk-py",
                    "aad": hex::encode(br#"{"thing":"cam-7"}"#),
                    "plaintext": hex::encode(&pt),
                    "kms_blob": hex::encode(b"blob"),
                    "sign_with_pem": pem,
                    "chunk_size": chunk_size,
                }),
            )
            .unwrap();
            let env = hex_field(&answer, "envelope");
            let (header, out, signed) = decrypt(&data_key, &env, Some(&dev.spki)).unwrap();
            assert_eq!(out, pt, "{kind} {len}");
            assert!(signed);
            assert_eq!(
                header,
                EnvelopeHeader {
                    key_id: "dk-py".into(),
                    aad: br#"{"thing":"cam-7"}"#.to_vec(),
                    chunk_size,
                    kms_blob: b"blob".to_vec(),
                    signed: true
                }
            );
            let other = device(if kind == KeyType::Rsa2048 { KeyType::Rsa3072 } else { KeyType::Rsa2048 });
            assert_eq!(decrypt(&data_key, &env, Some(&other.spki)), Err(KeyError::SignatureInvalid), "{kind}");
        }
    }
    // Unsigned, default chunk size.
    let answer = py(
        "encrypt",
        json!({"data_key": hex::encode(data_key), "key_id": "k", "aad": "", "plaintext": hex::encode(b"hello")}),
    )
    .unwrap();
    let (header, out, signed) = decrypt(&data_key, &hex_field(&answer, "envelope"), None).unwrap();
    assert_eq!((header.chunk_size, out.as_slice(), signed), (65_536, &b"hello"[..], false));
}

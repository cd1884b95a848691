//! Helpers shared by the integration tests: a self-deleting temp dir and a thin
//! wrapper around the `openssl` command line tool.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!("thingport-pki-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True when the `openssl` binary runs. Prints why a test is skipped otherwise.
pub fn have_openssl(test: &str) -> bool {
    let ok = Command::new("openssl").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED {test}: the `openssl` command is not available");
    }
    ok
}

/// Runs `openssl args...` in `dir`; panics with stderr on failure.
pub fn openssl(dir: &TempDir, args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir.dir()).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `openssl verify -CAfile ca -purpose purpose cert` and asserts "OK".
pub fn openssl_verify(dir: &TempDir, ca_pem: &str, cert_pem: &str, purpose: &str) {
    dir.write("verify-ca.pem", ca_pem);
    dir.write("verify-cert.pem", cert_pem);
    let out = openssl(dir, &["verify", "-CAfile", "verify-ca.pem", "-purpose", purpose, "verify-cert.pem"]);
    assert!(out.trim_end().ends_with(": OK"), "openssl verify said: {out}");
}

/// Public key (SPKI PEM) of a certificate, as openssl prints it.
pub fn openssl_cert_pubkey(dir: &TempDir, cert_pem: &str) -> String {
    dir.write("pub-cert.pem", cert_pem);
    openssl(dir, &["x509", "-in", "pub-cert.pem", "-noout", "-pubkey"])
}

/// Public key (SPKI PEM) of a private key, as openssl derives it.
pub fn openssl_key_pubkey(dir: &TempDir, key_pem: &str) -> String {
    dir.write("pub-key.pem", key_pem);
    openssl(dir, &["pkey", "-in", "pub-key.pem", "-pubout"])
}

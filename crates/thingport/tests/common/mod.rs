//! Start the real `thingport` binary on ephemeral ports with a fresh data
//! directory, provision devices, and build TLS client configs for them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The permissive policy most tests attach to their devices.
pub const ALLOW_ALL: &str = "test-allow-all";

pub struct Server {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub mqtt_port: u16,
    pub api: String,
    pub https: String,
    /// Plain-TCP MQTT address when enabled.
    pub mqtt_plain: Option<String>,
    pub log: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_thingport")
}

impl Server {
    /// Start on `data_dir`, MQTT on `mqtt_port` (0 = any).
    // The child is owned by the returned Server, whose Drop waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(data_dir: &Path, mqtt_port: u16) -> Server {
        Self::start_with(data_dir, mqtt_port, &[])
    }

    /// Start with extra `serve` arguments.
    #[allow(clippy::zombie_processes)]
    pub fn start_with(data_dir: &Path, mqtt_port: u16, extra: &[&str]) -> Server {
        let endpoints = data_dir.join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join(format!(
            "server-{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let mut child = Command::new(bin())
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt_port}"), "--api-listen", "127.0.0.1:0"])
            .args(["--https-listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0"])
            .args(extra)
            .env("THINGPORT_LOG", "info,broker=debug")
            .env_remove("THINGPORT_ADMIN_ACCESS_KEY_ID")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start thingport");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&endpoints) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    let mqtt = v["mqtt"].as_str().unwrap().to_string();
                    let port = mqtt.rsplit_once(':').unwrap().1.parse().unwrap();
                    return Server {
                        child: Some(child),
                        data_dir: data_dir.to_path_buf(),
                        mqtt_port: port,
                        api: v["api"].as_str().unwrap().to_string(),
                        https: v["https"].as_str().unwrap().to_string(),
                        mqtt_plain: v["mqtt_plain"].as_str().map(str::to_string),
                        log,
                    };
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run a CLI command against this server; returns stdout, panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(bin()).args(args).arg("--data-dir").arg(&self.data_dir).output().unwrap();
        assert!(
            out.status.success(),
            "thingport {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Provision a device; returns its directory and certificate id.
    /// Provision a device whose certificate may do anything (the tests of
    /// authorization itself use [`Server::provision_with_policy`]).
    pub fn provision(&self, name: &str, key_type: &str) -> Device {
        self.ensure_allow_all();
        self.provision_with_policy(name, key_type, Some(ALLOW_ALL))
    }

    /// Create the permissive test policy once.
    pub fn ensure_allow_all(&self) {
        if !self.cli(&["policies", "list"]).contains(ALLOW_ALL) {
            let doc = self.data_dir.join("allow-all.json");
            std::fs::write(
                &doc,
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
            )
            .unwrap();
            self.cli(&["policies", "create", ALLOW_ALL, doc.to_str().unwrap()]);
        }
    }

    /// Let a certificate do anything.
    pub fn allow_all(&self, cert_id: &str) {
        self.ensure_allow_all();
        self.cli(&["policies", "attach", ALLOW_ALL, cert_id]);
    }

    /// Provision with a given policy (None: no policy at all).
    pub fn provision_with_policy(&self, name: &str, key_type: &str, policy: Option<&str>) -> Device {
        let dir = self.data_dir.join("devices").join(name);
        let mut args = vec!["provision", name, "--out", dir.to_str().unwrap(), "--key-type", key_type];
        match policy {
            Some(p) => args.extend(["--policy", p]),
            None => args.push("--no-policy"),
        }
        let out = self.cli(&args);
        let id = out.split("certificate ").nth(1).unwrap()[..64].to_string();
        Device { dir, cert_id: id, name: name.to_string() }
    }

    /// kill -9
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_free_terminate(&mut c);
        }
    }
}

fn unsafe_free_terminate(c: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

pub struct Device {
    pub dir: PathBuf,
    pub cert_id: String,
    pub name: String,
}

impl Device {
    pub fn read(&self, f: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(f)).unwrap()
    }

    /// rustls client config with this device's certificate.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&self.read("root-ca.pem")) {
            roots.add(c.unwrap()).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&self.read("certificate.pem.crt")).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(&self.read("private.pem.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .unwrap(),
        )
    }
}

/// Run openssl in `dir`, failing the test with its message if it fails.
pub fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A device directory made with openssl: a P-256 key, an X.509 v3 client
/// certificate with `subject` signed by `ca_pem`/`ca_key`, and `server_ca`
/// (to verify the server) as root-ca.pem.
pub fn openssl_device(dir: &Path, subject: &str, ca_pem: &Path, ca_key: &Path, server_ca: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // Extensions make it an X.509 v3 certificate, as TLS stacks require.
    std::fs::write(dir.join("ext.cnf"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "private.pem.key"], dir);
    openssl(&["req", "-new", "-key", "private.pem.key", "-out", "req.csr", "-subj", subject], dir);
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            ca_pem.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-out",
            "certificate.pem.crt",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
    std::fs::copy(server_ca, dir.join("root-ca.pem")).unwrap();
}

//! The data directory: where the CA, the server certificate, the admin
//! credentials, the database and the address file live.
//!
//! Secrets are written with mode 0600 (directories 0700) through
//! [`write_secret`], and never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca/root-ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca/root-ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server/server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server/server.key")
    }
    pub fn admin_credentials(&self) -> PathBuf {
        self.root.join("admin-credentials.json")
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("thingport.sqlite")
    }
    /// Where the running server writes its bound addresses, for the CLI.
    pub fn endpoints(&self) -> PathBuf {
        self.root.join("endpoints.json")
    }

    /// Create the directory tree (0700).
    pub fn create(&self) -> anyhow::Result<()> {
        for d in [self.root.clone(), self.root.join("ca"), self.root.join("server")] {
            std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
            set_mode(&d, 0o700)?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

/// Write a file readable only by its owner (0600), atomically (temp + rename).
pub fn write_secret(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_with_mode(path, contents, 0o600)
}

/// Write a world-readable file (certificates, addresses), atomically.
pub fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_with_mode(path, contents, 0o644)
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        let mut f = opts.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    set_mode(&tmp, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The admin access key pair for the management API.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl AdminCredentials {
    /// A new random key pair: `TPAK` + 16 characters, and a 40-character secret.
    pub fn generate() -> AdminCredentials {
        use rand::Rng;
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        let id: String = (0..16).map(|_| UPPER[rng.random_range(0..UPPER.len())] as char).collect();
        let secret: String = (0..40).map(|_| SECRET[rng.random_range(0..SECRET.len())] as char).collect();
        AdminCredentials { access_key_id: format!("TPAK{id}"), secret_access_key: secret }
    }

    pub fn from_env() -> Option<AdminCredentials> {
        let id = std::env::var("THINGPORT_ADMIN_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty())?;
        let secret = std::env::var("THINGPORT_ADMIN_SECRET_ACCESS_KEY").ok().filter(|s| !s.is_empty())?;
        Some(AdminCredentials { access_key_id: id, secret_access_key: secret })
    }

    pub fn read(path: &Path) -> anyhow::Result<AdminCredentials> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a credentials file", path.display()))
    }
}

/// Addresses the running server bound, written at start-up for the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoints {
    /// Management API base URL, e.g. `http://127.0.0.1:9080`.
    pub api: String,
    /// MQTT over TLS address, e.g. `127.0.0.1:8883`.
    pub mqtt: String,
    /// Device HTTPS address.
    pub https: String,
    /// S3-compatible endpoint base URL, e.g. `https://localhost:9000`.
    #[serde(default)]
    pub s3: String,
    /// Plain MQTT address when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_plain: Option<String>,
    pub region: String,
    pub pid: u32,
}

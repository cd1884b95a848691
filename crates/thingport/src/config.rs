//! Configuration: one TOML file, every key with a default, the common ones
//! overridable by `THINGPORT_…` environment variables and command-line flags
//! (flag > environment > file > default). See `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where keys, certificates and the database live.
    pub data_dir: PathBuf,
    /// Region and account used in ARNs and policy resources.
    pub region: String,
    pub account_id: String,
    /// Extra names for the server certificate (localhost, 127.0.0.1 and ::1 are always included).
    pub hostnames: Vec<String>,
    pub listeners: Listeners,
    /// The plain-TCP development listener: who its clients are.
    pub plain_tcp: PlainTcp,
    pub limits: LimitsConfig,
    pub storage: Storage,
    pub tls: TlsConfig,
    pub shadow: ShadowConfig,
    pub rules: RulesConfig,
    pub objects: ObjectsConfig,
    pub keys: KeysConfig,
}

/// Payload keys: the KMS-like key service and the device data-key issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// File holding the root key (base64, 0600) that seals master keys; `THINGPORT_ROOT_KEY` overrides it.
    /// Default: `<data_dir>/root.key`, created on first start.
    pub root_key_file: Option<PathBuf>,
    /// Topic of the built-in data-key issuer; "" turns it off.
    pub request_topic: String,
    /// How long a device data key is valid for new encryptions (seconds).
    pub data_key_lifetime_secs: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            root_key_file: None,
            request_topic: "payload-keys/requests".into(),
            data_key_lifetime_secs: 86_400,
        }
    }
}

/// Secure file transfer: the S3-compatible endpoint and pre-signed URLs for devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// "local" (files in the data directory) or "s3" (an S3-compatible service, see `[objects.s3]`).
    pub backend: String,
    /// Base URL devices reach the endpoint at; default `https://<first hostname or localhost>:<s3 port>`.
    pub public_url: Option<String>,
    /// Largest object one PUT, POST or part may carry.
    pub max_object_bytes: u64,
    /// `BUCKET.<suffix>` host names address buckets (virtual-host style), e.g. "s3.iot.example.com".
    pub virtual_host_suffix: Option<String>,
    /// Topic of the built-in pre-signed URL issuer; "" turns it off.
    pub request_topic: String,
    /// Longest lifetime of a URL issued to a device (seconds).
    pub max_url_lifetime_secs: u32,
    /// Largest upload a device URL allows when the request names no size.
    pub max_upload_bytes: u64,
    /// Whether device URLs work once only (a request may ask for `"singleUse": false`).
    pub single_use: bool,
    /// Topic prefix of object events (`<prefix>/<bucket>/ObjectCreated/Put`, …).
    pub event_topic_prefix: String,
    pub s3: RemoteObjects,
}

/// The S3-compatible backend (`backend = "s3"`; needs a build with the `s3` feature).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteObjects {
    /// e.g. "http://127.0.0.1:9100" for MinIO; unset for AWS S3.
    pub endpoint: Option<String>,
    pub region: String,
    /// The one remote bucket all Thingport buckets live in.
    pub bucket: String,
    /// Key prefix inside it ("" or ending in "/").
    pub prefix: String,
    pub access_key_id: String,
    /// Or the THINGPORT_OBJECTS_S3_SECRET_ACCESS_KEY environment variable.
    pub secret_access_key: Option<String>,
    pub virtual_hosted_style: bool,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            backend: "local".into(),
            public_url: None,
            max_object_bytes: 5 * 1024 * 1024 * 1024,
            virtual_host_suffix: None,
            request_topic: "presigned-url/requests".into(),
            max_url_lifetime_secs: 60,
            max_upload_bytes: 1024 * 1024 * 1024,
            single_use: true,
            event_topic_prefix: "$aws/events/s3".into(),
            s3: RemoteObjects::default(),
        }
    }
}

/// The rules engine.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// NATS server for the stream action (`kinesis` / `nats`), e.g. "nats://127.0.0.1:4222".
    pub nats_url: Option<String>,
}

/// Device shadow limits (AWS IoT's values by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Largest state document (desired + reported, metadata excluded).
    pub max_state_bytes: usize,
    /// Deepest nesting inside desired or reported.
    pub max_depth: usize,
    /// Longest clientToken.
    pub max_client_token_bytes: usize,
    /// Seconds after a delete during which a re-created shadow continues its version numbering.
    pub version_retention_secs: i64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        let l = shadow::Limits::default();
        ShadowConfig {
            max_state_bytes: l.max_state_bytes,
            max_depth: l.max_depth,
            max_client_token_bytes: l.max_client_token,
            version_retention_secs: l.version_retention_secs,
        }
    }
}

impl ShadowConfig {
    pub fn to_limits(&self) -> shadow::Limits {
        shadow::Limits {
            max_state_bytes: self.max_state_bytes,
            max_depth: self.max_depth,
            max_client_token: self.max_client_token_bytes,
            version_retention_secs: self.version_retention_secs,
            ..shadow::Limits::default()
        }
    }
}

/// Server certificate: issued by Thingport's CA unless the operator supplies one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM chain (leaf first) to serve instead of a Thingport-issued certificate.
    pub server_certificate: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub server_private_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// MQTT over TLS with client certificates.
    pub mqtt: SocketAddr,
    /// Device HTTPS data plane (client certificates).
    pub https: SocketAddr,
    /// Management API (SigV4).
    pub api: SocketAddr,
    /// S3-compatible object endpoint.
    pub s3: SocketAddr,
    /// Plain MQTT over TCP, INSECURE, off unless set.
    pub mqtt_plain: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainTcp {
    /// Principal id every plain-TCP client is mapped to.
    pub principal: String,
    /// Thing that principal acts as (policy variables), if any.
    pub thing_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_payload_bytes: usize,
    pub max_topic_bytes: usize,
    pub max_topic_slashes: usize,
    pub max_client_id_bytes: usize,
    pub keep_alive_min_secs: u16,
    pub keep_alive_max_secs: u16,
    pub max_subscriptions_per_session: usize,
    pub max_filters_per_subscribe: usize,
    pub max_inflight_messages: u16,
    pub receive_maximum: u16,
    pub topic_alias_maximum: u16,
    pub max_queued_messages: usize,
    pub default_session_expiry_secs: u32,
    pub max_session_expiry_secs: u32,
    /// Publishes per second per connection; 0 = unlimited.
    pub max_publishes_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// "normal": commits survive a crash of Thingport (kill -9); "full": fsync
    /// every commit, surviving power loss as well, at a throughput cost.
    pub durability: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./thingport-data"),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            hostnames: Vec::new(),
            listeners: Listeners::default(),
            plain_tcp: PlainTcp::default(),
            limits: LimitsConfig::default(),
            storage: Storage::default(),
            tls: TlsConfig::default(),
            shadow: ShadowConfig::default(),
            rules: RulesConfig::default(),
            objects: ObjectsConfig::default(),
            keys: KeysConfig::default(),
        }
    }
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            mqtt: "0.0.0.0:8883".parse().expect("valid"),
            https: "0.0.0.0:8443".parse().expect("valid"),
            api: "127.0.0.1:9080".parse().expect("valid"),
            s3: "0.0.0.0:9000".parse().expect("valid"),
            mqtt_plain: None,
        }
    }
}

impl Default for PlainTcp {
    fn default() -> Self {
        PlainTcp { principal: "plain-tcp".into(), thing_name: None }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = broker::Limits::default();
        LimitsConfig {
            max_payload_bytes: l.max_payload,
            max_topic_bytes: l.max_topic_bytes,
            max_topic_slashes: l.max_topic_slashes,
            max_client_id_bytes: l.max_client_id,
            keep_alive_min_secs: l.keep_alive_min,
            keep_alive_max_secs: l.keep_alive_max,
            max_subscriptions_per_session: l.max_subscriptions,
            max_filters_per_subscribe: l.max_filters_per_subscribe,
            max_inflight_messages: l.max_inflight,
            receive_maximum: l.receive_maximum,
            topic_alias_maximum: l.topic_alias_maximum,
            max_queued_messages: l.max_queued_messages,
            default_session_expiry_secs: l.default_session_expiry,
            max_session_expiry_secs: l.max_session_expiry,
            max_publishes_per_second: 0,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage { durability: "normal".into() }
    }
}

impl LimitsConfig {
    pub fn to_limits(&self) -> broker::Limits {
        broker::Limits {
            max_payload: self.max_payload_bytes,
            max_topic_bytes: self.max_topic_bytes,
            max_topic_slashes: self.max_topic_slashes,
            max_client_id: self.max_client_id_bytes,
            keep_alive_min: self.keep_alive_min_secs,
            keep_alive_max: self.keep_alive_max_secs,
            max_subscriptions: self.max_subscriptions_per_session,
            max_filters_per_subscribe: self.max_filters_per_subscribe,
            max_inflight: self.max_inflight_messages.max(1),
            receive_maximum: self.receive_maximum.max(1),
            topic_alias_maximum: self.topic_alias_maximum,
            max_queued_messages: self.max_queued_messages,
            default_session_expiry: self.default_session_expiry_secs,
            max_session_expiry: self.max_session_expiry_secs,
            max_publish_rate: (self.max_publishes_per_second > 0).then_some(self.max_publishes_per_second),
            ..broker::Limits::default()
        }
    }
}

impl Config {
    /// Read a config file; a missing file is an error only when it was named explicitly.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn storage_sync(&self) -> anyhow::Result<store::sqlite::Synchronous> {
        match self.storage.durability.as_str() {
            "normal" => Ok(store::sqlite::Synchronous::Normal),
            "full" => Ok(store::sqlite::Synchronous::Full),
            other => {
                anyhow::bail!("storage.durability must be \"normal\" or \"full\", not {other:?}")
            }
        }
    }

    /// Names in the server certificate.
    pub fn server_names(&self) -> Vec<String> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        for h in &self.hostnames {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_unknown_keys_fail() {
        let c: Config = toml::from_str(
            r#"
            data_dir = "/tmp/x"
            hostnames = ["iot.example.com"]
            [listeners]
            mqtt = "127.0.0.1:0"
            mqtt_plain = "127.0.0.1:1884"
            [limits]
            max_payload_bytes = 1000
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.max_payload_bytes, 1000);
        assert_eq!(c.limits.max_topic_bytes, 256);
        assert_eq!(c.listeners.api.port(), 9080);
        assert!(c.server_names().contains(&"iot.example.com".to_string()));
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }
}

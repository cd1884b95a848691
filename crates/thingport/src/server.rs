//! `thingport serve`: wire the parts together on embedded defaults.

use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::datadir::{write_public, write_secret, AdminCredentials, DataDir, Endpoints};
use crate::registry::Registry;

/// Load the CA from the data directory, creating it on first start.
pub fn load_or_create_ca(dir: &DataDir) -> anyhow::Result<pki::CertificateAuthority> {
    let (cert, key) = (dir.ca_cert(), dir.ca_key());
    if cert.exists() && key.exists() {
        let cert_pem = std::fs::read_to_string(&cert)?;
        let key_pem = std::fs::read_to_string(&key)?;
        return pki::CertificateAuthority::from_pem(&cert_pem, &key_pem)
            .with_context(|| format!("cannot load the CA from {}", cert.display()));
    }
    let ca = pki::CertificateAuthority::generate("Thingport Root CA")?;
    write_secret(&key, ca.key_pem().expose().as_bytes())?;
    write_public(&cert, ca.cert_pem().as_bytes())?;
    tracing::info!(path = %cert.display(), "created root CA");
    Ok(ca)
}

/// The server certificate: where it comes from and how to rotate it.
pub struct ServerIdentity {
    dir: DataDir,
    ca: Arc<pki::CertificateAuthority>,
    names: Vec<String>,
    /// Operator-supplied certificate and key files, read again on rotation.
    operator: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub resolver: Arc<crate::tls::ServerCertResolver>,
}

impl ServerIdentity {
    fn current(&self) -> anyhow::Result<(String, String)> {
        match &self.operator {
            Some((cert, key)) => Ok((
                std::fs::read_to_string(cert).with_context(|| format!("cannot read {}", cert.display()))?,
                std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?,
            )),
            // Issued afresh (each start and each rotation) for the configured
            // names; devices trust the CA, not this certificate.
            None => {
                let issued = self.ca.issue_server_certificate(&self.names, 397)?;
                write_secret(&self.dir.server_key(), issued.key.expose().as_bytes())?;
                write_public(&self.dir.server_cert(), issued.cert_pem.as_bytes())?;
                Ok((issued.cert_pem, issued.key.expose().to_string()))
            }
        }
    }

    fn load(dir: &DataDir, ca: Arc<pki::CertificateAuthority>, config: &Config) -> anyhow::Result<Arc<Self>> {
        let operator = match (&config.tls.server_certificate, &config.tls.server_private_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => anyhow::bail!("tls.server_certificate and tls.server_private_key must be set together"),
        };
        let mut me = ServerIdentity {
            dir: dir.clone(),
            ca,
            names: config.server_names(),
            operator,
            resolver: crate::tls::ServerCertResolver::placeholder(),
        };
        let (cert, key) = me.current()?;
        me.resolver = crate::tls::ServerCertResolver::new(&cert, &key)?;
        Ok(Arc::new(me))
    }

    /// Serve a new server certificate to new connections; existing ones are
    /// not touched. Returns the new certificate's id.
    pub fn rotate(&self) -> anyhow::Result<String> {
        let (cert, key) = self.current()?;
        self.resolver.rotate(&cert, &key)?;
        let id = pki::certificate_id(&pki::pem_to_der(&cert)?);
        tracing::info!(certificate_id = %id, "server certificate rotated");
        Ok(id)
    }
}

/// The least-privilege device policy `thingport provision` attaches, created
/// on first start (edit it with CreatePolicyVersion like any policy).
fn ensure_default_policy(policies: &crate::policies::Policies) -> anyhow::Result<()> {
    use crate::policies::{default_device_policy, DEFAULT_DEVICE_POLICY};
    if policies.get(DEFAULT_DEVICE_POLICY).is_err() {
        let doc = default_device_policy(&policies.region, &policies.account_id);
        policies.create(DEFAULT_DEVICE_POLICY, &doc).map_err(|e| anyhow::anyhow!(e.message))?;
        tracing::info!(policy = DEFAULT_DEVICE_POLICY, "created the default device policy");
    }
    Ok(())
}

/// Admin credentials: from the environment, else the data directory, else new.
fn admin_credentials(dir: &DataDir) -> anyhow::Result<(AdminCredentials, bool)> {
    if let Some(c) = AdminCredentials::from_env() {
        return Ok((c, false));
    }
    let path = dir.admin_credentials();
    if path.exists() {
        return Ok((AdminCredentials::read(&path)?, false));
    }
    let c = AdminCredentials::generate();
    write_secret(&path, serde_json::to_string_pretty(&c)?.as_bytes())?;
    Ok((c, true))
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what}: is another program using the port? Choose another with the matching --*-listen flag")
    })
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let dir = DataDir::new(&config.data_dir);
    dir.create()?;
    let ca = Arc::new(load_or_create_ca(&dir)?);
    let identity = ServerIdentity::load(&dir, ca.clone(), &config)?;
    let (admin, created) = admin_credentials(&dir)?;

    let db = store::sqlite::SqliteStore::open(&dir.database(), config.storage_sync()?)
        .with_context(|| format!("cannot open the database {}", dir.database().display()))?;
    let mut plain = broker::Principal::new(config.plain_tcp.principal.as_str());
    plain.thing_name = config.plain_tcp.thing_name.as_deref().map(Into::into);
    let registry = Registry::new(db.clone(), ca.clone(), config.region.clone(), config.account_id.clone(), plain)?;
    let policies = crate::policies::Policies::new(
        db.clone(),
        db.clone(),
        db.clone(),
        config.region.clone(),
        config.account_id.clone(),
    );
    ensure_default_policy(&policies)?;
    let authorizer = Arc::new(crate::policies::PolicyAuthorizer { policies: policies.clone() });
    let broker = broker::Broker::new(
        config.limits.to_limits(),
        registry.clone(),
        Box::new(crate::policies::SharedAuthorizer(authorizer.clone())),
        db.clone(),
    )?;
    let shadows = crate::shadows::Shadows::new(db.clone(), config.shadow.to_limits());
    shadows.attach(&broker);
    let nats_url =
        std::env::var("THINGPORT_RULES_NATS_URL").ok().filter(|u| !u.is_empty()).or(config.rules.nats_url.clone());
    let rules = crate::rules_engine::RulesEngine::new(
        db.clone(),
        db.clone(),
        config.region.clone(),
        config.account_id.clone(),
        nats_url,
    )?;
    rules.start(&broker, &shadows)?;
    registry.set_broker(&broker);
    let credentials = Arc::new(vec![admin.clone()]);

    // Secure file transfer: the S3-compatible endpoint and the URL issuer.
    let s3_listener = bind(config.listeners.s3, "the S3-compatible endpoint").await?;
    let s3_addr = s3_listener.local_addr()?;
    let s3_url = config.objects.public_url.clone().unwrap_or_else(|| {
        let host = config.hostnames.first().map_or("localhost", String::as_str);
        format!("https://{host}:{}", s3_addr.port())
    });
    let (object_backend, staging) = open_object_backend(&config, &dir)?;
    let uploads = objects::multipart::Uploads::open(dir.root.join("objects").join("uploads"))
        .context("cannot open the multipart upload area")?;
    let events = Arc::new(crate::file_transfer::RouterEvents(std::sync::OnceLock::new()));
    let _ = events.0.set(Arc::downgrade(&broker));
    registry.set_grants(db.clone());
    let file_transfer = crate::file_transfer::FileTransfer::new(
        db.clone(),
        registry.clone(),
        authorizer.clone(),
        credentials.clone(),
        crate::file_transfer::load_or_create_url_key(&dir.root.join("url-signing.key"))?,
        crate::file_transfer::IssuerConfig {
            public_url: s3_url.clone(),
            region: config.region.clone(),
            max_lifetime_secs: config.objects.max_url_lifetime_secs.max(1),
            max_upload_bytes: config.objects.max_upload_bytes,
            single_use: config.objects.single_use,
        },
    );
    let s3_service = objects::service::S3Service::new(
        object_backend,
        staging,
        uploads,
        file_transfer.clone(),
        events,
        objects::service::ServiceConfig {
            region: config.region.clone(),
            max_object_size: config.objects.max_object_bytes,
            virtual_host_suffix: config.objects.virtual_host_suffix.clone(),
            owner_id: config.account_id.clone(),
            event_topic_prefix: config.objects.event_topic_prefix.clone(),
            ..Default::default()
        },
    );
    file_transfer.attach(&broker, &shadows, &s3_service);
    rules.set_file_transfer(&file_transfer, &config.objects.request_topic)?;

    // Payload keys: master keys sealed by the root key, device data keys.
    let root_key_path = config.keys.root_key_file.clone().unwrap_or_else(|| dir.root.join("root.key"));
    let payload_keys = crate::payload_keys::PayloadKeys::new(
        db.clone(),
        crate::payload_keys::load_root_key(&root_key_path)?,
        config.region.clone(),
        config.account_id.clone(),
        registry.clone(),
        authorizer.clone(),
        config.keys.data_key_lifetime_secs,
    )?;
    payload_keys.attach(&broker);
    rules.set_payload_keys(&payload_keys, &config.keys.request_topic)?;
    {
        let pk = Arc::downgrade(&payload_keys);
        let grants = db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let Some(pk) = pk.upgrade() else { return };
                tokio::task::spawn_blocking(move || pk.housekeeping()).await.ok();
                // Pre-signed URL grants a day past their expiry are of no more use.
                let day_ago = store::now_ms() as i64 - 86_400_000;
                match store::GrantStore::purge_grants(&*grants, day_ago) {
                    Ok(n) if n > 0 => tracing::info!(grants = n, "forgot expired pre-signed URL grants"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not purge expired pre-signed URL grants"),
                }
            }
        });
    }
    let s3_tls = Arc::new(ArcSwap::from_pointee(crate::tls::object_server_config(identity.resolver.clone())?));
    let s3_app = objects::service::router(s3_service).layer(axum::middleware::map_request(
        |axum::Extension(peer): axum::Extension<broker::PeerInfo>, mut req: axum::extract::Request| async move {
            req.extensions_mut().insert(objects::service::ClientAddr(peer.addr));
            req
        },
    ));

    let data = crate::dataplane::DataState { broker: broker.clone(), shadows, authz: authorizer };

    let tls = crate::tls::device_server_config(registry.verifier(), identity.resolver.clone(), &[])?;
    let tls = Arc::new(ArcSwap::from_pointee(tls));
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);

    let mqtt_listener = bind(config.listeners.mqtt, "MQTT over TLS").await?;
    let mqtt_addr = mqtt_listener.local_addr()?;
    tokio::spawn(broker::listener::serve_tls(mqtt_listener, tls.clone(), broker.clone(), shutdown_rx.clone()));

    let https_listener = bind(config.listeners.https, "device HTTPS").await?;
    let https_addr = https_listener.local_addr()?;
    let https_app = crate::device_https::router(data.clone());
    tokio::spawn(crate::device_https::serve(https_listener, tls.clone(), https_app, shutdown_rx.clone()));

    tokio::spawn(crate::device_https::serve(s3_listener, s3_tls, s3_app, shutdown_rx.clone()));

    let mut plain_addr = None;
    if let Some(addr) = config.listeners.mqtt_plain {
        let l = bind(addr, "plain MQTT").await?;
        let a = l.local_addr()?;
        tracing::warn!(addr = %a, principal = %config.plain_tcp.principal,
            "INSECURE plain-TCP MQTT listener enabled: no encryption, no client authentication; do not expose it");
        plain_addr = Some(a);
        tokio::spawn(broker::listener::serve_tcp(l, broker.clone(), shutdown_rx.clone()));
    }

    let api_listener = bind(config.listeners.api, "the management API").await?;
    let api_addr = api_listener.local_addr()?;
    let state = crate::api::ApiState {
        registry: registry.clone(),
        credentials,
        broker: broker.clone(),
        policies: policies.clone(),
        rules: rules.clone(),
        mqtt_address: mqtt_addr.to_string(),
        server_identity: identity.clone(),
        s3_url: s3_url.clone(),
        keys: payload_keys.clone(),
        groups: crate::groups::Groups::new(db.clone(), registry.clone(), broker.clone())?,
    };
    let app = crate::api::router(state, data);
    let mut api_shutdown = shutdown_rx.clone();
    tokio::spawn(async move {
        let r = axum::serve(api_listener, app)
            .with_graceful_shutdown(async move {
                let _ = api_shutdown.changed().await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "management API stopped");
        }
    });

    let endpoints = Endpoints {
        api: format!("http://{api_addr}"),
        mqtt: mqtt_addr.to_string(),
        https: https_addr.to_string(),
        s3: s3_url.clone(),
        mqtt_plain: plain_addr.map(|a| a.to_string()),
        region: config.region.clone(),
        pid: std::process::id(),
    };
    write_public(&dir.endpoints(), serde_json::to_string_pretty(&endpoints)?.as_bytes())?;

    tracing::info!(%mqtt_addr, "MQTT over TLS (client certificates required)");
    tracing::info!(%https_addr, "device HTTPS (client certificates required)");
    tracing::info!(%api_addr, "management API (SigV4)");
    tracing::info!(%s3_addr, url = %s3_url, "S3-compatible object endpoint (SigV4, pre-signed URLs)");
    print_banner(&config, &dir, &endpoints, &admin, created);

    wait_for_signal(&identity).await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    broker.kick_all(mqtt::reason::SERVER_SHUTTING_DOWN);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    broker.sync().await.ok();
    let _ = std::fs::remove_file(dir.endpoints());
    Ok(())
}

fn print_banner(config: &Config, dir: &DataDir, e: &Endpoints, admin: &AdminCredentials, created: bool) {
    let data = dir.root.display();
    let dd = if config.data_dir == std::path::Path::new("./thingport-data") {
        String::new()
    } else {
        format!(" --data-dir {data}")
    };
    eprintln!(
        "\nThingport is running.\n\
         \n  MQTT over TLS   {mqtt}   (devices need a client certificate)\n\
         \x20 Device HTTPS    {https}   (POST /topics/TOPIC with the device certificate)\n\
         \x20 Management API  {api}   (SigV4, access key {akid}{new})\n\
         \x20 Objects (S3)    {s3}   (SigV4 with the same key; pre-signed URLs for devices)\n\
         \x20 Root CA         {ca}\n\
         \x20 Data directory  {data}\n\
         \nMake a first device (in another terminal):\n\
         \n  thingport provision my-device --out ./my-device{dd}\n\
         \nthen publish with the mosquitto_pub command it prints. Stop with Ctrl-C.\n",
        mqtt = e.mqtt,
        https = e.https,
        api = e.api,
        s3 = e.s3,
        akid = admin.access_key_id,
        new = if created { ", new, saved in admin-credentials.json" } else { "" },
        ca = dir.ca_cert().display(),
    );
}

/// The object storage backend chosen by `[objects] backend`, and the staging
/// area on the same filesystem as what commits from it.
fn open_object_backend(
    config: &Config,
    dir: &DataDir,
) -> anyhow::Result<(Arc<dyn objects::Backend>, Arc<objects::staging::Staging>)> {
    let root = dir.root.join("objects");
    match config.objects.backend.as_str() {
        "local" => {
            let backend = objects::storage::local::LocalBackend::open(&root)
                .map_err(|e| anyhow::anyhow!("cannot open the object store in {}: {e}", root.display()))?;
            let staging = backend.staging().clone();
            Ok((Arc::new(backend), staging))
        }
        #[cfg(feature = "s3")]
        "s3" => {
            let s3 = &config.objects.s3;
            let secret = std::env::var("THINGPORT_OBJECTS_S3_SECRET_ACCESS_KEY")
                .ok()
                .or_else(|| s3.secret_access_key.clone())
                .unwrap_or_default();
            let backend = objects::storage::remote::RemoteBackend::new(objects::storage::remote::RemoteConfig {
                endpoint: s3.endpoint.clone(),
                region: if s3.region.is_empty() { config.region.clone() } else { s3.region.clone() },
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: secret,
                allow_http: s3.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
                virtual_hosted_style: s3.virtual_hosted_style,
            })
            .map_err(|e| anyhow::anyhow!("cannot use the S3 backend: {e}"))?;
            let staging = objects::staging::Staging::new(root.join("tmp"))
                .with_context(|| format!("cannot create {}", root.join("tmp").display()))?;
            Ok((Arc::new(backend), Arc::new(staging)))
        }
        #[cfg(not(feature = "s3"))]
        "s3" => anyhow::bail!(
            "objects.backend = \"s3\" needs a build with the s3 feature: cargo build --release --features s3"
        ),
        other => anyhow::bail!("objects.backend must be \"local\" or \"s3\", not {other:?}"),
    }
}

/// Wait for SIGINT/SIGTERM; SIGHUP rotates the server certificate.
async fn wait_for_signal(identity: &ServerIdentity) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    if let Err(e) = identity.rotate() {
                        tracing::error!(error = %format!("{e:#}"), "server certificate rotation failed");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = identity;
        let _ = tokio::signal::ctrl_c().await;
    }
}

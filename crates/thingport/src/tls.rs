//! TLS set-up for the device listeners, in one place (rustls 0.23, aws-lc-rs).
//!
//! Two pieces can change while the server runs, so both are swappable:
//! - [`DeviceCertVerifier`]: which client certificates pass the handshake —
//!   those chaining to Thingport's CA or to an ACTIVE registered CA, plus
//!   individual certificates registered without a CA;
//! - [`ServerCertResolver`]: the server certificate (rotated without
//!   dropping existing connections).
//!
//! Whether a certificate is ACTIVE is checked right after the handshake
//! from the registry cache (see `registry`), because rustls' verifier is
//! synchronous and must stay cheap.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// The process-wide crypto provider (aws-lc-rs), passed explicitly so no
/// other provider compiled in by a dependency can confuse rustls.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Client certificate verification whose trust anchors can be replaced at run time.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    chain: ArcSwap<Arc<dyn ClientCertVerifier>>,
    /// Ids (SHA-256 of DER) of certificates registered without a CA.
    pinned: ArcSwap<HashSet<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl DeviceCertVerifier {
    pub fn new(trusted_cas: &[Vec<u8>], pinned: HashSet<String>) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(DeviceCertVerifier {
            chain: ArcSwap::from_pointee(Self::build(trusted_cas)?),
            pinned: ArcSwap::from_pointee(pinned),
            provider: provider(),
        }))
    }

    fn build(trusted_cas: &[Vec<u8>]) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
        let mut roots = RootCertStore::empty();
        for ca in trusted_cas {
            roots
                .add(CertificateDer::from(ca.clone()))
                .context("a trusted CA certificate is not usable as a TLS root")?;
        }
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .context("cannot build the client certificate verifier")
    }

    /// Replace the trusted CAs (DER) and the certificates trusted on their own.
    pub fn update(&self, trusted_cas: &[Vec<u8>], pinned: HashSet<String>) -> anyhow::Result<()> {
        self.chain.store(Arc::new(Self::build(trusted_cas)?));
        self.pinned.store(Arc::new(pinned));
        Ok(())
    }
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; devices send their one certificate regardless.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.chain.load().verify_client_cert(end_entity, intermediates, now) {
            Ok(v) => Ok(v),
            Err(e) => {
                if self.pinned.load().contains(&pki::certificate_id(end_entity.as_ref())) {
                    Ok(ClientCertVerified::assertion())
                } else {
                    Err(e)
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The server certificate, swappable for rotation.
#[derive(Debug)]
pub struct ServerCertResolver {
    current: ArcSwap<Option<Arc<CertifiedKey>>>,
}

impl ServerCertResolver {
    pub fn new(cert_pem: &str, key_pem: &str) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(ServerCertResolver {
            current: ArcSwap::from_pointee(Some(Arc::new(certified_key(cert_pem, key_pem)?))),
        }))
    }

    /// A resolver with no certificate yet (handshakes fail until `rotate`).
    pub fn placeholder() -> Arc<Self> {
        Arc::new(ServerCertResolver { current: ArcSwap::from_pointee(None) })
    }

    /// Serve a new certificate to new connections; existing ones keep theirs.
    pub fn rotate(&self, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        self.current.store(Arc::new(Some(Arc::new(certified_key(cert_pem, key_pem)?))));
        Ok(())
    }
}

impl ResolvesServerCert for ServerCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load().as_ref().clone()
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = pem_blocks(cert_pem, "CERTIFICATE").into_iter().map(Into::into).collect();
    anyhow::ensure!(!chain.is_empty(), "the server certificate file has no CERTIFICATE block");
    let key = private_key_der(key_pem)?;
    let signer = provider().key_provider.load_private_key(key).context("unusable server private key")?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().context("the server certificate and key do not match")?;
    Ok(ck)
}

/// Server config for a device listener: client certificate required.
pub fn device_server_config(
    verifier: Arc<DeviceCertVerifier>,
    resolver: Arc<ServerCertResolver>,
    alpn: &[&[u8]],
) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Server config for the S3-compatible endpoint: server certificate only
/// (clients authenticate with SigV4 or a pre-signed URL).
pub fn object_server_config(resolver: Arc<ServerCertResolver>) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Parse a PEM private key (PKCS#8, SEC1 or PKCS#1) into rustls' type.
pub fn private_key_der(pem_text: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let normalized = pki::normalize_private_key(pem_text)?;
    let block = pem_blocks(normalized.expose(), "PRIVATE KEY").into_iter().next().context("no PRIVATE KEY block")?;
    Ok(PrivateKeyDer::Pkcs8(block.into()))
}

fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let after = &rest[i + begin.len()..];
        let Some(j) = after.find(&end) else { break };
        let b64: String = after[..j].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &after[j + end.len()..];
    }
    out
}

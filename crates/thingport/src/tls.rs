//! TLS set-up for the device listeners, in one place (rustls 0.23, aws-lc-rs).
//!
//! Devices must present a certificate chaining to a CA the server trusts;
//! whether that certificate is still ACTIVE is checked right after the
//! handshake from the registry cache (see `identity`), because the rustls
//! verifier is synchronous and immutable.

use std::sync::Arc;

use anyhow::Context;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The process-wide crypto provider (aws-lc-rs), passed explicitly so no
/// other provider compiled in by a dependency can confuse rustls.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Server config that requires a client certificate signed by one of `trusted_cas` (DER).
pub fn mutual_tls_config(
    trusted_cas: &[Vec<u8>],
    server_cert_pem: &str,
    server_key_pem: &str,
    alpn: &[&[u8]],
) -> anyhow::Result<ServerConfig> {
    let mut roots = RootCertStore::empty();
    for ca in trusted_cas {
        roots
            .add(CertificateDer::from(ca.clone()))
            .context("a trusted CA certificate is not usable as a TLS root")?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .context("cannot build the client certificate verifier")?;
    let chain = vec![CertificateDer::from(pki::pem_to_der(server_cert_pem)?)];
    let key = private_key_der(server_key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("the server certificate and key do not match")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Parse a PKCS#8 PEM private key into rustls' type.
pub fn private_key_der(pem_text: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let normalized = pki::normalize_private_key(pem_text)?;
    let block = pem_block(normalized.expose(), "PRIVATE KEY").context("no PRIVATE KEY block")?;
    Ok(PrivateKeyDer::Pkcs8(block.into()))
}

fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

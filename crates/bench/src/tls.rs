//! TLS client set-up (rustls 0.23 with the aws-lc-rs provider, chosen
//! explicitly: never the process-default builder).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A client config trusting the CA certificates in `ca` and, when both are
/// given, presenting `cert` / `key`.
///
/// Session resumption is disabled: every connection does a full handshake,
/// which is what a fleet of freshly booted devices costs the broker and what
/// the connection benchmark should measure.
pub fn client_config(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).with_context(|| format!("cannot read {}", ca.display()))? {
        let c = c.with_context(|| format!("bad certificate in {}", ca.display()))?;
        roots.add(c).context("CA certificate not usable as a trust anchor")?;
    }
    if roots.is_empty() {
        bail!("no certificate in {}", ca.display());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let mut config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("bad certificate in {}", cert.display()))?;
            if chain.is_empty() {
                bail!("no certificate in {}", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("no usable private key in {}", key.display()))?;
            builder.with_client_auth_cert(chain, key).context("client certificate and key do not match")?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => bail!("--cert and --key go together"),
    };
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

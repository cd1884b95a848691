//! Smoke test against the TLS stack the broker uses: rustls with aws-lc-rs must
//! accept our server certificate and our device certificates, and a full mutual
//! TLS handshake must succeed in memory.

use std::sync::Arc;

use pki::{pem_to_der, CertificateAuthority, KeyType, Subject};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn cert(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from(pem_to_der(pem).unwrap())
}

fn key(pem: &pki::PrivateKeyPem) -> PrivateKeyDer<'static> {
    let block = pem::parse(pem.expose()).unwrap();
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.contents().to_vec()))
}

fn roots(ca: &CertificateAuthority) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der().to_vec())).unwrap();
    Arc::new(roots)
}

fn server_config(ca: &CertificateAuthority) -> Arc<ServerConfig> {
    let server = ca.issue_server_certificate(&["localhost".into(), "127.0.0.1".into(), "::1".into()], 7).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider()).build().unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert(&server.cert_pem)], key(&server.key))
        .unwrap();
    Arc::new(config)
}

/// Pumps TLS records between the two sides until both finish the handshake.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
        }
        server.process_new_packets().map_err(|e| format!("server: {e}"))?;

        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
        }
        client.process_new_packets().map_err(|e| format!("client: {e}"))?;
    }
    Err("handshake did not finish".into())
}

#[test]
fn client_verifier_accepts_our_device_certificates() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    // Building the server config proves the server cert + key are accepted.
    let _ = server_config(&ca);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca), provider()).build().unwrap();
    for kind in KeyType::ALL {
        let device = ca.issue_device_certificate(kind, &Subject::with_common_name("dev")).unwrap();
        verifier
            .verify_client_cert(&cert(&device.cert_pem), &[], UnixTime::now())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }

    // A device certificate from a different CA is rejected.
    let stranger = CertificateAuthority::generate("Other Root").unwrap();
    let device = stranger.issue_device_certificate(KeyType::EcP256, &Subject::with_common_name("dev")).unwrap();
    assert!(verifier.verify_client_cert(&cert(&device.cert_pem), &[], UnixTime::now()).is_err());

    // A server certificate is not a client certificate (EKU serverAuth only).
    let server = ca.issue_server_certificate(&["localhost".into()], 1).unwrap();
    assert!(verifier.verify_client_cert(&cert(&server.cert_pem), &[], UnixTime::now()).is_err());
}

#[test]
fn mutual_tls_handshake_in_memory() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let server_config = server_config(&ca);
    for kind in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
        let device = ca.issue_device_certificate(kind, &Subject::with_common_name("dev")).unwrap();
        let client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&ca))
            .with_client_auth_cert(vec![cert(&device.cert_pem)], key(&device.key))
            .unwrap();
        let client_config = Arc::new(client_config);
        for name in ["localhost", "127.0.0.1", "::1"] {
            let server_name = ServerName::try_from(name.to_owned()).unwrap();
            let mut client = ClientConnection::new(client_config.clone(), server_name).unwrap();
            let mut server = ServerConnection::new(server_config.clone()).unwrap();
            handshake(&mut client, &mut server).unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
            let presented = server.peer_certificates().unwrap();
            assert_eq!(presented[0].as_ref(), pem_to_der(&device.cert_pem).unwrap());
        }
        // A name that is not in the server certificate fails on the client side.
        let mut client =
            ClientConnection::new(client_config.clone(), ServerName::try_from("example.com").unwrap()).unwrap();
        let mut server = ServerConnection::new(server_config.clone()).unwrap();
        let err = handshake(&mut client, &mut server).unwrap_err();
        assert!(err.starts_with("client:"), "{err}");
    }
}

#[test]
fn csr_signed_certificates_work_as_client_certificates() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca), provider()).build().unwrap();
    for kind in [KeyType::EcP256, KeyType::Rsa2048] {
        let key = pki::generate_key(kind).unwrap();
        let pem = ca.sign_csr(&pki::make_csr(&key, "csr-device").unwrap()).unwrap();
        verifier.verify_client_cert(&cert(&pem), &[], UnixTime::now()).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

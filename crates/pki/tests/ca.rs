//! Issuance, loading, parsing and error behaviour, without external tools.

use pki::{
    certificate_id, der_to_pem, generate_key, make_csr, normalize_private_key, parse_certificate, pem_to_der,
    verify_signed_by, CertificateAuthority, KeyType, PkiError, Subject,
};

/// 2049-12-31T23:59:59Z as unix seconds.
const AWS_DEVICE_NOT_AFTER: i64 = 2_524_607_999;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn generated_ca_has_the_promised_shape() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let info = parse_certificate(ca.cert_der()).unwrap();
    assert!(info.is_ca);
    assert_eq!(info.subject.common_name.as_deref(), Some("Test Root"));
    assert_eq!(info.subject.organization.as_deref(), Some("Thingport"));
    assert_eq!(info.subject, info.issuer, "root is self-issued");
    assert_eq!(info.key_algorithm, "EC");
    assert_eq!(info.key_bits, 256);
    assert_eq!(info.serial_number.len(), 32, "128-bit serial in hex");
    assert!(info.not_before <= now());
    let years = (info.not_after - now()) as f64 / (365.25 * 86400.0);
    assert!((19.9..20.1).contains(&years), "validity {years} years");
    assert!(verify_signed_by(ca.cert_der(), ca.cert_der()).unwrap());
    assert_eq!(ca.certificate_id(), certificate_id(ca.cert_der()));
    assert_eq!(pem_to_der(ca.cert_pem()).unwrap(), ca.cert_der());

    // keyUsage keyCertSign + cRLSign and pathlen 0, read back with x509-parser.
    let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));

    // Two CAs never share a serial.
    let other = CertificateAuthority::generate("Test Root").unwrap();
    assert_ne!(parse_certificate(other.cert_der()).unwrap().serial_number, info.serial_number);
}

#[test]
fn server_certificate_has_ip_and_dns_sans() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].iter().map(|s| s.to_string()).collect();
    let issued = ca.issue_server_certificate(&hosts, 30).unwrap();
    let der = pem_to_der(&issued.cert_pem).unwrap();
    let info = parse_certificate(&der).unwrap();
    assert_eq!(info.san_dns, vec!["localhost"]);
    assert_eq!(info.san_ip, vec!["127.0.0.1", "::1"]);
    assert!(info.san_uri.is_empty() && info.san_email.is_empty());
    assert_eq!(info.subject.common_name.as_deref(), Some("localhost"));
    assert_eq!(info.issuer.common_name.as_deref(), Some("Test Root"));
    assert!(!info.is_ca);
    assert_eq!((info.key_algorithm.as_str(), info.key_bits), ("EC", 256));
    let days = (info.not_after - now()) as f64 / 86400.0;
    assert!((29.9..30.1).contains(&days), "validity {days} days");
    assert!(verify_signed_by(&der, ca.cert_der()).unwrap());

    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);

    // The returned key belongs to the certificate.
    let csr = make_csr(&issued.key, "x").unwrap();
    let from_csr = ca.sign_csr(&csr).unwrap();
    assert_eq!(
        parse_certificate(&pem_to_der(&from_csr).unwrap()).unwrap().subject_public_key_info_der,
        info.subject_public_key_info_der
    );
}

#[test]
fn server_certificate_input_errors() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    assert!(matches!(ca.issue_server_certificate(&[], 30), Err(PkiError::NoHostnames)));
    assert!(matches!(ca.issue_server_certificate(&["localhost".into()], 0), Err(PkiError::InvalidValidity(_))));
    let err = ca.issue_server_certificate(&["bad host".into()], 30).unwrap_err();
    assert!(err.to_string().contains("\"bad host\""), "{err}");
}

#[test]
fn device_certificates_of_every_key_type() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let subject = Subject {
        common_name: Some("sensor-1".into()),
        organization: Some("Acme Ltd".into()),
        organizational_unit: Some("Sensors".into()),
        country: Some("de".into()),
        state: Some("Berlin".into()),
        locality: Some("Kreuzberg".into()),
        serial_number: Some("SN-0001".into()),
    };
    for kind in KeyType::ALL {
        let issued = ca.issue_device_certificate(kind, &subject).unwrap();
        let der = issued.cert_der().unwrap();
        assert!(verify_signed_by(&der, ca.cert_der()).unwrap(), "{kind}");
        let info = parse_certificate(&der).unwrap();
        let (alg, bits) = match kind {
            KeyType::EcP256 => ("EC", 256),
            KeyType::EcP384 => ("EC", 384),
            KeyType::Rsa2048 => ("RSA", 2048),
            KeyType::Rsa3072 => ("RSA", 3072),
            KeyType::Rsa4096 => ("RSA", 4096),
        };
        assert_eq!((info.key_algorithm.as_str(), info.key_bits), (alg, bits));
        assert_eq!(info.not_after, AWS_DEVICE_NOT_AFTER);
        assert!(info.not_before <= now());
        assert!(!info.is_ca);
        assert!(info.san_dns.is_empty() && info.san_ip.is_empty());
        let s = &info.subject;
        assert_eq!(s.common_name.as_deref(), Some("sensor-1"));
        assert_eq!(s.organization.as_deref(), Some("Acme Ltd"));
        assert_eq!(s.organizational_unit.as_deref(), Some("Sensors"));
        assert_eq!(s.country.as_deref(), Some("DE"));
        assert_eq!(s.state.as_deref(), Some("Berlin"));
        assert_eq!(s.locality.as_deref(), Some("Kreuzberg"));
        assert_eq!(s.serial_number.as_deref(), Some("SN-0001"));
        assert_eq!(info.id, issued.certificate_id().unwrap());

        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(!bc.ca);
        // Authority key id points at the CA's subject key id.
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
        let ski = ca_cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        let aki = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);

        // The key is PKCS#8 and belongs to the certificate: a CSR made with it
        // yields a certificate with the same public key.
        assert!(issued.key.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
        let csr = make_csr(&issued.key, "again").unwrap();
        let again = parse_certificate(&pem_to_der(&ca.sign_csr(&csr).unwrap()).unwrap()).unwrap();
        assert_eq!(again.subject_public_key_info_der, info.subject_public_key_info_der);
        assert_eq!(again.subject.common_name.as_deref(), Some("again"));
    }
}

#[test]
fn device_certificate_with_empty_subject_gets_default_cn() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let issued = ca.issue_device_certificate(KeyType::EcP256, &Subject::default()).unwrap();
    let info = parse_certificate(&issued.cert_der().unwrap()).unwrap();
    assert_eq!(info.subject.common_name.as_deref(), Some("Thingport Device Certificate"));
}

#[test]
fn bad_subject_fields_are_refused() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let err = ca
        .issue_device_certificate(KeyType::EcP256, &Subject { country: Some("DEU".into()), ..Subject::default() })
        .unwrap_err();
    assert!(err.to_string().contains("two-letter"), "{err}");
    let err = ca
        .issue_device_certificate(
            KeyType::EcP256,
            &Subject { serial_number: Some("no_underscores".into()), ..Subject::default() },
        )
        .unwrap_err();
    assert!(matches!(err, PkiError::InvalidSubject { .. }), "{err}");
}

#[test]
fn certificate_from_another_ca_does_not_verify() {
    let ca = CertificateAuthority::generate("A").unwrap();
    let other = CertificateAuthority::generate("B").unwrap();
    let issued = ca.issue_device_certificate(KeyType::EcP256, &Subject::with_common_name("d")).unwrap();
    let der = issued.cert_der().unwrap();
    assert!(verify_signed_by(&der, ca.cert_der()).unwrap());
    assert!(!verify_signed_by(&der, other.cert_der()).unwrap());
    assert!(matches!(verify_signed_by(b"junk", ca.cert_der()), Err(PkiError::MalformedCertificate(_))));
}

#[test]
fn csrs_from_our_own_keys_are_signed() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    for kind in KeyType::ALL {
        let key = generate_key(kind).unwrap();
        let csr = make_csr(&key, "thing-42").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let pem = ca.sign_csr(&csr).unwrap();
        let der = pem_to_der(&pem).unwrap();
        assert!(verify_signed_by(&der, ca.cert_der()).unwrap());
        let info = parse_certificate(&der).unwrap();
        assert_eq!(info.subject.common_name.as_deref(), Some("thing-42"));
        assert_eq!(info.not_after, AWS_DEVICE_NOT_AFTER);
        assert_eq!(info.issuer, parse_certificate(ca.cert_der()).unwrap().subject);
    }
}

/// Flips one bit of the byte at `index` of the CSR's DER and re-encodes it.
fn tamper(csr_pem: &str, index: impl Fn(&[u8]) -> usize) -> String {
    let block = pem::parse(csr_pem).unwrap();
    let mut der = block.contents().to_vec();
    let i = index(&der);
    der[i] ^= 0x01;
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}

#[test]
fn tampered_csrs_are_refused() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    for kind in [KeyType::EcP256, KeyType::Rsa2048] {
        let key = generate_key(kind).unwrap();
        let csr = make_csr(&key, "victim").unwrap();
        // The signature BIT STRING is the last element of the request.
        let bad_sig = tamper(&csr, |der| der.len() - 2);
        assert!(
            matches!(ca.sign_csr(&bad_sig), Err(PkiError::CsrSignatureInvalid)),
            "{kind}: tampered signature accepted"
        );
        // Changing the signed content (the CN) must fail the same way.
        let bad_cn = tamper(&csr, |der| der.windows(6).position(|w| w == b"victim").unwrap());
        let err = ca.sign_csr(&bad_cn).unwrap_err();
        assert!(matches!(err, PkiError::CsrSignatureInvalid), "{kind}: {err}");
        assert_eq!(
            err.to_string(),
            "CSR signature does not verify: the request was altered or was not signed by the key it contains"
        );
    }
}

#[test]
fn garbage_input_is_refused_with_clear_errors() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let err = ca.sign_csr("hello").unwrap_err();
    assert!(matches!(err, PkiError::NotPem { .. }), "{err}");
    assert!(err.to_string().starts_with("not a PEM certificate request"));

    let err = ca.sign_csr(ca.cert_pem()).unwrap_err();
    assert!(err.to_string().contains("found: CERTIFICATE"), "{err}");

    let junk = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", vec![0x30, 0x03, 1, 2, 3]));
    assert!(matches!(ca.sign_csr(&junk), Err(PkiError::MalformedCsr(_))));

    let err = pem_to_der("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(err.to_string().starts_with("not a PEM certificate: "), "{err}");
    assert!(matches!(pem_to_der(""), Err(PkiError::NotPem { .. })));
    assert!(matches!(parse_certificate(b"\x30\x00"), Err(PkiError::MalformedCertificate(_))));
    let mut der = ca.cert_der().to_vec();
    der.push(0);
    assert!(matches!(parse_certificate(&der), Err(PkiError::MalformedCertificate(_))));
    assert!(matches!(normalize_private_key("not a key"), Err(PkiError::InvalidPrivateKey(_))));
    assert!(matches!(normalize_private_key(ca.cert_pem()), Err(PkiError::InvalidPrivateKey(_))));
}

#[test]
fn pem_der_round_trip_and_id() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let pem = der_to_pem(ca.cert_der());
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(!pem.contains('\r'));
    assert_eq!(pem_to_der(&pem).unwrap(), ca.cert_der());
    // A key block before the certificate is skipped.
    let bundle = format!("{}{}", ca.key_pem().expose(), pem);
    assert_eq!(pem_to_der(&bundle).unwrap(), ca.cert_der());

    let id = certificate_id(ca.cert_der());
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    // Known answer: SHA-256("abc").
    assert_eq!(certificate_id(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn ca_round_trips_through_pem() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let loaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem().expose()).unwrap();
    assert_eq!(loaded.cert_der(), ca.cert_der());
    assert_eq!(loaded.key_pem(), ca.key_pem());
    let issued = loaded.issue_device_certificate(KeyType::EcP256, &Subject::with_common_name("d")).unwrap();
    assert!(verify_signed_by(&issued.cert_der().unwrap(), ca.cert_der()).unwrap());
}

#[test]
fn ca_with_the_wrong_key_is_refused() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let other = CertificateAuthority::generate("Test Root").unwrap();
    let err = CertificateAuthority::from_pem(ca.cert_pem(), other.key_pem().expose()).unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch), "{err}");
    let rsa = generate_key(KeyType::Rsa2048).unwrap();
    let err = CertificateAuthority::from_pem(ca.cert_pem(), rsa.expose()).unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch), "{err}");
}

#[test]
fn leaf_certificate_cannot_be_loaded_as_ca() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let server = ca.issue_server_certificate(&["localhost".into()], 1).unwrap();
    let err = CertificateAuthority::from_pem(&server.cert_pem, server.key.expose()).unwrap_err();
    assert!(matches!(err, PkiError::NotCertificateAuthority(_)), "{err}");
    assert!(err.to_string().contains("CA:TRUE"));
}

#[test]
fn rsa_ca_key_loaded_from_pkcs8_issues_verifiable_certs() {
    // Build an RSA root by issuing with rcgen directly, then load it through our API.
    let key = generate_key(KeyType::Rsa2048).unwrap();
    let key_pair = rcgen::KeyPair::from_pem(key.expose()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "RSA Root");
    let cert = params.self_signed(&key_pair).unwrap();
    let ca = CertificateAuthority::from_pem(&cert.pem(), key.expose()).unwrap();
    for kind in [KeyType::EcP384, KeyType::Rsa3072] {
        let issued = ca.issue_device_certificate(kind, &Subject::with_common_name("d")).unwrap();
        assert!(verify_signed_by(&issued.cert_der().unwrap(), ca.cert_der()).unwrap());
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let key = generate_key(KeyType::EcP256).unwrap();
    assert_eq!(format!("{key:?}"), "<private key>");
    assert!(!format!("{key:?}").contains("BEGIN"));
    let ca_debug = format!("{ca:?}");
    assert!(!ca_debug.contains("BEGIN"), "{ca_debug}");
    assert!(!ca_debug.contains(&ca.key_pem().expose()[30..60]));
    let issued = ca.issue_device_certificate(KeyType::EcP256, &Subject::with_common_name("d")).unwrap();
    let issued_debug = format!("{issued:?}");
    assert!(!issued_debug.contains("PRIVATE KEY"), "{issued_debug}");
    assert!(issued_debug.contains("<private key>"));
}

#[test]
fn key_type_names() {
    let cases = [
        ("ec", KeyType::EcP256),
        ("EC-P256", KeyType::EcP256),
        ("p256", KeyType::EcP256),
        ("ec-p384", KeyType::EcP384),
        ("P384", KeyType::EcP384),
        ("rsa", KeyType::Rsa2048),
        ("RSA2048", KeyType::Rsa2048),
        ("rsa-2048", KeyType::Rsa2048),
        ("rsa3072", KeyType::Rsa3072),
        ("rsa4096", KeyType::Rsa4096),
    ];
    for (s, want) in cases {
        assert_eq!(s.parse::<KeyType>().unwrap(), want, "{s}");
    }
    for kind in KeyType::ALL {
        assert_eq!(kind.to_string().parse::<KeyType>().unwrap(), kind);
    }
    let err = "dsa".parse::<KeyType>().unwrap_err().to_string();
    assert!(err.contains("\"dsa\""), "{err}");
    for accepted in ["ec", "ec-p256", "p256", "ec-p384", "p384", "rsa", "rsa2048", "rsa-2048", "rsa3072", "rsa4096"] {
        assert!(err.contains(accepted), "{err} should list {accepted}");
    }
    // serde uses the variant names.
    assert_eq!(serde_json::to_string(&KeyType::EcP384).unwrap(), "\"EcP384\"");
    assert_eq!(serde_json::from_str::<KeyType>("\"Rsa4096\"").unwrap(), KeyType::Rsa4096);
}

#[test]
fn certificate_info_serializes() {
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let info = parse_certificate(ca.cert_der()).unwrap();
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["subject"]["common_name"], "Test Root");
    assert_eq!(json["is_ca"], true);
    assert_eq!(json["id"], ca.certificate_id());
}

#[test]
fn normalize_keeps_pkcs8_keys_and_make_csr_checks_input() {
    for kind in KeyType::ALL {
        let key = generate_key(kind).unwrap();
        assert_eq!(normalize_private_key(key.expose()).unwrap(), key);
    }
    let key = generate_key(KeyType::EcP256).unwrap();
    assert!(matches!(make_csr(&key, ""), Err(PkiError::InvalidSubject { .. })));
}

#[test]
fn authority_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CertificateAuthority>();
    assert_send_sync::<PkiError>();
}

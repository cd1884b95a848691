//! Interoperability with OpenSSL, the tool most device makers use: our
//! certificates must pass `openssl verify`, and CSRs and keys made by openssl
//! must be accepted (or refused with the right error). Each test prints
//! "SKIPPED" and passes when the `openssl` binary is not installed.

mod common;

use common::{have_openssl, openssl, openssl_cert_pubkey, openssl_key_pubkey, openssl_verify, TempDir};
use pki::{
    certificate_id, normalize_private_key, parse_certificate, pem_to_der, verify_signed_by, CertificateAuthority,
    KeyType, PkiError, Subject,
};

#[test]
fn openssl_verifies_our_certificates() {
    if !have_openssl("openssl_verifies_our_certificates") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    for kind in KeyType::ALL {
        let device = ca.issue_device_certificate(kind, &Subject::with_common_name("dev")).unwrap();
        openssl_verify(&dir, ca.cert_pem(), &device.cert_pem, "sslclient");
        // The key handed out belongs to the certificate.
        assert_eq!(
            openssl_cert_pubkey(&dir, &device.cert_pem),
            openssl_key_pubkey(&dir, device.key.expose()),
            "{kind}"
        );
    }
    let server = ca.issue_server_certificate(&["localhost".into(), "127.0.0.1".into()], 10).unwrap();
    openssl_verify(&dir, ca.cert_pem(), &server.cert_pem, "sslserver");
    assert_eq!(openssl_cert_pubkey(&dir, &server.cert_pem), openssl_key_pubkey(&dir, server.key.expose()));
    // And openssl agrees with the SANs.
    dir.write("server.pem", &server.cert_pem);
    let text = openssl(&dir, &["x509", "-in", "server.pem", "-noout", "-ext", "subjectAltName"]);
    assert!(text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"), "{text}");
}

#[test]
fn certificate_id_matches_sha256sum_of_der() {
    if !have_openssl("certificate_id_matches_sha256sum_of_der") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    // One of ours and one made entirely by openssl.
    dir.write("ours.pem", ca.cert_pem());
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "theirs.key",
            "-out",
            "theirs.pem",
            "-subj",
            "/CN=openssl",
            "-days",
            "1",
        ],
    );
    for name in ["ours.pem", "theirs.pem"] {
        let pem = dir.read(name);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("openssl x509 -in {name} -outform DER | sha256sum"))
            .current_dir(dir.dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        let expected = String::from_utf8(out.stdout).unwrap();
        let expected = expected.split_whitespace().next().unwrap();
        assert_eq!(certificate_id(&pem_to_der(&pem).unwrap()), expected, "{name}");
        assert_eq!(parse_certificate(&pem_to_der(&pem).unwrap()).unwrap().id, expected);
    }
}

/// Makes a CSR with `openssl req -new <args>` and returns its PEM.
fn openssl_csr(dir: &TempDir, args: &[&str], subj: &str) -> String {
    let mut all = vec!["req", "-new", "-nodes", "-keyout", "csr.key", "-out", "csr.pem", "-subj", subj];
    all.extend_from_slice(args);
    openssl(dir, &all);
    dir.read("csr.pem")
}

/// Signs `csr` and checks the result with openssl and with our own parser.
fn sign_and_check(dir: &TempDir, ca: &CertificateAuthority, csr: &str) -> pki::CertificateInfo {
    let pem = ca.sign_csr(csr).unwrap_or_else(|e| panic!("{e}"));
    openssl_verify(dir, ca.cert_pem(), &pem, "sslclient");
    // The certificate carries exactly the CSR's key.
    dir.write("signed.pem", &pem);
    let csr_pub = openssl(dir, &["req", "-in", "csr.pem", "-noout", "-pubkey"]);
    assert_eq!(openssl_cert_pubkey(dir, &pem), csr_pub);
    let der = pem_to_der(&pem).unwrap();
    assert!(verify_signed_by(&der, ca.cert_der()).unwrap());
    parse_certificate(&der).unwrap()
}

#[test]
fn openssl_rsa_and_ec_csrs_are_signed() {
    if !have_openssl("openssl_rsa_and_ec_csrs_are_signed") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    let subj = "/C=DE/ST=Berlin/L=Berlin/O=Acme GmbH/OU=Sensors/CN=dev-1/serialNumber=SN123";

    let rsa = openssl_csr(&dir, &["-newkey", "rsa:2048"], subj);
    let info = sign_and_check(&dir, &ca, &rsa);
    assert_eq!((info.key_algorithm.as_str(), info.key_bits), ("RSA", 2048));
    let s = &info.subject;
    assert_eq!(s.common_name.as_deref(), Some("dev-1"));
    assert_eq!(s.organization.as_deref(), Some("Acme GmbH"));
    assert_eq!(s.organizational_unit.as_deref(), Some("Sensors"));
    assert_eq!(s.country.as_deref(), Some("DE"));
    assert_eq!(s.state.as_deref(), Some("Berlin"));
    assert_eq!(s.locality.as_deref(), Some("Berlin"));
    assert_eq!(s.serial_number.as_deref(), Some("SN123"));
    assert_eq!(info.not_after, 2_524_607_999);
    // The subject is kept in order, the way openssl prints it.
    dir.write("signed.pem", ca.sign_csr(&rsa).unwrap());
    let printed = openssl(&dir, &["x509", "-in", "signed.pem", "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert_eq!(printed.trim(), "subject=serialNumber=SN123,CN=dev-1,OU=Sensors,O=Acme GmbH,L=Berlin,ST=Berlin,C=DE");

    let ec = openssl_csr(&dir, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=dev-ec");
    let info = sign_and_check(&dir, &ca, &ec);
    assert_eq!((info.key_algorithm.as_str(), info.key_bits), ("EC", 256));
    assert_eq!(info.subject.common_name.as_deref(), Some("dev-ec"));
}

#[test]
fn openssl_p384_p521_rsa4096_and_pss_csrs_are_signed() {
    if !have_openssl("openssl_p384_p521_rsa4096_and_pss_csrs_are_signed") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    // P-384 signed with SHA-256 (openssl's default digest): the certificate must
    // still carry a P-384 key.
    let cases: [(&[&str], &str, u32); 5] = [
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "EC", 384),
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"], "EC", 384),
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-sha512"], "EC", 521),
        (&["-newkey", "rsa:4096", "-sha512"], "RSA", 4096),
        (
            &["-newkey", "rsa:2048", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sha256"],
            "RSA",
            2048,
        ),
    ];
    for (args, alg, bits) in cases {
        let csr = openssl_csr(&dir, args, "/CN=dev");
        let info = sign_and_check(&dir, &ca, &csr);
        assert_eq!((info.key_algorithm.as_str(), info.key_bits), (alg, bits), "{args:?}");
    }
}

#[test]
fn weak_or_unsupported_csrs_are_refused() {
    if !have_openssl("weak_or_unsupported_csrs_are_refused") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();

    let rsa1024 = openssl_csr(&dir, &["-newkey", "rsa:1024"], "/CN=weak");
    let err = ca.sign_csr(&rsa1024).unwrap_err();
    assert!(matches!(err, PkiError::RsaKeyTooSmall { bits: 1024 }), "{err}");
    assert_eq!(err.to_string(), "RSA keys must be at least 2048 bits (got 1024)");

    let k1 = openssl_csr(&dir, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"], "/CN=k1");
    let err = ca.sign_csr(&k1).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKeyAlgorithm(_)), "{err}");
    assert!(err.to_string().contains("secp256k1"), "{err}");

    let ed = openssl_csr(&dir, &["-newkey", "ed25519"], "/CN=ed");
    let err = ca.sign_csr(&ed).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKeyAlgorithm(_)), "{err}");
    assert!(err.to_string().contains("Ed25519"), "{err}");

    // OpenSSL signs PSS with the longest possible salt unless told otherwise;
    // aws-lc-rs only verifies salt = hash length, so say so instead of
    // claiming the signature is bad.
    let pss_max_salt =
        openssl_csr(&dir, &["-newkey", "rsa:2048", "-sigopt", "rsa_padding_mode:pss", "-sha256"], "/CN=pss");
    let err = ca.sign_csr(&pss_max_salt).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedSignatureAlgorithm(_)), "{err}");
    assert!(err.to_string().contains("rsa_pss_saltlen:digest"), "{err}");

    let sha1 = openssl_csr(&dir, &["-newkey", "rsa:2048", "-sha1"], "/CN=old");
    let err = ca.sign_csr(&sha1).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedSignatureAlgorithm(_)), "{err}");
    assert!(err.to_string().contains("SHA-1"), "{err}");
}

#[test]
fn tampered_openssl_csr_is_refused() {
    if !have_openssl("tampered_openssl_csr_is_refused") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    for args in [&["-newkey", "rsa:2048"][..], &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..]] {
        let csr = openssl_csr(&dir, args, "/CN=victim");
        assert!(ca.sign_csr(&csr).is_ok());
        let block = pem::parse(&csr).unwrap();
        let mut der = block.contents().to_vec();
        // Flip a bit inside the signature BIT STRING (the last element).
        let i = der.len() - 3;
        der[i] ^= 0x10;
        let bad = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
        let err = ca.sign_csr(&bad).unwrap_err();
        assert!(matches!(err, PkiError::CsrSignatureInvalid), "{args:?}: {err}");
    }
}

#[test]
fn normalize_accepts_pkcs8_sec1_and_pkcs1() {
    if !have_openssl("normalize_accepts_pkcs8_sec1_and_pkcs1") {
        return;
    }
    let dir = TempDir::new();
    openssl(&dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "pkcs8.pem"]);
    openssl(&dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sec1.pem"]);
    openssl(&dir, &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "sec1-384.pem"]);
    openssl(&dir, &["ecparam", "-name", "secp521r1", "-genkey", "-out", "sec1-521-params.pem"]);
    openssl(&dir, &["genrsa", "-traditional", "-out", "pkcs1.pem", "2048"]);
    openssl(&dir, &["genrsa", "-out", "rsa-pkcs8.pem", "3072"]);
    openssl(&dir, &["rsa", "-in", "rsa-pkcs8.pem", "-traditional", "-out", "pkcs1-3072.pem"]);

    let cases = [
        ("pkcs8.pem", "-----BEGIN PRIVATE KEY-----"),
        ("sec1.pem", "-----BEGIN EC PRIVATE KEY-----"),
        ("sec1-384.pem", "-----BEGIN EC PRIVATE KEY-----"),
        ("sec1-521-params.pem", "-----BEGIN EC PARAMETERS-----"),
        ("pkcs1.pem", "-----BEGIN RSA PRIVATE KEY-----"),
        ("pkcs1-3072.pem", "-----BEGIN RSA PRIVATE KEY-----"),
    ];
    for (file, header) in cases {
        let original = dir.read(file);
        assert!(original.starts_with(header), "{file} is not in the expected form");
        let normalized = normalize_private_key(&original).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(normalized.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
        // Same key: openssl derives the same public key from both.
        assert_eq!(openssl_key_pubkey(&dir, normalized.expose()), openssl_key_pubkey(&dir, &original), "{file}");
        // And it is usable: make a CSR with it and have openssl check it.
        dir.write("made.csr", pki::make_csr(&normalized, "k").unwrap());
        openssl(&dir, &["req", "-in", "made.csr", "-noout", "-verify"]);
    }

    openssl(
        &dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:secret",
            "-out",
            "encrypted.pem",
        ],
    );
    let err = normalize_private_key(&dir.read("encrypted.pem")).unwrap_err();
    assert!(matches!(err, PkiError::EncryptedPrivateKey), "{err}");
}

#[test]
fn openssl_made_ca_loads_with_traditional_keys() {
    if !have_openssl("openssl_made_ca_loads_with_traditional_keys") {
        return;
    }
    let dir = TempDir::new();
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    // EC root with a SEC1 key, RSA root with a PKCS#1 key.
    let roots: [(&[&str], &[&str]); 2] = [
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], &["ec", "-in", "ca.key", "-out", "ca-trad.key"]),
        (&["-newkey", "rsa:3072"], &["rsa", "-in", "ca.key", "-traditional", "-out", "ca-trad.key"]),
    ];
    for (newkey, convert) in roots {
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/C=US/O=Example Corp/CN=Example Root",
        ];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&ca_ext);
        openssl(&dir, &args);
        openssl(&dir, convert);
        let trad = dir.read("ca-trad.key");
        assert!(!trad.starts_with("-----BEGIN PRIVATE KEY-----"), "conversion did not produce a traditional key");

        let ca = CertificateAuthority::from_pem(&dir.read("ca.pem"), &trad).unwrap();
        for kind in [KeyType::EcP256, KeyType::Rsa2048] {
            let device = ca.issue_device_certificate(kind, &Subject::with_common_name("dev")).unwrap();
            openssl_verify(&dir, &dir.read("ca.pem"), &device.cert_pem, "sslclient");
        }
        let csr = openssl_csr(&dir, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=dev");
        openssl_verify(&dir, &dir.read("ca.pem"), &ca.sign_csr(&csr).unwrap(), "sslclient");
    }
}

#[test]
fn unsupported_ca_subjects_and_non_ca_certs_are_refused() {
    if !have_openssl("unsupported_ca_subjects_and_non_ca_certs_are_refused") {
        return;
    }
    let dir = TempDir::new();
    // A repeated OU cannot be reproduced by rcgen; loading must fail instead of
    // issuing certificates that do not chain.
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/O=Acme/OU=One/OU=Two/CN=Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    let err = CertificateAuthority::from_pem(&dir.read("ca.pem"), &dir.read("ca.key")).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedCaCertificate(_)), "{err}");

    // A CA whose keyUsage forbids certificate signing.
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ],
    );
    let err = CertificateAuthority::from_pem(&dir.read("ca.pem"), &dir.read("ca.key")).unwrap_err();
    assert!(matches!(err, PkiError::NotCertificateAuthority(_)), "{err}");
    assert!(err.to_string().contains("keyCertSign"), "{err}");
}

#[test]
fn requested_extensions_are_ignored_and_subject_is_kept() {
    if !have_openssl("requested_extensions_are_ignored_and_subject_is_kept") {
        return;
    }
    let dir = TempDir::new();
    let ca = CertificateAuthority::generate("Test Root").unwrap();
    // A device asking to become a CA with a SAN of its choosing gets neither.
    let csr = openssl_csr(
        &dir,
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-utf8",
            "-addext",
            "subjectAltName=DNS:evil.example,IP:10.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "subjectKeyIdentifier=hash",
            "-addext",
            "extendedKeyUsage=serverAuth,codeSigning",
        ],
        "/O=Ünïcødé GmbH/OU=first/OU=second/CN=dev-ext",
    );
    let info = sign_and_check(&dir, &ca, &csr);
    assert!(!info.is_ca);
    assert!(info.san_dns.is_empty() && info.san_ip.is_empty());
    assert_eq!(info.subject.common_name.as_deref(), Some("dev-ext"));
    assert_eq!(info.subject.organization.as_deref(), Some("Ünïcødé GmbH"));
    // rcgen holds one value per attribute type: the first OU is kept.
    assert_eq!(info.subject.organizational_unit.as_deref(), Some("first"));
    let der = pem_to_der(&ca.sign_csr(&csr).unwrap()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.code_signing);
}

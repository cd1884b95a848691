//! Bring your own CA, end to end with openssl-made certificates: CA
//! registration with the registration-code proof, just-in-time registration
//! on first connect, RegisterCertificate, RegisterCertificateWithoutCA, CA
//! deactivation, and server certificate rotation without dropping clients.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Device, Server};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

use common::openssl;

fn have_openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

/// A device directory with a certificate signed by `ca` (files in `dir`) and
/// Thingport's root CA for verifying the server.
fn device_signed_by(dir: &Path, ca: &str, name: &str, server: &Server) -> Device {
    let d = dir.join(name);
    let (ca_pem, ca_key) = (dir.join(format!("{ca}.pem")), dir.join(format!("{ca}.key")));
    common::openssl_device(&d, &format!("/CN={name}"), &ca_pem, &ca_key, &server.data_dir.join("ca/root-ca.pem"));
    let der = pem_der(&std::fs::read_to_string(d.join("certificate.pem.crt")).unwrap());
    Device { dir: d, cert_id: sha256_hex(&der), name: name.into() }
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn sha256_hex(d: &[u8]) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("sha256sum | cut -d' ' -f1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(d)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "365",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
}

fn client(dev: &Device, port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "localhost", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
    AsyncClient::new(o, 100)
}

/// Ok(()) on CONNACK accepted, Err(text) on refusal or TLS failure.
async fn connect(ev: &mut EventLoop) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "timeout".to_string())?
}

async fn next_publish(ev: &mut EventLoop) -> rumqttc::Publish {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = ev.poll().await.expect("connection") {
                return p;
            }
        }
    })
    .await
    .expect("no message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bring_your_own_ca_with_just_in_time_registration() {
    if !have_openssl() {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), 0);
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    make_ca(&work, "myca");

    // Proof of possession with the wrong code is refused.
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "bad.key",
            "-out",
            "bad.csr",
            "-subj",
            "/CN=not-the-code",
        ],
        &work,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "bad.csr",
            "-CA",
            "myca.pem",
            "-CAkey",
            "myca.key",
            "-CAcreateserial",
            "-out",
            "bad.pem",
            "-days",
            "1",
        ],
        &work,
    );
    let out = Command::new(common::bin())
        .args(["ca", "register", "--ca-cert"])
        .arg(work.join("myca.pem"))
        .arg("--verification-cert")
        .arg(work.join("bad.pem"))
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RegistrationCodeValidationException"));

    // The right code registers the CA, with auto-registration.
    let code = server.cli(&["ca", "registration-code"]).trim().to_string();
    assert_eq!(code.len(), 64);
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v.key",
            "-out",
            "v.csr",
            "-subj",
            &format!("/CN={code}"),
        ],
        &work,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "v.csr",
            "-CA",
            "myca.pem",
            "-CAkey",
            "myca.key",
            "-CAcreateserial",
            "-out",
            "v.pem",
            "-days",
            "1",
        ],
        &work,
    );
    let out = server.cli(&[
        "ca",
        "register",
        "--ca-cert",
        work.join("myca.pem").to_str().unwrap(),
        "--verification-cert",
        work.join("v.pem").to_str().unwrap(),
        "--active",
        "--auto-register",
    ]);
    let ca_id = out.trim().rsplit(' ').next().unwrap().to_string();
    assert!(server.cli(&["ca", "list"]).contains(&ca_id));

    // Someone listens for registration events.
    let watcher = server.provision("watcher", "ec");
    let (w, mut wev) = client(&watcher, server.mqtt_port, "watcher");
    connect(&mut wev).await.unwrap();
    w.subscribe("$aws/events/certificates/registered/#", QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(wev.poll().await, Ok(Event::Incoming(Packet::SubAck(_)))) {}
    })
    .await
    .unwrap();

    // First connect of an unknown device: registered as PENDING_ACTIVATION, refused.
    let dev = device_signed_by(&work, "myca", "jitr-dev", &server);
    let (_c, mut ev) = client(&dev, server.mqtt_port, "jitr-dev");
    let err = connect(&mut ev).await.unwrap_err();
    assert!(err.contains("NotAuthorized") || err.contains("Refused"), "{err}");
    let event = next_publish(&mut wev).await;
    assert_eq!(event.topic, format!("$aws/events/certificates/registered/{ca_id}"));
    let v: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(v["certificateId"], dev.cert_id.as_str());
    assert_eq!(v["certificateStatus"], "PENDING_ACTIVATION");
    assert!(server.cli(&["certs", "list"]).contains("PENDING_ACTIVATION"));

    // Activated (as a rule would), it connects.
    server.cli(&["certs", "activate", &dev.cert_id]);
    server.allow_all(&dev.cert_id);
    let (_c, mut ev) = client(&dev, server.mqtt_port, "jitr-dev");
    connect(&mut ev).await.unwrap();

    // Deactivating the CA closes and refuses its devices.
    server.cli(&["ca", "deactivate", &ca_id]);
    let closed = tokio::time::timeout(Duration::from_secs(5), async { while ev.poll().await.is_ok() {} }).await;
    assert!(closed.is_ok(), "device of a deactivated CA still connected");
    let (_c, mut ev) = client(&dev, server.mqtt_port, "jitr-dev");
    assert!(connect(&mut ev).await.is_err());
    server.cli(&["ca", "activate", &ca_id]);
    let (_c, mut ev) = client(&dev, server.mqtt_port, "jitr-dev");
    connect(&mut ev).await.unwrap();

    // RegisterCertificate for a device of a CA without auto-registration.
    server.cli(&["ca", "auto-register", &ca_id, "off"]);
    let dev2 = device_signed_by(&work, "myca", "registered-dev", &server);
    let (_c, mut ev) = client(&dev2, server.mqtt_port, "registered-dev");
    assert!(connect(&mut ev).await.is_err(), "unregistered certificate connected");
    assert!(!server.cli(&["certs", "list"]).contains(&dev2.cert_id), "auto-registration was off");
    server.cli(&["certs", "register", "--cert", dev2.dir.join("certificate.pem.crt").to_str().unwrap(), "--active"]);
    server.allow_all(&dev2.cert_id);
    let (_c, mut ev) = client(&dev2, server.mqtt_port, "registered-dev");
    connect(&mut ev).await.unwrap();

    // A certificate from a CA Thingport does not know fails the TLS handshake,
    // until it is registered on its own (RegisterCertificateWithoutCA).
    make_ca(&work, "otherca");
    let dev3 = device_signed_by(&work, "otherca", "no-ca-dev", &server);
    let (_c, mut ev) = client(&dev3, server.mqtt_port, "no-ca-dev");
    assert!(connect(&mut ev).await.is_err());
    let out = Command::new(common::bin())
        .args(["certs", "register", "--cert"])
        .arg(dev3.dir.join("certificate.pem.crt"))
        .arg("--active")
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "registered without its CA being known");
    server.cli(&[
        "certs",
        "register",
        "--cert",
        dev3.dir.join("certificate.pem.crt").to_str().unwrap(),
        "--without-ca",
        "--active",
    ]);
    server.allow_all(&dev3.cert_id);
    let (_c, mut ev) = client(&dev3, server.mqtt_port, "no-ca-dev");
    connect(&mut ev).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_certificate_rotates_without_dropping_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("rot-dev", "ec");
    let (c, mut ev) = client(&dev, server.mqtt_port, "rot-dev");
    connect(&mut ev).await.unwrap();
    c.subscribe("rot/#", QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::SubAck(_)))) {}
    })
    .await
    .unwrap();
    let before = std::fs::read_to_string(tmp.path().join("server/server.pem")).unwrap();
    server.cli(&["server-cert", "rotate"]);
    let after = std::fs::read_to_string(tmp.path().join("server/server.pem")).unwrap();
    assert_ne!(before, after);
    // A new connection gets the new certificate and works.
    let (c2, mut ev2) = client(&dev, server.mqtt_port, "rot-dev-2");
    connect(&mut ev2).await.unwrap();
    c2.publish("rot/x", QoS::AtLeastOnce, false, b"still here".to_vec()).await.unwrap();
    tokio::spawn(async move { while ev2.poll().await.is_ok() {} });
    // The old connection was not dropped.
    let p = next_publish(&mut ev).await;
    assert_eq!(&p.payload[..], b"still here");
}

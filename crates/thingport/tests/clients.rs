//! End to end with rumqttc (a Rust MQTT client), v3.1.1 and v5, against the
//! real binary: publish/subscribe, certificate status enforcement, and
//! durability across kill -9.

mod common;

use std::time::Duration;

use common::{Device, Server};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

fn v3_client(dev: &Device, port: u16, id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "localhost", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(clean);
    AsyncClient::new(o, 100)
}

/// Poll until `pred` matches an incoming packet (or time out).
async fn wait_for(ev: &mut EventLoop, secs: u64, mut pred: impl FnMut(&Packet) -> bool) -> Result<Packet, String> {
    let fut = async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(p)) if pred(&p) => return Ok(p),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), fut).await.map_err(|_| "timeout".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_publish_subscribe_and_status_enforcement() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("rust-dev", "ec");
    let rsa = server.provision("rust-rsa", "rsa");

    let (sub, mut sub_ev) = v3_client(&rsa, server.mqtt_port, "rust-sub", true);
    wait_for(&mut sub_ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    sub.subscribe("rust/+/data", QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut sub_ev, 10, |p| matches!(p, Packet::SubAck(_))).await.unwrap();

    let (publ, mut pub_ev) = v3_client(&dev, server.mqtt_port, "rust-pub", true);
    wait_for(&mut pub_ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    publ.publish("rust/1/data", QoS::AtLeastOnce, false, b"payload-1".to_vec()).await.unwrap();
    wait_for(&mut pub_ev, 10, |p| matches!(p, Packet::PubAck(_))).await.unwrap();
    let got = wait_for(&mut sub_ev, 10, |p| matches!(p, Packet::Publish(_))).await.unwrap();
    let Packet::Publish(p) = got else { unreachable!() };
    assert_eq!(p.topic, "rust/1/data");
    assert_eq!(&p.payload[..], b"payload-1");

    // Deactivate the publisher's certificate: its live connection closes...
    server.cli(&["certs", "deactivate", &dev.cert_id]);
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if pub_ev.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection of a deactivated certificate was not closed");
    // ...and it cannot connect again (CONNACK return code 5).
    let (_c, mut ev) = v3_client(&dev, server.mqtt_port, "rust-pub", true);
    let err = wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap_err();
    assert!(err.contains("NotAuthorized") || err.contains("Refused"), "unexpected: {err}");

    // Reactivated, it works again; revoked, it is refused for good.
    server.cli(&["certs", "activate", &dev.cert_id]);
    let (_c, mut ev) = v3_client(&dev, server.mqtt_port, "rust-pub", true);
    wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    server.cli(&["certs", "revoke", &dev.cert_id]);
    let (_c, mut ev) = v3_client(&dev, server.mqtt_port, "rust-pub2", true);
    assert!(wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.is_err());
    let out = std::process::Command::new(common::bin())
        .args(["certs", "activate", &dev.cert_id, "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a revoked certificate must not be reactivated");
}

async fn until(
    ev: &mut rumqttc::v5::EventLoop,
    pred: fn(&rumqttc::v5::mqttbytes::v5::Packet) -> bool,
) -> Result<rumqttc::v5::mqttbytes::v5::Packet, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), async move {
        loop {
            if let rumqttc::v5::Event::Incoming(p) = ev.poll().await.expect("connection") {
                if pred(&p) {
                    return p;
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_round_trip() {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::{AsyncClient as C5, MqttOptions as O5};

    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("v5-dev", "ec");
    let mk = |id: &str| {
        let mut o = O5::new(id, "localhost", server.mqtt_port);
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
        C5::new(o, 100)
    };
    let (sub, mut sev) = mk("v5-sub");
    let (publ, mut pev) = mk("v5-pub");
    until(&mut sev, |p| matches!(p, P5::ConnAck(_))).await.unwrap();
    sub.subscribe("v5/#", Q5::ExactlyOnce).await.unwrap();
    until(&mut sev, |p| matches!(p, P5::SubAck(_))).await.unwrap();
    until(&mut pev, |p| matches!(p, P5::ConnAck(_))).await.unwrap();
    let props = PublishProperties {
        user_properties: vec![("k".into(), "v".into())],
        content_type: Some("text/plain".into()),
        response_topic: Some("v5/reply".into()),
        correlation_data: Some(b"corr".to_vec().into()),
        ..Default::default()
    };
    publ.publish_with_properties("v5/t", Q5::ExactlyOnce, false, "hi", props).await.unwrap();
    until(&mut pev, |p| matches!(p, P5::PubComp(_))).await.unwrap();
    let P5::Publish(p) = until(&mut sev, |p| matches!(p, P5::Publish(_))).await.unwrap() else { unreachable!() };
    assert_eq!(&p.payload[..], b"hi");
    assert_eq!(p.qos, Q5::ExactlyOnce);
    let props = p.properties.expect("properties forwarded");
    assert_eq!(props.user_properties, vec![("k".to_string(), "v".to_string())]);
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("v5/reply"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"corr"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), 0);
    let port = server.mqtt_port;
    let dev = server.provision("durable", "ec");

    // A persistent session subscribes, then goes away.
    {
        let (c, mut ev) = v3_client(&dev, port, "durable-sub", false);
        wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
        c.subscribe("durable/#", QoS::AtLeastOnce).await.unwrap();
        wait_for(&mut ev, 10, |p| matches!(p, Packet::SubAck(_))).await.unwrap();
        c.disconnect().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while ev.poll().await.is_ok() {} }).await;
    }
    // Messages acknowledged by the broker: one queued for the session, one retained.
    {
        let (c, mut ev) = v3_client(&dev, port, "durable-pub", true);
        wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
        c.publish("durable/queued", QoS::AtLeastOnce, false, b"q1".to_vec()).await.unwrap();
        wait_for(&mut ev, 10, |p| matches!(p, Packet::PubAck(_))).await.unwrap();
        c.publish("retained/r", QoS::AtLeastOnce, true, b"r1".to_vec()).await.unwrap();
        wait_for(&mut ev, 10, |p| matches!(p, Packet::PubAck(_))).await.unwrap();
    }
    server.kill9();
    let server = Server::start(tmp.path(), port);

    // The session comes back with its queued message, without resubscribing.
    let (c, mut ev) = v3_client(&dev, port, "durable-sub", false);
    let Packet::ConnAck(ack) = wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap() else {
        unreachable!()
    };
    assert!(ack.session_present, "persistent session lost across kill -9");
    let Packet::Publish(p) = wait_for(&mut ev, 10, |p| matches!(p, Packet::Publish(_))).await.unwrap() else {
        unreachable!()
    };
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("durable/queued", &b"q1"[..]));
    // The subscription itself survived: a new message arrives too.
    let (c2, mut ev2) = v3_client(&dev, port, "durable-pub2", true);
    wait_for(&mut ev2, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    c2.publish("durable/after", QoS::AtLeastOnce, false, b"q2".to_vec()).await.unwrap();
    wait_for(&mut ev2, 10, |p| matches!(p, Packet::PubAck(_))).await.unwrap();
    let Packet::Publish(p) =
        wait_for(&mut ev, 10, |p| matches!(p, Packet::Publish(x) if x.topic == "durable/after")).await.unwrap()
    else {
        unreachable!()
    };
    assert_eq!(&p.payload[..], b"q2");
    // The retained message survived.
    c.subscribe("retained/r", QoS::AtLeastOnce).await.unwrap();
    let Packet::Publish(p) =
        wait_for(&mut ev, 10, |p| matches!(p, Packet::Publish(x) if x.topic == "retained/r")).await.unwrap()
    else {
        unreachable!()
    };
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"r1");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_publish_with_curl_reaches_mqtt_subscribers() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("https-dev", "ec");
    let (sub, mut ev) = v3_client(&dev, server.mqtt_port, "https-sub", true);
    wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    sub.subscribe("https/#", QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut ev, 10, |p| matches!(p, Packet::SubAck(_))).await.unwrap();

    let port = server.https.rsplit_once(':').unwrap().1.to_string();
    let curl = |cert_dev: &Device, topic: &str| {
        let d = cert_dev.dir.display().to_string();
        std::process::Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", &format!("{d}/root-ca.pem")])
            .args(["--cert", &format!("{d}/certificate.pem.crt"), "--key", &format!("{d}/private.pem.key")])
            .args(["-X", "POST", "-d", "{\"temp\":21}"])
            .arg(format!("https://localhost:{port}/topics/{topic}?qos=1"))
            .output()
            .unwrap()
    };
    let out = curl(&dev, "https/room1");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("200") && text.contains("\"message\":\"OK\""), "{text}");
    let Packet::Publish(p) = wait_for(&mut ev, 10, |p| matches!(p, Packet::Publish(_))).await.unwrap() else {
        unreachable!()
    };
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("https/room1", &b"{\"temp\":21}"[..]));

    // Policies apply: with the default device policy, its own topics only.
    let limited = server.provision_with_policy("https-limited", "ec", Some("ThingportDefaultDevicePolicy"));
    let text = String::from_utf8_lossy(&curl(&limited, "https-limited/temp").stdout).to_string();
    assert!(text.ends_with("200"), "{text}");
    let text = String::from_utf8_lossy(&curl(&limited, "https/room1").stdout).to_string();
    assert!(text.ends_with("403") && text.contains("not authorized"), "{text}");
    // A deactivated certificate is refused.
    server.cli(&["certs", "deactivate", &dev.cert_id]);
    let text = String::from_utf8_lossy(&curl(&dev, "https/room1").stdout).to_string();
    assert!(text.ends_with("403") && text.contains("INACTIVE"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_listener_is_opt_in_and_policed() {
    let tmp = tempfile::tempdir().unwrap();
    let off = Server::start(&tmp.path().join("off"), 0);
    assert!(off.mqtt_plain.is_none(), "the plain listener must be off by default");
    drop(off);

    let server = Server::start_with(&tmp.path().join("on"), 0, &["--mqtt-plain-listen", "127.0.0.1:0"]);
    let addr = server.mqtt_plain.clone().expect("plain listener address");
    assert!(server.log_text().contains("INSECURE"), "the insecure listener must be logged loudly");
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let plain = |id: &str| {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        AsyncClient::new(o, 10)
    };
    // Its clients are the configured principal, which has no policy yet: refused.
    let (_c, mut ev) = plain("plain-1");
    assert!(wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.is_err());
    // Attach a policy to that principal and it works, still policed.
    server.ensure_allow_all();
    server.cli(&["policies", "attach", common::ALLOW_ALL, "plain-tcp"]);
    let (c, mut ev) = plain("plain-1");
    wait_for(&mut ev, 10, |p| matches!(p, Packet::ConnAck(_))).await.unwrap();
    c.subscribe("plain/#", QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut ev, 10, |p| matches!(p, Packet::SubAck(_))).await.unwrap();
    c.publish("plain/x", QoS::AtLeastOnce, false, b"over tcp".to_vec()).await.unwrap();
    let Packet::Publish(p) = wait_for(&mut ev, 10, |p| matches!(p, Packet::Publish(_))).await.unwrap() else {
        unreachable!()
    };
    assert_eq!(&p.payload[..], b"over tcp");
}

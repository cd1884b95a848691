//! Device shadows over HTTPS (the seed's curl commands) and over the
//! reserved MQTT topics, with policies and durability.

mod common;

use std::time::Duration;

use common::{Device, Server};
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use serde_json::{json, Value};

fn curl(server: &Server, dev: &Device, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let port = server.https.rsplit_once(':').unwrap().1;
    let d = dev.dir.display().to_string();
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", &format!("{d}/root-ca.pem")])
        .args(["--cert", &format!("{d}/certificate.pem.crt"), "--key", &format!("{d}/private.pem.key")])
        .args(["-H", "Content-Type: application/json", "-X", method]);
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd.arg(format!("https://localhost:{port}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn have_curl() -> bool {
    std::process::Command::new("curl").arg("--version").output().is_ok()
}

#[test]
fn seed_curl_commands_work() {
    if !have_curl() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), 0);
    let dev = server.provision_with_policy("IoT-motion-sensor", "ec", Some("ThingportDefaultDevicePolicy"));
    let path = "/things/IoT-motion-sensor/shadow";

    let (code, v) = curl(&server, &dev, "POST", path, Some(r#"{"state":{"desired":{"motion":"0","time":"hello"}}}"#));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"]["desired"]["motion"], "0");
    assert_eq!(v["version"], 1);
    assert!(v["metadata"]["desired"]["motion"]["timestamp"].is_number());

    let (code, v) = curl(&server, &dev, "GET", path, None);
    assert_eq!(code, 200);
    assert_eq!(v["state"]["delta"], json!({"motion": "0", "time": "hello"}));

    let (code, v) = curl(&server, &dev, "POST", path, Some(r#"{"state":{"reported":{"motion":"0","time":"hello"}}}"#));
    assert_eq!((code, v["version"].clone()), (200, json!(2)));
    let (_, v) = curl(&server, &dev, "GET", path, None);
    assert!(v["state"].get("delta").is_none(), "reported converged, no delta: {v}");

    // Optimistic concurrency: a stale version is refused with 409.
    let (code, v) = curl(&server, &dev, "POST", path, Some(r#"{"state":{"desired":{"motion":"1"}},"version":1}"#));
    assert_eq!(code, 409, "{v}");

    // Bad input gets AWS's codes.
    assert_eq!(curl(&server, &dev, "POST", path, Some("{not json")).0, 400);
    assert_eq!(curl(&server, &dev, "POST", path, Some(r#"{"desired":{}}"#)).0, 400);
    // Another thing's shadow is not this device's (policy): 403.
    assert_eq!(curl(&server, &dev, "GET", "/things/someone-else/shadow", None).0, 403);

    // Accepted updates survive kill -9.
    let port = server.mqtt_port;
    server.kill9();
    let server = Server::start(tmp.path(), port);
    let (code, v) = curl(&server, &dev, "GET", path, None);
    assert_eq!((code, v["version"].clone(), v["state"]["reported"]["time"].clone()), (200, json!(2), json!("hello")));

    // "state": null clears the document; DELETE removes it (404 afterwards).
    let (code, _) = curl(&server, &dev, "POST", path, Some(r#"{"state":null}"#));
    assert_eq!(code, 200);
    let (code, _) = curl(&server, &dev, "DELETE", path, None);
    assert_eq!(code, 200);
    assert_eq!(curl(&server, &dev, "GET", path, None).0, 404);
}

async fn next_on(ev: &mut EventLoop, topic: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ev.poll().await {
                if p.topic == topic.as_bytes() {
                    return serde_json::from_slice(&p.payload).unwrap();
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing on {topic}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_over_mqtt_with_delta_and_named_shadows() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision_with_policy("lamp", "ec", Some("ThingportDefaultDevicePolicy"));
    let mut o = MqttOptions::new("lamp", "localhost", server.mqtt_port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
    let (c, mut ev) = AsyncClient::new(o, 100);
    c.subscribe("$aws/things/lamp/shadow/#", QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::SubAck(_)))) {}
    })
    .await
    .unwrap();

    let p = "$aws/things/lamp/shadow";
    c.publish(
        format!("{p}/update"),
        QoS::AtLeastOnce,
        false,
        r#"{"state":{"desired":{"color":"red"}},"clientToken":"t1"}"#,
    )
    .await
    .unwrap();
    let accepted = next_on(&mut ev, &format!("{p}/update/accepted")).await;
    assert_eq!(accepted["clientToken"], "t1");
    assert_eq!(accepted["state"]["desired"]["color"], "red");
    let docs = next_on(&mut ev, &format!("{p}/update/documents")).await;
    assert_eq!(docs["current"]["state"]["desired"]["color"], "red");
    let delta = next_on(&mut ev, &format!("{p}/update/delta")).await;
    assert_eq!(delta["state"], json!({"color": "red"}));

    // The device reports; get shows no delta.
    c.publish(format!("{p}/update"), QoS::AtLeastOnce, false, r#"{"state":{"reported":{"color":"red"}}}"#)
        .await
        .unwrap();
    next_on(&mut ev, &format!("{p}/update/accepted")).await;
    c.publish(format!("{p}/get"), QoS::AtLeastOnce, false, "").await.unwrap();
    let got = next_on(&mut ev, &format!("{p}/get/accepted")).await;
    assert_eq!(got["state"]["reported"]["color"], "red");
    assert!(got["state"].get("delta").is_none());

    // Rejections carry AWS's code.
    c.publish(format!("{p}/update"), QoS::AtLeastOnce, false, r#"{"state":{"desired":{"x":1}},"version":99}"#)
        .await
        .unwrap();
    let rejected = next_on(&mut ev, &format!("{p}/update/rejected")).await;
    assert_eq!(rejected["code"], 409);

    // Named shadows.
    c.publish(format!("{p}/name/config/update"), QoS::AtLeastOnce, false, r#"{"state":{"reported":{"fw":"1.2"}}}"#)
        .await
        .unwrap();
    let acc = next_on(&mut ev, &format!("{p}/name/config/update/accepted")).await;
    assert_eq!(acc["state"]["reported"]["fw"], "1.2");

    // Another thing's shadow topics are refused by the default policy.
    c.publish("$aws/things/other/shadow/update", QoS::AtLeastOnce, false, r#"{"state":{}}"#).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Packet::PubAck(a))) = ev.poll().await {
                if a.reason != PubAckReason::Success {
                    return a.reason;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(reason, PubAckReason::NotAuthorized);
}

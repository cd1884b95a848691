//! The rules engine end to end: the seed's rules (colour filter with
//! republish, a table keyed by topic and timestamp), an HTTP action against a
//! test server that is down and then comes back (also across kill -9), the
//! error action, and SQL errors reported at creation.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Device, Server};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::{json, Value};

fn client(dev: &Device, port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "localhost", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
    AsyncClient::new(o, 100)
}

async fn ready(c: &AsyncClient, ev: &mut EventLoop, filter: &str) {
    c.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::SubAck(_)))) {}
    })
    .await
    .unwrap();
}

async fn publish(c: &AsyncClient, ev: &mut EventLoop, topic: &str, payload: &str) {
    c.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::PubAck(_)))) {}
    })
    .await
    .unwrap();
}

async fn next_message(ev: &mut EventLoop, secs: u64) -> Option<(String, Vec<u8>)> {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ev.poll().await {
                return (p.topic.clone(), p.payload.to_vec());
            }
        }
    })
    .await
    .ok()
}

fn create_rule(server: &Server, name: &str, payload: Value) {
    let f = server.data_dir.join(format!("rule-{name}.json"));
    std::fs::write(&f, json!({ "topicRulePayload": payload }).to_string()).unwrap();
    server.cli(&["rules", "create", name, f.to_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rules_filter_republish_and_table() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("thing-2", "ec");
    create_rule(
        &server,
        "red_only",
        json!({ "sql": "SELECT * FROM 'things/thing-2/color' WHERE color = 'red'",
                "actions": [{ "republish": { "topic": "alerts/${topic(2)}/red", "qos": 1 } }] }),
    );
    create_rule(
        &server,
        "save",
        json!({ "sql": "SELECT * FROM '#'",
                "actions": [{ "dynamoDB": { "tableName": "motion_sensor", "hashKeyField": "topic", "hashKeyValue": "${topic()}",
                                            "rangeKeyField": "timestamp", "rangeKeyValue": "${timestamp()}" } }] }),
    );
    let (c, mut ev) = client(&dev, server.mqtt_port, "thing-2");
    ready(&c, &mut ev, "alerts/#").await;
    publish(&c, &mut ev, "things/thing-2/color", r#"{"color":"blue"}"#).await;
    // The table is keyed by topic and ${timestamp()} (ms), as in the seed: two
    // messages in the same millisecond would be one row, as in DynamoDB.
    tokio::time::sleep(Duration::from_millis(5)).await;
    publish(&c, &mut ev, "things/thing-2/color", r#"{"color":"red"}"#).await;
    let (topic, payload) = next_message(&mut ev, 10).await.expect("republished red");
    assert_eq!(topic, "alerts/thing-2/red");
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), json!({"color": "red"}));
    assert!(next_message(&mut ev, 1).await.is_none(), "blue must not be republished");

    // Every message landed in the table, keyed by topic and timestamp.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = server.cli(&["tables", "query", "motion_sensor", "--hash-key", "things/thing-2/color"]);
        let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if rows.len() == 2 {
            assert!(rows.iter().all(|r| r["topic"] == "things/thing-2/color" && r["timestamp"].as_str().is_some()));
            let colors: Vec<&str> = rows.iter().map(|r| r["color"].as_str().unwrap()).collect();
            assert!(colors.contains(&"red") && colors.contains(&"blue"), "{rows:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "table rows: {rows:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = server.cli(&["rules", "list"]);
    assert!(listed.contains("red_only") && listed.contains("things/thing-2/color"), "{listed}");
}

/// A tiny HTTP server recording request bodies.
struct TestHttp {
    bodies: Arc<Mutex<Vec<String>>>,
}

impl TestHttp {
    fn start(port: u16) -> TestHttp {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                // Read headers, then Content-Length bytes.
                let body = loop {
                    let Ok(n) = s.read(&mut tmp) else { break None };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break Some(String::from_utf8_lossy(&buf[i + 4..i + 4 + len]).to_string());
                        }
                    }
                };
                if let Some(body) = body {
                    b.lock().unwrap().push(body);
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        TestHttp { bodies }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_action_retries_until_the_target_is_back_even_across_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), 0);
    let port = server.mqtt_port;
    let dev = server.provision("sensor", "ec");
    // Reserve a port for the function, then keep it closed (target down).
    let fn_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    create_rule(
        &server,
        "call_function",
        json!({ "sql": "SELECT temp, clientid() AS device FROM 'sensors/+/temp' WHERE temp > 30",
                "actions": [{ "http": { "url": format!("http://127.0.0.1:{fn_port}/hook?from=${{topic(2)}}") } }] }),
    );
    {
        let (c, mut ev) = client(&dev, port, "sensor");
        tokio::time::timeout(Duration::from_secs(10), async {
            while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
        })
        .await
        .unwrap();
        publish(&c, &mut ev, "sensors/s1/temp", r#"{"temp": 35}"#).await;
        publish(&c, &mut ev, "sensors/s1/temp", r#"{"temp": 20}"#).await;
    }
    // The target is down; the pending action survives a crash.
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();
    let target = TestHttp::start(fn_port);
    let server = Server::start(tmp.path(), port);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while target.bodies.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the pending HTTP action was not delivered after restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = target.bodies.lock().unwrap().clone();
    let v: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(v, json!({"temp": 35, "device": "sensor"}));
    assert_eq!(bodies.len(), 1, "temp 20 does not match the WHERE clause: {bodies:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_action_goes_to_the_error_action_and_bad_sql_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("uploader", "ec");
    create_rule(
        &server,
        "to_objects",
        json!({ "sql": "SELECT * FROM 'uploads/#'",
                "actions": [{ "s3": { "bucketName": "no-such-bucket", "key": "${topic()}" } }],
                "errorAction": { "republish": { "topic": "errors/rules", "qos": 1 } } }),
    );
    let (c, mut ev) = client(&dev, server.mqtt_port, "uploader");
    ready(&c, &mut ev, "errors/#").await;
    publish(&c, &mut ev, "uploads/x", "raw bytes, not json").await;
    let (topic, payload) = next_message(&mut ev, 15).await.expect("error action");
    assert_eq!(topic, "errors/rules");
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["ruleName"], "to_objects");
    assert_eq!(v["topic"], "uploads/x");
    assert_eq!(v["base64OriginalPayload"], "cmF3IGJ5dGVzLCBub3QganNvbg==");
    // A missing bucket does not fix itself: straight to the error action, no retries.
    let msg = v["failures"][0]["errorMessage"].as_str().unwrap();
    assert!(msg.contains("NoSuchBucket") && msg.contains("s3://no-such-bucket/uploads/x"), "{v}");

    // Bad SQL is refused at creation with a position.
    let f = tmp.path().join("bad.json");
    std::fs::write(&f, r#"{"topicRulePayload":{"sql":"SELECT * FORM 'a'","actions":[]}}"#).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["rules", "create", "bad", f.to_str().unwrap(), "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SqlParseException") && err.contains("column"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_function_answers_the_device_and_signs_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("asker", "ec");
    // A function that answers {"answer": 42} and records the signature header.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fn_port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            s2.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).to_string());
            let body = r#"{"answer":42}"#;
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
        }
    });
    create_rule(
        &server,
        "ask",
        json!({ "sql": "SELECT question FROM 'asker/ask'",
                "actions": [{ "http": { "url": format!("http://127.0.0.1:{fn_port}/fn"),
                                        "hmacSecret": "s3cret", "replyTopic": "asker/answer" } }] }),
    );
    let (c, mut ev) = client(&dev, server.mqtt_port, "asker");
    ready(&c, &mut ev, "asker/answer").await;
    publish(&c, &mut ev, "asker/ask", r#"{"question":"life"}"#).await;
    let (topic, payload) = next_message(&mut ev, 10).await.expect("the function's answer");
    assert_eq!((topic.as_str(), payload.as_slice()), ("asker/answer", &br#"{"answer":42}"#[..]));
    let request = seen.lock().unwrap()[0].clone();
    let body = r#"{"question":"life"}"#;
    let expected = hex_hmac(b"s3cret", body.as_bytes());
    assert!(
        request.to_ascii_lowercase().contains(&format!("x-thingport-signature-256: sha256={expected}")),
        "{request}"
    );
    assert!(request.ends_with(body), "{request}");
}

fn hex_hmac(key: &[u8], data: &[u8]) -> String {
    sigv4_hmac(key, data).iter().map(|b| format!("{b:02x}")).collect()
}

fn sigv4_hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC-SHA256 with openssl, independent of the server's implementation.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s' '{}' | openssl dgst -sha256 -mac HMAC -macopt key:{} -binary | od -An -v -tx1",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(key)
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_action_publishes_to_nats() {
    let Ok(url) = std::env::var("THINGPORT_TEST_NATS_URL") else {
        eprintln!("SKIPPED: THINGPORT_TEST_NATS_URL is not set (a NATS server for the stream action)");
        return;
    };
    let nats = async_nats::connect(&url).await.expect("NATS server from THINGPORT_TEST_NATS_URL");
    let subject = format!("thingport.test.{}", std::process::id());
    let mut sub = nats.subscribe(format!("{subject}.>")).await.unwrap();
    nats.flush().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // SAFETY of the environment: only the spawned server reads this variable.
    std::env::set_var("THINGPORT_RULES_NATS_URL", &url);
    let server = Server::start(tmp.path(), 0);
    let dev = server.provision("streamer", "ec");
    create_rule(
        &server,
        "stream",
        json!({ "sql": "SELECT *, topic(2) AS device FROM 'telemetry/+'",
                "actions": [{ "kinesis": { "roleArn": "unused", "streamName": format!("{subject}.${{topic(2)}}") } }] }),
    );
    let (c, mut ev) = client(&dev, server.mqtt_port, "streamer");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(ev.poll().await, Ok(Event::Incoming(Packet::ConnAck(_)))) {}
    })
    .await
    .unwrap();
    publish(&c, &mut ev, "telemetry/pump-7", r#"{"rpm": 1200}"#).await;
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("NATS message").unwrap();
    assert_eq!(msg.subject.as_str(), format!("{subject}.pump-7"));
    assert_eq!(serde_json::from_slice::<Value>(&msg.payload).unwrap(), json!({"rpm": 1200, "device": "pump-7"}));
}

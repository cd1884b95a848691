//! The SQLite store keeps what was committed across a reopen.

use store::sqlite::{SqliteStore, Synchronous};
use store::*;

fn msg(topic: &str, payload: &[u8]) -> StoredMessage {
    StoredMessage {
        topic: topic.into(),
        payload: payload.to_vec(),
        qos: 1,
        retain: false,
        payload_format_indicator: Some(1),
        content_type: Some("text/plain".into()),
        response_topic: None,
        correlation_data: Some(vec![0, 255]),
        user_properties: vec![("k".into(), "v".into())],
        expires_at_ms: None,
        publisher: Some("pub".into()),
        received_at_ms: 42,
        subscription_ids: vec![3],
        released_packet_id: None,
    }
}

#[tokio::test]
async fn broker_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    {
        let s = SqliteStore::open(&path, Synchronous::Normal).unwrap();
        s.submit(BrokerOp::PutSession { client_id: "c1".into(), expiry_interval: 3600, disconnected_at_ms: 0 });
        s.submit(BrokerOp::PutSubscription {
            client_id: "c1".into(),
            subscription: StoredSubscription {
                filter: "a/#".into(),
                qos: 1,
                no_local: false,
                retain_as_published: true,
                retain_handling: 0,
                subscription_id: Some(7),
            },
        });
        s.submit(BrokerOp::Enqueue { client_id: "c1".into(), seq: 1, message: msg("a/b", b"one") });
        s.submit(BrokerOp::Enqueue { client_id: "c1".into(), seq: 2, message: msg("a/c", b"two") });
        s.submit(BrokerOp::Ack { client_id: "c1".into(), seq: 1 });
        let mut r = msg("r/1", b"keep");
        r.retain = true;
        s.submit(BrokerOp::SetRetained(r));
        s.submit(BrokerOp::SetRetained(msg("r/2", b"gone")));
        s.submit(BrokerOp::ClearRetained { topic: "r/2".into() });
        s.sync().await.unwrap();
    }
    let s = SqliteStore::open(&path, Synchronous::Normal).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.sessions.len(), 1);
    let sess = &snap.sessions[0];
    assert_eq!(sess.client_id, "c1");
    assert_eq!(sess.subscriptions.len(), 1);
    assert_eq!(sess.subscriptions[0].subscription_id, Some(7));
    assert_eq!(sess.messages.len(), 1);
    assert_eq!(sess.messages[0].0, 2);
    assert_eq!(sess.messages[0].1, msg("a/c", b"two"));
    assert_eq!(snap.retained.len(), 1);
    assert_eq!(snap.retained[0].payload, b"keep");
    s.submit(BrokerOp::DeleteSession { client_id: "c1".into() });
    s.sync().await.unwrap();
    let snap = s.load().unwrap();
    assert!(snap.sessions.is_empty());
}

#[test]
fn registry_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("r.sqlite"), Synchronous::Normal).unwrap();
    let cert = CertificateRecord {
        id: "ab".repeat(32),
        pem: "PEM".into(),
        status: CertificateStatus::Active,
        ca_certificate_id: None,
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    s.insert_certificate(&cert).unwrap();
    assert!(matches!(s.insert_certificate(&cert), Err(StoreError::AlreadyExists(_))));
    s.set_certificate_status(&cert.id, CertificateStatus::Revoked, 5).unwrap();
    assert_eq!(s.get_certificate(&cert.id).unwrap().unwrap().status, CertificateStatus::Revoked);
    assert!(matches!(s.set_certificate_status("nope", CertificateStatus::Active, 1), Err(StoreError::NotFound(_))));

    let thing = ThingRecord {
        name: "dev1".into(),
        id: "id1".into(),
        type_name: None,
        attributes: [("a".to_string(), "b".to_string())].into(),
        version: 1,
        created_at_ms: 1,
    };
    s.create_thing(&thing).unwrap();
    assert!(matches!(s.create_thing(&thing), Err(StoreError::AlreadyExists(_))));
    s.attach_principal("dev1", &cert.id, false).unwrap();
    s.attach_principal("dev1", &cert.id, false).unwrap();
    assert_eq!(s.thing_principals("dev1").unwrap(), vec![cert.id.clone()]);
    assert_eq!(s.principal_things(&cert.id).unwrap(), vec!["dev1".to_string()]);
    assert!(matches!(s.attach_principal("ghost", &cert.id, false), Err(StoreError::NotFound(_))));
    let mut other = thing.clone();
    other.name = "dev2".into();
    other.id = "id2".into();
    s.create_thing(&other).unwrap();
    // Attached to dev1 already: an exclusive attach elsewhere is refused...
    assert!(matches!(s.attach_principal("dev2", &cert.id, true), Err(StoreError::AlreadyExists(_))));
    s.detach_principal("dev1", &cert.id).unwrap();
    // ...and once exclusive on dev2, it cannot be attached to dev1.
    s.attach_principal("dev2", &cert.id, true).unwrap();
    assert!(matches!(s.attach_principal("dev1", &cert.id, false), Err(StoreError::AlreadyExists(_))));
    s.detach_principal("dev2", &cert.id).unwrap();
    s.attach_principal("dev1", &cert.id, false).unwrap();
    assert_eq!(s.get_thing("dev1").unwrap().unwrap().attributes.get("a").unwrap(), "b");
    s.detach_principal("dev1", &cert.id).unwrap();
    assert!(s.thing_principals("dev1").unwrap().is_empty());
    s.delete_thing("dev1").unwrap();
    assert!(s.get_thing("dev1").unwrap().is_none());
}

//! Round trips, known byte vectors, incremental input and encoder rules.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use mqtt::reason;
use mqtt::*;

#[test]
fn every_v5_sample_round_trips() {
    for p in samples_v5() {
        assert_eq!(roundtrip(&p, Protocol::V5), p);
    }
}

#[test]
fn every_v311_sample_round_trips() {
    for p in samples_v311() {
        assert_eq!(roundtrip(&p, Protocol::V311), p);
    }
}

#[test]
fn v5_samples_downgrade_to_v311_as_documented() {
    for p in samples_v5() {
        let mut buf = BytesMut::new();
        let res = encode(&p, Protocol::V311, &mut buf);
        match expected_v311(&p) {
            None => {
                assert!(res.is_err(), "{p:?} should not encode for 3.1.1");
                assert!(buf.is_empty());
            }
            Some(want) => {
                res.unwrap();
                let got = decode(&mut buf, Protocol::V311, MAX).unwrap().unwrap();
                assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn every_sample_type_is_covered() {
    let names: std::collections::BTreeSet<_> = samples_v5().iter().map(Packet::name).collect();
    assert_eq!(names.len(), 15);
    let names: std::collections::BTreeSet<_> = samples_v311().iter().map(Packet::name).collect();
    assert_eq!(names.len(), 14);
}

#[test]
fn incomplete_input_at_every_split_point() {
    for (proto, samples) in [(Protocol::V5, samples_v5()), (Protocol::V311, samples_v311())] {
        for p in samples {
            let bytes = enc(&p, proto);
            for cut in 0..bytes.len() {
                let mut buf = BytesMut::from(&bytes[..cut]);
                assert_eq!(frame_len(&buf, MAX), Ok(None), "{p:?} cut at {cut}");
                assert_eq!(decode(&mut buf, proto, MAX), Ok(None), "{p:?} cut at {cut}");
                assert_eq!(buf.len(), cut, "nothing consumed");
            }
            assert_eq!(frame_len(&bytes, MAX), Ok(Some(bytes.len())));
        }
    }
}

#[test]
fn back_to_back_packets_decode_one_at_a_time() {
    let samples = samples_v5();
    let mut buf = BytesMut::new();
    for p in &samples {
        encode(p, Protocol::V5, &mut buf).unwrap();
    }
    buf.extend_from_slice(&[0x30, 0x05]); // start of one more
    for p in &samples {
        assert_eq!(decode(&mut buf, Protocol::V5, MAX).unwrap().as_ref(), Some(p));
    }
    assert_eq!(decode(&mut buf, Protocol::V5, MAX), Ok(None));
    assert_eq!(&buf[..], &[0x30, 0x05]);
}

#[test]
fn publish_payload_is_zero_copy() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        packet_id: 1,
        payload: Bytes::from(vec![9u8; 1000]),
        properties: Properties::default(),
    });
    let mut buf = BytesMut::new();
    encode(&p, Protocol::V5, &mut buf).unwrap();
    let frame_start = buf.as_ptr() as usize;
    let frame_end = frame_start + buf.len();
    let Some(Packet::Publish(got)) = decode(&mut buf, Protocol::V5, MAX).unwrap() else { panic!("not a publish") };
    let at = got.payload.as_ptr() as usize;
    assert!(at >= frame_start && at + got.payload.len() == frame_end, "payload was copied");
}

#[test]
fn encode_reserves_exactly() {
    for p in samples_v5() {
        let mut buf = BytesMut::new();
        encode(&p, Protocol::V5, &mut buf).unwrap();
        assert_eq!(buf.len(), encoded_len(&p, Protocol::V5));
        // One up-front reservation (BytesMut rounds tiny ones up a little).
        assert!(buf.capacity() <= buf.len().max(64), "{}: {} > {}", p.name(), buf.capacity(), buf.len());
    }
}

// ---------------------------------------------------------------------------
// Known byte vectors
// ---------------------------------------------------------------------------

/// What `mosquitto_pub -V mqttv311 -i test -k 60 ...` sends first.
#[test]
fn mosquitto_v311_connect_capture() {
    let bytes =
        [0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b't', b'e', b's', b't'];
    let want = Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "test".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    });
    // The connection's version is irrelevant for CONNECT.
    assert_eq!(dec(&bytes, Protocol::V5).unwrap().unwrap(), want);
    assert_eq!(dec(&bytes, Protocol::V311).unwrap().unwrap(), want);
    assert_eq!(enc(&want, Protocol::V5), bytes);
}

/// `mosquitto_sub -V mqttv311 -i sub1 -u user -P pass --will-topic w --will-payload bye
/// --will-qos 1 --will-retain -c` (clean session off).
#[test]
fn mosquitto_v311_connect_with_will_and_credentials() {
    let body =
        cat(&[&s("MQTT"), &[0x04, 0b1110_1100, 0x00, 0x3c], &s("sub1"), &s("w"), &b(b"bye"), &s("user"), &b(b"pass")]);
    let bytes = frame(0x10, &body);
    let want = Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_start: false,
        keep_alive: 60,
        client_id: "sub1".into(),
        will: Some(Will {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"pass")),
        properties: Properties::default(),
    });
    assert_eq!(dec(&bytes, Protocol::V311).unwrap().unwrap(), want);
    assert_eq!(enc(&want, Protocol::V311), bytes);
}

/// MQTT 5 spec figure 3-6 (variable header example: flags 0xCE, keep alive
/// 10, session expiry 10), completed with a payload.
#[test]
fn mqtt5_spec_connect_example() {
    let bytes = frame(
        0x10,
        &cat(&[
            &[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xCE, 0x00, 0x0A],
            &[0x05, 0x11, 0x00, 0x00, 0x00, 0x0A],
            &s("c1"),
            &[0x05, 0x18, 0x00, 0x00, 0x00, 0x05], // will delay interval 5
            &s("w/t"),
            &b(b"hi"),
            &s("u"),
            &b(b"p"),
        ]),
    );
    let want = Packet::Connect(Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 10,
        client_id: "c1".into(),
        will: Some(Will {
            topic: "w/t".into(),
            payload: Bytes::from_static(b"hi"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties { will_delay_interval: Some(5), ..Properties::default() },
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties { session_expiry_interval: Some(10), ..Properties::default() },
    });
    assert_eq!(dec(&bytes, Protocol::V311).unwrap().unwrap(), want);
    assert_eq!(enc(&want, Protocol::V5), bytes);
}

#[test]
fn known_short_packets() {
    let v5 = Protocol::V5;
    let v3 = Protocol::V311;
    let cases: Vec<(Protocol, Packet, Vec<u8>)> = vec![
        (v3, Packet::PingReq, vec![0xC0, 0x00]),
        (v5, Packet::PingResp, vec![0xD0, 0x00]),
        (v3, Packet::Disconnect(Disconnect::default()), vec![0xE0, 0x00]),
        (v5, Packet::Disconnect(Disconnect::default()), vec![0xE0, 0x00]),
        (
            v5,
            Packet::Disconnect(Disconnect { reason: 0x8E, properties: Properties::default() }),
            vec![0xE0, 0x01, 0x8E],
        ),
        (
            v3,
            Packet::ConnAck(ConnAck { session_present: false, code: 0, properties: Properties::default() }),
            vec![0x20, 0x02, 0x00, 0x00],
        ),
        (
            v3,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: reason::UNSUPPORTED_PROTOCOL_VERSION,
                properties: Properties::default(),
            }),
            vec![0x20, 0x02, 0x00, 0x01],
        ),
        (
            v5,
            Packet::ConnAck(ConnAck { session_present: true, code: 0, properties: Properties::default() }),
            vec![0x20, 0x03, 0x01, 0x00, 0x00],
        ),
        (
            v5,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: 0,
                properties: Properties { receive_maximum: Some(10), ..Properties::default() },
            }),
            vec![0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x0A],
        ),
        (v3, Packet::PubAck(PubResp::new(1)), vec![0x40, 0x02, 0x00, 0x01]),
        (v5, Packet::PubAck(PubResp::new(1)), vec![0x40, 0x02, 0x00, 0x01]),
        (v5, Packet::PubAck(PubResp::with_reason(1, 0x10)), vec![0x40, 0x03, 0x00, 0x01, 0x10]),
        (v5, Packet::PubRel(PubResp::new(0x1234)), vec![0x62, 0x02, 0x12, 0x34]),
        (v3, Packet::PubRec(PubResp::new(7)), vec![0x50, 0x02, 0x00, 0x07]),
        (v3, Packet::PubComp(PubResp::new(7)), vec![0x70, 0x02, 0x00, 0x07]),
        (
            v3,
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "a/b".into(),
                packet_id: 0,
                payload: Bytes::from_static(b"hello"),
                properties: Properties::default(),
            }),
            cat(&[&[0x30, 0x0A], &s("a/b"), b"hello"]),
        ),
        (
            v5,
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: "a/b".into(),
                packet_id: 10,
                payload: Bytes::from_static(b"hi"),
                properties: Properties::default(),
            }),
            cat(&[&[0x3B, 0x0A], &s("a/b"), &[0x00, 0x0A, 0x00], b"hi"]),
        ),
        (
            v3,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![("a/b".into(), SubOptions::qos(QoS::AtLeastOnce))],
                properties: Properties::default(),
            }),
            cat(&[&[0x82, 0x08, 0x00, 0x01], &s("a/b"), &[0x01]]),
        ),
        (
            v5,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![(
                    "a/b".into(),
                    SubOptions { qos: QoS::ExactlyOnce, no_local: true, retain_as_published: true, retain_handling: 2 },
                )],
                properties: Properties::default(),
            }),
            cat(&[&[0x82, 0x09, 0x00, 0x01, 0x00], &s("a/b"), &[0b0010_1110]]),
        ),
        (
            v3,
            Packet::SubAck(SubAck { packet_id: 1, reasons: vec![0x01, 0x80], properties: Properties::default() }),
            vec![0x90, 0x04, 0x00, 0x01, 0x01, 0x80],
        ),
        (
            v5,
            Packet::SubAck(SubAck { packet_id: 1, reasons: vec![0x00], properties: Properties::default() }),
            vec![0x90, 0x04, 0x00, 0x01, 0x00, 0x00],
        ),
        (
            v3,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 2,
                filters: vec!["a/b".into()],
                properties: Properties::default(),
            }),
            cat(&[&[0xA2, 0x07, 0x00, 0x02], &s("a/b")]),
        ),
        (
            v3,
            Packet::UnsubAck(UnsubAck { packet_id: 2, reasons: vec![], properties: Properties::default() }),
            vec![0xB0, 0x02, 0x00, 0x02],
        ),
        (
            v5,
            Packet::UnsubAck(UnsubAck { packet_id: 2, reasons: vec![0x11], properties: Properties::default() }),
            vec![0xB0, 0x04, 0x00, 0x02, 0x00, 0x11],
        ),
        (v5, Packet::Auth(Auth::default()), vec![0xF0, 0x00]),
        (v5, Packet::Auth(Auth { reason: 0x18, properties: Properties::default() }), vec![0xF0, 0x02, 0x18, 0x00]),
    ];
    for (proto, packet, bytes) in cases {
        assert_eq!(enc(&packet, proto), bytes, "encoding {packet:?}");
        assert_eq!(dec(&bytes, proto).unwrap().unwrap(), packet, "decoding {bytes:02x?}");
    }
}

#[test]
fn v5_short_forms_are_accepted() {
    // PUBACK with reason code but no property length (remaining length 3).
    assert_eq!(dec(&[0x40, 0x03, 0x00, 0x05, 0x00], Protocol::V5).unwrap().unwrap(), Packet::PubAck(PubResp::new(5)));
    // PUBACK with reason and an empty property block.
    assert_eq!(
        dec(&[0x40, 0x04, 0x00, 0x05, 0x10, 0x00], Protocol::V5).unwrap().unwrap(),
        Packet::PubAck(PubResp::with_reason(5, 0x10))
    );
    // DISCONNECT with reason 0 and an empty property block.
    assert_eq!(
        dec(&[0xE0, 0x02, 0x00, 0x00], Protocol::V5).unwrap().unwrap(),
        Packet::Disconnect(Disconnect::default())
    );
    // AUTH with only a reason code.
    assert_eq!(
        dec(&[0xF0, 0x01, 0x18], Protocol::V5).unwrap().unwrap(),
        Packet::Auth(Auth { reason: 0x18, properties: Properties::default() })
    );
}

#[test]
fn non_minimal_remaining_length_is_accepted() {
    assert_eq!(dec(&[0xC0, 0x80, 0x00], Protocol::V311).unwrap().unwrap(), Packet::PingReq);
    assert_eq!(
        dec(&[0x40, 0x82, 0x80, 0x00, 0x00, 0x01], Protocol::V311).unwrap().unwrap(),
        Packet::PubAck(PubResp::new(1))
    );
}

#[test]
fn v311_connack_codes_map_to_canonical_v5_codes() {
    for (v311, v5) in [(0u8, 0x00u8), (1, 0x84), (2, 0x85), (3, 0x88), (4, 0x86), (5, 0x87)] {
        let got = dec(&[0x20, 0x02, 0x00, v311], Protocol::V311).unwrap().unwrap();
        let Packet::ConnAck(a) = got else { panic!() };
        assert_eq!(a.code, v5);
        assert_eq!(reason::connack_v311(v5), v311);
    }
}

#[test]
fn v311_encoding_downgrades() {
    let v3 = Protocol::V311;
    let ack = |code| Packet::ConnAck(ConnAck { session_present: false, code, properties: Properties::default() });
    assert_eq!(enc(&ack(reason::BANNED), v3), [0x20, 0x02, 0x00, 0x05]);
    assert_eq!(enc(&ack(reason::SERVER_BUSY), v3), [0x20, 0x02, 0x00, 0x03]);
    let suback = Packet::SubAck(SubAck {
        packet_id: 3,
        reasons: vec![0, 1, 2, 0x87, 0x8F, 0xA2],
        properties: Properties { reason_string: Some("no".into()), ..Properties::default() },
    });
    assert_eq!(enc(&suback, v3), [0x90, 0x08, 0x00, 0x03, 0, 1, 2, 0x80, 0x80, 0x80]);
    let puback = Packet::PubAck(PubResp::with_reason(3, 0x97));
    assert_eq!(enc(&puback, v3), [0x40, 0x02, 0x00, 0x03]);
    let unsuback =
        Packet::UnsubAck(UnsubAck { packet_id: 3, reasons: vec![0, 0x11], properties: Properties::default() });
    assert_eq!(enc(&unsuback, v3), [0xB0, 0x02, 0x00, 0x03]);
    let disc = Packet::Disconnect(Disconnect { reason: 0x8B, properties: Properties::default() });
    assert_eq!(enc(&disc, v3), [0xE0, 0x00]);
    let mut buf = BytesMut::new();
    assert!(matches!(encode(&Packet::Auth(Auth::default()), v3, &mut buf), Err(EncodeError::Unsupported(_))));
    assert!(buf.is_empty());
}

#[test]
fn encoder_drops_properties_not_allowed_on_the_packet() {
    let props = Properties {
        topic_alias: Some(4),              // PUBLISH only
        will_delay_interval: Some(1),      // will only
        reason_string: Some("why".into()), // allowed on PUBACK
        maximum_qos: Some(1),              // CONNACK only
        user_properties: vec![("k".into(), "v".into())],
        ..Properties::default()
    };
    let p = Packet::PubAck(PubResp { packet_id: 1, reason: 0x10, properties: props.clone() });
    let got = roundtrip(&p, Protocol::V5);
    assert_eq!(got, expected_v5(&p));
    let Packet::PubAck(r) = got else { panic!() };
    assert_eq!(r.properties.reason_string.as_deref(), Some("why"));
    assert_eq!(r.properties.topic_alias, None);
    // Only disallowed properties: the short form is used.
    let p = Packet::PubAck(PubResp {
        packet_id: 1,
        reason: 0,
        properties: Properties { topic_alias: Some(4), ..Properties::default() },
    });
    assert_eq!(enc(&p, Protocol::V5), [0x40, 0x02, 0x00, 0x01]);
}

#[test]
fn qos0_publish_drops_dup_and_packet_id() {
    let p = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: 77,
        payload: Bytes::new(),
        properties: Properties::default(),
    });
    assert_eq!(enc(&p, Protocol::V311), [0x30, 0x03, 0x00, 0x01, b't']);
}

// ---------------------------------------------------------------------------
// Encode errors
// ---------------------------------------------------------------------------

fn enc_err(p: &Packet, proto: Protocol) -> EncodeError {
    let mut buf = BytesMut::from(&b"keep"[..]);
    let e = encode(p, proto, &mut buf).expect_err("encode should fail");
    assert_eq!(&buf[..], b"keep", "nothing written on error");
    e
}

fn publish(topic: &str, qos: QoS, packet_id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        payload: Bytes::new(),
        properties: Properties::default(),
    }
}

#[test]
fn encode_errors() {
    let v5 = Protocol::V5;
    let v3 = Protocol::V311;
    let long = "a".repeat(65_536);
    assert_eq!(
        enc_err(&Packet::Publish(publish(&long, QoS::AtMostOnce, 0)), v5),
        EncodeError::FieldTooLong { len: 65_536 }
    );
    // 65,535 is fine.
    let ok = Packet::Publish(publish(&long[1..], QoS::AtMostOnce, 0));
    assert_eq!(roundtrip(&ok, v5), ok);

    let mut with_reason = PubResp::new(1);
    with_reason.properties.reason_string = Some(long.clone());
    assert!(matches!(enc_err(&Packet::PubAck(with_reason), v5), EncodeError::FieldTooLong { .. }));

    assert!(matches!(enc_err(&Packet::Publish(publish("a/+", QoS::AtMostOnce, 0)), v5), EncodeError::InvalidPacket(_)));
    assert!(matches!(enc_err(&Packet::Publish(publish("", QoS::AtMostOnce, 0)), v5), EncodeError::InvalidPacket(_)));
    let mut aliased = publish("", QoS::AtMostOnce, 0);
    aliased.properties.topic_alias = Some(1);
    assert!(matches!(enc_err(&Packet::Publish(aliased.clone()), v3), EncodeError::InvalidPacket(_)));
    assert_eq!(roundtrip(&Packet::Publish(aliased.clone()), v5), Packet::Publish(aliased));
    assert!(matches!(
        enc_err(&Packet::Publish(publish("a\0b", QoS::AtMostOnce, 0)), v5),
        EncodeError::InvalidPacket(_)
    ));
    assert!(matches!(enc_err(&Packet::Publish(publish("a", QoS::AtLeastOnce, 0)), v5), EncodeError::InvalidPacket(_)));
    assert!(matches!(enc_err(&Packet::PubRel(PubResp::new(0)), v3), EncodeError::InvalidPacket(_)));
    assert!(matches!(
        enc_err(&Packet::Subscribe(Subscribe { packet_id: 1, filters: vec![], properties: Properties::default() }), v3),
        EncodeError::InvalidPacket(_)
    ));
    assert!(matches!(
        enc_err(
            &Packet::Unsubscribe(Unsubscribe { packet_id: 1, filters: vec![], properties: Properties::default() }),
            v5
        ),
        EncodeError::InvalidPacket(_)
    ));
    let bad_rh = SubOptions { retain_handling: 3, ..SubOptions::qos(QoS::AtMostOnce) };
    assert!(matches!(
        enc_err(
            &Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![("a".into(), bad_rh)],
                properties: Properties::default()
            }),
            v5
        ),
        EncodeError::InvalidPacket(_)
    ));
    let shared_no_local = SubOptions { no_local: true, ..SubOptions::qos(QoS::AtMostOnce) };
    assert!(matches!(
        enc_err(
            &Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![("$share/g/a".into(), shared_no_local)],
                properties: Properties::default()
            }),
            v5
        ),
        EncodeError::InvalidPacket(_)
    ));
    assert!(matches!(
        enc_err(&Packet::ConnAck(ConnAck { session_present: true, code: 0x80, properties: Properties::default() }), v5),
        EncodeError::InvalidPacket(_)
    ));
    let mut c = match samples_v311().remove(1) {
        Packet::Connect(c) => c,
        _ => unreachable!(),
    };
    c.password = Some(Bytes::from_static(b"pw"));
    assert!(matches!(enc_err(&Packet::Connect(c.clone()), v3), EncodeError::InvalidPacket(_)));
    c.protocol = Protocol::V5;
    assert_eq!(roundtrip(&Packet::Connect(c.clone()), v3), Packet::Connect(c));

    let mut sub_ids = PubResp::new(1);
    sub_ids.properties.subscription_identifiers = vec![1, 2];
    // Not allowed on PUBACK: dropped, not an error.
    assert_eq!(roundtrip(&Packet::PubAck(sub_ids), v5), Packet::PubAck(PubResp::new(1)));
    let two_ids = Subscribe {
        packet_id: 1,
        filters: vec![("a".into(), SubOptions::qos(QoS::AtMostOnce))],
        properties: Properties { subscription_identifiers: vec![1, 2], ..Properties::default() },
    };
    assert!(matches!(enc_err(&Packet::Subscribe(two_ids), v5), EncodeError::InvalidPacket(_)));
    let mut zero_alias = publish("a", QoS::AtMostOnce, 0);
    zero_alias.properties.topic_alias = Some(0);
    assert!(matches!(enc_err(&Packet::Publish(zero_alias), v5), EncodeError::InvalidPacket(_)));
    let mut data_only = Auth::default();
    data_only.properties.authentication_data = Some(Bytes::from_static(b"x"));
    assert!(matches!(enc_err(&Packet::Auth(data_only), v5), EncodeError::InvalidPacket(_)));
}

#[test]
fn encode_rejects_remaining_length_over_the_limit() {
    // vec![0; n] is calloc'd: no 256 MiB of writes.
    let mut p = publish("t", QoS::AtMostOnce, 0);
    p.payload = Bytes::from(vec![0u8; 268_435_455]);
    let p = Packet::Publish(p);
    assert_eq!(enc_err(&p, Protocol::V311), EncodeError::PacketTooLarge { size: 268_435_455 + 3 });
}

//! Helpers shared by the integration tests: encode/decode wrappers,
//! realistic sample packets, proptest strategies and the expected results of
//! the encoder's documented filtering and downgrading.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use mqtt::reason;
use mqtt::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Generous limit for tests that are not about packet size.
pub const MAX: usize = 1 << 24;

/// Encodes, checking that `encoded_len` is exact and that bytes already in
/// the buffer are left alone.
pub fn enc(p: &Packet, proto: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::from(&b"xyz"[..]);
    encode(p, proto, &mut buf).unwrap_or_else(|e| panic!("encode {p:?}: {e}"));
    assert_eq!(&buf[..3], b"xyz");
    assert_eq!(buf.len() - 3, encoded_len(p, proto), "encoded_len of {p:?}");
    buf[3..].to_vec()
}

/// Decodes exactly one packet that must fill `bytes`.
pub fn dec(bytes: &[u8], proto: Protocol) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let r = decode(&mut buf, proto, MAX);
    if let Ok(Some(_)) = r {
        assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    }
    r
}

/// Decodes, expecting an error.
pub fn dec_err(bytes: &[u8], proto: Protocol) -> DecodeError {
    match dec(bytes, proto) {
        Err(e) => e,
        Ok(p) => panic!("expected an error for {bytes:02x?}, got {p:?}"),
    }
}

/// Encode then decode.
pub fn roundtrip(p: &Packet, proto: Protocol) -> Packet {
    let bytes = enc(p, proto);
    dec(&bytes, proto).unwrap_or_else(|e| panic!("decode {p:?}: {e}")).expect("complete frame")
}

/// Prefixes `body` with a fixed header for `first`.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n & 0x7F) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed string / binary field.
pub fn s(v: &str) -> Vec<u8> {
    b(v.as_bytes())
}

/// A length-prefixed binary field.
pub fn b(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

/// Concatenates byte pieces.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------
// Realistic samples
// ---------------------------------------------------------------------------

fn user(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// One of every packet type for MQTT 5, with realistic properties (only
/// properties allowed on each type, so they survive a round trip).
pub fn samples_v5() -> Vec<Packet> {
    vec![
        Packet::Connect(Connect {
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: "sensor-42".into(),
            will: Some(Will {
                topic: "devices/sensor-42/status".into(),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: Some(5),
                    payload_format_indicator: Some(1),
                    message_expiry_interval: Some(3600),
                    content_type: Some("text/plain".into()),
                    response_topic: Some("devices/sensor-42/reply".into()),
                    correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
                    user_properties: vec![user("origin", "will")],
                    ..Properties::default()
                },
            }),
            username: Some("alice".into()),
            password: Some(Bytes::from_static(b"s3cr\xffet")),
            properties: Properties {
                session_expiry_interval: Some(86_400),
                receive_maximum: Some(20),
                maximum_packet_size: Some(128 * 1024),
                topic_alias_maximum: Some(10),
                request_response_information: Some(1),
                request_problem_information: Some(0),
                authentication_method: Some("SCRAM-SHA-256".into()),
                authentication_data: Some(Bytes::from_static(b"n,,n=alice,r=abc")),
                user_properties: vec![user("region", "eu"), user("region", "us")],
                ..Properties::default()
            },
        }),
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: Properties {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(100),
                maximum_qos: Some(1),
                retain_available: Some(1),
                maximum_packet_size: Some(1 << 20),
                assigned_client_identifier: Some("auto-7f3a".into()),
                topic_alias_maximum: Some(16),
                reason_string: Some("welcome".into()),
                user_properties: vec![user("server", "thingport")],
                wildcard_subscription_available: Some(1),
                subscription_identifier_available: Some(1),
                shared_subscription_available: Some(0),
                server_keep_alive: Some(60),
                response_information: Some("resp/".into()),
                server_reference: Some("other.example:8883".into()),
                authentication_method: Some("SCRAM-SHA-256".into()),
                authentication_data: Some(Bytes::from_static(b"v=xyz")),
                ..Properties::default()
            },
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: reason::NOT_AUTHORIZED,
            properties: Properties::default(),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "telemetry/temp".into(),
            packet_id: 0,
            payload: Bytes::from_static(b"{\"c\":21.5}"),
            properties: Properties::default(),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "$aws/things/t1/shadow/update".into(),
            packet_id: 65535,
            payload: Bytes::from(vec![0xA5; 300]),
            properties: Properties {
                payload_format_indicator: Some(0),
                message_expiry_interval: Some(10),
                content_type: Some("application/json".into()),
                response_topic: Some("replies/t1".into()),
                correlation_data: Some(Bytes::from_static(b"req-1")),
                subscription_identifiers: vec![1, 268_435_455, 7],
                topic_alias: Some(3),
                user_properties: vec![user("a", "1"), user("", "")],
                ..Properties::default()
            },
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: String::new(),
            packet_id: 9,
            payload: Bytes::new(),
            properties: Properties { topic_alias: Some(3), ..Properties::default() },
        }),
        Packet::PubAck(PubResp::new(1)),
        Packet::PubAck(PubResp::with_reason(2, reason::NO_MATCHING_SUBSCRIBERS)),
        Packet::PubRec(PubResp {
            packet_id: 3,
            reason: reason::QUOTA_EXCEEDED,
            properties: Properties {
                reason_string: Some("slow down".into()),
                user_properties: vec![user("k", "v")],
                ..Properties::default()
            },
        }),
        Packet::PubRel(PubResp::new(4)),
        Packet::PubRel(PubResp::with_reason(5, reason::PACKET_IDENTIFIER_NOT_FOUND)),
        Packet::PubComp(PubResp {
            packet_id: 6,
            reason: 0,
            properties: Properties { user_properties: vec![user("trace", "abc")], ..Properties::default() },
        }),
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            filters: vec![
                ("sport/tennis/#".into(), SubOptions::qos(QoS::ExactlyOnce)),
                (
                    "$share/workers/jobs/+".into(),
                    SubOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: false,
                        retain_as_published: true,
                        retain_handling: 2,
                    },
                ),
                (
                    "own/+/echo".into(),
                    SubOptions { qos: QoS::AtMostOnce, no_local: true, retain_as_published: false, retain_handling: 1 },
                ),
            ],
            properties: Properties {
                subscription_identifiers: vec![42],
                user_properties: vec![user("x", "y")],
                ..Properties::default()
            },
        }),
        Packet::SubAck(SubAck {
            packet_id: 10,
            reasons: vec![2, 1, reason::TOPIC_FILTER_INVALID],
            properties: Properties { reason_string: Some("partly".into()), ..Properties::default() },
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            filters: vec!["sport/tennis/#".into(), "a/b".into()],
            properties: Properties { user_properties: vec![user("why", "done")], ..Properties::default() },
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 11,
            reasons: vec![0, reason::NO_SUBSCRIPTION_EXISTED],
            properties: Properties::default(),
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
        Packet::Disconnect(Disconnect { reason: reason::DISCONNECT_WITH_WILL, properties: Properties::default() }),
        Packet::Disconnect(Disconnect {
            reason: reason::SERVER_MOVED,
            properties: Properties {
                server_reference: Some("b.example".into()),
                reason_string: Some("maintenance".into()),
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        }),
        Packet::Auth(Auth::default()),
        Packet::Auth(Auth {
            reason: reason::CONTINUE_AUTHENTICATION,
            properties: Properties {
                authentication_method: Some("SCRAM-SHA-256".into()),
                authentication_data: Some(Bytes::from_static(b"c=biws")),
                ..Properties::default()
            },
        }),
    ]
}

/// One of every 3.1.1 packet type, with only 3.1.1-representable fields.
pub fn samples_v311() -> Vec<Packet> {
    vec![
        Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_start: false,
            keep_alive: 60,
            client_id: "mosq-sub-1".into(),
            will: Some(Will {
                topic: "clients/mosq-sub-1".into(),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::ExactlyOnce,
                retain: false,
                properties: Properties::default(),
            }),
            username: Some("bob".into()),
            password: Some(Bytes::from_static(b"pw")),
            properties: Properties::default(),
        }),
        Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_start: true,
            keep_alive: 0,
            client_id: String::new(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }),
        Packet::ConnAck(ConnAck { session_present: true, code: 0, properties: Properties::default() }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: reason::BAD_USER_NAME_OR_PASSWORD,
            properties: Properties::default(),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: 0,
            payload: Bytes::from_static(b"hello"),
            properties: Properties::default(),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "/".into(),
            packet_id: 1,
            payload: Bytes::from(vec![7; 200]),
            properties: Properties::default(),
        }),
        Packet::PubAck(PubResp::new(1)),
        Packet::PubRec(PubResp::new(2)),
        Packet::PubRel(PubResp::new(3)),
        Packet::PubComp(PubResp::new(4)),
        Packet::Subscribe(Subscribe {
            packet_id: 5,
            filters: vec![
                ("a/+".into(), SubOptions::qos(QoS::AtMostOnce)),
                ("#".into(), SubOptions::qos(QoS::ExactlyOnce)),
            ],
            properties: Properties::default(),
        }),
        Packet::SubAck(SubAck { packet_id: 5, reasons: vec![0, 0x80, 2, 1], properties: Properties::default() }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 6,
            filters: vec!["a/+".into()],
            properties: Properties::default(),
        }),
        Packet::UnsubAck(UnsubAck { packet_id: 6, reasons: vec![], properties: Properties::default() }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ]
}

// ---------------------------------------------------------------------------
// Expected encoder behaviour (written independently from the codec)
// ---------------------------------------------------------------------------

/// Packet kinds for the property table (MQTT 5 table 2-4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Place {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Clears every property not allowed at `place` (what the encoder drops).
pub fn allowed_only(p: &Properties, place: Place) -> Properties {
    use Place::*;
    let mut o = Properties { user_properties: p.user_properties.clone(), ..Properties::default() };
    let is = |places: &[Place]| places.contains(&place);
    if is(&[Publish, Will]) {
        o.payload_format_indicator = p.payload_format_indicator;
        o.message_expiry_interval = p.message_expiry_interval;
        o.content_type = p.content_type.clone();
        o.response_topic = p.response_topic.clone();
        o.correlation_data = p.correlation_data.clone();
    }
    if is(&[Publish, Subscribe]) {
        o.subscription_identifiers = p.subscription_identifiers.clone();
    }
    if is(&[Connect, ConnAck, Disconnect]) {
        o.session_expiry_interval = p.session_expiry_interval;
    }
    if is(&[ConnAck]) {
        o.assigned_client_identifier = p.assigned_client_identifier.clone();
        o.server_keep_alive = p.server_keep_alive;
        o.response_information = p.response_information.clone();
        o.maximum_qos = p.maximum_qos;
        o.retain_available = p.retain_available;
        o.wildcard_subscription_available = p.wildcard_subscription_available;
        o.subscription_identifier_available = p.subscription_identifier_available;
        o.shared_subscription_available = p.shared_subscription_available;
    }
    if is(&[Connect, ConnAck, Auth]) {
        o.authentication_method = p.authentication_method.clone();
        o.authentication_data = p.authentication_data.clone();
    }
    if is(&[Connect]) {
        o.request_problem_information = p.request_problem_information;
        o.request_response_information = p.request_response_information;
    }
    if is(&[Will]) {
        o.will_delay_interval = p.will_delay_interval;
    }
    if is(&[ConnAck, Disconnect]) {
        o.server_reference = p.server_reference.clone();
    }
    if is(&[ConnAck, PubResp, SubAck, UnsubAck, Disconnect, Auth]) {
        o.reason_string = p.reason_string.clone();
    }
    if is(&[Connect, ConnAck]) {
        o.receive_maximum = p.receive_maximum;
        o.topic_alias_maximum = p.topic_alias_maximum;
        o.maximum_packet_size = p.maximum_packet_size;
    }
    if is(&[Publish]) {
        o.topic_alias = p.topic_alias;
    }
    o
}

/// What decoding the encoding of `p` for `proto` yields, or `None` when
/// `encode` must refuse it. A CONNECT is encoded for its own version.
pub fn expected(p: &Packet, proto: Protocol) -> Option<Packet> {
    match (p, proto) {
        (Packet::Connect(c), _) if c.protocol == Protocol::V311 => expected_v311(p),
        (_, Protocol::V311) => expected_v311(p),
        (_, Protocol::V5) => Some(expected_v5(p)),
    }
}

/// What decoding a V5 encoding of `p` yields: disallowed properties dropped.
/// (For a 3.1.1 CONNECT use [`expected`].)
pub fn expected_v5(p: &Packet) -> Packet {
    let mut p = p.clone();
    match &mut p {
        Packet::Connect(c) => {
            c.properties = allowed_only(&c.properties, Place::Connect);
            if let Some(w) = &mut c.will {
                w.properties = allowed_only(&w.properties, Place::Will);
            }
        }
        Packet::ConnAck(a) => a.properties = allowed_only(&a.properties, Place::ConnAck),
        Packet::Publish(x) => x.properties = allowed_only(&x.properties, Place::Publish),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.properties = allowed_only(&r.properties, Place::PubResp)
        }
        Packet::Subscribe(x) => x.properties = allowed_only(&x.properties, Place::Subscribe),
        Packet::SubAck(x) => x.properties = allowed_only(&x.properties, Place::SubAck),
        Packet::Unsubscribe(x) => x.properties = allowed_only(&x.properties, Place::Unsubscribe),
        Packet::UnsubAck(x) => x.properties = allowed_only(&x.properties, Place::UnsubAck),
        Packet::Disconnect(x) => x.properties = allowed_only(&x.properties, Place::Disconnect),
        Packet::Auth(x) => x.properties = allowed_only(&x.properties, Place::Auth),
        Packet::PingReq | Packet::PingResp => {}
    }
    p
}

/// Canonical MQTT 5 code of a 3.1.1 CONNACK return code.
pub fn connack_canonical(v311: u8) -> u8 {
    [0x00, 0x84, 0x85, 0x88, 0x86, 0x87][usize::from(v311)]
}

/// What decoding a 3.1.1 encoding of `p` yields, or `None` when 3.1.1
/// cannot express it and `encode` must fail. A CONNECT is always encoded for
/// its own protocol version.
pub fn expected_v311(p: &Packet) -> Option<Packet> {
    let none = Properties::default();
    Some(match p.clone() {
        Packet::Connect(c) if c.protocol == Protocol::V5 => expected_v5(p),
        Packet::Connect(mut c) => {
            if c.password.is_some() && c.username.is_none() {
                return None;
            }
            c.protocol = Protocol::V311;
            c.properties = none;
            if let Some(w) = &mut c.will {
                w.properties = Properties::default();
            }
            Packet::Connect(c)
        }
        Packet::ConnAck(a) => {
            Packet::ConnAck(ConnAck { code: connack_canonical(reason::connack_v311(a.code)), properties: none, ..a })
        }
        Packet::Publish(x) => {
            if x.topic.is_empty() {
                return None;
            }
            Packet::Publish(Publish { properties: none, ..x })
        }
        Packet::PubAck(r) => Packet::PubAck(PubResp::new(r.packet_id)),
        Packet::PubRec(r) => Packet::PubRec(PubResp::new(r.packet_id)),
        Packet::PubRel(r) => Packet::PubRel(PubResp::new(r.packet_id)),
        Packet::PubComp(r) => Packet::PubComp(PubResp::new(r.packet_id)),
        Packet::Subscribe(x) => Packet::Subscribe(Subscribe {
            packet_id: x.packet_id,
            filters: x.filters.into_iter().map(|(f, o)| (f, SubOptions::qos(o.qos))).collect(),
            properties: none,
        }),
        Packet::SubAck(x) => Packet::SubAck(SubAck {
            packet_id: x.packet_id,
            reasons: x.reasons.iter().map(|&c| if c <= 2 { c } else { 0x80 }).collect(),
            properties: none,
        }),
        Packet::Unsubscribe(x) => Packet::Unsubscribe(Unsubscribe { properties: none, ..x }),
        Packet::UnsubAck(x) => Packet::UnsubAck(UnsubAck { packet_id: x.packet_id, reasons: vec![], properties: none }),
        Packet::PingReq => Packet::PingReq,
        Packet::PingResp => Packet::PingResp,
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect::default()),
        Packet::Auth(_) => return None,
    })
}

// ---------------------------------------------------------------------------
// Proptest strategies
// ---------------------------------------------------------------------------

/// Any string without U+0000 (all of Unicode otherwise).
pub fn arb_str() -> impl Strategy<Value = String> {
    "[^\\x00]{0,12}"
}

/// A valid topic name.
pub fn arb_topic() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/$ é€😀_-]{1,20}".prop_filter("valid topic", |t| topic::valid_topic_name(t))
}

/// A topic filter; the decoder does not validate filters, so anything
/// without U+0000 goes, plus some realistic ones.
pub fn arb_filter() -> impl Strategy<Value = String> {
    prop_oneof![
        arb_str(),
        Just("#".to_owned()),
        Just("a/+/b".to_owned()),
        "[a-z]{1,4}".prop_map(|g| format!("$share/{g}/x/#")),
    ]
}

/// Any binary value.
pub fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

/// Arbitrary properties with values the protocol allows, every property
/// possibly present (the encoder drops the ones a packet does not allow).
pub fn arb_props() -> impl Strategy<Value = Properties> {
    let a = (
        arb_flag(),
        option::of(any::<u32>()),
        option::of(arb_str()),
        option::of(arb_topic()),
        option::of(arb_bytes(8)),
        vec(1u32..=268_435_455, 0..3),
        option::of(any::<u32>()),
        option::of(arb_str()),
        option::of(any::<u16>()),
        option::of(arb_str()),
        option::of(arb_bytes(8)),
        arb_flag(),
    );
    let b = (
        option::of(any::<u32>()),
        arb_flag(),
        option::of(arb_str()),
        option::of(arb_str()),
        option::of(arb_str()),
        option::of(1u16..),
        option::of(any::<u16>()),
        option::of(1u16..),
        arb_flag(),
        arb_flag(),
        vec((arb_str(), arb_str()), 0..3),
        option::of(1u32..),
    );
    let c = (arb_flag(), arb_flag(), arb_flag());
    (a, b, c).prop_map(|(a, b, c)| {
        let mut p = Properties {
            payload_format_indicator: a.0,
            message_expiry_interval: a.1,
            content_type: a.2,
            response_topic: a.3,
            correlation_data: a.4,
            subscription_identifiers: a.5,
            session_expiry_interval: a.6,
            assigned_client_identifier: a.7,
            server_keep_alive: a.8,
            authentication_method: a.9,
            authentication_data: a.10,
            request_problem_information: a.11,
            will_delay_interval: b.0,
            request_response_information: b.1,
            response_information: b.2,
            server_reference: b.3,
            reason_string: b.4,
            receive_maximum: b.5,
            topic_alias_maximum: b.6,
            topic_alias: b.7,
            maximum_qos: b.8,
            retain_available: b.9,
            user_properties: b.10,
            maximum_packet_size: b.11,
            wildcard_subscription_available: c.0,
            subscription_identifier_available: c.1,
            shared_subscription_available: c.2,
        };
        if p.authentication_method.is_none() {
            p.authentication_data = None;
        }
        p
    })
}

/// Properties, sometimes (often) empty so that the short forms get exercised.
pub fn arb_props_maybe() -> impl Strategy<Value = Properties> {
    prop_oneof![Just(Properties::default()), arb_props()]
}

fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn arb_protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::V311), Just(Protocol::V5)]
}

fn arb_will() -> impl Strategy<Value = Will> {
    (arb_topic(), arb_bytes(16), arb_qos(), any::<bool>(), arb_props_maybe())
        .prop_map(|(topic, payload, qos, retain, properties)| Will { topic, payload, qos, retain, properties })
}

fn arb_connect() -> impl Strategy<Value = Connect> {
    (
        arb_protocol(),
        any::<bool>(),
        any::<u16>(),
        arb_str(),
        option::of(arb_will()),
        option::of(arb_str()),
        option::of(arb_bytes(16)),
        arb_props_maybe(),
    )
        .prop_map(|(protocol, clean_start, keep_alive, client_id, will, username, password, properties)| Connect {
            protocol,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
}

fn arb_publish() -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        arb_qos(),
        any::<bool>(),
        prop_oneof![3 => arb_topic(), 1 => Just(String::new())],
        1u16..,
        arb_bytes(64),
        arb_props_maybe(),
        1u16..,
    )
        .prop_map(|(dup, qos, retain, topic, id, payload, mut properties, alias)| {
            if topic.is_empty() {
                properties.topic_alias = Some(alias);
            }
            let qos0 = qos == QoS::AtMostOnce;
            Publish { dup: dup && !qos0, qos, retain, topic, packet_id: if qos0 { 0 } else { id }, payload, properties }
        })
}

fn arb_pubresp() -> impl Strategy<Value = PubResp> {
    (1u16.., prop_oneof![Just(0u8), any::<u8>()], arb_props_maybe())
        .prop_map(|(packet_id, reason, properties)| PubResp { packet_id, reason, properties })
}

fn arb_sub_options() -> impl Strategy<Value = SubOptions> {
    (arb_qos(), any::<bool>(), any::<bool>(), 0u8..=2).prop_map(
        |(qos, no_local, retain_as_published, retain_handling)| SubOptions {
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        },
    )
}

fn arb_subscribe() -> impl Strategy<Value = Subscribe> {
    (1u16.., vec((arb_filter(), arb_sub_options()), 1..4), arb_props_maybe()).prop_map(
        |(packet_id, mut filters, mut properties)| {
            for (f, o) in &mut filters {
                if f.starts_with("$share/") {
                    o.no_local = false;
                }
            }
            properties.subscription_identifiers.truncate(1);
            Subscribe { packet_id, filters, properties }
        },
    )
}

/// Any packet with protocol-valid field values; the MQTT 5 encoding of it
/// decodes to [`expected_v5`] of it.
pub fn arb_packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        arb_connect().prop_map(Packet::Connect),
        (any::<bool>(), any::<u8>(), arb_props_maybe()).prop_map(|(sp, code, properties)| {
            Packet::ConnAck(ConnAck { session_present: sp && code == 0, code, properties })
        }),
        arb_publish().prop_map(Packet::Publish),
        arb_pubresp().prop_map(Packet::PubAck),
        arb_pubresp().prop_map(Packet::PubRec),
        arb_pubresp().prop_map(Packet::PubRel),
        arb_pubresp().prop_map(Packet::PubComp),
        arb_subscribe().prop_map(Packet::Subscribe),
        (1u16.., vec(any::<u8>(), 1..5), arb_props_maybe())
            .prop_map(|(packet_id, reasons, properties)| Packet::SubAck(SubAck { packet_id, reasons, properties })),
        (1u16.., vec(arb_filter(), 1..4), arb_props_maybe()).prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe { packet_id, filters, properties })
        }),
        (1u16.., vec(any::<u8>(), 1..5), arb_props_maybe())
            .prop_map(|(packet_id, reasons, properties)| Packet::UnsubAck(UnsubAck { packet_id, reasons, properties })),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        (prop_oneof![Just(0u8), any::<u8>()], arb_props_maybe())
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties })),
        (prop_oneof![Just(0u8), any::<u8>()], arb_props_maybe())
            .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties })),
    ]
}

/// The fuzz target's check, shared with the proptest that stands in for it:
/// decode `data` under both versions until it stops; every packet decoded
/// must re-encode, and the re-encoding must decode to the same packet.
pub fn fuzz_one(data: &[u8]) {
    for proto in [Protocol::V311, Protocol::V5] {
        let _ = frame_len(data, MAX);
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode(&mut buf, proto, MAX) {
                Ok(Some(p)) => {
                    assert!(buf.len() < before, "decode consumed nothing");
                    let mut out = BytesMut::new();
                    encode(&p, proto, &mut out).unwrap_or_else(|e| panic!("re-encode of decoded {p:?} failed: {e}"));
                    assert_eq!(out.len(), encoded_len(&p, proto));
                    let again = decode(&mut out, proto, MAX)
                        .unwrap_or_else(|e| panic!("re-decode of {p:?} failed: {e}"))
                        .expect("complete");
                    assert!(out.is_empty());
                    assert_eq!(again, p);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

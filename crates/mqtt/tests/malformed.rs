//! Every decoder rejection, with the error (and so the reason code) it must
//! produce.

mod common;

use bytes::BytesMut;
use common::*;
use mqtt::*;

const V3: Protocol = Protocol::V311;
const V5: Protocol = Protocol::V5;

fn malformed(e: DecodeError) -> bool {
    matches!(e, DecodeError::MalformedPacket(_))
}

fn protocol_error(e: DecodeError) -> bool {
    matches!(e, DecodeError::ProtocolError(_))
}

/// Expects both versions to fail with a malformed-packet error.
fn assert_malformed_both(bytes: &[u8]) {
    for proto in [V3, V5] {
        let e = dec_err(bytes, proto);
        assert!(malformed(e.clone()), "{proto:?} {bytes:02x?}: {e:?}");
    }
}

// ---------------------------------------------------------------------------
// Fixed header
// ---------------------------------------------------------------------------

#[test]
fn reserved_packet_type() {
    assert_malformed_both(&[0x00, 0x00]);
    // Rejected from the first byte alone.
    assert!(malformed(frame_len(&[0x00], MAX).unwrap_err()));
}

#[test]
fn auth_is_not_a_v311_packet() {
    assert!(malformed(dec_err(&[0xF0, 0x00], V3)));
    assert_eq!(dec(&[0xF0, 0x00], V5).unwrap().unwrap(), Packet::Auth(Auth::default()));
}

#[test]
fn fixed_header_flags() {
    let good = |first: u8, body: &[u8]| frame(first, body);
    // Types whose flags must be 0.
    for first in [0x11u8, 0x18, 0x21, 0x41, 0x52, 0x74, 0x92, 0xB8, 0xC1, 0xD2, 0xE4, 0xF8] {
        assert!(malformed(frame_len(&[first], MAX).unwrap_err()), "{first:#x}");
        assert_malformed_both(&good(first, &[0x00, 0x01]));
    }
    // PUBREL, SUBSCRIBE, UNSUBSCRIBE must be 0010.
    for first in [0x60u8, 0x63, 0x6A, 0x80, 0x83, 0xA0, 0xA3, 0xAF] {
        assert!(malformed(frame_len(&[first], MAX).unwrap_err()), "{first:#x}");
    }
    assert_malformed_both(&[0x60, 0x02, 0x00, 0x01]);
}

#[test]
fn publish_qos3_is_malformed() {
    for first in [0x36u8, 0x37, 0x3E, 0x3F] {
        assert!(malformed(frame_len(&[first], MAX).unwrap_err()));
        assert_malformed_both(&frame(first, &cat(&[&s("t"), &[0, 1, 0]])));
    }
}

#[test]
fn publish_dup_on_qos0() {
    let bytes = frame(0x38, &cat(&[&s("t"), b"x"]));
    assert!(malformed(dec_err(&bytes, V3)));
    let bytes = frame(0x38, &cat(&[&s("t"), &[0x00], b"x"]));
    assert!(protocol_error(dec_err(&bytes, V5)));
}

#[test]
fn remaining_length_longer_than_four_bytes() {
    let bytes = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert!(malformed(frame_len(&bytes, usize::MAX).unwrap_err()));
    assert_malformed_both(&bytes);
    // Detected as soon as the fifth byte is there, body or not.
    assert!(malformed(frame_len(&bytes[..5], usize::MAX).unwrap_err()));
    assert_eq!(frame_len(&bytes[..4], usize::MAX), Ok(None));
}

#[test]
fn too_large_is_refused_before_the_body_arrives() {
    // PUBLISH announcing 1000 bytes of body; only the fixed header is here.
    let header = [0x30, 0xE8, 0x07];
    assert_eq!(frame_len(&header, 100), Err(DecodeError::PacketTooLarge { size: 1003, max: 100 }));
    let mut buf = BytesMut::from(&header[..]);
    assert_eq!(decode(&mut buf, V5, 100), Err(DecodeError::PacketTooLarge { size: 1003, max: 100 }));
    assert_eq!(buf.len(), 3, "nothing consumed");
    // The limit counts the fixed header: exactly at the limit is fine.
    let ping = [0xC0, 0x00];
    assert_eq!(frame_len(&ping, 2), Ok(Some(2)));
    assert!(matches!(frame_len(&ping, 1), Err(DecodeError::PacketTooLarge { size: 2, max: 1 })));
    // Maximum varint with a huge limit: just waits for the body.
    assert_eq!(frame_len(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], usize::MAX), Ok(None));
    assert_eq!(
        frame_len(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], 1 << 20),
        Err(DecodeError::PacketTooLarge { size: 268_435_460, max: 1 << 20 })
    );
}

#[test]
fn truncated_fields_inside_a_complete_frame() {
    // Topic length says 5, frame has 1 byte of topic.
    assert_malformed_both(&[0x30, 0x03, 0x00, 0x05, b'a']);
    // PUBACK with one byte of packet identifier.
    assert_malformed_both(&[0x40, 0x01, 0x00]);
    // QoS 1 PUBLISH without packet identifier.
    assert_malformed_both(&frame(0x32, &s("t")));
    // CONNACK with only the flags byte.
    assert_malformed_both(&[0x20, 0x01, 0x00]);
    // v5 CONNACK without property length.
    assert!(malformed(dec_err(&[0x20, 0x02, 0x00, 0x00], V5)));
    // v5 SUBSCRIBE without property length.
    assert!(malformed(dec_err(&[0x82, 0x02, 0x00, 0x01], V5)));
}

#[test]
fn trailing_bytes_are_rejected() {
    assert_malformed_both(&[0xC0, 0x01, 0x00]); // PINGREQ
    assert_malformed_both(&[0xD0, 0x01, 0x00]); // PINGRESP
    assert!(malformed(dec_err(&[0x40, 0x03, 0x00, 0x01, 0x00], V3))); // 3.1.1 PUBACK
    assert!(malformed(dec_err(&[0x62, 0x03, 0x00, 0x01, 0x00], V3))); // 3.1.1 PUBREL
    assert!(malformed(dec_err(&[0xE0, 0x01, 0x00], V3))); // 3.1.1 DISCONNECT
    assert!(malformed(dec_err(&[0x20, 0x03, 0x00, 0x00, 0x00], V3))); // 3.1.1 CONNACK
    assert!(malformed(dec_err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V3))); // 3.1.1 UNSUBACK
                                                                      // v5 PUBACK: reason, empty properties, then junk.
    assert!(malformed(dec_err(&[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xFF], V5)));
    // v5 DISCONNECT: reason, empty properties, then junk.
    assert!(malformed(dec_err(&[0xE0, 0x03, 0x00, 0x00, 0x00], V5)));
    // v5 CONNACK with a trailing byte.
    assert!(malformed(dec_err(&[0x20, 0x04, 0x00, 0x00, 0x00, 0x00], V5)));
    // CONNECT with a byte after the client identifier.
    let mut c = connect_body(4, 0x02, &[]);
    c.push(0xAA);
    assert_malformed_both(&frame(0x10, &c));
    // SUBSCRIBE whose last entry lacks its options byte.
    assert_malformed_both(&frame(0x82, &cat(&[&[0x00, 0x01], &s("a"), &[0x00], &s("b")])));
}

// ---------------------------------------------------------------------------
// Packet identifiers
// ---------------------------------------------------------------------------

#[test]
fn packet_identifier_zero() {
    for proto in [V3, V5] {
        let props: &[u8] = if proto == V5 { &[0x00] } else { &[] };
        let cases = [
            frame(0x32, &cat(&[&s("t"), &[0x00, 0x00], props])),
            frame(0x34, &cat(&[&s("t"), &[0x00, 0x00], props])),
            vec![0x40, 0x02, 0x00, 0x00],
            vec![0x50, 0x02, 0x00, 0x00],
            vec![0x62, 0x02, 0x00, 0x00],
            vec![0x70, 0x02, 0x00, 0x00],
            frame(0x82, &cat(&[&[0x00, 0x00], props, &s("a"), &[0x00]])),
            frame(0x90, &cat(&[&[0x00, 0x00], props, &[0x00]])),
            frame(0xA2, &cat(&[&[0x00, 0x00], props, &s("a")])),
        ];
        for bytes in cases {
            let e = dec_err(&bytes, proto);
            assert!(protocol_error(e.clone()), "{proto:?} {bytes:02x?}: {e:?}");
        }
    }
    assert!(protocol_error(dec_err(&[0xB0, 0x02, 0x00, 0x00], V3)));
    assert!(protocol_error(dec_err(&[0xB0, 0x04, 0x00, 0x00, 0x00, 0x00], V5)));
}

// ---------------------------------------------------------------------------
// UTF-8 strings
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_and_nul() {
    let bad: [&[u8]; 5] = [
        &[0xC3, 0x28],       // invalid continuation
        &[0xED, 0xA0, 0x80], // UTF-16 surrogate U+D800
        &[0xC0, 0xAF],       // overlong '/'
        &[b'a', 0x00, b'b'], // U+0000
        &[0xFF],
    ];
    for raw in bad {
        // PUBLISH topic.
        assert_eq!(dec_err(&frame(0x30, &b(raw)), V3), DecodeError::InvalidUtf8);
        // CONNECT client identifier.
        let mut body = cat(&[&s("MQTT"), &[0x04, 0x02, 0x00, 0x3C]]);
        body.extend(b(raw));
        assert_eq!(dec_err(&frame(0x10, &body), V3), DecodeError::InvalidUtf8);
        // SUBSCRIBE filter.
        let sub = frame(0x82, &cat(&[&[0x00, 0x01], &b(raw), &[0x00]]));
        assert_eq!(dec_err(&sub, V3), DecodeError::InvalidUtf8);
        // v5 user property value.
        let props = cat(&[&[0x26], &s("k"), &b(raw)]);
        let bytes = frame(0x40, &cat(&[&[0x00, 0x01, 0x00], &[props.len() as u8], &props]));
        assert_eq!(dec_err(&bytes, V5), DecodeError::InvalidUtf8);
    }
    assert_eq!(DecodeError::InvalidUtf8.reason_code(), 0x81);
}

#[test]
fn bom_is_kept_not_stripped() {
    let topic = "\u{FEFF}a";
    let bytes = frame(0x30, &s(topic));
    let Packet::Publish(p) = dec(&bytes, V3).unwrap().unwrap() else { panic!() };
    assert_eq!(p.topic, topic);
}

// ---------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------

/// CONNECT body: protocol "MQTT", `level`, `flags`, keep alive 60, v5
/// empty properties when level 5, client id "c", then `rest`.
fn connect_body(level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = cat(&[&s("MQTT"), &[level, flags, 0x00, 0x3C]]);
    if level == 5 {
        body.push(0x00);
    }
    body.extend(s("c"));
    body.extend_from_slice(rest);
    body
}

#[test]
fn connect_protocol_level() {
    for level in [0u8, 1, 2, 3, 6, 7, 255] {
        let bytes = frame(0x10, &connect_body(level, 0x02, &[]));
        for proto in [V3, V5] {
            assert_eq!(dec_err(&bytes, proto), DecodeError::UnsupportedProtocolVersion(level));
        }
    }
    assert_eq!(DecodeError::UnsupportedProtocolVersion(3).reason_code(), 0x84);
    // MQTT 3.1 as mosquitto_pub -V mqttv31 sends it.
    let mqisdp = frame(0x10, &cat(&[&s("MQIsdp"), &[0x03, 0x02, 0x00, 0x3C], &s("c")]));
    assert_eq!(dec_err(&mqisdp, V3), DecodeError::UnsupportedProtocolVersion(3));
    // Unsupported level is reported even when the rest is garbage.
    let short = frame(0x10, &cat(&[&s("MQTT"), &[0x06]]));
    assert_eq!(dec_err(&short, V3), DecodeError::UnsupportedProtocolVersion(6));
}

#[test]
fn connect_protocol_name() {
    for name in ["MQTX", "mqtt", "", "MQTTT", "HTTP"] {
        let bytes = frame(0x10, &cat(&[&s(name), &[0x04, 0x02, 0x00, 0x3C], &s("c")]));
        assert!(protocol_error(dec_err(&bytes, V3)), "{name:?}");
    }
    // An HTTP request on the MQTT port: 'G' = 0x47 is not a valid first byte.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    assert!(malformed(decode(&mut buf, V3, MAX).unwrap_err()));
}

#[test]
fn connect_reserved_flag() {
    for level in [4u8, 5] {
        let bytes = frame(0x10, &connect_body(level, 0x03, &[]));
        assert!(malformed(dec_err(&bytes, V3)));
    }
}

#[test]
fn connect_will_flags() {
    for level in [4u8, 5] {
        // Will QoS 1 without will flag.
        assert!(malformed(dec_err(&frame(0x10, &connect_body(level, 0x0A, &[])), V3)));
        // Will QoS 2 without will flag.
        assert!(malformed(dec_err(&frame(0x10, &connect_body(level, 0x12, &[])), V3)));
        // Will retain without will flag.
        assert!(malformed(dec_err(&frame(0x10, &connect_body(level, 0x22, &[])), V3)));
        // Will QoS 3 with will flag.
        let will: &[u8] = &cat(&[if level == 5 { &[0x00] } else { &[] }, &s("w"), &b(b"x")]);
        assert!(malformed(dec_err(&frame(0x10, &connect_body(level, 0x1E, will)), V3)));
        // Will flag with QoS 2 and retain is fine.
        assert!(dec(&frame(0x10, &connect_body(level, 0x36, will)), V3).is_ok());
        // Will flag set but will fields missing.
        assert!(malformed(dec_err(&frame(0x10, &connect_body(level, 0x06, &[])), V3)));
    }
}

#[test]
fn connect_will_topic_must_be_a_topic_name() {
    for level in [4u8, 5] {
        for topic in ["a/+", "#", ""] {
            let pre: &[u8] = if level == 5 { &[0x00] } else { &[] };
            let will = cat(&[pre, &s(topic), &b(b"x")]);
            let bytes = frame(0x10, &connect_body(level, 0x06, &will));
            assert_eq!(dec_err(&bytes, V3), DecodeError::TopicNameInvalid, "{topic:?}");
        }
    }
}

#[test]
fn connect_password_without_username() {
    let v3 = frame(0x10, &connect_body(4, 0x42, &b(b"pw")));
    assert!(malformed(dec_err(&v3, V3)));
    let v5 = frame(0x10, &connect_body(5, 0x42, &b(b"pw")));
    let Packet::Connect(c) = dec(&v5, V3).unwrap().unwrap() else { panic!() };
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}

#[test]
fn connect_username_flag_without_username() {
    assert_malformed_both(&frame(0x10, &connect_body(4, 0x82, &[])));
}

// ---------------------------------------------------------------------------
// CONNACK, SUBACK
// ---------------------------------------------------------------------------

#[test]
fn connack_rules() {
    // Reserved acknowledge flags.
    assert!(malformed(dec_err(&[0x20, 0x02, 0x02, 0x00], V3)));
    assert!(malformed(dec_err(&[0x20, 0x03, 0x80, 0x00, 0x00], V5)));
    // Reserved 3.1.1 return code.
    assert!(malformed(dec_err(&[0x20, 0x02, 0x00, 0x06], V3)));
    // Session present with a failure code.
    assert!(protocol_error(dec_err(&[0x20, 0x02, 0x01, 0x05], V3)));
    assert!(protocol_error(dec_err(&[0x20, 0x03, 0x01, 0x87, 0x00], V5)));
}

#[test]
fn suback_rules() {
    assert!(malformed(dec_err(&[0x90, 0x03, 0x00, 0x01, 0x03], V3)));
    assert!(malformed(dec_err(&[0x90, 0x03, 0x00, 0x01, 0x87], V3)));
    assert!(protocol_error(dec_err(&[0x90, 0x02, 0x00, 0x01], V3)));
    assert!(protocol_error(dec_err(&[0x90, 0x03, 0x00, 0x01, 0x00], V5)));
    assert!(protocol_error(dec_err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V5)));
    // Any v5 SUBACK code is passed through.
    let Packet::SubAck(a) = dec(&[0x90, 0x04, 0x00, 0x01, 0x00, 0xA2], V5).unwrap().unwrap() else { panic!() };
    assert_eq!(a.reasons, [0xA2]);
}

// ---------------------------------------------------------------------------
// PUBLISH topic
// ---------------------------------------------------------------------------

#[test]
fn publish_topic_rules() {
    for topic in ["a/+", "#", "a/#", "+"] {
        assert_eq!(dec_err(&frame(0x30, &s(topic)), V3), DecodeError::TopicNameInvalid);
        assert_eq!(dec_err(&frame(0x30, &cat(&[&s(topic), &[0]])), V5), DecodeError::TopicNameInvalid);
    }
    assert_eq!(DecodeError::TopicNameInvalid.reason_code(), 0x90);
    // Empty topic: invalid in 3.1.1, needs a topic alias in 5.
    assert_eq!(dec_err(&frame(0x30, &s("")), V3), DecodeError::TopicNameInvalid);
    assert!(protocol_error(dec_err(&frame(0x30, &cat(&[&s(""), &[0x00]])), V5)));
    let aliased = frame(0x30, &cat(&[&s(""), &[0x03, 0x23, 0x00, 0x01], b"pay"]));
    let Packet::Publish(p) = dec(&aliased, V5).unwrap().unwrap() else { panic!() };
    assert_eq!(p.properties.topic_alias, Some(1));
    assert_eq!(&p.payload[..], b"pay");
    // '$' topics and empty levels are fine.
    assert!(dec(&frame(0x30, &s("$SYS//x")), V3).is_ok());
}

// ---------------------------------------------------------------------------
// SUBSCRIBE / UNSUBSCRIBE
// ---------------------------------------------------------------------------

fn subscribe(proto: Protocol, entries: &[(&str, u8)]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if proto == V5 {
        body.push(0x00);
    }
    for (f, o) in entries {
        body.extend(s(f));
        body.push(*o);
    }
    frame(0x82, &body)
}

#[test]
fn subscribe_without_filters() {
    assert!(protocol_error(dec_err(&subscribe(V3, &[]), V3)));
    assert!(protocol_error(dec_err(&subscribe(V5, &[]), V5)));
}

#[test]
fn unsubscribe_without_filters() {
    assert!(protocol_error(dec_err(&[0xA2, 0x02, 0x00, 0x01], V3)));
    assert!(protocol_error(dec_err(&[0xA2, 0x03, 0x00, 0x01, 0x00], V5)));
}

#[test]
fn v311_subscription_options() {
    for opts in [0x04u8, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFC] {
        assert!(malformed(dec_err(&subscribe(V3, &[("a", opts)]), V3)), "{opts:#x}");
    }
    assert!(malformed(dec_err(&subscribe(V3, &[("a", 0x03)]), V3)));
    assert!(dec(&subscribe(V3, &[("a", 0x02)]), V3).is_ok());
}

#[test]
fn v5_subscription_options() {
    // Reserved bits 6 and 7.
    assert!(malformed(dec_err(&subscribe(V5, &[("a", 0x40)]), V5)));
    assert!(malformed(dec_err(&subscribe(V5, &[("a", 0x80)]), V5)));
    // Retain handling 3.
    assert!(protocol_error(dec_err(&subscribe(V5, &[("a", 0x30)]), V5)));
    // QoS 3.
    assert!(protocol_error(dec_err(&subscribe(V5, &[("a", 0x03)]), V5)));
    // No Local on a shared subscription.
    assert!(protocol_error(dec_err(&subscribe(V5, &[("$share/g/a", 0x04)]), V5)));
    // Everything legal at once.
    let Packet::Subscribe(sub) = dec(&subscribe(V5, &[("a", 0x2E), ("$share/g/a", 0x09)]), V5).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(
        sub.filters[0].1,
        SubOptions { qos: QoS::ExactlyOnce, no_local: true, retain_as_published: true, retain_handling: 2 }
    );
    assert_eq!(
        sub.filters[1].1,
        SubOptions { qos: QoS::AtLeastOnce, no_local: false, retain_as_published: true, retain_handling: 0 }
    );
}

#[test]
fn topic_filters_are_left_to_the_broker() {
    // Invalid filters decode; the broker answers 0x8F per filter.
    let Packet::Subscribe(sub) = dec(&subscribe(V5, &[("a/#/b", 0), ("", 0)]), V5).unwrap().unwrap() else { panic!() };
    assert!(!topic::valid_topic_filter(&sub.filters[0].0));
    assert!(!topic::valid_topic_filter(&sub.filters[1].0));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// v5 PUBLISH QoS 0 to "t" with the given raw property block contents.
fn publish_with_props(props: &[u8]) -> Vec<u8> {
    let mut body = s("t");
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    body.extend_from_slice(b"payload");
    frame(0x30, &body)
}

/// v5 PUBACK with reason 0 and the given raw property block contents.
fn puback_with_props(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00, props.len() as u8];
    body.extend_from_slice(props);
    frame(0x40, &body)
}

#[test]
fn property_not_allowed_on_packet_type() {
    // Topic alias on PUBACK, session expiry on PUBLISH, will delay on PUBLISH,
    // maximum QoS on CONNECT, reason string on UNSUBSCRIBE.
    assert!(protocol_error(dec_err(&puback_with_props(&[0x23, 0x00, 0x01]), V5)));
    assert!(protocol_error(dec_err(&publish_with_props(&[0x11, 0, 0, 0, 1]), V5)));
    assert!(protocol_error(dec_err(&publish_with_props(&[0x18, 0, 0, 0, 1]), V5)));
    let connect = cat(&[&s("MQTT"), &[0x05, 0x02, 0x00, 0x3C, 0x02, 0x24, 0x01], &s("c")]);
    assert!(protocol_error(dec_err(&frame(0x10, &connect), V5)));
    let unsub = frame(0xA2, &cat(&[&[0x00, 0x01, 0x04, 0x1F], &s("x"), &s("a")]));
    assert!(protocol_error(dec_err(&unsub, V5)));
    // Will delay interval in CONNECT properties (it belongs in will properties).
    let connect = cat(&[&s("MQTT"), &[0x05, 0x02, 0x00, 0x3C, 0x05, 0x18, 0, 0, 0, 1], &s("c")]);
    assert!(protocol_error(dec_err(&frame(0x10, &connect), V5)));
    // Session expiry in will properties.
    let will = cat(&[&[0x05, 0x11, 0, 0, 0, 1], &s("w"), &b(b"x")]);
    let connect = cat(&[&s("MQTT"), &[0x05, 0x06, 0x00, 0x3C, 0x00], &s("c"), &will]);
    assert!(protocol_error(dec_err(&frame(0x10, &connect), V5)));
}

#[test]
fn property_twice() {
    // Message expiry twice on PUBLISH.
    assert!(protocol_error(dec_err(&publish_with_props(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]), V5)));
    // Reason string twice on PUBACK.
    let rs = cat(&[&[0x1F], &s("a"), &[0x1F], &s("b")]);
    assert!(protocol_error(dec_err(&puback_with_props(&rs), V5)));
    // Topic alias twice.
    assert!(protocol_error(dec_err(&publish_with_props(&[0x23, 0, 1, 0x23, 0, 1]), V5)));
    // User properties may repeat, order is kept.
    let up = cat(&[&[0x26], &s("k"), &s("1"), &[0x26], &s("k"), &s("2")]);
    let Packet::PubAck(r) = dec(&puback_with_props(&up), V5).unwrap().unwrap() else { panic!() };
    assert_eq!(r.properties.user_properties, [("k".into(), "1".into()), ("k".into(), "2".into())]);
}

#[test]
fn subscription_identifier_rules() {
    // May repeat on PUBLISH.
    let Packet::Publish(p) =
        dec(&publish_with_props(&[0x0B, 0x01, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F]), V5).unwrap().unwrap()
    else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, [1, 268_435_455]);
    // Zero is a protocol error.
    assert!(protocol_error(dec_err(&publish_with_props(&[0x0B, 0x00]), V5)));
    // Once only on SUBSCRIBE.
    let body = cat(&[&[0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02], &s("a"), &[0x00]]);
    assert!(protocol_error(dec_err(&frame(0x82, &body), V5)));
    let body = cat(&[&[0x00, 0x01, 0x02, 0x0B, 0x05], &s("a"), &[0x00]]);
    let Packet::Subscribe(sub) = dec(&frame(0x82, &body), V5).unwrap().unwrap() else { panic!() };
    assert_eq!(sub.properties.subscription_identifiers, [5]);
    // Five-byte varint value.
    assert!(malformed(dec_err(&publish_with_props(&[0x0B, 0x80, 0x80, 0x80, 0x80, 0x01]), V5)));
}

#[test]
fn property_lengths() {
    // Property length past the end of the packet.
    let mut bytes = s("t");
    bytes.push(0x10);
    bytes.extend_from_slice(&[0x01, 0x00]);
    assert!(malformed(dec_err(&frame(0x30, &bytes), V5)));
    // Value running past the property length (string inside).
    let rs = cat(&[&[0x1F], &s("abcdef")]);
    let mut body = vec![0x00, 0x01, 0x00, 0x04];
    body.extend_from_slice(&rs);
    assert!(malformed(dec_err(&frame(0x40, &body), V5)));
    // Fixed-size value truncated by the property length.
    let body = cat(&[&s("t"), &[0x03, 0x02, 0x00, 0x00, 0x00, 0x01]]);
    assert!(malformed(dec_err(&frame(0x30, &body), V5)));
    // Property length itself longer than 4 bytes.
    let body = cat(&[&s("t"), &[0x80, 0x80, 0x80, 0x80, 0x01]]);
    assert!(malformed(dec_err(&frame(0x30, &body), V5)));
}

#[test]
fn unknown_property_identifier() {
    for ident in [0x00u8, 0x04, 0x05, 0x0A, 0x10, 0x14, 0x1B, 0x1D, 0x20, 0x2B, 0x7F] {
        assert!(malformed(dec_err(&puback_with_props(&[ident, 0x00]), V5)), "{ident:#x}");
    }
    // A multi-byte identifier beyond any known one.
    assert!(malformed(dec_err(&puback_with_props(&[0x80, 0x01, 0x00]), V5)));
}

#[test]
fn property_values() {
    // Topic alias 0.
    assert!(protocol_error(dec_err(&publish_with_props(&[0x23, 0x00, 0x00]), V5)));
    // Payload format indicator 2.
    assert!(protocol_error(dec_err(&publish_with_props(&[0x01, 0x02]), V5)));
    // Response topic with a wildcard.
    let rt = cat(&[&[0x08], &s("a/#")]);
    assert!(protocol_error(dec_err(&publish_with_props(&rt), V5)));
    let connect = |props: &[u8]| {
        let mut body = cat(&[&s("MQTT"), &[0x05, 0x02, 0x00, 0x3C]]);
        body.push(props.len() as u8);
        body.extend_from_slice(props);
        body.extend(s("c"));
        frame(0x10, &body)
    };
    // Receive maximum 0, maximum packet size 0, request flags 2.
    assert!(protocol_error(dec_err(&connect(&[0x21, 0x00, 0x00]), V5)));
    assert!(protocol_error(dec_err(&connect(&[0x27, 0, 0, 0, 0]), V5)));
    assert!(protocol_error(dec_err(&connect(&[0x17, 0x02]), V5)));
    assert!(protocol_error(dec_err(&connect(&[0x19, 0x02]), V5)));
    // Authentication data without method.
    assert!(protocol_error(dec_err(&connect(&cat(&[&[0x16], &b(b"x")])), V5)));
    // With a method it is fine.
    assert!(dec(&connect(&cat(&[&[0x15], &s("m"), &[0x16], &b(b"x")])), V5).is_ok());
    let connack = |props: &[u8]| {
        let mut body = vec![0x00, 0x00, props.len() as u8];
        body.extend_from_slice(props);
        frame(0x20, &body)
    };
    for ident in [0x24u8, 0x25, 0x28, 0x29, 0x2A] {
        assert!(protocol_error(dec_err(&connack(&[ident, 0x02]), V5)), "{ident:#x}");
        assert!(dec(&connack(&[ident, 0x01]), V5).is_ok());
    }
}

#[test]
fn reason_codes_of_errors() {
    assert_eq!(DecodeError::PacketTooLarge { size: 2, max: 1 }.reason_code(), 0x95);
    assert_eq!(DecodeError::MalformedPacket("x").reason_code(), 0x81);
    assert_eq!(DecodeError::ProtocolError("x").reason_code(), 0x82);
    assert_eq!(DecodeError::UnsupportedProtocolVersion(6).reason_code(), 0x84);
    assert_eq!(DecodeError::InvalidUtf8.reason_code(), 0x81);
    assert_eq!(DecodeError::TopicNameInvalid.reason_code(), 0x90);
}

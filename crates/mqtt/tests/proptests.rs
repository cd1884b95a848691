//! Property tests: arbitrary packets round-trip for both versions, and the
//! decoder never panics (the stand-in for the `mqtt_decode` fuzz target on
//! machines without a nightly toolchain).

mod common;

use bytes::BytesMut;
use common::*;
use mqtt::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// 2000 cases per property by default; `PROPTEST_CASES=1000000` for a long
/// fuzzing-style run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    /// MQTT 5: encode → decode gives the packet back (minus the properties
    /// the packet type does not allow, which the encoder drops).
    #[test]
    fn v5_round_trip(p in arb_packet()) {
        let Some(want) = expected(&p, Protocol::V5) else {
            prop_assert!(encode(&p, Protocol::V5, &mut BytesMut::new()).is_err());
            return Ok(());
        };
        let bytes = enc(&p, Protocol::V5);
        let got = dec(&bytes, Protocol::V5).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(got, Some(want.clone()));
        // The decoded packet is a fixed point.
        prop_assert_eq!(enc(&want, Protocol::V5), bytes);
    }

    /// MQTT 3.1.1: encode → decode gives the documented downgrade, and
    /// packets that 3.1.1 cannot express are refused without writing.
    #[test]
    fn v311_round_trip(p in arb_packet()) {
        let mut buf = BytesMut::new();
        let res = encode(&p, Protocol::V311, &mut buf);
        match expected(&p, Protocol::V311) {
            None => {
                prop_assert!(res.is_err());
                prop_assert!(buf.is_empty());
            }
            Some(want) => {
                prop_assert!(res.is_ok(), "{:?}", res);
                prop_assert_eq!(buf.len(), encoded_len(&p, Protocol::V311));
                let got = decode(&mut buf, Protocol::V311, MAX);
                prop_assert_eq!(got, Ok(Some(want.clone())));
                prop_assert!(buf.is_empty());
                // Fixed point: the downgraded packet encodes to itself.
                let again = enc(&want, Protocol::V311);
                prop_assert_eq!(dec(&again, Protocol::V311), Ok(Some(want)));
            }
        }
    }

    /// Every prefix of an encoding is "incomplete", consuming nothing.
    #[test]
    fn prefixes_are_incomplete(p in arb_packet(), v5 in any::<bool>()) {
        let proto = if v5 { Protocol::V5 } else { Protocol::V311 };
        let mut full = BytesMut::new();
        if encode(&p, proto, &mut full).is_ok() {
            for cut in 0..full.len() {
                let mut buf = BytesMut::from(&full[..cut]);
                prop_assert_eq!(decode(&mut buf, proto, MAX), Ok(None));
                prop_assert_eq!(buf.len(), cut);
            }
        }
    }

    /// Arbitrary bytes: decode never panics, and whatever decodes re-encodes
    /// to something that decodes to the same packet (the fuzz target's check).
    #[test]
    fn decode_arbitrary_bytes(data in vec(any::<u8>(), 0..300)) {
        fuzz_one(&data);
    }

    /// Arbitrary bytes behind a plausible fixed header, so that the body
    /// parsers (not just the framing) see random input.
    #[test]
    fn decode_arbitrary_bodies(first in any::<u8>(), body in vec(any::<u8>(), 0..200)) {
        fuzz_one(&frame(first, &body));
    }

    /// Valid packets with a few bytes mutated, truncated or extended.
    #[test]
    fn decode_mutated_packets(
        p in arb_packet(),
        v5 in any::<bool>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        tail in vec(any::<u8>(), 0..4),
    ) {
        let proto = if v5 { Protocol::V5 } else { Protocol::V311 };
        let mut bytes = BytesMut::new();
        if encode(&p, proto, &mut bytes).is_ok() {
            let mut bytes = bytes.to_vec();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            fuzz_one(&bytes);
            bytes.extend_from_slice(&tail);
            fuzz_one(&bytes);
            let c = cut.index(bytes.len());
            fuzz_one(&bytes[..c]);
        }
    }

    /// frame_len agrees with decode about where a frame ends.
    #[test]
    fn frame_len_agrees_with_decode(p in arb_packet(), extra in vec(any::<u8>(), 0..8)) {
        let mut buf = BytesMut::new();
        if encode(&p, Protocol::V5, &mut buf).is_ok() {
            let len = buf.len();
            buf.extend_from_slice(&extra);
            prop_assert_eq!(frame_len(&buf, MAX), Ok(Some(len)));
            prop_assert!(decode(&mut buf, Protocol::V5, MAX).unwrap().is_some());
            prop_assert_eq!(&buf[..], &extra[..]);
            // One byte below the limit is refused from the header alone.
            let mut again = BytesMut::new();
            encode(&p, Protocol::V5, &mut again).unwrap();
            let header_only = &again[..again.len().min(5)];
            prop_assert_eq!(
                frame_len(header_only, len - 1),
                Err(DecodeError::PacketTooLarge { size: len, max: len - 1 })
            );
        }
    }

    /// Topic matching agrees with a regex-free reference on random input.
    #[test]
    fn matches_reference(filter in "[ab+#/$]{0,8}", topic in "[ab/$]{0,8}") {
        prop_assert_eq!(topic::matches(&filter, &topic), reference_match(&filter, &topic));
    }
}

/// Recursive reference implementation of MQTT matching.
fn reference_match(filter: &str, topic: &str) -> bool {
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.first(), t.first()) {
            (Some(&"#"), _) => true,
            (Some(&"+"), Some(_)) => go(&f[1..], &t[1..]),
            (Some(a), Some(b)) => a == b && go(&f[1..], &t[1..]),
            (None, None) => true,
            _ => false,
        }
    }
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    go(&f, &t)
}

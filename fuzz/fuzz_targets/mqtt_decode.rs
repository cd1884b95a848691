//! Feeds arbitrary bytes to the MQTT decoder, as a 3.1.1 and as a 5.0
//! connection. Decoding must never panic; every packet that decodes must
//! re-encode (to exactly `encoded_len` bytes) and decode back to itself.
//!
//! The same check runs as an ordinary proptest in
//! `crates/mqtt/tests/proptests.rs` (`decode_*` tests) on stable toolchains.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt::{decode, encode, encoded_len, frame_len, Protocol};

/// Large enough not to hide body parsing behind PacketTooLarge.
const MAX_PACKET_SIZE: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data, MAX_PACKET_SIZE);
    for protocol in [Protocol::V311, Protocol::V5] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode(&mut buf, protocol, MAX_PACKET_SIZE) {
                Ok(Some(packet)) => {
                    assert!(buf.len() < before, "decode consumed nothing");
                    let mut out = BytesMut::new();
                    if let Err(e) = encode(&packet, protocol, &mut out) {
                        panic!("decoded {packet:?} does not re-encode: {e}");
                    }
                    assert_eq!(out.len(), encoded_len(&packet, protocol));
                    match decode(&mut out, protocol, MAX_PACKET_SIZE) {
                        Ok(Some(again)) => {
                            assert!(out.is_empty(), "re-encoding has trailing bytes");
                            assert_eq!(again, packet);
                        }
                        other => panic!("re-encoding of {packet:?} decodes to {other:?}"),
                    }
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                    break;
                }
                Err(_) => break,
            }
        }
    }
});

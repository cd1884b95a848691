//! The benchmark payload: a fixed 20-byte header (send time, publisher,
//! sequence number), padded with filler to the requested size.
//!
//! The send time is nanoseconds since a [`Clock`] base shared by publishers
//! and subscribers of one process, so latency is measured on one monotonic
//! clock and never across machines.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes the header takes; the smallest payload.
pub const HEADER_LEN: usize = 20;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Send time, nanoseconds on the run's [`Clock`].
    pub sent_ns: u64,
    /// Index of the publishing connection.
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub seq: u64,
}

/// Monotonic nanoseconds since the start of the run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        Clock { base: Instant::now() }
    }

    /// Nanoseconds since the base.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The instant `ns` nanoseconds after the base.
    pub fn instant(&self, ns: u64) -> Instant {
        self.base + std::time::Duration::from_nanos(ns)
    }
}

/// Write a payload of `len` bytes (at least [`HEADER_LEN`]) into `scratch`
/// and return it; reusing `scratch` avoids an allocation per message once
/// the previous payloads have been written out and dropped.
pub fn build(scratch: &mut BytesMut, len: usize, stamp: Stamp) -> Bytes {
    let len = len.max(HEADER_LEN);
    scratch.reserve(len);
    scratch.put_u64_le(stamp.sent_ns);
    scratch.put_u32_le(stamp.publisher);
    scratch.put_u64_le(stamp.seq);
    scratch.put_bytes(b'x', len - HEADER_LEN);
    scratch.split().freeze()
}

/// Read the header back; `None` if the payload is too short to be ours.
pub fn parse(payload: &[u8]) -> Option<Stamp> {
    let h = payload.get(..HEADER_LEN)?;
    Some(Stamp {
        sent_ns: u64::from_le_bytes(h[0..8].try_into().ok()?),
        publisher: u32::from_le_bytes(h[8..12].try_into().ok()?),
        seq: u64::from_le_bytes(h[12..20].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut scratch = BytesMut::new();
        let s = Stamp { sent_ns: 123_456_789, publisher: 7, seq: 42 };
        let p = build(&mut scratch, 64, s);
        assert_eq!(p.len(), 64);
        assert_eq!(parse(&p), Some(s));
        // Too small a request still carries the header.
        let p = build(&mut scratch, 4, s);
        assert_eq!(p.len(), HEADER_LEN);
        assert_eq!(parse(&p), Some(s));
        assert_eq!(parse(&p[..10]), None);
    }
}

//! The S3 endpoint's untrusted request pieces: aws-chunked bodies (unsigned
//! and with trailers), fed in two arbitrary pieces, the XML documents it
//! reads, POST policy documents and Range headers. None may panic, and a
//! chunked body must decode the same however it is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objects::chunked::{ChunkSigning, ChunkedDecoder};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(split);
    let whole = {
        let mut d = ChunkedDecoder::new(ChunkSigning::Unsigned, true);
        let mut out = Vec::new();
        d.feed(data, &mut out).ok().map(|_| (out, d.finish().ok()))
    };
    let pieces = {
        let mut d = ChunkedDecoder::new(ChunkSigning::Unsigned, true);
        let mut out = Vec::new();
        (d.feed(a, &mut out).is_ok() && d.feed(b, &mut out).is_ok()).then(|| (out, d.finish().ok()))
    };
    if let (Some(w), Some(p)) = (&whole, &pieces) {
        assert_eq!(w, p, "a chunked body decodes the same however it is split");
    }
    let _ = objects::xml::parse_complete_multipart_upload(data);
    let _ = objects::xml::parse_delete(data);
    let _ = objects::xml::parse_notification_configuration(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = objects::post_policy::parse(text) {
            let _ = p.check(&[("key".into(), "k".into()), ("bucket".into(), "b".into())], Some(10), 0);
        }
        let _ = objects::range::parse_range(text, 1000);
        let _ = objects::names::check_key(text);
    }
});

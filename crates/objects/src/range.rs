//! The `Range` header of GetObject, with S3's semantics.
//!
//! S3 serves a single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) as a
//! 206 with `Content-Range`; it ignores a header it cannot parse and a
//! multi-range request (answering with the whole object, 200), and refuses a
//! range that starts at or beyond the end of the object with
//! `416 InvalidRange`. Download managers (the AWS CLI's `s3 cp`, boto3's
//! `download_file`, browsers resuming a download) rely on exactly that.

use crate::S3Error;

/// Parse a `Range` header against an object of `size` bytes.
///
/// * `Ok(Some((start, end)))` — an inclusive range, `end` clamped to
///   `size - 1`; a suffix range `bytes=-n` longer than the object is the
///   whole object.
/// * `Ok(None)` — no usable range: syntactically invalid, another unit, or
///   several ranges. Serve the whole object, as S3 does.
/// * `Err(InvalidRange)` — satisfiable by no byte: the start is at or past
///   the end (including any range of an empty object) or `bytes=-0`.
pub fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else { return Ok(None) };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => {
            let Some(n) = number(last) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(S3Error::invalid_range(size));
            }
            Ok(Some((size.saturating_sub(n), size - 1)))
        }
        // bytes=a- / bytes=a-b
        (false, _) => {
            let Some(start) = number(first) else { return Ok(None) };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                let Some(end) = number(last) else { return Ok(None) };
                if end < start {
                    // RFC 9110: an invalid range-spec; the header is ignored.
                    return Ok(None);
                }
                end
            };
            if start >= size {
                return Err(S3Error::invalid_range(size));
            }
            Ok(Some((start, end.min(size - 1))))
        }
        (true, true) => Ok(None),
    }
}

/// Digits only; a number too large for u64 saturates (it is past any end).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

/// The `Content-Range` value of a 206 response: `bytes a-b/size`.
pub fn content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{end}/{size}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(h: &str, size: u64) -> Option<(u64, u64)> {
        parse_range(h, size).unwrap()
    }

    fn invalid(h: &str, size: u64) {
        let e = parse_range(h, size).unwrap_err();
        assert_eq!((e.status, e.code), (416, "InvalidRange"), "{h:?} / {size}");
        assert_eq!(e.extra, vec![("ActualObjectSize", size.to_string())]);
    }

    #[test]
    fn single_ranges() {
        assert_eq!(ok("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(ok("bytes=0-9", 10), Some((0, 9)));
        assert_eq!(ok("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(ok("bytes=2-500", 10), Some((2, 9)));
        assert_eq!(ok("bytes=9-", 10), Some((9, 9)));
        assert_eq!(ok("bytes=3-", 10), Some((3, 9)));
        assert_eq!(ok("bytes=-1", 10), Some((9, 9)));
        assert_eq!(ok("bytes=-4", 10), Some((6, 9)));
        assert_eq!(ok("bytes=-10", 10), Some((0, 9)));
        assert_eq!(ok("bytes=-1000", 10), Some((0, 9)));
        assert_eq!(ok(" bytes = 1 - 2 ", 10), Some((1, 2)));
        assert_eq!(ok("Bytes=1-2", 10), Some((1, 2)));
        assert_eq!(ok("bytes=0-99999999999999999999999", 10), Some((0, 9)));
    }

    #[test]
    fn ignored_headers() {
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-a",
            "bytes=5-2",
            "bytes=+1-2",
            "bytes=0x1-2",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=0-1, 3-4",
            "bytes 0-1",
            "bytes=1",
            "bytes=--1",
        ] {
            assert_eq!(ok(h, 10), None, "{h:?}");
        }
    }

    #[test]
    fn unsatisfiable() {
        invalid("bytes=10-", 10);
        invalid("bytes=10-20", 10);
        invalid("bytes=99999999999999999999999-", 10);
        invalid("bytes=-0", 10);
        invalid("bytes=0-", 0);
        invalid("bytes=0-0", 0);
        invalid("bytes=-5", 0);
    }

    #[test]
    fn content_range_format() {
        assert_eq!(content_range(0, 9, 10), "bytes 0-9/10");
        assert_eq!(content_range(6, 9, 10), "bytes 6-9/10");
    }

    proptest! {
        #[test]
        fn result_is_always_within_the_object(h in "[ -~]{0,24}", size in 0u64..1000) {
            if let Ok(Some((a, b))) = parse_range(&h, size) {
                prop_assert!(a <= b && b < size);
            }
        }

        #[test]
        fn explicit_ranges(size in 1u64..1_000_000, a in 0u64..1_000_000, len in 0u64..1_000_000) {
            let b = a + len;
            let r = parse_range(&format!("bytes={a}-{b}"), size);
            if a >= size {
                prop_assert!(r.is_err());
            } else {
                prop_assert_eq!(r.unwrap(), Some((a, b.min(size - 1))));
            }
        }
    }
}

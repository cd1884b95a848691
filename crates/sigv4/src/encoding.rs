//! Percent-encoding and the canonical URI / canonical query string rules.

use crate::UriEncoding;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved characters: `A-Z a-z 0-9 - _ . ~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
}

/// Percent-encode raw bytes the SigV4 way: unreserved bytes are kept, `/` is
/// kept unless `encode_slash`, everything else becomes `%XX` (uppercase hex).
pub(crate) fn encode_bytes(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// URI-encode `s` as SigV4 specifies (RFC 3986 unreserved characters
/// `A-Z a-z 0-9 - _ . ~` are kept, every other byte of the UTF-8 encoding
/// becomes `%XX` with uppercase hex). `/` is kept when `encode_slash` is
/// false (paths) and encoded as `%2F` when it is true (query names/values).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    encode_bytes(s.as_bytes(), encode_slash)
}

/// How a raw `+` in a query string is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plus {
    /// A literal plus sign (canonicalised as `%2B`): what AWS does, and what
    /// the official test suite (`post-vanilla-query-nonunreserved`) encodes.
    Literal,
    /// `application/x-www-form-urlencoded` reading: a space (`%20`).
    Space,
}

/// Percent-decode to bytes. A `%` not followed by two hex digits is kept as
/// a literal `%` (so it re-encodes as `%25`); decoding never fails.
pub(crate) fn percent_decode(s: &str, plus: Plus) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus == Plus::Space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// The canonical URI for a raw (as-on-the-wire, percent-encoded) path.
///
/// * [`UriEncoding::Double`] (every service but S3), exactly as botocore:
///   remove `.` / `..` segments and empty segments (duplicate slashes) from
///   the raw path, keeping a leading and (if anything is left) a trailing
///   slash, then URI-encode the result once more with `/` kept. Since the
///   raw path is already encoded, `%` becomes `%25`: the path ends up
///   encoded twice (`/things/a%3Ab` → `/things/a%253Ab`).
/// * [`UriEncoding::Single`] (S3): no normalisation; each segment is
///   percent-decoded and re-encoded once, so a correctly encoded path is
///   used as is, and differences in escaping style (`%3a` vs `%3A`, `~`
///   vs `%7E`, a raw `:`) do not matter. An encoded slash (`%2F`) stays
///   inside its segment.
///
/// An empty path is `/`.
pub fn canonical_uri(raw_path: &str, uri: UriEncoding) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    match uri {
        UriEncoding::Double => uri_encode(&normalize_path(raw_path), false),
        UriEncoding::Single => {
            let mut out = String::with_capacity(raw_path.len());
            for (i, segment) in raw_path.split('/').enumerate() {
                if i > 0 {
                    out.push('/');
                }
                out.push_str(&encode_bytes(&percent_decode(segment, Plus::Literal), true));
            }
            out
        }
    }
}

/// RFC 3986 §5.2.4 dot-segment removal plus removal of empty segments, as
/// botocore's `normalize_url_path` does (on the still-encoded path).
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// One decoded query parameter.
pub(crate) struct QueryParam {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// Split a raw query string into decoded parameters. Pieces are separated by
/// `&`; empty pieces are skipped; a piece without `=` has an empty value;
/// only the first `=` separates name from value.
pub(crate) fn parse_query(raw_query: &str, plus: Plus) -> Vec<QueryParam> {
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            QueryParam { name: percent_decode(name, plus), value: percent_decode(value, plus) }
        })
        .collect()
}

/// Canonical query string from decoded parameters: every name and value
/// re-encoded with `encode_slash = true`, sorted by encoded name then
/// encoded value (bytewise), joined with `&`. Parameters whose decoded name
/// is `skip` are left out.
pub(crate) fn canonical_query_from(params: &[QueryParam], skip: Option<&[u8]>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|p| Some(p.name.as_slice()) != skip)
        .map(|p| (encode_bytes(&p.name, true), encode_bytes(&p.value, true)))
        .collect();
    pairs.sort_unstable();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical query string for a raw query (without `?`).
///
/// Every parameter name and value is percent-decoded and re-encoded with
/// [`uri_encode`]`(_, true)`; a parameter without `=` gets an empty value;
/// parameters are sorted by name, then value. A raw `+` is a literal plus
/// sign (`%2B`), as in AWS's own test suite; clients that mean a space send
/// `%20` (botocore, the AWS SDKs). [`verify`](crate::verify) additionally
/// accepts signatures computed with `+` read as a space — see its docs.
pub fn canonical_query(raw_query: &str) -> String {
    canonical_query_from(&parse_query(raw_query, Plus::Literal), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_spec() {
        assert_eq!(uri_encode("a/b c", false), "a/b%20c");
        assert_eq!(uri_encode("a/b c", true), "a%2Fb%20c");
        assert_eq!(uri_encode("-_.~AZaz09", true), "-_.~AZaz09");
        assert_eq!(uri_encode("ሴ", true), "%E1%88%B4");
        assert_eq!(uri_encode("+*:=&%", true), "%2B%2A%3A%3D%26%25");
    }

    #[test]
    fn decoding_is_lenient() {
        assert_eq!(percent_decode("a%2fb%2F", Plus::Literal), b"a/b/");
        assert_eq!(percent_decode("100%", Plus::Literal), b"100%");
        assert_eq!(percent_decode("%zz%4", Plus::Literal), b"%zz%4");
        assert_eq!(percent_decode("a+b", Plus::Literal), b"a+b");
        assert_eq!(percent_decode("a+b", Plus::Space), b"a b");
    }

    #[test]
    fn double_encoding_normalises_then_encodes() {
        let d = |p| canonical_uri(p, UriEncoding::Double);
        assert_eq!(d(""), "/");
        assert_eq!(d("/"), "/");
        assert_eq!(d("//"), "/");
        assert_eq!(d("/./"), "/");
        assert_eq!(d("/example/.."), "/");
        assert_eq!(d("/example1/example2/../.."), "/");
        assert_eq!(d("//example//"), "/example/");
        assert_eq!(d("/./example"), "/example");
        assert_eq!(d("/example space/"), "/example%20space/");
        assert_eq!(d("/things/a%3Ab"), "/things/a%253Ab");
        assert_eq!(d("/a%2Fb"), "/a%252Fb");
        assert_eq!(d("/a/..b/.c"), "/a/..b/.c");
    }

    #[test]
    fn single_encoding_recodes_without_normalising() {
        let s = |p| canonical_uri(p, UriEncoding::Single);
        assert_eq!(s(""), "/");
        assert_eq!(s("//example//"), "//example//");
        assert_eq!(s("/a/../b"), "/a/../b");
        assert_eq!(s("/bkt/my%20file%2Bx.txt"), "/bkt/my%20file%2Bx.txt");
        assert_eq!(s("/bkt/a%2fb"), "/bkt/a%2Fb");
        assert_eq!(s("/bkt/a:b%7E"), "/bkt/a%3Ab~");
        assert_eq!(s("/bkt/100%"), "/bkt/100%25");
    }

    #[test]
    fn query_canonicalisation() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("Param2=value2&Param1=value1"), "Param1=value1&Param2=value2");
        assert_eq!(canonical_query("Param1=value2&Param1=Value1"), "Param1=Value1&Param1=value2");
        assert_eq!(canonical_query("b&a=1"), "a=1&b=");
        assert_eq!(canonical_query("a=1=2"), "a=1%3D2");
        assert_eq!(canonical_query("q=a+b"), "q=a%2Bb");
        assert_eq!(canonical_query("q=a%20b&&"), "q=a%20b");
        assert_eq!(canonical_query("x=a.b&x=a%2fb"), "x=a%2Fb&x=a.b");
        assert_eq!(canonical_query("%E1%88%B4=bar"), "%E1%88%B4=bar");
        assert_eq!(canonical_query("ሴ=bar"), "%E1%88%B4=bar");
        assert_eq!(canonical_query("a=%7e%41"), "a=~A");
    }
}

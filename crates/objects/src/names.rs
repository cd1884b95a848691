//! Bucket and object key rules.
//!
//! Bucket names follow S3's rules for general-purpose buckets, so a name that
//! works here also works on AWS (and in virtual-hosted-style URLs).
//!
//! Object keys are opaque to S3, but not to the programs that download them:
//! `aws s3 cp --recursive`, `aws s3 sync`, rclone and most SDK "download
//! directory" helpers join the key onto a local directory. A key such as
//! `../../.ssh/authorized_keys`, `/etc/cron.d/x`, `a\..\..\x` (on Windows) or
//! one hiding its real extension behind a right-to-left override would make
//! a device's upload write outside the operator's download directory or
//! mislead whoever looks at the listing. Thingport never maps keys to paths
//! itself (storage backends address objects by other means), but since
//! devices upload with pre-signed URLs, it refuses such keys outright at the
//! edge instead of trusting every future consumer to be careful.
//!
//! [`check_key`] rejects: empty keys; keys over 1024 UTF-8 bytes
//! (`KeyTooLongError`, as S3); control characters (C0, DEL, C1); `\`; a
//! leading `/`; a `.` or `..` path segment anywhere; Unicode bidirectional
//! controls; zero-width and other invisible format characters, U+FEFF and
//! the line/paragraph separators; Unicode noncharacters. Everything else S3
//! allows — spaces, `+`, `%`, `#`, `?`, `&`, non-Latin scripts, emoji, a
//! trailing `/` ("folder" markers), `//` — is allowed.

use crate::S3Error;

/// S3's limit on a key's length in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// S3's rules for general-purpose bucket names: 3–63 characters of
/// lowercase letters, digits, `.` and `-`; beginning and ending with a letter
/// or digit; no `..`; not shaped like an IPv4 address; not using a prefix or
/// suffix AWS reserves (`xn--`, `sthree-`, `-s3alias`, `--ol-s3`, `--x-s3`,
/// `--table-s3`, `.mrap`).
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return false;
    }
    if !bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    if name.contains("..") {
        return false;
    }
    if looks_like_ipv4(name) {
        return false;
    }
    const RESERVED_PREFIXES: [&str; 2] = ["xn--", "sthree-"];
    const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"];
    !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) && !RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Four dot-separated groups of 1–3 digits (S3 refuses these whatever the
/// values, e.g. `192.168.5.4` and `999.1.1.1`).
fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a character is refused in a key, if it is.
fn refused_char(c: char) -> Option<&'static str> {
    let cp = u32::from(c);
    Some(match c {
        '\u{0}'..='\u{1f}' | '\u{7f}' | '\u{80}'..='\u{9f}' => "a control character",
        '\\' => "a backslash",
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' => "a Unicode bidirectional control",
        '\u{200b}'..='\u{200f}' | '\u{feff}' => "an invisible (zero-width or format) character",
        '\u{2028}' | '\u{2029}' => "a Unicode line or paragraph separator",
        '\u{fdd0}'..='\u{fdef}' => "a Unicode noncharacter",
        _ if cp & 0xfffe == 0xfffe => "a Unicode noncharacter",
        _ => return None,
    })
}

fn bad_key(what: &str) -> S3Error {
    S3Error::invalid_argument(format!(
        "Object key refused: {what}. Thingport refuses keys that could escape a directory or hide their real name \
         when a client saves them as files (e.g. `aws s3 cp --recursive`); choose a key without it."
    ))
}

/// Check an object key (already percent-decoded). See the module
/// documentation for the rules and why.
///
/// Errors: `400 KeyTooLongError` over 1024 bytes; otherwise
/// `400 InvalidArgument` whose message names the rule broken (and where).
pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(S3Error::invalid_argument("Object key refused: it is empty. Object keys must not be empty."));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(400, "KeyTooLongError", "Your key is too long")
            .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string())
            .with("Size", key.len().to_string()));
    }
    if let Some((at, c, why)) = key.char_indices().find_map(|(i, c)| refused_char(c).map(|why| (i, c, why))) {
        return Err(bad_key(&format!("it contains {why} (U+{:04X}) at byte {at}", u32::from(c))));
    }
    if key.starts_with('/') {
        return Err(bad_key("it begins with '/'"));
    }
    if let Some(seg) = key.split('/').find(|s| *s == "." || *s == "..") {
        return Err(bad_key(&format!("it has a '{seg}' path segment")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_bucket_names() {
        for n in [
            "abc",
            "my-bucket",
            "my.bucket.name",
            "a1b2c3",
            "123",
            "docexamplebucket1",
            "log-delivery-march-2020",
            "my-hosted-content",
            "amzn-s3-demo-bucket",
            "1.2.3",
            "1.2.3.4.5",
            "a-.b",
            &"a".repeat(63),
        ] {
            assert!(valid_bucket_name(n), "{n:?}");
        }
    }

    #[test]
    fn bad_bucket_names() {
        for n in [
            "",
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "my_bucket",
            "my bucket",
            "-bucket",
            "bucket-",
            ".bucket",
            "bucket.",
            "my..bucket",
            "192.168.5.4",
            "999.999.999.999",
            "xn--bucket",
            "sthree-bucket",
            "sthree-configurator",
            "bucket-s3alias",
            "bucket--ol-s3",
            "bucket--x-s3",
            "bucket--table-s3",
            "bucket.mrap",
            "bücket",
            "bucket/x",
        ] {
            assert!(!valid_bucket_name(n), "{n:?}");
        }
    }

    #[test]
    fn good_keys() {
        for k in [
            "a",
            "photo.jpg",
            "my-device/2024/01/01/frame 0001.jpg",
            "dir/",
            "a//b",
            "a/.hidden",
            "a/..b/c",
            "a/b.",
            "...",
            "a/.../b",
            "100% + more & more?#=;:@,$'\"",
            "日本語/ファイル.txt",
            "emoji 🎉.png",
            "Ω",
            "\u{a0}nbsp",
            "~/x",
            &"k".repeat(1024),
            &"é".repeat(512),
        ] {
            assert_eq!(check_key(k), Ok(()), "{k:?}");
        }
    }

    fn refused(k: &str) -> S3Error {
        let e = check_key(k).expect_err(k);
        assert_eq!(e.status, 400);
        e
    }

    #[test]
    fn bad_keys() {
        assert_eq!(refused("").code, "InvalidArgument");
        let long = refused(&"k".repeat(1025));
        assert_eq!(long.code, "KeyTooLongError");
        assert!(long.extra.contains(&("MaxSizeAllowed", "1024".into())));
        assert_eq!(refused(&"é".repeat(513)).code, "KeyTooLongError");
        for k in [
            "..",
            ".",
            "../x",
            "./x",
            "a/../b",
            "a/./b",
            "a/..",
            "a/.",
            "/etc/passwd",
            "/",
            "a\\b",
            "..\\..\\x",
            "a\u{0}b",
            "line\nbreak",
            "tab\there",
            "cr\r",
            "del\u{7f}",
            "c1\u{85}",
            "c1\u{9f}",
            "evil\u{202e}gpj.exe",
            "x\u{2066}y",
            "x\u{2069}",
            "x\u{61c}",
            "zero\u{200b}width",
            "lrm\u{200e}",
            "bom\u{feff}",
            "ls\u{2028}",
            "ps\u{2029}",
            "nonchar\u{fdd0}",
            "nonchar\u{fdef}",
            "nonchar\u{fffe}",
            "nonchar\u{ffff}",
            "nonchar\u{1fffe}",
            "nonchar\u{10ffff}",
        ] {
            let e = refused(k);
            assert_eq!(e.code, "InvalidArgument", "{k:?}");
            assert!(e.message.contains("Object key refused"), "{}", e.message);
        }
        assert!(refused("a\u{202e}b").message.contains("(U+202E) at byte 1"));
        assert!(refused("a/../b").message.contains("'..' path segment"));
        assert!(refused("/a").message.contains("begins with '/'"));
    }

    proptest! {
        #[test]
        fn accepted_keys_are_safe_paths(k in "\\PC{1,40}") {
            if check_key(&k).is_ok() {
                prop_assert!(!k.starts_with('/'));
                prop_assert!(!k.contains('\\'));
                prop_assert!(k.split('/').all(|s| s != "." && s != ".."));
                prop_assert!(!k.chars().any(char::is_control));
            }
        }

        #[test]
        fn valid_bucket_names_are_dns_labels(n in "[a-z0-9.-]{1,70}") {
            if valid_bucket_name(&n) {
                prop_assert!((3..=63).contains(&n.len()));
                prop_assert!(!n.contains(".."));
                prop_assert!(!n.starts_with(['.', '-']) && !n.ends_with(['.', '-']));
            }
        }
    }
}

//! Service limits of the shadow service and the name rules for things and
//! shadows.
//!
//! Defaults are AWS's: an 8 KB state document (metadata excluded), 6 levels
//! of nesting, 64-byte client tokens, thing names of 1–128 and shadow names
//! of 1–64 characters, and 48 hours during which a deleted shadow's version
//! number is remembered.

/// AWS's state document limit: `desired` + `reported`, metadata excluded.
pub const DEFAULT_MAX_STATE_BYTES: usize = 8 * 1024;
/// AWS's nesting limit ("JSON contains too many levels of nesting; maximum is 6").
pub const DEFAULT_MAX_DEPTH: usize = 6;
/// AWS's client token limit ("A client token that is longer than 64 bytes …").
pub const DEFAULT_MAX_CLIENT_TOKEN: usize = 64;
/// Longest thing name (botocore `ThingName`: 1–128 of `[a-zA-Z0-9:_-]`).
pub const DEFAULT_MAX_THING_NAME: usize = 128;
/// Longest shadow name (botocore `ShadowName`: 1–64 of `[$a-zA-Z0-9:_-]`).
pub const DEFAULT_MAX_SHADOW_NAME: usize = 64;
/// How long a deleted shadow's version number survives (48 hours).
pub const DEFAULT_VERSION_RETENTION_SECS: i64 = 48 * 3600;

/// Configurable limits. `Limits::default()` gives AWS's values; build others
/// with `Limits { max_state_bytes: 16 * 1024, ..Limits::default() }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest resulting state (compact JSON bytes of `desired` plus
    /// `reported`, metadata excluded); larger updates get 413.
    pub max_state_bytes: usize,
    /// Deepest nesting inside `desired` or `reported` (the section object is
    /// level 1, each object or array below adds one); deeper requests get 400.
    pub max_depth: usize,
    /// Longest `clientToken` in bytes; longer tokens get 400 "Invalid clientToken".
    pub max_client_token: usize,
    /// Longest thing name accepted by [`Limits::valid_thing_name`].
    pub max_thing_name: usize,
    /// Longest shadow name accepted by [`Limits::valid_shadow_name`].
    pub max_shadow_name: usize,
    /// Seconds after a delete during which a new update continues the deleted
    /// shadow's version numbering (later updates start again from 0).
    pub version_retention_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_state_bytes: DEFAULT_MAX_STATE_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_client_token: DEFAULT_MAX_CLIENT_TOKEN,
            max_thing_name: DEFAULT_MAX_THING_NAME,
            max_shadow_name: DEFAULT_MAX_SHADOW_NAME,
            version_retention_secs: DEFAULT_VERSION_RETENTION_SECS,
        }
    }
}

impl Limits {
    /// A thing name: 1 to `max_thing_name` characters of `[a-zA-Z0-9:_-]`.
    pub fn valid_thing_name(&self, s: &str) -> bool {
        valid_name(s, self.max_thing_name, false)
    }

    /// A shadow name: 1 to `max_shadow_name` characters of `[$a-zA-Z0-9:_-]`
    /// (botocore's `ShadowName` pattern allows `$`; the thing name pattern does not).
    pub fn valid_shadow_name(&self, s: &str) -> bool {
        valid_name(s, self.max_shadow_name, true)
    }
}

/// A thing name under AWS's rule: 1–128 characters of `[a-zA-Z0-9:_-]`.
pub fn valid_thing_name(s: &str) -> bool {
    Limits::default().valid_thing_name(s)
}

/// A shadow name under AWS's rule: 1–64 characters of `[$a-zA-Z0-9:_-]`.
pub fn valid_shadow_name(s: &str) -> bool {
    Limits::default().valid_shadow_name(s)
}

fn valid_name(s: &str, max: usize, dollar: bool) -> bool {
    // All allowed characters are ASCII, so bytes and characters agree.
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-') || (dollar && b == b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_aws_values() {
        let l = Limits::default();
        assert_eq!(l.max_state_bytes, 8192);
        assert_eq!(l.max_depth, 6);
        assert_eq!(l.max_client_token, 64);
        assert_eq!(l.max_thing_name, 128);
        assert_eq!(l.max_shadow_name, 64);
        assert_eq!(l.version_retention_secs, 172_800);
    }

    #[test]
    fn thing_names() {
        assert!(valid_thing_name("lamp-1"));
        assert!(valid_thing_name("a:b_c-D9"));
        assert!(valid_thing_name(&"x".repeat(128)));
        assert!(!valid_thing_name(&"x".repeat(129)));
        assert!(!valid_thing_name(""));
        for bad in ["a/b", "a b", "a+b", "a#", "$lamp", "lämp", "a.b"] {
            assert!(!valid_thing_name(bad), "{bad}");
        }
    }

    #[test]
    fn shadow_names() {
        assert!(valid_shadow_name("simShadow1"));
        assert!(valid_shadow_name("$config"));
        assert!(valid_shadow_name(&"s".repeat(64)));
        assert!(!valid_shadow_name(&"s".repeat(65)));
        assert!(!valid_shadow_name(""));
        for bad in ["a/b", "a b", "+", "#", "é"] {
            assert!(!valid_shadow_name(bad), "{bad}");
        }
    }

    #[test]
    fn configured_lengths() {
        let l = Limits { max_thing_name: 3, max_shadow_name: 2, ..Limits::default() };
        assert!(l.valid_thing_name("abc"));
        assert!(!l.valid_thing_name("abcd"));
        assert!(l.valid_shadow_name("ab"));
        assert!(!l.valid_shadow_name("abc"));
    }
}

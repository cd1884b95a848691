//! Topic names, topic filters, shared subscriptions and matching
//! (MQTT 3.1.1 section 4.7, MQTT 5 sections 4.7 and 4.8.2).
//!
//! A *topic name* is what a PUBLISH is sent to: no wildcards. A *topic
//! filter* is what a SUBSCRIBE asks for: `+` matches exactly one level
//! (possibly empty), `#` matches any number of trailing levels, including
//! none. Levels are separated by `/`; empty levels are legal.
//! A shared subscription is written `$share/{group}/{filter}`.

/// Longest topic name or filter that fits in an MQTT UTF-8 string.
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Prefix of a shared subscription filter.
pub const SHARE_PREFIX: &str = "$share/";

/// Whether `topic` is a valid topic name: non-empty, at most 65,535 bytes,
/// no `+`, `#` or U+0000.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_TOPIC_LEN && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// Whether `filter` is a valid topic filter: non-empty, at most 65,535
/// bytes, no U+0000, `#` only as the whole last level, `+` only as a whole
/// level. A shared filter `$share/{group}/{filter}` is valid when the group
/// is non-empty, contains none of `+`, `#`, `/`, and the inner filter is
/// valid.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.len() > MAX_TOPIC_LEN {
        return false;
    }
    match parse_shared(filter) {
        Some((group, inner)) => {
            !group.is_empty() && !group.bytes().any(|b| matches!(b, b'+' | b'#' | b'/')) && valid_plain_filter(inner)
        }
        None => valid_plain_filter(filter),
    }
}

/// Filter syntax without the `$share` rule.
fn valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if !last => return false,
            "#" | "+" => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Splits a shared subscription filter `$share/{group}/{filter}` into
/// `(group, filter)`. Returns `None` when `filter` does not start with
/// `$share/`. Does not validate: a filter with no `/` after the group
/// yields an empty inner filter, which [`valid_topic_filter`] rejects —
/// validate first.
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// Whether the (non-shared, valid) topic `filter` matches the topic name
/// `topic`, by MQTT rules:
///
/// * `+` matches exactly one level, including an empty one;
/// * `#` matches the parent level and any number of child levels, so
///   `sport/#` matches `sport`, `sport/` and `sport/tennis/player1`;
/// * topics starting with `$` (like `$SYS/...`) are not matched by a filter
///   whose first level is `+` or `#` (MQTT-4.7.2-1).
///
/// A `$share/{group}/` prefix is not stripped: pass the inner filter from
/// [`parse_shared`].
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Number of levels in a topic name or filter (`"a/b"` → 2, `"/"` → 2,
/// `"a"` → 1).
pub fn level_count(topic: &str) -> usize {
    topic.bytes().filter(|&b| b == b'/').count() + 1
}

/// Whether a topic filter contains a wildcard (`+` or `#`), i.e. whether
/// it can match more than one topic name.
pub fn has_wildcards(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// Whether a topic name is reserved for server use (starts with `$`, such
/// as `$SYS/...` or `$aws/...`).
pub fn is_system(topic: &str) -> bool {
    topic.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "/", "a/b", "sport/tennis/player1", "$SYS/broker", " ", "a//b", "é/€"] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "a/+", "#", "a/#", "a+b", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"a".repeat(MAX_TOPIC_LEN)));
        assert!(!valid_topic_name(&"a".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "#",
            "+",
            "+/+",
            "/+",
            "+/",
            "a/#",
            "a/+/b",
            "sport/tennis/#",
            "$SYS/#",
            "a//b",
            "/",
            "$share/g/a/#",
            "$share/group/+",
            "$share/g//",
            "$share",
            "$sharex/a",
        ] {
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a#",
            "a/#/b",
            "#/a",
            "a+",
            "a/b+/c",
            "+a",
            "##",
            "a\0",
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/g#/a",
            "$share/g/a#",
        ] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert!(!valid_topic_filter(&"a".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[test]
    fn shared_parse() {
        assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(parse_shared("$share/g/#"), Some(("g", "#")));
        assert_eq!(parse_shared("$share/g"), Some(("g", "")));
        assert_eq!(parse_shared("$share/"), Some(("", "")));
        assert_eq!(parse_shared("$share"), None);
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$SHARE/g/a"), None);
    }

    #[test]
    fn matching_table() {
        let table: &[(&str, &str, bool)] = &[
            ("#", "a", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("#", "$SYS/broker", false),
            ("+", "$SYS", false),
            ("+/+", "$SYS/x", false),
            ("+/#", "$SYS/x", false),
            ("$SYS/#", "$SYS/broker/clients", true),
            ("$SYS/+", "$SYS/broker", true),
            ("$SYS/#", "$SYS", true),
            ("sport/#", "sport", true),
            ("sport/#", "sport/", true),
            ("sport/#", "sport/tennis/player1", true),
            ("sport/#", "sports", false),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/tennis/+", "sport/tennis", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+", "a", true),
            ("+", "", true),
            ("+", "/a", false),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("+/+", "a/b", true),
            ("+/+", "a", false),
            ("+/+", "a/b/c", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a//c", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/", false),
            ("a/b", "a", false),
            ("a/b", "A/b", false),
            ("a/#", "a", true),
            ("a/+/#", "a/b", true),
            ("a/+/#", "a", false),
            ("$aws/things/+/shadow/update", "$aws/things/t1/shadow/update", true),
        ];
        for &(filter, topic, want) in table {
            assert_eq!(matches(filter, topic), want, "matches({filter:?}, {topic:?})");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(level_count("a"), 1);
        assert_eq!(level_count("a/b"), 2);
        assert_eq!(level_count("/"), 2);
        assert_eq!(level_count(""), 1);
        assert!(has_wildcards("a/+"));
        assert!(has_wildcards("#"));
        assert!(!has_wildcards("a/b"));
        assert!(is_system("$SYS/x"));
        assert!(!is_system("a/$"));
    }
}

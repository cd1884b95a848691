//! The `*` / `?` glob of IAM and AWS IoT resources, precompiled.
//!
//! `*` matches any run of characters, including `/` and the empty run; `?`
//! matches exactly one character (a Unicode scalar, not a byte). Everything
//! else is literal and case-sensitive, in particular MQTT's `+` and `#`.
//!
//! Patterns are classified when compiled so the common shapes of a policy
//! resource cost one comparison: `*` (always true), an exact
//! ARN (`==`), `…/prefix/*` (`starts_with`), `*suffix`, `prefix*suffix` and
//! `*infix*`. Other shapes use a backtracking-free matcher: every piece between
//! two stars has a fixed length in characters, so the leftmost match of each
//! piece is always the best one and matching is O(pattern × value) at worst
//! without any allocation.

/// One token of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    Star,
    One,
}

/// A piece of pattern between stars: literals and `?`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(Box<str>),
    One,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// Matches nothing (a pattern whose variables could not be substituted).
    Never,
    /// `*`
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `lit*`
    Prefix(Box<str>),
    /// `*lit`
    Suffix(Box<str>),
    /// `lit*lit`
    PrefixSuffix(Box<str>, Box<str>),
    /// `*lit*`
    Contains(Box<str>),
    /// Anything else.
    General {
        /// Must match at the start.
        head: Vec<Part>,
        /// Must appear in order after the head (each preceded by a star).
        middles: Vec<Vec<Part>>,
        /// `None` when the pattern has no star; else must match at the end.
        tail: Option<Vec<Part>>,
    },
}

/// A builder that turns policy text (wildcards) and literal text into tokens.
#[derive(Debug, Default)]
pub(crate) struct GlobBuilder {
    toks: Vec<Tok>,
}

impl GlobBuilder {
    /// Appends policy text: `*` and `?` are wildcards.
    pub(crate) fn pattern(&mut self, text: &str) -> &mut Self {
        let mut lit = String::new();
        for c in text.chars() {
            match c {
                '*' | '?' => {
                    if !lit.is_empty() {
                        self.literal(&std::mem::take(&mut lit));
                    }
                    let t = if c == '*' { Tok::Star } else { Tok::One };
                    // consecutive stars are one star
                    if !(t == Tok::Star && self.toks.last() == Some(&Tok::Star)) {
                        self.toks.push(t);
                    }
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            self.literal(&lit);
        }
        self
    }

    /// Appends literal text.
    pub(crate) fn literal(&mut self, text: &str) -> &mut Self {
        if text.is_empty() {
            return self;
        }
        if let Some(Tok::Lit(l)) = self.toks.last_mut() {
            l.push_str(text);
        } else {
            self.toks.push(Tok::Lit(text.to_string()));
        }
        self
    }

    /// The compiled glob.
    pub(crate) fn build(&self) -> Glob {
        use Tok::*;
        let b = |s: &String| s.clone().into_boxed_str();
        match self.toks.as_slice() {
            [] => Glob::Exact("".into()),
            [Star] => Glob::Any,
            [Lit(a)] => Glob::Exact(b(a)),
            [Lit(a), Star] => Glob::Prefix(b(a)),
            [Star, Lit(a)] => Glob::Suffix(b(a)),
            [Lit(a), Star, Lit(c)] => Glob::PrefixSuffix(b(a), b(c)),
            [Star, Lit(a), Star] => Glob::Contains(b(a)),
            toks => {
                let mut pieces: Vec<Vec<Part>> = vec![Vec::new()];
                for t in toks {
                    match t {
                        Lit(s) => pieces.last_mut().unwrap().push(Part::Lit(b(s))),
                        One => pieces.last_mut().unwrap().push(Part::One),
                        Star => pieces.push(Vec::new()),
                    }
                }
                let head = pieces.remove(0);
                let tail = pieces.pop();
                Glob::General { head, middles: pieces, tail }
            }
        }
    }
}

impl Glob {
    /// Compiles policy text in which `*` and `?` are wildcards.
    pub(crate) fn new(pattern: &str) -> Glob {
        GlobBuilder::default().pattern(pattern).build()
    }

    /// Whether `value` matches.
    #[inline]
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Glob::Never => false,
            Glob::Any => true,
            Glob::Exact(s) => value == &**s,
            Glob::Prefix(p) => value.starts_with(&**p),
            Glob::Suffix(s) => value.ends_with(&**s),
            Glob::PrefixSuffix(p, s) => {
                value.len() >= p.len() + s.len() && value.starts_with(&**p) && value.ends_with(&**s)
            }
            Glob::Contains(s) => value.contains(&**s),
            Glob::General { head, middles, tail } => general(head, middles, tail.as_deref(), value),
        }
    }
}

fn general(head: &[Part], middles: &[Vec<Part>], tail: Option<&[Part]>, v: &str) -> bool {
    let Some(mut pos) = match_at(head, v, 0) else {
        return false;
    };
    let Some(tail) = tail else {
        return pos == v.len();
    };
    for m in middles {
        match find(m, v, pos) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    match match_before(tail, v, v.len()) {
        Some(start) => start >= pos,
        None => false,
    }
}

/// Matches `parts` at byte offset `start` (a char boundary); the end offset.
fn match_at(parts: &[Part], v: &str, start: usize) -> Option<usize> {
    let mut pos = start;
    for p in parts {
        match p {
            Part::Lit(l) => {
                if v[pos..].starts_with(&**l) {
                    pos += l.len();
                } else {
                    return None;
                }
            }
            Part::One => pos += v[pos..].chars().next()?.len_utf8(),
        }
    }
    Some(pos)
}

/// Matches `parts` so that they end at byte offset `end`; the start offset.
fn match_before(parts: &[Part], v: &str, end: usize) -> Option<usize> {
    let mut pos = end;
    for p in parts.iter().rev() {
        match p {
            Part::Lit(l) => {
                if v[..pos].ends_with(&**l) {
                    pos -= l.len();
                } else {
                    return None;
                }
            }
            Part::One => pos -= v[..pos].chars().next_back()?.len_utf8(),
        }
    }
    Some(pos)
}

/// The leftmost match of `parts` at or after `from`; its end offset.
fn find(parts: &[Part], v: &str, from: usize) -> Option<usize> {
    let mut start = from;
    loop {
        if let Some(Part::Lit(l)) = parts.first() {
            start += v[start..].find(&**l)?;
        }
        if let Some(end) = match_at(parts, v, start) {
            return Some(end);
        }
        start += v[start..].chars().next()?.len_utf8();
    }
}

/// Whether `value` matches the IAM / AWS IoT glob `pattern`: `*` matches any
/// run of characters (including `/`), `?` exactly one character, everything
/// else (MQTT `+` and `#` included) literally and case-sensitively. Policy
/// variables are not interpreted here.
pub fn resource_matches(pattern: &str, value: &str) -> bool {
    Glob::new(pattern).matches(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(Glob::new("*"), Glob::Any);
        assert_eq!(Glob::new("**"), Glob::Any);
        assert_eq!(Glob::new("abc"), Glob::Exact("abc".into()));
        assert_eq!(Glob::new("ab*"), Glob::Prefix("ab".into()));
        assert_eq!(Glob::new("*ab"), Glob::Suffix("ab".into()));
        assert_eq!(Glob::new("a*b"), Glob::PrefixSuffix("a".into(), "b".into()));
        assert_eq!(Glob::new("*a*"), Glob::Contains("a".into()));
        assert!(matches!(Glob::new("a?b"), Glob::General { .. }));
        let mut b = GlobBuilder::default();
        b.pattern("t/").literal("x*").pattern("/*");
        assert_eq!(b.build(), Glob::Prefix("t/x*/".into()));
    }

    #[test]
    fn matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "a/b/c", true),
            ("", "", true),
            ("", "a", false),
            ("a", "a", true),
            ("a", "A", false),
            ("topic/*", "topic/a/b", true),
            ("topic/*", "topic/", true),
            ("topic/*", "topic", false),
            ("topic/?", "topic/a", true),
            ("topic/?", "topic/ab", false),
            ("topic/?", "topic/", false),
            ("topic/?", "topic/é", true),
            ("?", "é", true),
            ("??", "é", false),
            ("topic/+/x", "topic/+/x", true),
            ("topic/+/x", "topic/a/x", false),
            ("topic/#", "topic/#", true),
            ("topic/#", "topic/a", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a*b*c", "acb", false),
            ("*ab*ab*", "abab", true),
            ("*ab*ab*", "aba", false),
            ("a?c*", "abc", true),
            ("a?c*", "ac", false),
            ("*?", "", false),
            ("*?", "x", true),
            ("*a?", "xab", true),
            ("*a?", "xa", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*aa*a", "aaa", true),
            ("*aa*a", "aa", false),
            ("x*?y*z", "xyz", false),
            ("x*?y*z", "xayz", true),
            ("*/?/*", "a/b/c", true),
            ("*/?/*", "a/bb/c", false),
        ];
        for (p, v, want) in cases {
            assert_eq!(resource_matches(p, v), *want, "{p:?} vs {v:?}");
        }
    }

    #[test]
    fn never() {
        assert!(!Glob::Never.matches(""));
        assert!(!Glob::Never.matches("x"));
    }
}

//! The one error type of this crate, and the "did you mean …?" helper used to
//! build its messages.
//!
//! Every problem in a policy document is reported as a [`PolicyError`] whose
//! `path` names the element at fault in the document's own terms
//! (`Statement[1].Action[0]`, `Statement[0].Condition.StringEquals`,
//! `line 3, column 7` for JSON syntax) and whose `message` says what is wrong
//! and, where a near miss is likely, what was probably meant.

/// A policy document that cannot be accepted: where, and why.
///
/// Displayed as `{path}: {message}`, e.g.
/// `Statement[1].Action[0]: unknown action "iot:Pubish" (did you mean "iot:Publish"?)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// The element at fault: `Statement[0].Resource[2]`, `Version`, `policy`
    /// for the document as a whole, or `line L, column C` for JSON syntax.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl PolicyError {
    /// An error at `path`.
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError { path: path.into(), message: message.into() }
    }
}

/// The candidate closest to `word` (case-insensitive edit distance), if it is
/// close enough to be a plausible typo.
pub(crate) fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word_lc = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 4);
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let d = edit_distance(&word_lc, &cand.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// ` (did you mean "X"?)` or the empty string.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(word, candidates) {
        Some(c) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

/// Levenshtein distance over chars (two-row dynamic programme).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn suggestions() {
        let c = ["iot:Publish", "iot:Subscribe", "iot:Connect"];
        assert_eq!(closest("iot:Pubish", c), Some("iot:Publish"));
        assert_eq!(closest("iot:publish", c), Some("iot:Publish"));
        assert_eq!(closest("s3:GetObject", c), None);
        assert_eq!(did_you_mean("Efect", ["Effect"]), " (did you mean \"Effect\"?)");
        assert_eq!(did_you_mean("zzzzzz", ["Effect"]), "");
    }

    #[test]
    fn display() {
        let e = PolicyError::new("Statement[0]", "missing Effect");
        assert_eq!(e.to_string(), "Statement[0]: missing Effect");
    }
}

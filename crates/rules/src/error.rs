//! Errors found when a rule or a substitution template is created.
//!
//! Evaluation never fails: a runtime type error yields `Undefined`, as in
//! AWS IoT. Only the text of a statement or template can be wrong, and the
//! error says where: a byte offset for programs, and a 1-based line and
//! column (counted in characters) for people.

/// A syntax or semantic error in an AWS IoT SQL statement or template.
///
/// Displays as `line 1, column 10: expected FROM, found 'FORM'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct RuleError {
    /// Byte offset of the offending token in the source text.
    pub position: usize,
    /// 1-based line of `position`.
    pub line: usize,
    /// 1-based column of `position`, in characters.
    pub column: usize,
    /// What is wrong, without the location.
    pub message: String,
}

impl RuleError {
    /// An error at byte offset `position` of `src` (clamped to the text).
    pub(crate) fn new(src: &str, position: usize, message: impl Into<String>) -> Self {
        let mut position = position.min(src.len());
        while !src.is_char_boundary(position) {
            position -= 1;
        }
        let before = &src[..position];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        RuleError { position, line, column, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let e = RuleError::new("SELECT *\nFORM 'a'", 9, "expected FROM, found 'FORM'");
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(e.to_string(), "line 2, column 1: expected FROM, found 'FORM'");
        let e = RuleError::new("é x", 3, "m");
        assert_eq!((e.position, e.line, e.column), (3, 1, 3));
        let e = RuleError::new("ab", 99, "m");
        assert_eq!((e.position, e.column), (2, 3));
    }
}

//! Strings that may contain policy variables: `topic/${iot:ClientId}/*`.
//!
//! A [`Template`] is parsed once, when the document is parsed (so unknown or
//! malformed variables are reported with their path), and instantiated once
//! per connection, when policies are compiled. Instantiation keeps track of
//! which text came from the policy (where `*` and `?` are wildcards) and
//! which came from a variable (always literal).

use crate::error::{did_you_mean, PolicyError};
use crate::variables::{self, Variables};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Policy text, in which `*` and `?` are wildcards where wildcards apply.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: the literal character.
    Escape(char),
    /// `${name}` with `name` in canonical spelling.
    Var(String),
}

/// A parsed string with its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// The string as written in the policy.
    pub(crate) raw: String,
    pub(crate) pieces: Vec<Piece>,
}

/// One segment of an instantiated template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// Policy text: wildcards apply.
    Pattern(String),
    /// Text from a variable or an escape: literal.
    Literal(String),
}

impl Template {
    /// Parses `raw`. `vars_allowed` is false for 2008-10-17 documents, where
    /// any `${` is refused rather than silently taken literally.
    pub(crate) fn parse(raw: &str, vars_allowed: bool, path: &str) -> Result<Self, PolicyError> {
        let mut pieces = Vec::new();
        let mut rest = raw;
        let mut text = String::new();
        while let Some(i) = rest.find("${") {
            text.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(PolicyError::new(path, format!("unterminated policy variable \"{}\"", &rest[i..])));
            };
            let inner = &after[..end];
            if !vars_allowed {
                return Err(PolicyError::new(
                    path,
                    format!(
                        "policy variable \"${{{inner}}}\" needs \"Version\": \"2012-10-17\" \
                         (older versions would treat it as literal text)"
                    ),
                ));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            match inner {
                "*" => pieces.push(Piece::Escape('*')),
                "?" => pieces.push(Piece::Escape('?')),
                "$" => pieces.push(Piece::Escape('$')),
                _ => match variables::canonical_variable(inner) {
                    Some(name) => pieces.push(Piece::Var(name)),
                    None => {
                        let names = variables::all_names();
                        let hint = did_you_mean(inner, names.iter().map(String::as_str));
                        return Err(PolicyError::new(path, format!("unknown policy variable \"${{{inner}}}\"{hint}")));
                    }
                },
            }
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { raw: raw.to_string(), pieces })
    }

    /// Whether the template refers to any variable (escapes do not count).
    pub(crate) fn has_vars(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Var(_)))
    }

    /// The template with every variable and escape replaced by `placeholder`:
    /// used to check the shape of ARNs without being confused by the `:` in
    /// `${iot:ClientId}` or the `*` of `${*}`.
    pub(crate) fn skeleton(&self, placeholder: char) -> String {
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Escape(_) | Piece::Var(_) => s.push(placeholder),
            }
        }
        s
    }

    /// Substitutes the variables. On failure returns the names of the
    /// variables that have no (substitutable) value.
    pub(crate) fn instantiate(&self, vars: &dyn Variables) -> Result<Vec<Seg>, Vec<String>> {
        let mut out = Vec::with_capacity(self.pieces.len());
        let mut missing = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push(Seg::Pattern(t.clone())),
                Piece::Escape(c) => out.push(Seg::Literal(c.to_string())),
                Piece::Var(name) => match variables::substitution(vars, name) {
                    Some(v) => out.push(Seg::Literal(v)),
                    None => missing.push(name.clone()),
                },
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(missing)
        }
    }
}

/// The segments joined as plain text (for operators without wildcards).
pub(crate) fn join(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Pattern(t) | Seg::Literal(t) => s.push_str(t),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::VarValue;
    use std::collections::HashMap;

    #[test]
    fn pieces() {
        let t = Template::parse("a/${iot:clientid}/${*}${?}${$}/x", true, "p").unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Piece::Text("a/".into()),
                Piece::Var("iot:ClientId".into()),
                Piece::Text("/".into()),
                Piece::Escape('*'),
                Piece::Escape('?'),
                Piece::Escape('$'),
                Piece::Text("/x".into()),
            ]
        );
        assert!(t.has_vars());
        assert_eq!(t.skeleton('\u{1}'), "a/\u{1}/\u{1}\u{1}\u{1}/x");
        assert!(!Template::parse("${*}", true, "p").unwrap().has_vars());
        assert_eq!(Template::parse("", true, "p").unwrap().pieces, vec![]);
        assert_eq!(Template::parse("a$b}{", true, "p").unwrap().pieces, vec![Piece::Text("a$b}{".into())]);
    }

    #[test]
    fn errors() {
        let e = Template::parse("topic/${iot:ClientId", true, "Statement[0].Resource").unwrap_err();
        assert_eq!(e.path, "Statement[0].Resource");
        assert_eq!(e.message, "unterminated policy variable \"${iot:ClientId\"");
        let e = Template::parse("topic/${iot:Client}", true, "p").unwrap_err();
        assert_eq!(e.message, "unknown policy variable \"${iot:Client}\" (did you mean \"iot:ClientId\"?)");
        let e = Template::parse("topic/${}", true, "p").unwrap_err();
        assert_eq!(e.message, "unknown policy variable \"${}\"");
        let e = Template::parse("topic/${iot:ClientId}", false, "p").unwrap_err();
        assert!(e.message.contains("needs \"Version\": \"2012-10-17\""), "{e}");
    }

    #[test]
    fn instantiate() {
        let t = Template::parse("t/${iot:ClientId}/${iot:Connection.Thing.ThingName}*", true, "p").unwrap();
        let mut vars: HashMap<String, VarValue> = HashMap::new();
        assert_eq!(
            t.instantiate(&vars),
            Err(vec!["iot:ClientId".to_string(), "iot:Connection.Thing.ThingName".to_string()])
        );
        vars.insert("iot:ClientId".into(), "c*".into());
        vars.insert("iot:Connection.Thing.ThingName".into(), "th".into());
        let segs = t.instantiate(&vars).unwrap();
        assert_eq!(
            segs,
            vec![
                Seg::Pattern("t/".into()),
                Seg::Literal("c*".into()),
                Seg::Pattern("/".into()),
                Seg::Literal("th".into()),
                Seg::Pattern("*".into()),
            ]
        );
        assert_eq!(join(&segs), "t/c*/th*");
    }
}

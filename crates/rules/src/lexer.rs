//! Tokens of AWS IoT SQL, produced on demand.
//!
//! The lexer is pulled one token at a time by the parser, so a substitution
//! template can stop at the `}` that closes `${…}` without lexing the
//! literal text after it.
//!
//! Lexical decisions (AWS documents none of them precisely):
//! * Keywords are not tokens of their own: an identifier is a keyword when
//!   the parser expects one, compared case-insensitively.
//! * Strings are quoted with `'` or `"` (the AWS documentation uses both).
//!   Inside, a doubled quote stands for one quote; `\'`, `\"` and `\\` stand
//!   for the quote or backslash, `\n`, `\t` and `\r` for control characters;
//!   any other backslash is kept as written, so regular expressions such as
//!   `'\d+'` need no double escaping.
//! * Identifiers are `[A-Za-z_][A-Za-z0-9_]*`, or any text between back
//!   quotes (`` `my-key` ``, with ``` `` ``` for a back quote) for keys that
//!   are not plain identifiers.
//! * Numbers are `digits[.digits][(e|E)[+|-]digits]`. A number with a
//!   fraction or an exponent, or an integer too large for 64 bits, is a
//!   `Decimal`; a minus sign is a separate operator.

use crate::error::RuleError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare identifier or keyword.
    Ident(String),
    /// A back-quoted identifier (never a keyword).
    QuotedIdent(String),
    /// A string literal, unescaped.
    Str(String),
    /// An integer literal that fits in `i64`.
    Int(i64),
    /// Any other numeric literal.
    Decimal(f64),
    Comma,
    Dot,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    /// `<>` or `!=`.
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    /// End of input.
    Eof,
}

/// A token and where it is in the source (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// An on-demand tokenizer over `src`, starting at a byte offset.
pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer reading `src` from byte offset `pos`.
    pub fn new(src: &'s str, pos: usize) -> Self {
        Lexer { src, pos }
    }

    fn peek_byte(&self, ahead: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + ahead).copied()
    }

    /// The next token, or an error for text that is no token.
    pub fn next_token(&mut self) -> Result<Token, RuleError> {
        while let Some(b) = self.peek_byte(0) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                self.pos += 1;
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(b) = self.peek_byte(0) else {
            return Ok(Token { tok: Tok::Eof, start, end: start });
        };
        let single = |tok: Tok, this: &mut Self, len: usize| {
            this.pos += len;
            Ok(Token { tok, start, end: this.pos })
        };
        match b {
            b',' => single(Tok::Comma, self, 1),
            b'.' => single(Tok::Dot, self, 1),
            b':' => single(Tok::Colon, self, 1),
            b'(' => single(Tok::LParen, self, 1),
            b')' => single(Tok::RParen, self, 1),
            b'[' => single(Tok::LBracket, self, 1),
            b']' => single(Tok::RBracket, self, 1),
            b'{' => single(Tok::LBrace, self, 1),
            b'}' => single(Tok::RBrace, self, 1),
            b'*' => single(Tok::Star, self, 1),
            b'+' => single(Tok::Plus, self, 1),
            b'-' => single(Tok::Minus, self, 1),
            b'/' => single(Tok::Slash, self, 1),
            b'%' => single(Tok::Percent, self, 1),
            b'=' => single(Tok::Eq, self, 1),
            b'<' => match self.peek_byte(1) {
                Some(b'>') => single(Tok::Neq, self, 2),
                Some(b'=') => single(Tok::Le, self, 2),
                _ => single(Tok::Lt, self, 1),
            },
            b'>' => match self.peek_byte(1) {
                Some(b'=') => single(Tok::Ge, self, 2),
                _ => single(Tok::Gt, self, 1),
            },
            b'!' if self.peek_byte(1) == Some(b'=') => single(Tok::Neq, self, 2),
            b'\'' | b'"' => self.string(b),
            b'`' => self.quoted_ident(),
            b'0'..=b'9' => self.number(),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let len = self.src[start..]
                    .bytes()
                    .position(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
                    .unwrap_or(self.src.len() - start);
                self.pos += len;
                Ok(Token { tok: Tok::Ident(self.src[start..self.pos].to_string()), start, end: self.pos })
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                Err(RuleError::new(self.src, start, format!("unexpected character '{ch}'")))
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<Token, RuleError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(ch) = rest.chars().next() else {
                return Err(RuleError::new(self.src, start, "unterminated string literal"));
            };
            if ch as u32 == quote as u32 {
                if self.peek_byte(1) == Some(quote) {
                    out.push(ch);
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return Ok(Token { tok: Tok::Str(out), start, end: self.pos });
            }
            if ch == '\\' {
                match self.peek_byte(1) {
                    Some(c @ (b'\'' | b'"' | b'\\')) => {
                        out.push(c as char);
                        self.pos += 2;
                        continue;
                    }
                    Some(b'n') => {
                        out.push('\n');
                        self.pos += 2;
                        continue;
                    }
                    Some(b't') => {
                        out.push('\t');
                        self.pos += 2;
                        continue;
                    }
                    Some(b'r') => {
                        out.push('\r');
                        self.pos += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            out.push(ch);
            self.pos += ch.len_utf8();
        }
    }

    fn quoted_ident(&mut self) -> Result<Token, RuleError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(ch) = self.src[self.pos..].chars().next() else {
                return Err(RuleError::new(self.src, start, "unterminated quoted identifier"));
            };
            if ch == '`' {
                if self.peek_byte(1) == Some(b'`') {
                    out.push('`');
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                if out.is_empty() {
                    return Err(RuleError::new(self.src, start, "empty quoted identifier"));
                }
                return Ok(Token { tok: Tok::QuotedIdent(out), start, end: self.pos });
            }
            out.push(ch);
            self.pos += ch.len_utf8();
        }
    }

    fn number(&mut self) -> Result<Token, RuleError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        let mut i = digits(start);
        let mut integral = true;
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i = digits(i + 1);
            integral = false;
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                i = digits(j);
                integral = false;
            }
        }
        if i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            return Err(RuleError::new(self.src, start, format!("invalid number '{}'", &self.src[start..=i])));
        }
        self.pos = i;
        let text = &self.src[start..i];
        let tok = match (integral, text.parse::<i64>()) {
            (true, Ok(n)) => Tok::Int(n),
            _ => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Tok::Decimal(f),
                _ => return Err(RuleError::new(self.src, start, format!("number out of range '{text}'"))),
            },
        };
        Ok(Token { tok, start, end: i })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s, 0);
        let mut out = Vec::new();
        loop {
            let t = l.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            toks("SELECT a.b[0], 'it''s' <> \"x\" != 1.5e3 >= `my-key`"),
            vec![
                Tok::Ident("SELECT".into()),
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::LBracket,
                Tok::Int(0),
                Tok::RBracket,
                Tok::Comma,
                Tok::Str("it's".into()),
                Tok::Neq,
                Tok::Str("x".into()),
                Tok::Neq,
                Tok::Decimal(1500.0),
                Tok::Ge,
                Tok::QuotedIdent("my-key".into()),
            ]
        );
    }

    #[test]
    fn escapes_and_regex_backslashes() {
        assert_eq!(toks(r"'\d+\'x\\'"), vec![Tok::Str(r"\d+'x\".into())]);
        assert_eq!(toks("99999999999999999999"), vec![Tok::Decimal(1e20)]);
        assert_eq!(toks("1.x"), vec![Tok::Int(1), Tok::Dot, Tok::Ident("x".into())]);
    }

    #[test]
    fn errors() {
        assert!(Lexer::new("'abc", 0).next_token().is_err());
        assert!(Lexer::new("12ab", 0).next_token().is_err());
        assert!(Lexer::new("#", 0).next_token().is_err());
        assert!(Lexer::new("1e999", 0).next_token().is_err());
    }
}

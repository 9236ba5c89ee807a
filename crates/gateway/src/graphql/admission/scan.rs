//! One pass over a document's bytes, without parsing: its length, its tokens (at most
//! [`MAX_TOKENS`]) and how deeply `[`, `{` and `(` nest (at most [`MAX_NESTING`], in
//! values too, which the parser's own recursion limit does not cover).

use super::{MAX_DOCUMENT_BYTES, MAX_NESTING, MAX_TOKENS, Refusal};

/// A token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// One of `! $ & ( ) : = @ [ ] { | }`.
    Punct(u8),
    /// `...`
    Spread,
    /// A name (`[_A-Za-z][_0-9A-Za-z]*`).
    Name,
    /// An integer.
    Int,
    /// A float.
    Float,
    /// A string or block string.
    Str,
    /// Anything else (the parser refuses it).
    Other,
}

/// A token: its kind and where it is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The document's tokens, refused when too long, too many or nested too deeply.
pub(super) fn lex(document: &str) -> Result<Vec<Token>, Refusal> {
    let bytes = document.as_bytes();
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Refusal::TooLong { bytes: bytes.len() });
    }
    let mut tokens = Vec::with_capacity((bytes.len() / 4).min(MAX_TOKENS));
    let (mut at, mut depth) = (0, 0_usize);
    while at < bytes.len() {
        let start = at;
        let kind = match bytes[at] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            // A byte order mark.
            0xEF if bytes[at..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                at += 3;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' => {
                at = skip_string(bytes, at);
                Kind::Str
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::TooDeep);
                }
                at += 1;
                Kind::Punct(bytes[start])
            }
            b']' | b'}' | b')' => {
                depth = depth.saturating_sub(1);
                at += 1;
                Kind::Punct(bytes[start])
            }
            b'!' | b'$' | b'&' | b':' | b'=' | b'@' | b'|' => {
                at += 1;
                Kind::Punct(bytes[start])
            }
            b'.' if bytes[at..].starts_with(b"...") => {
                at += 3;
                Kind::Spread
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                at += 1;
                while at < bytes.len() && is_name_byte(bytes[at]) {
                    at += 1;
                }
                Kind::Name
            }
            b'-' | b'0'..=b'9' => {
                let (end, float) = number(bytes, at);
                at = end;
                if float { Kind::Float } else { Kind::Int }
            }
            _ => {
                at += 1;
                Kind::Other
            }
        };
        if tokens.len() == MAX_TOKENS {
            return Err(Refusal::TooManyTokens);
        }
        tokens.push(Token {
            kind,
            start,
            end: at,
        });
    }
    Ok(tokens)
}

fn is_name_byte(byte: u8) -> bool {
    matches!(byte, b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9')
}

/// The end of the number starting at `at`, and whether it is a float.
fn number(bytes: &[u8], at: usize) -> (usize, bool) {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = at;
    if bytes[i] == b'-' {
        i += 1;
    }
    i = digits(i);
    let mut float = false;
    if i < bytes.len() && bytes[i] == b'.' {
        float = true;
        i = digits(i + 1);
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        float = true;
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        i = digits(i);
    }
    // A name glued to a number (`12abc`) is not a GraphQL token: let the parser say so.
    while i < bytes.len() && is_name_byte(bytes[i]) {
        i += 1;
    }
    (i.max(at + 1), float)
}

/// The index after the string starting at `at` (a `"…"` or a `"""…"""` block string); the
/// end of the text when it is not closed.
fn skip_string(bytes: &[u8], at: usize) -> usize {
    if bytes[at..].starts_with(b"\"\"\"") {
        let mut i = at + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kinds(document: &str) -> Vec<Kind> {
        lex(document).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_are_told_apart() {
        assert_eq!(
            kinds(
                "query($n: Int = -12, $f: Float = 1.5e-3) { a: f(x: \"s\\\"\", y: \"\"\"b\"\"\") ...F }"
            ),
            [
                Kind::Name,
                Kind::Punct(b'('),
                Kind::Punct(b'$'),
                Kind::Name,
                Kind::Punct(b':'),
                Kind::Name,
                Kind::Punct(b'='),
                Kind::Int,
                Kind::Punct(b'$'),
                Kind::Name,
                Kind::Punct(b':'),
                Kind::Name,
                Kind::Punct(b'='),
                Kind::Float,
                Kind::Punct(b')'),
                Kind::Punct(b'{'),
                Kind::Name,
                Kind::Punct(b':'),
                Kind::Name,
                Kind::Punct(b'('),
                Kind::Name,
                Kind::Punct(b':'),
                Kind::Str,
                Kind::Name,
                Kind::Punct(b':'),
                Kind::Str,
                Kind::Punct(b')'),
                Kind::Spread,
                Kind::Name,
                Kind::Punct(b'}'),
            ]
        );
    }

    #[test]
    fn nesting_in_values_is_refused() {
        let deep = format!(
            "{{ __typename(x: {}1{}) }}",
            "[".repeat(1_500),
            "]".repeat(1_500)
        );
        assert_eq!(lex(&deep), Err(Refusal::TooDeep));
        let objects = format!("{{ f(x: {}1{}) }}", "{a: ".repeat(100), "}".repeat(100));
        assert_eq!(lex(&objects), Err(Refusal::TooDeep));
        // Brackets inside strings and comments do not count.
        let quoted = format!("{{ f(x: \"{}\") }} # {}", "[".repeat(500), "{".repeat(500));
        assert!(lex(&quoted).is_ok());
        let block = format!("{{ f(x: \"\"\"{}\\\"\"\"\"\"\") }}", "(".repeat(500));
        assert!(lex(&block).is_ok());
    }

    #[test]
    fn size_and_tokens_are_bounded() {
        let long = format!("{{ {} }}", "a ".repeat(40_000));
        assert_eq!(lex(&long), Err(Refusal::TooLong { bytes: 80_004 }));
        let many = format!("{{ {} }}", "a,".repeat(20_000));
        assert_eq!(lex(&many), Err(Refusal::TooManyTokens));
    }
}

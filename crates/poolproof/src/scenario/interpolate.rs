//! `${VAR}` / `${VAR:-default}` interpolation of scenario text before YAML parsing, keeping
//! enough bookkeeping to map error positions back to the file and to redact substituted values.

use std::fmt;

/// A failure to interpolate: which variable, where (1-based line and column), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolateError {
    /// 1-based line of the `$`.
    pub line: usize,
    /// 1-based column (in characters) of the `$`.
    pub column: usize,
    /// What went wrong; never contains a variable's value.
    pub message: String,
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// One substitution on one line, in characters.
#[derive(Debug, Clone)]
struct Subst {
    line: usize,
    out_col: usize,
    out_len: usize,
    src_col: usize,
    src_len: usize,
    var: String,
    value: String,
}

/// Scenario text after interpolation.
#[derive(Debug, Clone)]
pub struct Interpolated {
    /// The text to parse.
    pub text: String,
    subs: Vec<Subst>,
}

impl Interpolated {
    /// Maps a 1-based (line, column) of the interpolated text back to the source file.
    pub fn source_position(&self, line: usize, column: usize) -> (usize, usize) {
        let (l0, c0) = (line.saturating_sub(1), column.saturating_sub(1));
        let mut shift: isize = 0;
        for s in self.subs.iter().filter(|s| s.line == l0) {
            if c0 < s.out_col {
                break;
            }
            if c0 < s.out_col + s.out_len {
                // Inside a substituted value: point at its `${`.
                return (line, s.src_col + 1);
            }
            shift += s.src_len as isize - s.out_len as isize;
        }
        (line, (c0 as isize + shift).max(0) as usize + 1)
    }

    /// Replaces every substituted value (4 characters or longer, where it could be a secret)
    /// in `message` with the `${VAR}` it came from.
    pub fn redact(&self, message: &str) -> String {
        let mut out = message.to_string();
        let mut subs: Vec<&Subst> = self
            .subs
            .iter()
            .filter(|s| s.value.chars().count() >= 4)
            .collect();
        // Longest first so that a value containing another is replaced whole.
        subs.sort_by_key(|s| std::cmp::Reverse(s.value.len()));
        for s in subs {
            out = out.replace(&s.value, &format!("${{{}}}", s.var));
        }
        out
    }

    /// Names of the variables substituted, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.subs.iter().map(|s| s.var.as_str())
    }
}

/// Interpolates with the process environment.
pub fn interpolate_env(text: &str) -> Result<Interpolated, InterpolateError> {
    interpolate(text, |name| std::env::var(name).ok())
}

/// Replaces `${VAR}` and `${VAR:-default}` using `lookup`; `$${` stands for a literal `${`.
/// Comments (`#` at line start or after whitespace, outside quotes) are left untouched.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut subs = Vec::new();
    for (l0, line) in text.split_inclusive('\n').enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut out_col = 0;
        let mut quote: Option<char> = None;
        let mut prev_sig: Option<char> = None; // last non-space char outside quotes
        while i < chars.len() {
            let c = chars[i];
            match quote {
                Some('\'') if c == '\'' => {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push_str("''");
                        i += 2;
                        out_col += 2;
                        continue;
                    }
                    quote = None;
                }
                Some('"') if c == '\\' && i + 1 < chars.len() => {
                    out.push(c);
                    out.push(chars[i + 1]);
                    i += 2;
                    out_col += 2;
                    continue;
                }
                Some('"') if c == '"' => quote = None,
                None if (c == '\'' || c == '"')
                    && matches!(prev_sig, None | Some(':' | '-' | '[' | '{' | ',' | '?')) =>
                {
                    quote = Some(c)
                }
                None if c == '#' && (i == 0 || chars[i - 1].is_whitespace()) => {
                    // A comment: copy the rest of the line verbatim.
                    out.extend(&chars[i..]);
                    break;
                }
                _ => {}
            }
            if c == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                out.push_str("${");
                subs.push(Subst {
                    line: l0,
                    out_col,
                    out_len: 2,
                    src_col: i,
                    src_len: 3,
                    var: String::new(),
                    value: String::new(),
                });
                i += 3;
                out_col += 2;
                continue;
            }
            if c == '$' && chars.get(i + 1) == Some(&'{') {
                let err = |message: String| InterpolateError {
                    line: l0 + 1,
                    column: i + 1,
                    message,
                };
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| p + i + 2)
                    .ok_or_else(|| err("unclosed \"${\": write ${VAR} or ${VAR:-default} (\"$${\" for a literal)".into()))?;
                let inner: String = chars[i + 2..close].iter().collect();
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner.as_str(), None),
                };
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(err(format!(
                        "bad variable reference \"${{{}}}\": a name must match [A-Za-z_][A-Za-z0-9_]*",
                        super::types::shorten(&inner)
                    )));
                }
                let value = match (lookup(name), default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        return Err(err(format!(
                            "environment variable {name} is not set (use ${{{name}:-default}} for an optional value)"
                        )))
                    }
                };
                if value.contains(['\n', '\r']) {
                    return Err(err(format!("environment variable {name} contains a line break, which a scenario cannot hold")));
                }
                let out_len = value.chars().count();
                out.push_str(&value);
                subs.push(Subst {
                    line: l0,
                    out_col,
                    out_len,
                    src_col: i,
                    src_len: close + 1 - i,
                    var: name.to_string(),
                    value,
                });
                out_col += out_len;
                i = close + 1;
                prev_sig = Some('x');
                continue;
            }
            if quote.is_none() && !c.is_whitespace() {
                prev_sig = Some(c);
            }
            out.push(c);
            out_col += 1;
            i += 1;
        }
    }
    Ok(Interpolated { text: out, subs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.test".into()),
            "TOKEN" => Some("s3cr3t-token".into()),
            "EMPTY" => Some(String::new()),
            "NL" => Some("a\nb".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, InterpolateError> {
        interpolate(text, env).map(|i| i.text)
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(
            run("url: http://${HOST}/x\n").ok().as_deref(),
            Some("url: http://example.test/x\n")
        );
        assert_eq!(
            run("a: ${UNSET:-fallback}").ok().as_deref(),
            Some("a: fallback")
        );
        assert_eq!(run("a: ${UNSET:-}").ok().as_deref(), Some("a: "));
        assert_eq!(
            run("a: ${HOST:-other}").ok().as_deref(),
            Some("a: example.test")
        );
        assert_eq!(run("a: ${EMPTY}").ok().as_deref(), Some("a: "));
        assert_eq!(run("a: $${HOST}").ok().as_deref(), Some("a: ${HOST}"));
        assert_eq!(run("a: $HOST").ok().as_deref(), Some("a: $HOST"));
    }

    #[test]
    fn unset_variable_is_located() {
        let e = run("name: x\nload:\n  url: \"${NOPE}\"\n").err();
        let e = e
            .as_ref()
            .map(|e| (e.line, e.column, e.message.contains("NOPE is not set")));
        assert_eq!(e, Some((3, 9, true)));
    }

    #[test]
    fn bad_references() {
        assert!(run("a: ${1X}").is_err());
        assert!(run("a: ${}").is_err());
        assert!(run("a: ${HOST").is_err());
        let e = run("a: ${NL}").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("line break") && !e.contains("a\nb"), "{e}");
    }

    #[test]
    fn comments_are_not_interpolated() {
        assert_eq!(
            run("a: 1 # see ${NOPE}\n").ok().as_deref(),
            Some("a: 1 # see ${NOPE}\n")
        );
        assert_eq!(run("# ${NOPE}\n").ok().as_deref(), Some("# ${NOPE}\n"));
        assert_eq!(
            run("a: \"x # ${HOST}\"").ok().as_deref(),
            Some("a: \"x # example.test\"")
        );
        assert!(
            run("a: x#${NOPE}").is_err(),
            "# not after whitespace is no comment"
        );
    }

    #[test]
    fn positions_map_back_and_secrets_redact() {
        let i = match interpolate("a: ${HOST} b: ${TOKEN}x\n", env) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(i.text, "a: example.test b: s3cr3t-tokenx\n");
        assert_eq!(i.source_position(1, 1), (1, 1));
        assert_eq!(i.source_position(1, 5), (1, 4)); // inside ${HOST}'s value
        assert_eq!(i.source_position(1, 17), (1, 12)); // "b" after it
        assert_eq!(i.source_position(1, 32), (1, 23)); // the "x" after ${TOKEN}
        assert_eq!(
            i.redact("bad value \"s3cr3t-tokenx\""),
            "bad value \"${TOKEN}x\""
        );
    }
}

//! Redaction of secrets in text that poolproof prints or writes: the password part of
//! `scheme://user:password@host` URLs, and bearer tokens.

/// Replaces the password of every `scheme://user:password@host` URL in `text` with `***`.
///
/// Works on free text (log lines, error messages) as well as on a bare URL, so that an
/// error message quoting a `DATABASE_URL` never leaks the password.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; credentials end at the last '@' in it.
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces every occurrence of each non-empty secret in `text` with `***`, then redacts URLs.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        s = s.replace(secret, "***");
    }
    redact_urls(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_url_passwords() {
        assert_eq!(
            redact_urls("postgres://app:s3cret@127.0.0.1:5432/db"),
            "postgres://app:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact_urls(
                "failed: redis://:pw@127.0.0.1:6379 and postgres://u:p@h/x?sslmode=disable"
            ),
            "failed: redis://:***@127.0.0.1:6379 and postgres://u:***@h/x?sslmode=disable"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        assert_eq!(
            redact_urls("http://127.0.0.1:8080/readyz"),
            "http://127.0.0.1:8080/readyz"
        );
        assert_eq!(
            redact_urls("postgres://user@host/db"),
            "postgres://user@host/db"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
    }

    #[test]
    fn hides_named_secrets() {
        assert_eq!(
            redact("Bearer tok-12345 sent", &["tok-12345", ""]),
            "Bearer *** sent"
        );
    }
}

//! Request templates: literal text with `{{rand:LO..HI}}` placeholders expanded per request.

use rand::Rng;
use std::fmt::Write as _;

/// Why a template is invalid; `offset` is the byte offset of the placeholder in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed placeholder at byte {offset}: expected `}}}}`")]
    Unclosed { offset: usize },
    #[error("unknown placeholder `{text}` at byte {offset}: expected {{{{rand:LO..HI}}}}")]
    Unknown { offset: usize, text: String },
    #[error("invalid range `{text}` at byte {offset}: expected integers LO..HI with LO <= HI")]
    BadRange { offset: usize, text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// An integer drawn uniformly from `lo..=hi` for each request.
    Rand {
        lo: i64,
        hi: i64,
    },
}

/// A parsed template; parse once, expand per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The text it was parsed from (sent to generator shards, which parse it again).
    source: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut base = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let offset = base + open;
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed { offset })?;
            let inner = after[..close].trim();
            let spec = inner
                .strip_prefix("rand:")
                .ok_or_else(|| TemplateError::Unknown {
                    offset,
                    text: format!("{{{{{inner}}}}}"),
                })?;
            let bad = || TemplateError::BadRange {
                offset,
                text: spec.to_string(),
            };
            let (lo, hi) = spec.split_once("..").ok_or_else(bad)?;
            let lo: i64 = lo.trim().parse().map_err(|_| bad())?;
            let hi: i64 = hi.trim().parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            parts.push(Part::Rand { lo, hi });
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template {
            parts,
            source: text.to_string(),
        })
    }

    /// The text this template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expands the placeholders with fresh random values.
    pub fn expand<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Rand { lo, hi } => {
                    let _ = write!(out, "{}", rng.gen_range(*lo..=*hi));
                }
            }
        }
        out
    }

    /// Whether the template has no placeholders (its expansion is always the same).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn expands_random_ranges_within_bounds() {
        let t =
            Template::parse(r#"{"request_id": {{rand:1..3}}, "x": "{{ rand:-2..-2 }}"}"#).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let s = t.expand(&mut rng);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            let id = v["request_id"].as_i64().unwrap();
            assert!((1..=3).contains(&id));
            assert_eq!(v["x"], "-2");
            seen.insert(id);
        }
        assert_eq!(seen.len(), 3, "all values of the range are drawn");
        assert!(!t.is_constant());
        let c = Template::parse("/api/users/7").unwrap();
        assert!(c.is_constant());
        assert_eq!(c.expand(&mut rng), "/api/users/7");
    }

    #[test]
    fn rejects_bad_placeholders_with_their_offset() {
        assert_eq!(
            Template::parse("/a/{{rand:1..2"),
            Err(TemplateError::Unclosed { offset: 3 })
        );
        assert!(matches!(
            Template::parse("/{{uuid}}"),
            Err(TemplateError::Unknown { offset: 1, .. })
        ));
        assert!(matches!(
            Template::parse("{{rand:5..1}}"),
            Err(TemplateError::BadRange { offset: 0, .. })
        ));
        assert!(matches!(
            Template::parse("{{rand:a..b}}"),
            Err(TemplateError::BadRange { .. })
        ));
        assert!(matches!(
            Template::parse("{{rand:1..99999999999999999999}}"),
            Err(TemplateError::BadRange { .. })
        ));
    }
}

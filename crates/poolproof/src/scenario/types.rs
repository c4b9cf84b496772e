//! Typed scalar values of a scenario (durations, percentages, thresholds, request templates,
//! secrets), each parsed once from its YAML text so that the rest of poolproof never re-parses.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest duration any scenario field accepts (one day): longer values are typos, not tests.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A span of time written with a unit: `250ms`, `2s`, `1.5s`, `1m`, `1h`, `500us`.
///
/// Zero (`0s`) parses; fields where zero makes no sense reject it during validation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// Wraps a std duration.
    pub const fn new(d: std::time::Duration) -> Self {
        Self(d)
    }
    /// Builds from whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
    /// Builds from whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }
    /// The std duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
    /// Whether this is exactly zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
    /// Milliseconds as a float (for comparisons against measured latencies).
    pub fn as_millis_f64(self) -> f64 {
        self.0.as_secs_f64() * 1000.0
    }
    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a typed value could not be parsed; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// Splits `12.5ms` into (`12.5`, `ms`), requiring a plain non-negative decimal number.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    v.is_finite().then_some((v, rest))
}

impl FromStr for Duration {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        let bad = || {
            ValueError(format!(
                "expected a duration like 250ms, 2s, 1.5s or 1m, got {:?}",
                shorten(text)
            ))
        };
        if s.starts_with('-') {
            return Err(ValueError(format!(
                "a duration cannot be negative, got {:?}",
                shorten(text)
            )));
        }
        let (v, unit) = split_number(s).ok_or_else(bad)?;
        let unit = unit.trim_start();
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(ValueError(format!(
                    "a duration needs a unit (ms, s, m, h), got {:?}",
                    shorten(text)
                )))
            }
            _ => return Err(bad()),
        };
        let nanos = v * nanos_per;
        if nanos > MAX_DURATION.as_nanos() as f64 {
            return Err(ValueError(format!(
                "duration {:?} is longer than the 24h limit",
                shorten(text)
            )));
        }
        if nanos.fract() != 0.0 {
            return Err(ValueError(format!(
                "duration {:?} is finer than a nanosecond",
                shorten(text)
            )));
        }
        Ok(Self(std::time::Duration::from_nanos(nanos as u64)))
    }
}

impl fmt::Display for Duration {
    /// Shortest exact form with one unit: `250ms`, `2s`, `1500us`, `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_nanos();
        if n == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if n.is_multiple_of(per) {
                return write!(f, "{}{}", n / per, unit);
            }
        }
        write!(f, "{n}ns")
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({self})")
    }
}

/// A percentage written with `%`: `1%`, `0.5%`, `100%`; held as the number before the `%`.
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    /// From a percentage figure (50.0 means 50 %). Must be finite and within 0..=100.
    pub fn new(percent: f64) -> Result<Self, ValueError> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(ValueError(format!(
                "a percentage must lie within 0%..100%, got {percent}%"
            )));
        }
        Ok(Self(percent))
    }
    /// From a fraction (0.05 for 5 %), clamped to 0..=100 % and rounded to a billionth of a
    /// percent, so that a default kept as a fraction prints as it reads (`5%`, not
    /// `5.000000000000001%`).
    pub fn from_fraction(fraction: f64) -> Self {
        let percent = (fraction * 1e11).round() / 1e9;
        Self(if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        })
    }
    /// The figure before the `%` (0.5 for `0.5%`).
    pub fn percent(self) -> f64 {
        self.0
    }
    /// As a fraction (0.005 for `0.5%`).
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl FromStr for Percent {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        let bad = || {
            ValueError(format!(
                "expected a percentage like 1% or 0.5%, got {:?}",
                shorten(text)
            ))
        };
        if s.starts_with('-') {
            return Err(ValueError(format!(
                "a percentage cannot be negative, got {:?}",
                shorten(text)
            )));
        }
        let body = s.strip_suffix('%').ok_or_else(bad)?;
        let (v, rest) = split_number(body.trim_end()).ok_or_else(bad)?;
        if !rest.is_empty() {
            return Err(bad());
        }
        Self::new(v)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Percent({self})")
    }
}

/// Which kind of value a threshold literal is, before it is matched against its metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdKind {
    /// `50ms`
    Duration,
    /// `1%`
    Percent,
    /// `400` (requests per second, score, count)
    Number,
    /// `x3`: a multiple
    Ratio,
}

impl fmt::Display for ThresholdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duration => "a duration like 50ms",
            Self::Percent => "a percentage like 1%",
            Self::Number => "a number like 400",
            Self::Ratio => "a ratio like x3",
        })
    }
}

/// An SLA threshold, typed by its literal form; validation checks it suits the SLA's metric.
#[derive(Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A latency or time span (`50ms`).
    Duration(Duration),
    /// A rate, share or relative change (`1%`).
    Percent(Percent),
    /// A plain non-negative number: rps, a 0–100 score, a count.
    Number(f64),
    /// A multiple (`x3` = three times); always > 0.
    Ratio(f64),
}

impl Threshold {
    /// The kind of literal this is.
    pub fn kind(&self) -> ThresholdKind {
        match self {
            Self::Duration(_) => ThresholdKind::Duration,
            Self::Percent(_) => ThresholdKind::Percent,
            Self::Number(_) => ThresholdKind::Number,
            Self::Ratio(_) => ThresholdKind::Ratio,
        }
    }
    /// The value in the metric's canonical unit: milliseconds for durations, a fraction for
    /// percentages (1% → 0.01), the multiple for ratios (x3 → 3.0), the number itself otherwise.
    pub fn canonical(&self) -> f64 {
        match self {
            Self::Duration(d) => d.as_millis_f64(),
            Self::Percent(p) => p.fraction(),
            Self::Number(n) | Self::Ratio(n) => *n,
        }
    }
}

impl FromStr for Threshold {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        if s.starts_with('-') {
            return Err(ValueError(format!(
                "a threshold cannot be negative, got {:?}",
                shorten(text)
            )));
        }
        if s.ends_with('%') {
            return s.parse().map(Self::Percent);
        }
        if let Some(r) = s.strip_prefix('x').or_else(|| s.strip_suffix('x')) {
            return match split_number(r.trim()) {
                Some((v, "")) if v > 0.0 => Ok(Self::Ratio(v)),
                _ => Err(ValueError(format!(
                    "expected a ratio like x3 or x1.5, got {:?}",
                    shorten(text)
                ))),
            };
        }
        if let Some((v, "")) = split_number(s) {
            return Ok(Self::Number(v));
        }
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            return s.parse().map(Self::Duration);
        }
        Err(ValueError(format!(
            "expected a threshold: a duration (50ms), a percentage (1%), a number (400) or a ratio (x3), got {:?}",
            shorten(text)
        )))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(d) => d.fmt(f),
            Self::Percent(p) => p.fmt(f),
            Self::Number(n) => write!(f, "{n}"),
            Self::Ratio(r) => write!(f, "x{r}"),
        }
    }
}

impl fmt::Debug for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Threshold({self})")
    }
}

/// One piece of a request template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text sent as written.
    Literal(String),
    /// `{{rand:LO..HI}}`: a uniformly drawn integer in LO..=HI for each request.
    Rand {
        /// Lowest value (inclusive).
        lo: i64,
        /// Highest value (inclusive).
        hi: i64,
    },
}

/// A request path or body with `{{rand:LO..HI}}` placeholders, parsed once.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<TemplatePart>,
}

impl Template {
    /// The text as written in the scenario.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    /// The parsed pieces, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }
    /// Whether the template has no placeholder (every request sends the same text).
    pub fn is_constant(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, TemplatePart::Literal(_)))
    }
    /// Produces one concrete text, drawing each placeholder from `rng`.
    pub fn render<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> String {
        let mut out = String::with_capacity(self.raw.len());
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Rand { lo, hi } => {
                    out.push_str(&rng.gen_range(*lo..=*hi).to_string())
                }
            }
        }
        out
    }
}

impl FromStr for Template {
    type Err = ValueError;
    fn from_str(raw: &str) -> Result<Self, ValueError> {
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(TemplatePart::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                ValueError(format!(
                    "unclosed placeholder {:?}: expected {{{{rand:LO..HI}}}}",
                    shorten(&rest[start..])
                ))
            })?;
            let inner = after[..end].trim();
            let bad = || {
                ValueError(format!(
                    "bad placeholder {{{{{}}}}}: expected {{{{rand:LO..HI}}}} with integers LO <= HI",
                    shorten(inner)
                ))
            };
            let range = inner.strip_prefix("rand:").ok_or_else(bad)?;
            let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
            let lo: i64 = lo.trim().parse().map_err(|_| bad())?;
            let hi: i64 = hi.trim().parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(ValueError(format!(
                    "bad placeholder {{{{{}}}}}: LO ({lo}) is greater than HI ({hi})",
                    shorten(inner)
                )));
            }
            parts.push(TemplatePart::Rand { lo, hi });
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err(ValueError("stray \"}}\" without an opening \"{{\"".into()));
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_string()));
        }
        Ok(Self {
            raw: raw.to_string(),
            parts,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.raw)
    }
}

/// A secret (API token): never shown by `Debug`, `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for sending it; never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is the empty string (e.g. `${TOKEN:-}` with TOKEN unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            // A numeric-looking token must not be echoed in "invalid type" messages.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
                Ok(Secret::new(""))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "description": "A secret, best given as ${VAR}; never printed."})
    }
}

/// Cuts user text to a readable length for error messages.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Serde/schemars glue for the string-typed values above.
macro_rules! string_value {
    ($ty:ty, $name:literal, $expecting:literal, $schema:tt) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(|e: ValueError| E::custom(e.0))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        v.to_string()
                            .parse()
                            .map_err(|e: ValueError| E::custom(e.0))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        v.to_string()
                            .parse()
                            .map_err(|e: ValueError| E::custom(e.0))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        v.to_string()
                            .parse()
                            .map_err(|e: ValueError| E::custom(e.0))
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_value!(Duration, "Duration", "a duration like 250ms, 2s or 1m", {
    "type": "string",
    "pattern": "^[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|min|h)$",
    "description": "A duration with a unit: 250ms, 2s, 1.5s, 1m, 1h.",
    "examples": ["250ms", "2s", "1m"]
});
string_value!(Percent, "Percent", "a percentage like 1% or 0.5%", {
    "type": "string",
    "pattern": "^[0-9]+(\\.[0-9]+)?%$",
    "description": "A percentage within 0%..100%: 1%, 0.5%.",
    "examples": ["1%", "0.5%"]
});
string_value!(Template, "Template", "a string (with optional {{rand:LO..HI}} placeholders)", {
    "type": "string",
    "description": "Text with optional {{rand:LO..HI}} placeholders (integers, LO <= HI), drawn per request."
});

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_f64(*n),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a threshold: a duration (50ms), a percentage (1%), a number (400) or a ratio (x3)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                v.parse().map_err(|e: ValueError| E::custom(e.0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "a threshold cannot be negative, got {v}"
                    )));
                }
                Ok(Threshold::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom(format!(
                        "a threshold must be a finite non-negative number, got {v}"
                    )));
                }
                Ok(Threshold::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Threshold {
    fn schema_name() -> Cow<'static, str> {
        "Threshold".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Typed by the metric: a duration (50ms) for latencies and times, a percentage (1%) for rates, shares and A/B changes, a number for throughput (rps), scores and counts, a ratio (x3) or percentage for A/B ratios.",
            "oneOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|min|h)$"},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"},
                {"type": "string", "pattern": "^(x[0-9]+(\\.[0-9]+)?|[0-9]+(\\.[0-9]+)?x)$"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> std::time::Duration {
        s.parse::<Duration>()
            .map(Duration::get)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(d("250ms"), std::time::Duration::from_millis(250));
        assert_eq!(d("2s"), std::time::Duration::from_secs(2));
        assert_eq!(d("1.5s"), std::time::Duration::from_millis(1500));
        assert_eq!(d("1m"), std::time::Duration::from_secs(60));
        assert_eq!(d("1h"), std::time::Duration::from_secs(3600));
        assert_eq!(d("500us"), std::time::Duration::from_micros(500));
        assert_eq!(d("0s"), std::time::Duration::ZERO);
    }

    #[test]
    fn durations_reject_bad_forms() {
        for bad in [
            "",
            "10",
            "-1s",
            "1.s",
            ".5s",
            "1..2s",
            "5 parsecs",
            "abc",
            "25h",
            "1e3s",
            "0.5ns",
        ] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        let e = "30"
            .parse::<Duration>()
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("needs a unit"), "{e}");
        let e = "-2s"
            .parse::<Duration>()
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn durations_display_round_trip() {
        for s in ["250ms", "2s", "1m", "1500us", "90s", "0s", "7ns"] {
            assert_eq!(
                s.parse::<Duration>().map(|d| d.to_string()).ok().as_deref(),
                Some(s)
            );
        }
        assert_eq!(
            "1.5s"
                .parse::<Duration>()
                .map(|d| d.to_string())
                .ok()
                .as_deref(),
            Some("1500ms")
        );
    }

    #[test]
    fn percents() {
        assert_eq!(
            "1%".parse::<Percent>().map(Percent::fraction).ok(),
            Some(0.01)
        );
        assert_eq!(
            "0.5%".parse::<Percent>().map(Percent::percent).ok(),
            Some(0.5)
        );
        assert_eq!(
            "100%".parse::<Percent>().map(Percent::percent).ok(),
            Some(100.0)
        );
        // Defaults kept as fractions print as they read, and parse back to themselves.
        for (fraction, text) in [(0.05, "5%"), (0.15, "15%"), (0.95, "95%"), (0.4, "40%")] {
            let p = Percent::from_fraction(fraction);
            assert_eq!(p.to_string(), text);
            assert_eq!(text.parse::<Percent>().ok(), Some(p));
        }
        assert_eq!(Percent::from_fraction(2.0).percent(), 100.0);
        assert_eq!(Percent::from_fraction(f64::NAN).percent(), 0.0);
        for bad in ["1", "%", "-1%", "101%", "1.%", "x%", "1%%"] {
            assert!(
                bad.parse::<Percent>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn thresholds_by_literal() {
        let t = |s: &str| s.parse::<Threshold>().ok();
        assert_eq!(
            t("50ms"),
            Some(Threshold::Duration(Duration::from_millis(50)))
        );
        assert_eq!(t("5%").map(|t| t.kind()), Some(ThresholdKind::Percent));
        assert_eq!(t("x3"), Some(Threshold::Ratio(3.0)));
        assert_eq!(t("3x"), Some(Threshold::Ratio(3.0)));
        assert_eq!(t("400"), Some(Threshold::Number(400.0)));
        assert_eq!(t("x0"), None);
        assert_eq!(t("-5ms"), None);
        assert_eq!(t("fast"), None);
        assert_eq!(t("50ms").map(|t| t.canonical()), Some(50.0));
        assert_eq!(t("1%").map(|t| t.canonical()), Some(0.01));
    }

    #[test]
    fn templates() {
        let t: Template = match "/api/users/{{rand:1..5000}}".parse() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            t.parts(),
            &[
                TemplatePart::Literal("/api/users/".into()),
                TemplatePart::Rand { lo: 1, hi: 5000 }
            ]
        );
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let s = t.render(&mut rng);
            let n: i64 = s.trim_start_matches("/api/users/").parse().unwrap_or(-1);
            assert!((1..=5000).contains(&n), "{s}");
        }
        assert!("/x/{{rand:5..5}}".parse::<Template>().is_ok());
        assert!("/plain"
            .parse::<Template>()
            .map(|t| t.is_constant())
            .unwrap_or(false));
        for bad in [
            "{{rand:9..1}}",
            "{{rand:1..}}",
            "{{random:1..2}}",
            "{{rand:1..2",
            "a}}b",
            "{{rand:a..b}}",
        ] {
            assert!(
                bad.parse::<Template>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        let e = "{{rand:9..1}}"
            .parse::<Template>()
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("greater than"), "{e}");
    }

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"***\""));
        assert_eq!(s.expose(), "hunter2");
    }
}

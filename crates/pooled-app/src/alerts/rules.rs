//! Alert rules: the typed rule set, read once from YAML (`ALERT_RULES_FILE`) or the built-in
//! defaults (fixtures/alert-rules/default.yaml, the report's six rules), with its inhibition rules
//! (Alertmanager's `inhibit_rules`: a firing critical mutes the warning on the same metric unless
//! the file says otherwise). Any mistake in a file is reported as one line naming
//! file:line:column and the field path.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The built-in rules (same text as fixtures/alert-rules/default.yaml).
pub const DEFAULT_RULES_YAML: &str = include_str!("../../../../fixtures/alert-rules/default.yaml");

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RequestP95,
    RequestP99,
    DbQueryP95,
    DbQueryMax,
    ErrorRate,
}

impl Metric {
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ErrorRate => "%",
            _ => "ms",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestP95 => "request_p95",
            Metric::RequestP99 => "request_p99",
            Metric::DbQueryP95 => "db_query_p95",
            Metric::DbQueryMax => "db_query_max",
            Metric::ErrorRate => "error_rate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// A duration written as `500ms`, `30s`, `10m`, `1h` (or `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Span(#[serde(serialize_with = "ser_ms")] pub Duration);

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Parses `500ms`, `30s`, `10m`, `1h`, `0`.
pub fn parse_span(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = match unit {
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3600e3,
        _ => return None,
    };
    Some(Duration::from_millis(ms.round() as u64))
}

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_span(&s)
            .map(Span)
            .ok_or_else(|| format!("invalid duration {s:?} (expected e.g. 500ms, 30s, 10m, 1h)"))
    }
}

/// A finite, positive threshold.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64")]
pub struct Threshold(pub f64);

impl TryFrom<f64> for Threshold {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.is_finite() && v > 0.0 {
            Ok(Threshold(v))
        } else {
            Err(format!("threshold must be a positive number, got {v}"))
        }
    }
}

/// A rule id: lowercase letters, digits, `_` and `-` (it appears in Redis keys and idempotency keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct RuleId(pub String);

impl TryFrom<String> for RuleId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(RuleId(s))
        } else {
            Err(format!("invalid id {s:?} (1-64 of a-z, 0-9, _ and -)"))
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: RuleId,
    #[serde(default)]
    pub summary: String,
    pub metric: Metric,
    pub threshold: Threshold,
    pub window: Span,
    #[serde(rename = "for", default = "zero_span")]
    pub for_: Span,
    pub severity: Severity,
    pub cooldown: Span,
    #[serde(default = "one")]
    pub min_requests: u64,
    /// Prometheus' `keep_firing_for`: once the condition is false again the alert stays firing
    /// this long (a relapse within it continues the same episode) before it resolves.
    #[serde(default = "zero_span")]
    pub keep_firing_for: Span,
    /// No value (fewer than `min_requests` requests, or no query) for this long raises the
    /// rule's own no-data alert, `<id>_no_data`; omitted: no data is never an alert.
    #[serde(default)]
    pub no_data: Option<Span>,
}

/// Suffix of a rule's no-data alert id.
pub const NO_DATA_SUFFIX: &str = "_no_data";

/// A label inhibition can require to be equal on source and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Metric,
}

/// Alertmanager's inhibit rule: while an alert of `source_severity` fires, alerts of
/// `target_severity` that agree with it on every `equal` label send nothing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub source_severity: Severity,
    pub target_severity: Severity,
    #[serde(default)]
    pub equal: Vec<Label>,
}

/// The inhibition in force when a file has no `inhibit_rules`: critical mutes warning on the
/// same metric.
pub fn default_inhibit_rules() -> Vec<InhibitRule> {
    vec![InhibitRule {
        source_severity: Severity::Critical,
        target_severity: Severity::Warning,
        equal: vec![Label::Metric],
    }]
}

/// Everything a rules file defines.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub inhibit: Vec<InhibitRule>,
}

impl RuleSet {
    /// Every alert id the rules can raise (each rule's, and its no-data alert's when it has one).
    pub fn alert_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rules {
            out.push(r.id.0.clone());
            if r.no_data.is_some() {
                out.push(r.no_data_id());
            }
        }
        out
    }
}

fn zero_span() -> Span {
    Span(Duration::ZERO)
}
fn one() -> u64 {
    1
}

impl Rule {
    /// Window in whole seconds (the collector keeps second-resolution rolling windows).
    pub fn window_secs(&self) -> u64 {
        self.window.0.as_millis().div_ceil(1000).max(1) as u64
    }
    /// The id of this rule's no-data alert.
    pub fn no_data_id(&self) -> String {
        format!("{}{NO_DATA_SUFFIX}", self.id.0)
    }
    pub fn title(&self) -> String {
        if self.summary.is_empty() {
            format!(
                "{} >= {} {}",
                self.metric.name(),
                self.threshold.0,
                self.metric.unit()
            )
        } else {
            self.summary.clone()
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rules: Vec<Rule>,
    #[serde(default = "default_inhibit_rules")]
    inhibit_rules: Vec<InhibitRule>,
}

/// A rule file that cannot be used; `Display` is the one-line, located message.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        path: String,
        message: String,
    },
}

/// Parses rule YAML; `file` names the source in errors.
pub fn parse_rules(text: &str, file: &str) -> Result<RuleSet, RulesError> {
    let de = serde_yaml::Deserializer::from_str(text);
    let parsed: Result<RuleFile, _> = serde_path_to_error::deserialize(de);
    let (rules, inhibit) = match parsed {
        Ok(f) => (f.rules, f.inhibit_rules),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = inner.location().map_or((1, 1), |l| (l.line(), l.column()));
            let (line, column) = refine(text, &path, line, column);
            let msg = inner.to_string();
            let mut message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            // serde_yaml prefixes its own path ("rules[0]: "); ours is already in front.
            if let Some((head, rest)) = message.split_once(": ") {
                if !head.contains(' ')
                    && (head.starts_with("rules") || head.starts_with("inhibit_rules"))
                {
                    message = rest.to_string();
                }
            }
            return Err(RulesError::Invalid {
                file: file.into(),
                line,
                column,
                path,
                message,
            });
        }
    };
    let locate = |needle: &str, nth: usize| -> (usize, usize) {
        text.lines()
            .enumerate()
            .filter_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
            .nth(nth)
            .unwrap_or((1, 1))
    };
    if rules.is_empty() {
        let (line, column) = locate("rules", 0);
        return Err(RulesError::Invalid {
            file: file.into(),
            line,
            column,
            path: "rules".into(),
            message: "at least one rule is required".into(),
        });
    }
    for (i, r) in rules.iter().enumerate() {
        let invalid =
            |path: String, message: String, (line, column): (usize, usize)| RulesError::Invalid {
                file: file.into(),
                line,
                column,
                path,
                message,
            };
        if let Some(first) = rules[..i].iter().position(|o| o.id == r.id) {
            let _ = first;
            let nth = rules[..i].iter().filter(|o| o.id == r.id).count();
            return Err(invalid(
                format!("rules[{i}].id"),
                format!("duplicate rule id {:?}", r.id.0),
                locate(&format!("id: {}", r.id.0), nth),
            ));
        }
        if r.window.0 < Duration::from_secs(1) || r.window.0 > Duration::from_secs(3600) {
            return Err(invalid(
                format!("rules[{i}].window"),
                "window must be between 1s and 1h".into(),
                locate("window:", i),
            ));
        }
        if r.metric == Metric::ErrorRate && r.threshold.0 > 100.0 {
            return Err(invalid(
                format!("rules[{i}].threshold"),
                "error_rate threshold is a percentage (0-100]".into(),
                locate("threshold:", i),
            ));
        }
        if r.keep_firing_for.0 > Duration::from_secs(3600) {
            return Err(invalid(
                format!("rules[{i}].keep_firing_for"),
                "keep_firing_for must be at most 1h".into(),
                locate(
                    "keep_firing_for:",
                    nth_field(&rules[..i], |o| o.keep_firing_for.0 > Duration::ZERO),
                ),
            ));
        }
        if let Some(nd) = r.no_data {
            if nd.0 < Duration::from_secs(1) || nd.0 > Duration::from_secs(86_400) {
                return Err(invalid(
                    format!("rules[{i}].no_data"),
                    "no_data must be between 1s and 24h".into(),
                    locate("no_data:", nth_field(&rules[..i], |o| o.no_data.is_some())),
                ));
            }
            if let Some(j) = rules.iter().position(|o| o.id.0 == r.no_data_id()) {
                return Err(invalid(
                    format!("rules[{j}].id"),
                    format!(
                        "rule id {:?} is the no-data alert of rules[{i}] ({}); rename one",
                        rules[j].id.0, r.id.0
                    ),
                    locate(&format!("id: {}", rules[j].id.0), 0),
                ));
            }
        }
    }
    Ok(RuleSet { rules, inhibit })
}

/// How many of `earlier` rules set the field `has` looks at: which occurrence of `field:` in the
/// text belongs to the next rule that sets it.
fn nth_field(earlier: &[Rule], has: impl Fn(&Rule) -> bool) -> usize {
    earlier.iter().filter(|r| has(r)).count()
}

/// serde_yaml places errors raised by a field's own parser at the enclosing mapping; move them to
/// the field's value (first `field:` at or after that line).
fn refine(text: &str, path: &str, line: usize, column: usize) -> (usize, usize) {
    let Some(field) = path.rsplit('.').next().filter(|f| !f.contains('[')) else {
        return (line, column);
    };
    let key = format!("{field}:");
    for (i, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let t = l.trim_start();
        let t = t.strip_prefix("- ").unwrap_or(t);
        if t.starts_with(&key) {
            let key_col = l.len() - t.len();
            let after = &t[key.len()..];
            let value_col = key_col + key.len() + (after.len() - after.trim_start().len());
            return (i + 1, value_col + 1);
        }
    }
    (line, column)
}

/// The report's six rules (and the default inhibition).
pub fn default_rules() -> RuleSet {
    // The embedded file is tested below; failing here would be a build defect.
    parse_rules(DEFAULT_RULES_YAML, "fixtures/alert-rules/default.yaml")
        .expect("embedded default rules are valid")
}

/// Reads `path` (ALERT_RULES_FILE) or returns the defaults when `None`.
pub fn load_rules(path: Option<&Path>) -> Result<RuleSet, RulesError> {
    match path {
        None => Ok(default_rules()),
        Some(p) => {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| RulesError::Read {
                file: file.clone(),
                reason: e.to_string(),
            })?;
            parse_rules(&text, &file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reports_six_rules() {
        let set = default_rules();
        assert_eq!(set.inhibit, default_inhibit_rules());
        let r = set.rules;
        assert_eq!(r.len(), 6);
        let find = |id: &str| r.iter().find(|x| x.id.0 == id).unwrap();
        let c = find("request_latency_critical");
        assert_eq!(
            (c.metric, c.threshold.0, c.severity),
            (Metric::RequestP95, 2000.0, Severity::Critical)
        );
        assert_eq!(c.cooldown.0, Duration::from_secs(600));
        assert_eq!(
            find("request_latency_warning").cooldown.0,
            Duration::from_secs(900)
        );
        for (id, threshold, cooldown_secs) in [
            ("db_query_slow_critical", 2000.0, 300),
            ("db_query_slow_warning", 500.0, 600),
            ("error_rate_critical", 10.0, 300),
            ("error_rate_warning", 5.0, 600),
        ] {
            let rule = find(id);
            assert_eq!(
                (rule.threshold.0, rule.cooldown.0),
                (threshold, Duration::from_secs(cooldown_secs)),
                "{id}"
            );
        }
    }

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_span("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_span("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_span("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_span("0"), Some(Duration::ZERO));
        assert_eq!(parse_span("5x"), None);
        assert_eq!(parse_span("s"), None);
        assert_eq!(parse_span("-1s"), None);
    }

    fn err(text: &str) -> String {
        parse_rules(text, "rules.yaml").unwrap_err().to_string()
    }

    const OK: &str = "rules:\n  - id: a\n    metric: request_p95\n    threshold: 5\n    window: 10s\n    severity: critical\n    cooldown: 1m\n";

    #[test]
    fn errors_are_one_located_line() {
        assert!(parse_rules(OK, "r").is_ok());
        for (text, start) in [
            (
                OK.replace("window: 10s", "window: 10x"),
                "rules.yaml:5:13: rules[0].window: invalid duration \"10x\"",
            ),
            (
                OK.replace("threshold: 5", "threshold: -5"),
                "rules.yaml:4:16: rules[0].threshold: threshold must be a positive",
            ),
            (
                OK.replace("metric: request_p95", "metric: p95"),
                "rules.yaml:3:13: rules[0].metric: unknown variant `p95`",
            ),
            (
                OK.replace("cooldown: 1m", "cooldown: 1m\n    colour: red"),
                "rules.yaml:8:13: rules[0].colour: unknown field `colour`",
            ),
            (
                format!("{OK}{}", OK.trim_start_matches("rules:\n")),
                "rules.yaml:8:5: rules[1].id: duplicate rule id \"a\"",
            ),
        ] {
            let e = err(&text);
            assert!(e.starts_with(start), "{e}");
        }
        let e = err("rules: [\n");
        assert!(e.starts_with("rules.yaml:"), "{e}");
        assert!(!e.contains('\n'));
        let e = err(&OK
            .replace("metric: error_rate", "x")
            .replace("request_p95", "error_rate")
            .replace("threshold: 5", "threshold: 150"));
        assert!(
            e.contains("rules[0].threshold: error_rate threshold is a percentage"),
            "{e}"
        );
        let e = err("rules: []\n");
        assert!(e.contains("at least one rule"), "{e}");
    }

    #[test]
    fn keep_firing_for_no_data_and_inhibit_rules_parse() {
        let text = OK.replace(
            "cooldown: 1m\n",
            "cooldown: 1m\n    keep_firing_for: 30s\n    no_data: 2m\n",
        ) + "inhibit_rules:\n  - source_severity: critical\n    target_severity: info\n    equal: [metric]\n";
        let set = parse_rules(&text, "r").unwrap();
        let r = &set.rules[0];
        assert_eq!(r.keep_firing_for.0, Duration::from_secs(30));
        assert_eq!(r.no_data.map(|d| d.0), Some(Duration::from_secs(120)));
        assert_eq!(
            set.alert_ids(),
            vec!["a".to_string(), "a_no_data".to_string()]
        );
        assert_eq!(
            set.inhibit,
            vec![InhibitRule {
                source_severity: Severity::Critical,
                target_severity: Severity::Info,
                equal: vec![Label::Metric],
            }]
        );
        // Absent: the default; an empty list: none.
        assert_eq!(
            parse_rules(OK, "r").unwrap().inhibit,
            default_inhibit_rules()
        );
        let none = parse_rules(&format!("{OK}inhibit_rules: []\n"), "r").unwrap();
        assert!(none.inhibit.is_empty());
    }

    #[test]
    fn bad_new_fields_are_one_located_line() {
        let e = err(&OK.replace("cooldown: 1m", "cooldown: 1m\n    keep_firing_for: 2h"));
        assert!(
            e.starts_with(
                "rules.yaml:8:5: rules[0].keep_firing_for: keep_firing_for must be at most 1h"
            ),
            "{e}"
        );
        let e = err(&OK.replace("cooldown: 1m", "cooldown: 1m\n    no_data: 500ms"));
        assert!(
            e.starts_with("rules.yaml:8:5: rules[0].no_data: no_data must be between 1s and 24h"),
            "{e}"
        );
        let e = err(&format!(
            "{}{}",
            OK.replace("cooldown: 1m", "cooldown: 1m\n    no_data: 1m"),
            "  - id: a_no_data\n    metric: request_p95\n    threshold: 5\n    window: 10s\n    severity: critical\n    cooldown: 1m\n"
        ));
        assert!(
            e.starts_with("rules.yaml:9:5: rules[1].id: rule id \"a_no_data\" is the no-data alert of rules[0] (a)"),
            "{e}"
        );
        let e = err(&format!(
            "{OK}inhibit_rules:\n  - source_severity: fatal\n    target_severity: warning\n"
        ));
        assert!(
            e.starts_with(
                "rules.yaml:9:22: inhibit_rules[0].source_severity: unknown variant `fatal`"
            ),
            "{e}"
        );
        let e = err(&format!(
            "{OK}inhibit_rules:\n  - source_severity: critical\n    target_severity: warning\n    equal: [instance]\n"
        ));
        assert!(
            e.starts_with("rules.yaml:")
                && e.contains("inhibit_rules[0].equal[0]: unknown variant `instance`"),
            "{e}"
        );
    }
}

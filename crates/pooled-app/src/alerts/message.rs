//! Notification content: what an alert notification says, built from the rule and the engine's
//! event. Holds figures and names only — never a URL, key or token.

use serde::Serialize;

use super::engine::{AlertDef, Condition, Transition};
use super::rules::{Rule, Severity};

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub transition: Transition,
    pub metric: &'static str,
    pub value: Option<f64>,
    pub threshold: f64,
    pub unit: &'static str,
    pub window_secs: u64,
    /// Start of the firing episode (Unix ms).
    pub fired_at_ms: u64,
    /// When this transition happened (Unix ms).
    pub at_ms: u64,
    pub instance: String,
    /// Same for every retry and every instance sending this transition.
    pub idempotency_key: String,
}

impl Notification {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rule: &Rule,
        alert: &AlertDef,
        transition: Transition,
        value: Option<f64>,
        fired_at_ms: u64,
        at_ms: u64,
        instance: &str,
        key: String,
    ) -> Notification {
        let (threshold, unit) = match alert.condition {
            Condition::Threshold => (rule.threshold.0, rule.metric.unit()),
            // A no-data alert's limit is how long the metric may stay without a value.
            Condition::NoData => (rule.no_data.map_or(0.0, |d| d.0.as_secs_f64()), "s"),
        };
        Notification {
            rule_id: alert.id.clone(),
            title: alert.title(rule),
            severity: rule.severity,
            transition,
            metric: rule.metric.name(),
            value,
            threshold,
            unit,
            window_secs: rule.window_secs(),
            fired_at_ms,
            at_ms,
            instance: instance.to_owned(),
            idempotency_key: key,
        }
    }

    fn label(&self) -> &'static str {
        match self.transition {
            Transition::Firing => "FIRING",
            Transition::Resolved => "RESOLVED",
            Transition::Reminder => "STILL FIRING",
        }
    }

    fn value_text(&self) -> String {
        match self.value {
            Some(v) => format!("{v:.1} {}", self.unit),
            None => "no data".into(),
        }
    }

    /// One-line summary (Slack `text`, email subject).
    pub fn subject(&self) -> String {
        format!(
            "[{}] {}: {} — {} {} (threshold {} {}, window {}s)",
            self.label(),
            self.severity,
            self.title,
            self.metric,
            self.value_text(),
            self.threshold,
            self.unit,
            self.window_secs
        )
    }

    fn when(ms: u64) -> String {
        chrono::DateTime::from_timestamp_millis(ms as i64).map_or_else(
            || ms.to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        )
    }

    /// Field list shared by the Slack blocks and the email body.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("Alert", self.rule_id.clone()),
            ("State", self.label().to_lowercase()),
            ("Severity", self.severity.to_string()),
            ("Metric", self.metric.to_owned()),
            ("Value", self.value_text()),
            ("Threshold", format!("{} {}", self.threshold, self.unit)),
            ("Window", format!("{} s", self.window_secs)),
            ("Firing since", Self::when(self.fired_at_ms)),
        ];
        if self.transition == Transition::Resolved {
            f.push(("Resolved at", Self::when(self.at_ms)));
        }
        f.push(("Instance", self.instance.clone()));
        f
    }

    /// Plain-text body.
    pub fn text_body(&self) -> String {
        let mut s = format!("{}\n\n", self.subject());
        for (k, v) in self.fields() {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    }

    /// HTML body (values escaped).
    pub fn html_body(&self) -> String {
        let mut s = format!("<h2>{}</h2><table>", escape(&self.subject()));
        for (k, v) in self.fields() {
            s.push_str(&format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            ));
        }
        s.push_str("</table>");
        s
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

//! The normalized view of a report: verdicts, thresholds and figures rounded into coarse
//! buckets, so snapshots change when behaviour changes, not with run-to-run noise.

use super::model::RunReport;
use crate::sla::{format_value, Unit};
use serde::Serialize;

/// Rounds to one significant digit (2.31 → 2, 75 → 80, 0.0123 → 0.01; 0 stays 0): coarse
/// enough that run-to-run noise rarely changes a snapshot, fine enough to read.
pub fn bucket(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let decade = 10f64.powf(v.abs().log10().floor());
    let r = (v / decade).round() * decade;
    // Strip float noise such as 0.30000000000000004.
    let scale = 1e9 / decade.min(1.0);
    (r * scale).round() / scale
}

fn bucketed(v: Option<f64>, unit: Unit) -> String {
    match v {
        Some(v) => format!("~{}", format_value(bucket(v), unit)),
        None => "-".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedSla {
    pub sla: String,
    pub verdict: String,
    pub threshold: String,
    pub measured: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedRoute {
    pub name: String,
    pub requests: String,
    pub error_rate: String,
    pub p95: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedReport {
    pub schema_version: u32,
    pub scenario: String,
    pub passed: bool,
    pub interrupted: bool,
    pub failed_slas: Vec<String>,
    pub slas: Vec<NormalizedSla>,
    pub routes: Vec<NormalizedRoute>,
    pub faults: Vec<String>,
}

impl NormalizedReport {
    pub fn of(r: &RunReport) -> NormalizedReport {
        NormalizedReport {
            schema_version: r.schema_version,
            scenario: r.scenario.clone(),
            passed: r.passed,
            interrupted: r.interrupted,
            failed_slas: r.failed_slas.clone(),
            slas: r
                .slas
                .iter()
                .map(|s| NormalizedSla {
                    sla: s.label.clone(),
                    verdict: s.verdict.as_str().to_string(),
                    threshold: format!("{} {}", s.comparator, s.threshold_text),
                    measured: bucketed(s.measured, s.unit),
                })
                .collect(),
            routes: r
                .routes
                .iter()
                .map(|rt| NormalizedRoute {
                    name: rt.name.clone(),
                    requests: bucketed(Some(rt.summary.requests as f64), Unit::Count),
                    error_rate: bucketed(rt.summary.error_rate, Unit::Fraction),
                    p95: bucketed(rt.summary.p95_ms, Unit::Milliseconds),
                })
                .collect(),
            faults: r
                .faults
                .iter()
                .map(|f| format!("{} at ~{} s", f.kind, bucket(f.planned_at)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_keep_one_significant_digit() {
        assert_eq!(bucket(2.31), 2.0);
        assert_eq!(bucket(75.0), 80.0);
        assert_eq!(bucket(0.0123), 0.01);
        assert_eq!(bucket(0.3), 0.3);
        assert_eq!(bucket(9.6), 10.0);
        assert_eq!(bucket(1180.0), 1000.0);
        assert_eq!(bucket(0.0), 0.0);
        assert_eq!(bucket(-0.047), -0.05);
    }
}

//! A metric's trend over recorded runs: the rows `poolproof history` prints and report.html
//! draws — per run its commit, the metric's mean with its interval, and the change against
//! the run before it.

use std::fmt::Write as _;

use serde::Serialize;

use super::HistoryRecord;
use crate::compare::metric::{GateMetric, MetricDirection};
use crate::compare::render::signed_pct;
use crate::stats::bootstrap::{relative_change, Interval};

/// One run in a metric's trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    /// 1-based number of the record in the history file (blank lines not counted).
    pub run: usize,
    pub timestamp: String,
    pub commit: String,
    pub branch: Option<String>,
    pub mean: f64,
    pub interval: Option<Interval>,
    pub n: usize,
    /// Mean / previous run's mean − 1; `None` for the first run.
    pub change: Option<f64>,
    /// The intervals of this run and the previous one do not overlap: the change is larger
    /// than either run's own uncertainty.
    pub apart: bool,
}

/// One metric (of one arm of one scenario) over the selected runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricTrend {
    pub scenario: String,
    pub arm: Option<String>,
    pub metric: GateMetric,
    pub points: Vec<TrendPoint>,
}

/// The trends of every metric over a selection of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// What was selected, in words (`scenario smoke, branch main, last 5`).
    pub selection: String,
    pub confidence: f64,
    pub metrics: Vec<MetricTrend>,
}

impl Trend {
    /// The trends of `records` (numbered as `(run, record)`), limited to `metric` when given.
    /// Metrics appear in table order per scenario and arm; a run that did not measure a metric
    /// is not a point of it.
    pub fn of(
        selection: String,
        records: &[(usize, &HistoryRecord)],
        metric: Option<GateMetric>,
    ) -> Trend {
        let mut keys: Vec<(String, Option<String>, GateMetric)> = Vec::new();
        for (_, r) in records {
            for p in &r.metrics {
                let k = (r.scenario.clone(), p.arm.clone(), p.metric);
                if metric.is_none_or(|m| m == p.metric) && !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys.sort();
        let metrics = keys
            .into_iter()
            .map(|(scenario, arm, m)| {
                let mut points: Vec<TrendPoint> = Vec::new();
                for (run, r) in records.iter().filter(|(_, r)| r.scenario == scenario) {
                    let Some(p) = r.point(arm.as_deref(), m) else {
                        continue;
                    };
                    let prev = points.last();
                    points.push(TrendPoint {
                        run: *run,
                        timestamp: r.timestamp.clone(),
                        commit: r.commit_short(),
                        branch: r.branch.clone(),
                        mean: p.mean,
                        interval: p.interval,
                        n: p.n,
                        change: prev.map(|q| relative_change(q.mean, p.mean)),
                        apart: prev.is_some_and(|q| match (q.interval, p.interval) {
                            (Some(a), Some(b)) => a.hi < b.lo || b.hi < a.lo,
                            _ => false,
                        }),
                    });
                }
                MetricTrend {
                    scenario,
                    arm,
                    metric: m,
                    points,
                }
            })
            .collect();
        let confidence = records.last().map(|(_, r)| r.confidence).unwrap_or(0.95);
        Trend {
            selection,
            confidence,
            metrics,
        }
    }
}

impl MetricTrend {
    /// `smoke · latency_p95` (with the arm when there is one).
    pub fn title(&self) -> String {
        match &self.arm {
            Some(a) => format!("{} · {a} / {}", self.scenario, self.metric),
            None => format!("{} · {}", self.scenario, self.metric),
        }
    }
}

/// The interval cell: `11.9 ms … 12.8 ms`, `-` below two replicates.
pub fn interval_cell(m: GateMetric, i: Option<Interval>) -> String {
    match i {
        Some(i) => format!("{} … {}", m.format(i.lo), m.format(i.hi)),
        None => "-".to_owned(),
    }
}

/// The change cell: `+3.1 %`, `−12 % (apart)` when the intervals do not overlap, `-` first.
pub fn change_cell(p: &TrendPoint) -> String {
    match p.change {
        Some(c) if p.apart => format!("{} (apart)", signed_pct(c)),
        Some(c) => signed_pct(c),
        None => "-".to_owned(),
    }
}

/// The trend as markdown: one table per metric, oldest run first.
pub fn trend_markdown(t: &Trend) -> String {
    let mut s = String::new();
    let runs: std::collections::BTreeSet<usize> = t
        .metrics
        .iter()
        .flat_map(|m| m.points.iter().map(|p| p.run))
        .collect();
    let _ = writeln!(
        s,
        "## History: {} ({} runs)\n\nValue = mean over the run's replicates; interval = {:.0} % bootstrap interval of that mean; change = against the run above it, \"(apart)\" when the two intervals do not overlap.",
        t.selection,
        runs.len(),
        t.confidence * 100.0
    );
    for m in &t.metrics {
        let better = match m.metric.direction() {
            MetricDirection::LowerIsBetter => "lower is better",
            MetricDirection::HigherIsBetter => "higher is better",
        };
        let _ = writeln!(s, "\n### {} ({better})\n", m.title());
        let _ = writeln!(
            s,
            "| Run | When | Commit | Branch | Value | {:.0} % interval | n | Change vs previous |\n|---|---|---|---|---|---|---|---|",
            t.confidence * 100.0
        );
        for p in &m.points {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                p.run,
                p.timestamp,
                p.commit,
                p.branch.as_deref().unwrap_or("-"),
                m.metric.format(p.mean),
                interval_cell(m.metric, p.interval),
                p.n,
                change_cell(p)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;

    #[test]
    fn trend_rows_carry_commit_value_interval_and_change() {
        let recs = [
            record(&"a".repeat(40), "main", &[20.0, 20.5, 19.5]),
            record(&"b".repeat(40), "main", &[20.2, 20.7, 19.7]),
            record(&"c".repeat(40), "main", &[30.0, 30.5, 29.5]),
        ];
        let numbered: Vec<(usize, &HistoryRecord)> =
            recs.iter().enumerate().map(|(i, r)| (i + 1, r)).collect();
        let t = Trend::of("all runs".into(), &numbered, Some(GateMetric::LatencyP95));
        assert_eq!(t.metrics.len(), 1);
        let p = &t.metrics[0].points;
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].change, None);
        assert!(
            (p[1].change.unwrap_or_default() - 0.01).abs() < 1e-9,
            "{p:?}"
        );
        assert!(!p[1].apart, "{p:?}");
        assert!((p[2].change.unwrap_or_default() - (30.0 / 20.2 - 1.0)).abs() < 1e-9);
        assert!(p[2].apart, "{p:?}");
        let md = trend_markdown(&t);
        assert!(
            md.contains("### smoke · latency_p95 (lower is better)"),
            "{md}"
        );
        assert!(
            md.contains("| 3 | 2026-12-05T21:00:00Z | ccccccc | main | 30 ms |"),
            "{md}"
        );
        assert!(md.contains("(apart)"), "{md}");
        // Without a metric filter every measured metric gets its table.
        let all = Trend::of("all runs".into(), &numbered, None);
        let names: Vec<GateMetric> = all.metrics.iter().map(|m| m.metric).collect();
        assert_eq!(
            names,
            [
                GateMetric::LatencyP50,
                GateMetric::LatencyP95,
                GateMetric::LatencyP99,
                GateMetric::Throughput,
                GateMetric::ErrorRate
            ]
        );
    }
}

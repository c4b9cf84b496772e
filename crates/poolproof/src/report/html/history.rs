//! report.html's history part (`--history FILE`): per metric, the scenario's recorded runs as
//! a trend chart (mean with its interval as dashed bounds, x = the run's number in the
//! history file) and the table `poolproof history` prints.

use std::fmt::Write as _;

use super::chart::{Chart, Line};
use crate::compare::metric::GateMetric;
use crate::history::trend::{change_cell, interval_cell, MetricTrend, Trend, TrendPoint};
use crate::report::xml::escape;
use crate::sla::Unit;

const VALUE: &str = "#1f77b4";
const BOUND: &str = "#8c8c8c";

/// The history section; nothing without a trend.
pub fn section(h: &mut String, t: Option<&Trend>) {
    let Some(t) = t else { return };
    let _ = write!(
        h,
        "<section><h2>History ({})</h2><p class=\"detail\">Each point is one recorded run: the mean over its replicates, with its {:.0} % bootstrap interval as dashed bounds; x is the run's number in the history file; the last run is this one. Change: against the run before, \"(apart)\" when the two intervals do not overlap.</p>",
        escape(&t.selection),
        t.confidence * 100.0
    );
    for m in t.metrics.iter().filter(|m| !m.points.is_empty()) {
        h.push_str(&trend_chart(m).render());
        table(h, m, t.confidence);
    }
    h.push_str("</section>");
}

/// Fractions are drawn as percentages, like the page's other charts.
fn scale(m: GateMetric) -> (f64, &'static str) {
    match m.unit() {
        Unit::Fraction => (100.0, "%"),
        Unit::RequestsPerSecond => (1.0, "rps"),
        _ => (1.0, "ms"),
    }
}

fn trend_chart(m: &MetricTrend) -> Chart {
    let (k, unit) = scale(m.metric);
    let mut c = Chart::new(m.title(), unit);
    c.x_suffix = "";
    c.x_min_step = 1.0;
    let line = |name: &str, color, dashed, f: &dyn Fn(&TrendPoint) -> Option<f64>| Line {
        name: name.to_owned(),
        color,
        points: m
            .points
            .iter()
            .map(|p| (p.run as f64, f(p).map(|v| v * k)))
            .collect(),
        dashed,
    };
    c.lines.push(line("mean", VALUE, false, &|p| Some(p.mean)));
    if m.points.iter().any(|p| p.interval.is_some()) {
        c.lines.push(line("interval low", BOUND, true, &|p| {
            p.interval.map(|i| i.lo)
        }));
        c.lines.push(line("interval high", BOUND, true, &|p| {
            p.interval.map(|i| i.hi)
        }));
    }
    c
}

fn table(h: &mut String, m: &MetricTrend, confidence: f64) {
    let _ = write!(
        h,
        "<table><tr><th>run</th><th>when</th><th>commit</th><th>branch</th><th>value</th><th>{:.0} % interval</th><th>n</th><th>change vs previous</th></tr>",
        confidence * 100.0
    );
    for p in &m.points {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.run,
            escape(&p.timestamp),
            escape(&p.commit),
            escape(p.branch.as_deref().unwrap_or("-")),
            escape(&m.metric.format(p.mean)),
            escape(&interval_cell(m.metric, p.interval)),
            p.n,
            escape(&change_cell(p))
        );
    }
    h.push_str("</table>");
}

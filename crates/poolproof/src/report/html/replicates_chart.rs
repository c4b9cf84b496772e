//! Inline SVG chart of per-replicate values, BASE next to NEW, one small panel per metric.
//! Self-contained (no scripts, no external fonts) for report.html.

use std::fmt::Write as _;

use crate::compare::comparison::Comparison;
use crate::compare::metric::GateMetric;
use crate::compare::summary::ReplicateSummary;
use crate::compare::verdict::{GateVerdict, MetricComparison};
use crate::report::xml::escape;

const PANEL_W: f64 = 220.0;
const PANEL_H: f64 = 150.0;
const COLS: usize = 3;
const BASE_COLOR: &str = "#5b7db1";
const NEW_COLOR: &str = "#e07b39";

fn verdict_color(v: GateVerdict) -> &'static str {
    match v {
        GateVerdict::Regressed => "#c0392b",
        GateVerdict::Improved => "#27ae60",
        GateVerdict::Inconclusive | GateVerdict::Erratic => "#b7950b",
        GateVerdict::Unchanged => "#555555",
    }
}

/// One panel's content: a title, an optional verdict, and columns of replicate values.
struct Panel<'a> {
    title: String,
    verdict: Option<GateVerdict>,
    metric: GateMetric,
    columns: Vec<(String, &'static str, &'a [f64])>,
}

const ARM_COLORS: [&str; 6] = [
    BASE_COLOR, NEW_COLOR, "#6a9f58", "#a56cc1", "#c44e52", "#8c8c8c",
];

fn panel(out: &mut String, p: &Panel<'_>, x0: f64, y0: f64) {
    let (top, bottom, left, right) = (
        y0 + 30.0,
        y0 + PANEL_H - 22.0,
        x0 + 44.0,
        x0 + PANEL_W - 10.0,
    );
    let all = p.columns.iter().flat_map(|c| c.2.iter().copied());
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return;
    }
    if hi - lo < 1e-12 {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.05 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    let _ = write!(
        out,
        r##"<g><rect x="{x0:.1}" y="{y0:.1}" width="{PANEL_W}" height="{PANEL_H}" fill="#ffffff" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif">{}</text>"##,
        x0 + 6.0,
        y0 + 16.0,
        escape(&p.title),
    );
    if let Some(v) = p.verdict {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="end" fill="{}">{}</text>"##,
            x0 + PANEL_W - 6.0,
            y0 + 16.0,
            verdict_color(v),
            v.as_str()
        );
    }
    // Axis with min and max labels.
    let _ = write!(
        out,
        r##"<line x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{bottom:.1}" stroke="#999999"/><text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="end">{}</text>"##,
        left - 3.0,
        top + 3.0,
        escape(&p.metric.format(hi)),
        left - 3.0,
        bottom + 3.0,
        escape(&p.metric.format(lo))
    );
    let span = right - left;
    let k_n = p.columns.len().max(1) as f64;
    for (k, (label, color, values)) in p.columns.iter().enumerate() {
        let cx = left + span * (k as f64 + 0.5) / k_n;
        let n = values.len().max(1);
        for (i, v) in values.iter().enumerate() {
            // Spread dots sideways by replicate order so equal values stay visible.
            let dx = (i as f64 - (n - 1) as f64 / 2.0) * 5.0;
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" fill-opacity="0.8"><title>{} replicate {}: {}</title></circle>"##,
                cx + dx,
                y(*v),
                escape(label),
                i + 1,
                escape(&p.metric.format(*v))
            );
        }
        if !values.is_empty() {
            let my = y(crate::stats::bootstrap::mean(values));
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{my:.1}" x2="{:.1}" y2="{my:.1}" stroke="{color}" stroke-width="2"/>"##,
                cx - 18.0,
                cx + 18.0,
            );
        }
        let _ = write!(
            out,
            r##"<text x="{cx:.1}" y="{:.1}" font-size="10" font-family="sans-serif" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            escape(label)
        );
    }
    out.push_str("</g>");
}

fn grid_svg(panels: &[Panel<'_>], aria: &str) -> String {
    let n = panels.len().max(1);
    let rows_n = n.div_ceil(COLS);
    let w = PANEL_W * COLS.min(n) as f64 + 10.0 * (COLS.min(n) as f64 + 1.0);
    let h = PANEL_H * rows_n as f64 + 10.0 * (rows_n as f64 + 1.0);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="{}">"##,
        escape(aria)
    );
    for (i, p) in panels.iter().enumerate() {
        let (col, row) = (i % COLS, i / COLS);
        panel(
            &mut s,
            p,
            10.0 + col as f64 * (PANEL_W + 10.0),
            10.0 + row as f64 * (PANEL_H + 10.0),
        );
    }
    s.push_str("</svg>");
    s
}

/// Per-replicate values of every compared metric as one inline `<svg>` element: a panel per
/// metric with BASE and NEW replicates as dots and their means as bars, titled with the verdict.
pub fn replicate_chart_svg(c: &Comparison) -> String {
    rows_chart_svg(&c.rows)
}

/// Same as [`replicate_chart_svg`] for a selection of rows.
pub fn rows_chart_svg(rows: &[MetricComparison]) -> String {
    let panels: Vec<Panel<'_>> = rows
        .iter()
        .map(|r| Panel {
            title: match &r.arm {
                Some(a) => format!("{a} / {}", r.metric),
                None => r.metric.name().to_string(),
            },
            verdict: Some(r.verdict),
            metric: r.metric,
            columns: vec![
                ("BASE".to_string(), BASE_COLOR, &r.base.values[..]),
                ("NEW".to_string(), NEW_COLOR, &r.new.values[..]),
            ],
        })
        .collect();
    grid_svg(&panels, "Per-replicate values, BASE vs NEW")
}

/// Per-replicate values of one run (no comparison): a panel per measured metric, one column
/// of dots per arm. Shows the run's noise at a glance in report.html.
pub fn run_replicate_chart_svg(reps: &[ReplicateSummary]) -> String {
    let arms = crate::compare::noise::by_arm(reps);
    /// A metric with its (arm label, values) columns.
    type Columns = (GateMetric, Vec<(String, Vec<f64>)>);
    let values: Vec<Columns> = GateMetric::ALL
        .iter()
        .map(|m| {
            let cols = arms
                .iter()
                .map(|(arm, rs)| {
                    (
                        arm.clone().unwrap_or_else(|| "replicates".into()),
                        rs.iter().filter_map(|r| m.value(r)).collect::<Vec<f64>>(),
                    )
                })
                .filter(|(_, v)| !v.is_empty())
                .collect::<Vec<_>>();
            (*m, cols)
        })
        .filter(|(_, cols)| !cols.is_empty())
        .collect();
    let panels: Vec<Panel<'_>> = values
        .iter()
        .map(|(m, cols)| Panel {
            title: m.name().to_string(),
            verdict: None,
            metric: *m,
            columns: cols
                .iter()
                .enumerate()
                .map(|(i, (a, v))| (a.clone(), ARM_COLORS[i % ARM_COLORS.len()], &v[..]))
                .collect(),
        })
        .collect();
    grid_svg(&panels, "Per-replicate values of this run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{decide, GateConfig, GateMetric};

    #[test]
    fn one_dot_per_replicate_and_finite_coordinates() {
        let cfg = GateConfig::default();
        let rows = vec![
            decide(
                None,
                GateMetric::LatencyP95,
                &[20.0, 21.0, 19.0, 20.5, 20.2],
                &[26.0, 25.0, 27.0, 26.5, 25.5],
                &cfg,
            ),
            // All-equal values must not divide by zero.
            decide(
                Some("a<b"),
                GateMetric::ErrorRate,
                &[0.0; 3],
                &[0.0; 3],
                &cfg,
            ),
        ];
        let svg = rows_chart_svg(&rows);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 16);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains("a&lt;b / error_rate"));
        assert!(svg.contains("regressed") && svg.contains("#c0392b"));
        assert!(
            svg.contains("<title>NEW replicate 3: 27 ms</title>"),
            "{svg}"
        );
    }

    #[test]
    fn run_chart_has_a_column_per_arm_and_skips_unmeasured_metrics() {
        let rep = |arm: &str, i: u32, p95: f64| ReplicateSummary {
            arm: Some(arm.into()),
            index: i,
            latency_p50_ms: p95 / 2.0,
            latency_p95_ms: p95,
            latency_p99_ms: p95 * 1.5,
            throughput_rps: 100.0,
            ..Default::default()
        };
        let reps = vec![
            rep("pooled", 1, 10.0),
            rep("unpooled", 1, 40.0),
            rep("pooled", 2, 11.0),
            rep("unpooled", 2, 42.0),
        ];
        let svg = run_replicate_chart_svg(&reps);
        // 5 measured metrics × 4 replicates.
        assert_eq!(svg.matches("<circle").count(), 20);
        assert!(
            svg.contains("<title>unpooled replicate 2: 42 ms</title>"),
            "{svg}"
        );
        assert!(!svg.contains("pool_efficiency"));
        assert!(!svg.contains("NaN"));
    }
}

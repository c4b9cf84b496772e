//! Inline SVG chart of per-replicate values, BASE next to NEW, one small panel per metric.
//! Self-contained (no scripts, no external fonts) for report.html.

use std::fmt::Write as _;

use super::comparison::Comparison;
use super::verdict::{MetricComparison, Verdict};

const PANEL_W: f64 = 220.0;
const PANEL_H: f64 = 150.0;
const COLS: usize = 3;
const BASE_COLOR: &str = "#5b7db1";
const NEW_COLOR: &str = "#e07b39";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "#c0392b",
        Verdict::Improved => "#27ae60",
        Verdict::Inconclusive | Verdict::Erratic => "#b7950b",
        Verdict::Unchanged => "#555555",
    }
}

fn panel(out: &mut String, r: &MetricComparison, x0: f64, y0: f64) {
    let (top, bottom, left, right) = (
        y0 + 30.0,
        y0 + PANEL_H - 22.0,
        x0 + 44.0,
        x0 + PANEL_W - 10.0,
    );
    let all = r.base.values.iter().chain(r.new.values.iter()).copied();
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
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
    let name = match &r.arm {
        Some(a) => format!("{a} / {}", r.metric),
        None => r.metric.name().to_string(),
    };
    let _ = write!(
        out,
        r##"<g><rect x="{x0:.1}" y="{y0:.1}" width="{PANEL_W}" height="{PANEL_H}" fill="#ffffff" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif">{}</text><text x="{:.1}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="end" fill="{}">{}</text>"##,
        x0 + 6.0,
        y0 + 16.0,
        esc(&name),
        x0 + PANEL_W - 6.0,
        y0 + 16.0,
        verdict_color(r.verdict),
        r.verdict.as_str()
    );
    // Axis with min and max labels.
    let _ = write!(
        out,
        r##"<line x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{bottom:.1}" stroke="#999999"/><text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="end">{}</text>"##,
        left - 3.0,
        top + 3.0,
        esc(&r.metric.format(hi)),
        left - 3.0,
        bottom + 3.0,
        esc(&r.metric.format(lo))
    );
    let span = right - left;
    for (k, (label, color, side)) in [("BASE", BASE_COLOR, &r.base), ("NEW", NEW_COLOR, &r.new)]
        .into_iter()
        .enumerate()
    {
        let cx = left + span * (0.3 + 0.4 * k as f64);
        let n = side.values.len().max(1);
        for (i, v) in side.values.iter().enumerate() {
            // Spread dots sideways by replicate order so equal values stay visible.
            let dx = (i as f64 - (n - 1) as f64 / 2.0) * 5.0;
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" fill-opacity="0.8"><title>{label} replicate {}: {}</title></circle>"##,
                cx + dx,
                y(*v),
                i + 1,
                esc(&r.metric.format(*v))
            );
        }
        let my = y(side.mean);
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="{my:.1}" x2="{:.1}" y2="{my:.1}" stroke="{color}" stroke-width="2"/><text x="{cx:.1}" y="{:.1}" font-size="10" font-family="sans-serif" text-anchor="middle">{label}</text>"##,
            cx - 18.0,
            cx + 18.0,
            bottom + 14.0
        );
    }
    out.push_str("</g>");
}

/// Per-replicate values of every compared metric as one inline `<svg>` element: a panel per
/// metric with BASE and NEW replicates as dots and their means as bars, titled with the verdict.
pub fn replicate_chart_svg(c: &Comparison) -> String {
    rows_chart_svg(&c.rows)
}

/// Same as [`replicate_chart_svg`] for a selection of rows.
pub fn rows_chart_svg(rows: &[MetricComparison]) -> String {
    let n = rows.len().max(1);
    let rows_n = n.div_ceil(COLS);
    let w = PANEL_W * COLS.min(n) as f64 + 10.0 * (COLS.min(n) as f64 + 1.0);
    let h = PANEL_H * rows_n as f64 + 10.0 * (rows_n as f64 + 1.0);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="Per-replicate values, BASE vs NEW">"##
    );
    for (i, r) in rows.iter().enumerate() {
        let (col, row) = (i % COLS, i / COLS);
        panel(
            &mut s,
            r,
            10.0 + col as f64 * (PANEL_W + 10.0),
            10.0 + row as f64 * (PANEL_H + 10.0),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{decide, GateConfig, Metric};

    #[test]
    fn one_dot_per_replicate_and_finite_coordinates() {
        let cfg = GateConfig::default();
        let rows = vec![
            decide(
                None,
                Metric::LatencyP95,
                &[20.0, 21.0, 19.0, 20.5, 20.2],
                &[26.0, 25.0, 27.0, 26.5, 25.5],
                &cfg,
            ),
            // All-equal values must not divide by zero.
            decide(Some("a<b"), Metric::ErrorRate, &[0.0; 3], &[0.0; 3], &cfg),
        ];
        let svg = rows_chart_svg(&rows);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 16);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains("a&lt;b / error_rate"));
        assert!(svg.contains("regressed") && svg.contains("#c0392b"));
        assert!(
            svg.contains("<title>NEW replicate 3: 27.0 ms</title>"),
            "{svg}"
        );
    }
}

//! Markdown rendering of a comparison (for report.md and stdout) and of a run's noise.

use std::fmt::Write as _;

use super::comparison::Comparison;
use super::metric::GateMetric;
use super::noise::NoiseSummary;
use super::verdict::{GateVerdict, MetricComparison};
use crate::sla::sig3;

/// A relative change as a signed percentage with three significant digits (`+3.1 %`, `−12 %`).
pub fn signed_pct(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 {
            "+∞".into()
        } else {
            "−∞".into()
        }
    } else {
        let p = x * 100.0;
        format!("{}{} %", if p >= 0.0 { "+" } else { "−" }, sig3(p.abs()))
    }
}

/// The change column: relative for metrics with a non-zero base, absolute otherwise.
fn change_cells(r: &MetricComparison) -> (String, String) {
    if r.base.mean > 0.0 {
        (
            signed_pct(r.change),
            format!(
                "{} … {}",
                signed_pct(r.interval.lo),
                signed_pct(r.interval.hi)
            ),
        )
    } else {
        let f = |v: f64| {
            let s = r.metric.format(v.abs());
            format!("{}{s}", if v >= 0.0 { "+" } else { "−" })
        };
        (
            f(r.difference),
            format!(
                "{} … {}",
                f(r.difference_interval.lo),
                f(r.difference_interval.hi)
            ),
        )
    }
}

fn side_cell(m: GateMetric, s: &super::verdict::SideStats) -> String {
    format!(
        "{} (cv {:.1} %, n={})",
        m.format(s.mean),
        s.cv * 100.0,
        s.values.len()
    )
}

fn verdict_cell(v: GateVerdict) -> String {
    match v {
        GateVerdict::Regressed | GateVerdict::Inconclusive => format!("**{}**", v.as_str()),
        _ => v.as_str().to_string(),
    }
}

/// One row of the comparison table as display text: metric (with arm), base, new, change,
/// interval, tolerance, verdict. Shared by the markdown and report.html.
pub struct RowCells {
    pub cells: [String; 7],
    pub verdict: GateVerdict,
}

/// The comparison table's rows as display text.
pub fn comparison_cells(c: &Comparison) -> Vec<RowCells> {
    c.rows
        .iter()
        .map(|r| {
            let name = match &r.arm {
                Some(a) => format!("{a} / {}", r.metric),
                None => r.metric.name().to_string(),
            };
            let (change, interval) = change_cells(r);
            let tol = if r.min_effect > 0.0 {
                format!(
                    "{:.0} % and {}",
                    r.tolerance * 100.0,
                    r.metric.format(r.min_effect)
                )
            } else {
                format!("{:.0} %", r.tolerance * 100.0)
            };
            RowCells {
                cells: [
                    name,
                    side_cell(r.metric, &r.base),
                    side_cell(r.metric, &r.new),
                    change,
                    interval,
                    tol,
                    r.verdict.as_str().to_string(),
                ],
                verdict: r.verdict,
            }
        })
        .collect()
}

/// The comparison as a markdown section that fits a GitHub pull-request comment (comparison.md,
/// report.md, stdout, the step summary): outcome first, then one row per metric with
/// base → new, change, interval and verdict; the per-side spread, tolerances, method and the
/// host-noise self-check are folded into a `<details>` block, which GitHub renders collapsed.
/// Warnings (different hosts, unpaired replicates) stay visible: they qualify the verdicts.
pub fn comparison_markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Regression gate: {} — {}\n",
        c.scenario,
        c.outcome.as_str()
    );
    let _ = writeln!(
        s,
        "**Outcome: {}** — {}\n",
        c.outcome.as_str(),
        c.outcome_reason
    );
    let _ = writeln!(s, "BASE `{}` → NEW `{}`\n", c.base, c.new);
    for w in &c.warnings {
        let _ = writeln!(s, "> **Warning:** {w}  ");
    }
    if !c.warnings.is_empty() {
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "| Metric | Base → New | Change | {:.0} % interval | Verdict |",
        c.confidence * 100.0
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (r, row) in c.rows.iter().zip(comparison_cells(c)) {
        let [name, _, _, change, interval, _, _] = &row.cells;
        let _ = writeln!(
            s,
            "| {name} | {} → {} | {change} | {interval} | {} |",
            r.metric.format(r.base.mean),
            r.metric.format(r.new.mean),
            verdict_cell(row.verdict)
        );
    }
    let notes: Vec<&MetricComparison> = c
        .rows
        .iter()
        .filter(|r| r.verdict != GateVerdict::Unchanged)
        .collect();
    if !notes.is_empty() {
        s.push('\n');
    }
    for r in notes {
        let name = match &r.arm {
            Some(a) => format!("{a} / {}", r.metric),
            None => r.metric.name().to_string(),
        };
        let _ = writeln!(s, "- `{name}`: {}", r.reason);
    }
    let saturated = c.base_noise.is_saturated() || c.new_noise.is_saturated();
    let _ = writeln!(
        s,
        "\n<details><summary>Host noise, spread and method{}</summary>\n",
        if saturated {
            " (load generator saturated)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "### Host noise\n");
    s.push_str(&noise_line("BASE", &c.base_noise));
    s.push_str(&noise_line("NEW", &c.new_noise));
    let _ = writeln!(
        s,
        "\n| Metric | Base (spread, n) | New (spread, n) | Tolerance |\n|---|---|---|---|"
    );
    for row in comparison_cells(c) {
        let [name, base, new, _, _, tol, _] = &row.cells;
        let _ = writeln!(s, "| {name} | {base} | {new} | {tol} |");
    }
    let pairing = match c.design {
        super::comparison::Design::Independent => "over replicates",
        super::comparison::Design::Paired => {
            "over replicates, BASE and NEW measured in pairs side by side (interval from the per-pair changes)"
        }
    };
    let _ = writeln!(
        s,
        "\nChange = NEW mean / BASE mean − 1 {pairing}; {:.0} % t-calibrated percentile bootstrap interval ({} resamples, seed {:#x}); tolerance {:.0} % unless noted. A metric regresses only when its whole interval is worse than the tolerance.\n\n</details>",
        c.confidence * 100.0,
        c.resamples,
        c.seed,
        c.tolerance * 100.0
    );
    s
}

fn noise_line(side: &str, n: &NoiseSummary) -> String {
    format!("- {}\n", noise_sentence(side, n))
}

/// One side's noise in a sentence: replicate count, widest spread, load generator CPU and
/// saturation (markdown emphasis on "saturated").
pub fn noise_sentence(side: &str, n: &NoiseSummary) -> String {
    let mut s = format!("{side}: {} replicates", n.replicates);
    let worst =
        n.cv.iter()
            .flat_map(|(arm, per)| per.iter().map(move |(m, cv)| (arm, *m, *cv)))
            .max_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((arm, m, cv)) = worst {
        let arm = if arm.is_empty() {
            String::new()
        } else {
            format!("{arm}/")
        };
        let _ = write!(s, "; widest spread {arm}{m} cv {:.1} %", cv * 100.0);
    }
    if !n.too_wide.is_empty() {
        let _ = write!(s, " (too wide: {})", n.too_wide.join(", "));
    }
    match (
        n.load_generator_busy_cores_max,
        n.load_generator_host_share_max,
    ) {
        (Some(c), Some(h)) => {
            let _ = write!(
                s,
                "; load generator CPU max {:.2} cores ({:.0} % of the host)",
                c,
                h * 100.0
            );
        }
        _ => s.push_str("; load generator CPU not measured"),
    }
    if let Some(p) = n.host_cpu_pressure_max {
        let _ = write!(
            s,
            "; host CPU pressure max {:.0} % (time some task waited for a CPU)",
            p * 100.0
        );
    }
    if n.is_saturated() {
        let ids: Vec<String> = n.saturated.iter().map(|r| r.to_string()).collect();
        let _ = write!(s, " — **saturated** in {}", ids.join(", "));
    }
    s
}

/// The noise of a single run (no baseline), for report.md: spread per metric and the load
/// generator's CPU.
pub fn noise_markdown(n: &NoiseSummary) -> String {
    let mut s = String::from("## Host noise (replicate spread)\n\n");
    s.push_str(&noise_line("This run", n));
    if !n.cv.is_empty() {
        s.push_str("\n| Arm | Metric | Replicate spread (cv) |\n|---|---|---|\n");
        for (arm, per) in &n.cv {
            for (m, cv) in per {
                let arm = if arm.is_empty() { "-" } else { arm.as_str() };
                let _ = writeln!(s, "| {arm} | {m} | {:.1} % |", cv * 100.0);
            }
        }
    }
    s
}

//! report.md (and the GitHub step summary): verdict first, failing SLAs named, then the
//! SLA table and the summary figures.

use super::model::{RunReport, Summary};
use crate::sla::{format_value, Unit, Verdict};
use std::fmt::Write as _;

/// Escapes plain text for a markdown table cell (no raw HTML, no column breaks).
fn cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '<' | '>' | '`' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Text shown as a code span in a table cell: backticks cannot be escaped there, so they
/// become quotes; GitHub honours `\|` inside code spans in tables.
fn code(s: &str) -> String {
    format!(
        "`{}`",
        s.replace('`', "'")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    )
}

fn opt(v: Option<f64>, unit: Unit) -> String {
    v.map(|v| format_value(v, unit))
        .unwrap_or_else(|| "-".into())
}

fn verdict_cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "✅ met",
        Verdict::Failed => "❌ **FAILED**",
        Verdict::NoData => "❌ **NO DATA**",
        Verdict::NotEvaluated => "❌ **NOT EVALUATED**",
        Verdict::Inconclusive => "⚠️ **INCONCLUSIVE**",
    }
}

fn summary_row(name: &str, s: &Summary) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(name),
        s.requests,
        s.errors,
        opt(s.error_rate, Unit::Fraction),
        opt(s.throughput_rps, Unit::RequestsPerSecond),
        opt(s.p50_ms, Unit::Milliseconds),
        opt(s.p95_ms, Unit::Milliseconds),
        opt(s.p99_ms, Unit::Milliseconds),
        opt(s.max_ms, Unit::Milliseconds),
    )
}

/// A table of one row per item after `head` (its heading, header and separator rows), and a
/// blank line; nothing when there are no items.
fn table<T>(o: &mut String, head: &str, items: &[T], row: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(o, "{head}");
    for x in items {
        let _ = writeln!(o, "{}", row(x));
    }
    o.push('\n');
}

const SUMMARY_HEAD: &str = "| | requests | errors | error rate | throughput | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";

pub fn markdown(r: &RunReport) -> String {
    let mut o = String::new();
    let failed = r.slas.iter().filter(|s| !s.passed()).count();
    let status = if r.interrupted {
        "INTERRUPTED".to_string()
    } else if r.passed {
        format!("PASSED ({} of {} SLAs met)", r.slas.len(), r.slas.len())
    } else if !crate::sla::any_failed(&r.slas) {
        format!(
            "INCONCLUSIVE ({failed} of {} SLAs too noisy to decide)",
            r.slas.len()
        )
    } else {
        format!("FAILED ({failed} of {} SLAs not met)", r.slas.len())
    };
    let _ = writeln!(o, "# poolproof: {} — {status}\n", cell(&r.scenario));
    if !r.description.is_empty() {
        let _ = writeln!(o, "{}\n", cell(&r.description));
    }
    let _ = writeln!(
        o,
        "Run {} · started {} · host {} ({} CPUs, {}) · poolproof {} · goose {}\n",
        code(&r.run_id),
        cell(&r.started_at),
        cell(&r.host.hostname),
        r.host.cpus,
        cell(&r.host.arch),
        r.tools.poolproof,
        r.tools.goose,
    );
    if failed > 0 {
        let _ = writeln!(o, "**Failed SLAs:**\n");
        for s in r.slas.iter().filter(|s| !s.passed()) {
            let _ = writeln!(
                o,
                "- **{}** — {}: measured {}{} against {} ({})",
                code(&s.label),
                s.verdict.as_str(),
                cell(&s.measured_text),
                if s.interval_text.is_empty() {
                    String::new()
                } else {
                    format!(" {}", cell(&s.interval_text))
                },
                code(&format!("{} {}", s.comparator, s.threshold_text)),
                cell(&s.detail),
            );
        }
        o.push('\n');
    }
    if r.interrupted {
        let _ = writeln!(
            o,
            "**The run was interrupted**: figures cover only the part that ran.\n"
        );
    }
    if let Some(stop) = &r.early_stop {
        let _ = writeln!(
            o,
            "**Stopped early** ({}): {}\n",
            code("abort_on_fail"),
            cell(&stop.summary())
        );
    }
    let _ = writeln!(o, "## SLAs\n");
    if r.slas.is_empty() {
        let _ = writeln!(o, "The scenario declares no SLA.\n");
    } else {
        // A/B ratio SLAs add their paired interval and number of pairs.
        let intervals = r.slas.iter().any(|s| !s.interval_text.is_empty());
        if intervals {
            let _ = writeln!(
                o,
                "| SLA | threshold | measured | interval (n pairs) | verdict |\n|---|---|---|---|---|"
            );
        } else {
            let _ = writeln!(
                o,
                "| SLA | threshold | measured | verdict |\n|---|---|---|---|"
            );
        }
        for s in &r.slas {
            let interval = if intervals {
                format!(" {} |", cell(&s.interval_text))
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} |{interval} {} |",
                code(&s.label),
                code(&format!("{} {}", s.comparator, s.threshold_text)),
                cell(&s.measured_text),
                if r.interrupted {
                    "no verdict (interrupted)"
                } else {
                    verdict_cell(s.verdict)
                },
            );
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Summary (measured load, {} s)\n", r.summary.seconds);
    o.push_str(SUMMARY_HEAD);
    let _ = writeln!(o, "{}", summary_row("all routes", &r.summary));
    for route in &r.routes {
        let _ = writeln!(o, "{}", summary_row(&route.name, &route.summary));
    }
    o.push('\n');
    if r.summary.scheduled > 0 {
        // Requests started on a schedule: the table's latencies are corrected (wrk2's term).
        let _ = writeln!(
            o,
            "Latencies above are **corrected**: from each request's scheduled start, so waiting in the generator counts. **Uncorrected** (service time, from the actual send):\n\n| | offered | scheduled | late | dropped | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (name, s) in std::iter::once(("all routes", &r.summary))
            .chain(r.routes.iter().map(|x| (x.name.as_str(), &x.summary)))
        {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                cell(name),
                opt(s.offered_rps, Unit::RequestsPerSecond),
                s.scheduled,
                s.late,
                s.dropped,
                opt(s.dropped_rate, Unit::Fraction),
                opt(s.uncorrected_p50_ms, Unit::Milliseconds),
                opt(s.uncorrected_p95_ms, Unit::Milliseconds),
                opt(s.uncorrected_p99_ms, Unit::Milliseconds),
                opt(s.uncorrected_max_ms, Unit::Milliseconds),
            );
        }
        o.push('\n');
    }
    if let Some(g) = &r.generator {
        let _ = writeln!(
            o,
            "Load generator: {} of {} starts it had a free user for were sent more than 10 ms late (p99 lag {}, max {}).\n",
            g.late,
            g.starts,
            opt(g.p99_lag_ms, Unit::Milliseconds),
            opt(g.max_lag_ms, Unit::Milliseconds),
        );
    }
    table(
        &mut o,
        &format!(
            "Load generators ({} shards, histograms merged exactly):\n\n| shard | where | requests | rate | late starts | p99 lag | CPU | clock offset |\n|---:|---|---:|---:|---:|---:|---:|---:|",
            r.generators.len()
        ),
        &r.generators,
        |g| {
            format!(
                "| {} | {} | {} | {} | {} of {} | {} | {:.2} s | {:+.2} ms |",
                g.shard,
                cell(&g.name),
                g.requests,
                opt(Some(g.rate_rps), Unit::RequestsPerSecond),
                g.late_starts,
                g.lag_starts,
                opt(g.lag_p99_ms, Unit::Milliseconds),
                g.cpu_seconds,
                g.clock_offset_ms,
            )
        },
    );
    if !r.summary.errors_by_kind.is_empty() {
        let kinds: Vec<String> = r
            .summary
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(o, "Errors by kind: {}\n", cell(&kinds.join(", ")));
    }
    if !r.arms.is_empty() {
        let _ = writeln!(o, "## Arms\n");
        o.push_str(SUMMARY_HEAD);
        for a in &r.arms {
            let _ = writeln!(o, "{}", summary_row(&a.name, &a.summary));
        }
        o.push('\n');
    }
    table(
        &mut o,
        "## App CPU (measured load, /proc schedstat)\n\n| arm | replicate | requests | CPU | per request |\n|---|---:|---:|---:|---:|",
        &r.app_cpu,
        |c| format!("| {} |", c.cells("-").map(|v| cell(&v)).join(" | ")),
    );
    table(
        &mut o,
        "## Faults\n\n| kind | planned at | started | ended |\n|---|---:|---:|---:|",
        &r.faults,
        |f| {
            format!(
                "| {} | {:.2} s | {:.2} s | {} |",
                cell(&f.kind),
                f.planned_at,
                f.start,
                f.end
                    .map_or_else(|| "not ended".into(), |e| format!("{e:.2} s"))
            )
        },
    );
    table(
        &mut o,
        "## Alert silences\n\n| alert | planned at | in force from | until |\n|---|---:|---:|---:|",
        &r.silences,
        |s| {
            format!(
                "| {} | {:.2} s | {:.2} s | {:.2} s |",
                cell(s.alert.as_deref().unwrap_or("every alert")),
                s.planned_at,
                s.start,
                s.end
            )
        },
    );
    if r.replicates.len() > 1 {
        // Host noise across replicates (regression gating, docs/regression-gating.md).
        let noise =
            crate::compare::noise_summary(&r.replicates, &crate::compare::GateConfig::default());
        let _ = writeln!(o, "{}", crate::compare::noise_markdown(&noise));
    }
    if let Some(c) = &r.comparison {
        // `validate --baseline` (docs/regression-gating.md).
        let _ = writeln!(o, "{}", crate::compare::comparison_markdown(c));
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {}", cell(n));
        }
        o.push('\n');
    }
    o
}

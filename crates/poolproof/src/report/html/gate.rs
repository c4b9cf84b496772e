//! report.html's regression-gate part: the run's replicates in measuring order with the host
//! noise (replicate spread, load-generator CPU) and a per-replicate chart; with
//! `validate --baseline`, the comparison table (base, new, change, interval, verdict), its
//! warnings (e.g. different hosts) and the BASE-vs-NEW per-replicate chart.

use std::fmt::Write as _;

use super::cells::{ms, pct, rps, ERR, OK};
use super::replicates_chart::{replicate_chart_svg, run_replicate_chart_svg};
use crate::compare::{
    comparison_cells, noise_sentence, noise_summary, Comparison, GateConfig, GateVerdict,
    NoiseSummary, ReplicateSummary,
};
use crate::report::model::RunReport;
use crate::report::xml::escape;

const AMBER: &str = "#9a6700";

/// The replicates section (runs with more than one replicate) and the comparison section
/// (`validate --baseline`); nothing for a single-replicate run without a baseline.
pub fn sections(h: &mut String, r: &RunReport) {
    if r.replicates.len() > 1 || (r.comparison.is_some() && !r.replicates.is_empty()) {
        replicates_section(h, &r.replicates, r.comparison.is_none());
    }
    if let Some(c) = &r.comparison {
        comparison_section(h, c);
    }
}

/// Markdown emphasis out, HTML escaping in.
fn plain(s: &str) -> String {
    escape(&s.replace("**", ""))
}

fn noise_item(h: &mut String, side: &str, n: &NoiseSummary) {
    let style = if n.is_saturated() {
        format!(r#" style="color:{ERR};font-weight:600""#)
    } else {
        String::new()
    };
    let _ = write!(h, "<li{style}>{}</li>", plain(&noise_sentence(side, n)));
}

/// `chart`: draw this run's own per-replicate chart (the comparison draws BASE vs NEW instead).
fn replicates_section(h: &mut String, replicates: &[ReplicateSummary], chart: bool) {
    h.push_str("<section><h2>Replicates (measuring order)</h2>");
    h.push_str(r#"<p class="detail">Arms are interleaved replicate by replicate and their order rotates each replicate (AB, BA, …), so host drift hits every arm alike. Load generator CPU: the poolproof process's CPU time over the replicate's load (1.00 = one full core; 0.90 or more counts as saturated). Host CPU pressure: share of that time in which some task on the host waited for a CPU (Linux PSI); above 40 % by default (<code>--max-cpu-pressure</code>) the comparison is inconclusive, as it is when the load generator sent more than 5 % of its starts late (<code>--max-generator-late</code>).</p>"#);
    let mut reps: Vec<_> = replicates.iter().collect();
    reps.sort_by_key(|s| (s.position.unwrap_or(u32::MAX), s.index));
    h.push_str("<table><tr><th>order</th><th>arm</th><th>replicate</th><th>p50</th><th>p95</th><th>p99</th><th>throughput (rps)</th><th>error rate</th><th>server p95</th><th>acquire wait p95</th><th>load generator CPU</th></tr>");
    for s in reps {
        let cpu = s
            .load_generator
            .map(|c| {
                let pressure = c
                    .host_cpu_pressure
                    .map(|p| format!("; host CPU pressure {:.0} %", p * 100.0))
                    .unwrap_or_default();
                format!(
                    "{:.2} cores ({:.0} % of host){pressure}",
                    c.busy_cores(),
                    c.host_share() * 100.0
                )
            })
            .unwrap_or_else(|| "–".into());
        let _ = write!(
            h,
            r#"<tr><td class="num">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            s.position
                .map(|p| p.to_string())
                .unwrap_or_else(|| "–".into()),
            escape(s.arm.as_deref().unwrap_or("–")),
            s.index,
            ms(Some(s.latency_p50_ms)),
            ms(Some(s.latency_p95_ms)),
            ms(Some(s.latency_p99_ms)),
            rps(Some(s.throughput_rps)),
            pct(Some(s.error_rate)),
            ms(s.server_latency_p95_ms),
            ms(s.acquire_wait_p95_ms),
            escape(&cpu),
        );
    }
    h.push_str("</table>");
    let noise = noise_summary(replicates, &GateConfig::default());
    h.push_str("<p><b>Host noise</b> (spread limit 15 %):</p><ul>");
    noise_item(h, "This run", &noise);
    h.push_str("</ul>");
    if chart {
        h.push_str(&run_replicate_chart_svg(replicates));
    }
    h.push_str("</section>");
}

fn verdict_style(v: GateVerdict) -> &'static str {
    match v {
        GateVerdict::Regressed => "failed",
        GateVerdict::Improved => "met",
        GateVerdict::Inconclusive | GateVerdict::Erratic => "nodata",
        GateVerdict::Unchanged => "",
    }
}

fn comparison_section(h: &mut String, c: &Comparison) {
    let (label, color) = match c.outcome {
        crate::compare::Outcome::Pass => ("PASS", OK),
        crate::compare::Outcome::Regressed => ("REGRESSED", ERR),
        crate::compare::Outcome::Inconclusive => ("INCONCLUSIVE", AMBER),
    };
    let _ = write!(
        h,
        r#"<section><h2>Regression gate <span class="badge" style="background:{color}">{label}</span></h2><p class="meta">BASE <code>{}</code> · NEW <code>{}</code></p><p class="detail">Change = NEW mean / BASE mean − 1 over replicates; {:.0} % t-calibrated percentile bootstrap interval ({} resamples, seed {:#x}); a metric regresses only when its whole interval is worse than the tolerance. Method: docs/regression-gating.md.</p>"#,
        escape(&c.base),
        escape(&c.new),
        c.confidence * 100.0,
        c.resamples,
        c.seed,
    );
    if !c.warnings.is_empty() {
        h.push_str("<ul>");
        for w in &c.warnings {
            let _ = write!(
                h,
                r#"<li style="color:{AMBER};font-weight:600">Warning: {}</li>"#,
                escape(w)
            );
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<table><tr><th>metric</th><th>base</th><th>new</th><th>change</th><th>{:.0} % interval</th><th>tolerance</th><th>verdict</th></tr>",
        c.confidence * 100.0
    );
    for row in comparison_cells(c) {
        let [name, base, new, change, interval, tol, verdict] = &row.cells;
        let _ = write!(
            h,
            r#"<tr><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="{}">{}</td></tr>"#,
            escape(name),
            escape(base),
            escape(new),
            escape(change),
            escape(interval),
            escape(tol),
            verdict_style(row.verdict),
            escape(verdict),
        );
    }
    let _ = write!(
        h,
        "</table><p><b>Outcome: {}</b> — {}</p>",
        escape(c.outcome.as_str()),
        escape(&c.outcome_reason)
    );
    h.push_str("<p><b>Host noise</b>:</p><ul>");
    noise_item(h, "BASE", &c.base_noise);
    noise_item(h, "NEW", &c.new_noise);
    h.push_str("</ul>");
    h.push_str(&replicate_chart_svg(c));
    h.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::host::HostFacts;
    use crate::app::meter::CpuUsage;
    use crate::compare::{compare, RunFigures};

    fn rep(i: u32, p95: f64, position: u32) -> ReplicateSummary {
        ReplicateSummary {
            index: i,
            position: Some(position),
            latency_p50_ms: p95 / 2.0,
            latency_p95_ms: p95,
            latency_p99_ms: p95 * 1.5,
            throughput_rps: 100.0,
            load_generator: Some(CpuUsage {
                cpu_seconds: 0.5,
                wall_seconds: 5.0,
                cores: 2,
                host_cpu_pressure: None,
            }),
            ..Default::default()
        }
    }

    fn host(name: &str) -> HostFacts {
        HostFacts {
            hostname_hash: name.into(),
            cpu_model: "cpu".into(),
            cpus: 2,
            memory_bytes: 1 << 30,
            kernel: "6.8".into(),
            os: "linux".into(),
            ..HostFacts::default()
        }
    }

    fn figures(label: &str, host_name: &str, scale: f64) -> RunFigures {
        RunFigures {
            label: label.into(),
            scenario: "s".into(),
            replicates: (1..=4)
                .map(|i| rep(i, scale * (10.0 + f64::from(i) * 0.1), i))
                .collect(),
            host: Some(host(host_name)),
            tools: Default::default(),
        }
    }

    #[test]
    fn comparison_table_verdicts_chart_and_cross_host_warning() {
        let c = compare(
            &figures("base<1>", "aaa", 1.0),
            &figures("new", "bbb", 3.0),
            &GateConfig::default(),
        );
        let mut h = String::new();
        comparison_section(&mut h, &c);
        assert!(h.contains("REGRESSED"), "{h}");
        assert!(h.contains("base&lt;1&gt;"), "{h}");
        assert!(
            h.contains("Warning: BASE and NEW ran on different hosts"),
            "{h}"
        );
        assert!(h.contains(r#"<td><code>latency_p95</code></td>"#), "{h}");
        assert!(h.contains(r#"<td class="failed">regressed</td>"#), "{h}");
        assert!(h.contains("+200 %"), "{h}");
        assert!(h.contains("<svg") && h.contains("Per-replicate values, BASE vs NEW"));
        assert!(h.contains("load generator CPU max 0.10 cores"), "{h}");
    }

    #[test]
    fn replicates_listed_in_measuring_order_with_noise_and_chart() {
        let reps = vec![rep(2, 11.0, 2), rep(1, 10.0, 1), rep(3, 12.0, 3)];
        let mut h = String::new();
        replicates_section(&mut h, &reps, true);
        let first = h.find(r#"<td class="num">1</td><td>–</td><td class="num">1</td>"#);
        let second = h.find(r#"<td class="num">2</td><td>–</td><td class="num">2</td>"#);
        assert!(first.is_some() && first < second, "{h}");
        assert!(h.contains("0.10 cores (5 % of host)"), "{h}");
        assert!(h.contains("This run: 3 replicates"), "{h}");
        assert!(h.contains("<svg"), "{h}");
        let mut without = String::new();
        replicates_section(&mut without, &reps, false);
        assert!(!without.contains("<svg"));
    }
}

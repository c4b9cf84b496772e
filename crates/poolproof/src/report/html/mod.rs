//! The self-contained HTML report (`report.html`): verdicts, figures, faults and alerts as
//! tables, and inline SVG charts drawn in Rust — percentiles over time with fault bands and
//! alert marks, throughput, errors, pool utilization, health score; for A/B runs the arms
//! side by side on shared axes; with `--history`, the scenario's trend over recorded runs. No
//! JavaScript, no external resources.

mod cells;
pub mod chart;
mod gate;
mod history;
mod replicates_chart;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cells::{ms, pct, rps, ERR, OK};
use chart::{Band, Chart, HLine, Line, Mark, Scale};

use crate::observe::{AlertTransition, ServerSample};
use crate::report::model::{ClientSecond, RunReport, Series, Summary};
use crate::report::xml::escape;
use crate::sla::{SlaResult, Verdict};

const P50: &str = "#8c8c8c";
const P95: &str = "#1f77b4";
const P99: &str = "#9467bd";
const FAULT: &str = "#ff7f0e";
const WARMUP: &str = "#999999";
const ARM_COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];

/// The whole page.
pub fn page(r: &RunReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let verdict = if r.interrupted {
        ("INTERRUPTED", "#777")
    } else if r.passed {
        ("PASSED", OK)
    } else if crate::sla::any_failed(&r.slas) {
        ("FAILED", ERR)
    } else {
        ("INCONCLUSIVE", "#9a6700")
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>poolproof · {name}</title><style>{CSS}</style></head><body>
<header><h1>{name} <span class="badge" style="background:{color}">{label}</span></h1><p class="desc">{desc}</p>
<p class="meta">run <code>{run}</code> · started {start}{wall} · {host} · poolproof {pp} · goose {goose}</p></header>"#,
        name = escape(&r.scenario),
        color = verdict.1,
        label = verdict.0,
        desc = escape(&r.description),
        run = escape(&r.run_id),
        start = escape(&r.started_at),
        wall = r
            .wall_time_s
            .map(|w| format!(" · {w:.1} s wall"))
            .unwrap_or_default(),
        host = escape(&format!(
            "{} ({} {}, {} CPUs{})",
            r.host.hostname,
            r.host.os,
            r.host.arch,
            r.host.cpus,
            r.host
                .memory_mib()
                .map(|m| format!(", {m} MiB"))
                .unwrap_or_default()
        )),
        pp = escape(&r.tools.poolproof),
        goose = escape(&r.tools.goose),
    );
    if let Some(stop) = &r.early_stop {
        let _ = write!(
            h,
            r#"<p class="early-stop"><strong>Stopped early</strong> (abort_on_fail): {}</p>"#,
            escape(&stop.summary())
        );
    }
    slas_table(&mut h, &r.slas, r.interrupted);
    if !r.arms.is_empty() {
        arms_section(&mut h, r);
    } else {
        summary_section(&mut h, r);
    }
    generators_section(&mut h, r);
    app_cpu_section(&mut h, r);
    if r.arm_series.is_empty() {
        charts_section(&mut h, r);
    } else {
        arms_charts(&mut h, r);
    }
    faults_and_alerts(&mut h, r);
    gate::sections(&mut h, r);
    history::section(&mut h, r.history.as_ref());
    if !r.notes.is_empty() {
        h.push_str("<section><h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></section>");
    }
    h.push_str("<footer>Self-contained report: no scripts, no external resources. Times are seconds from the start of measured load; warm-up is shaded grey and excluded from SLAs.</footer></body></html>\n");
    h
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1520px;padding:0 16px;color:#222}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.badge{font-size:13px;color:#fff;padding:3px 8px;border-radius:4px;vertical-align:middle}\
.desc{margin:2px 0;color:#333}.meta{color:#666;font-size:12px;margin:2px 0}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.met{color:#1a7f37;font-weight:600}.failed{color:#c0171b;font-weight:600}.nodata{color:#9a6700;font-weight:600}\
.detail{color:#666;font-size:12px}.key{color:#555;font-size:12px;margin:4px 0 8px}.charts{display:flex;flex-wrap:wrap;gap:12px}\
.arms{display:grid;gap:12px}.arm h3{font-size:15px;margin:4px 0}\
svg{max-width:100%;height:auto;border:1px solid #eee}footer{margin-top:28px;color:#888;font-size:12px}";

fn verdict_cell(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Met => ("met", "met"),
        Verdict::Failed => ("failed", "FAILED"),
        Verdict::NoData => ("nodata", "no data"),
        Verdict::NotEvaluated => ("nodata", "not evaluated"),
        Verdict::Inconclusive => ("nodata", "inconclusive"),
    }
}

fn slas_table(h: &mut String, slas: &[SlaResult], interrupted: bool) {
    h.push_str("<section><h2>SLAs</h2>");
    if slas.is_empty() {
        h.push_str("<p>No SLAs in this scenario.</p></section>");
        return;
    }
    // A/B ratio SLAs add their paired interval and number of pairs.
    let intervals = slas.iter().any(|s| !s.interval_text.is_empty());
    h.push_str("<table><tr><th>SLA</th><th>phase</th><th>threshold</th><th>measured</th>");
    if intervals {
        h.push_str("<th>interval (n pairs)</th>");
    }
    h.push_str("<th>verdict</th><th>how</th></tr>");
    for s in slas {
        // Partial data decides nothing: no row reads `met` under a no-verdict headline.
        let (class, text) = if interrupted {
            ("nodata", "no verdict")
        } else {
            verdict_cell(s.verdict)
        };
        let interval = if intervals {
            format!(r#"<td class="num">{}</td>"#, escape(&s.interval_text))
        } else {
            String::new()
        };
        let _ = write!(
            h,
            r#"<tr><td><code>{}</code></td><td>{}</td><td class="num">{} {}</td><td class="num">{}</td>{interval}<td class="{class}">{text}</td><td class="detail">{}</td></tr>"#,
            escape(&s.label),
            escape(&s.phase),
            escape(&s.comparator),
            escape(&s.threshold_text),
            escape(&s.measured_text),
            escape(&s.detail)
        );
    }
    h.push_str("</table></section>");
}

const SUMMARY_ROWS: [&str; 9] = [
    "requests",
    "errors",
    "error rate",
    "throughput (rps)",
    "p50",
    "p95",
    "p99",
    "max",
    "mean",
];

fn summary_values(s: &Summary) -> [String; 9] {
    [
        s.requests.to_string(),
        s.errors.to_string(),
        pct(s.error_rate),
        rps(s.throughput_rps),
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms),
        ms(s.max_ms),
        ms(s.mean_ms),
    ]
}

/// Rows shown when requests started on a schedule: what was offered and what became of it,
/// and the uncorrected (service-time) latencies beside the corrected ones above.
const SCHEDULE_ROWS: [&str; 7] = [
    "offered (rps)",
    "scheduled",
    "late",
    "dropped",
    "p50 uncorrected",
    "p95 uncorrected",
    "p99 uncorrected",
];

fn schedule_values(s: &Summary) -> [String; 7] {
    [
        rps(s.offered_rps),
        s.scheduled.to_string(),
        s.late.to_string(),
        format!("{} ({})", s.dropped, pct(s.dropped_rate)),
        ms(s.uncorrected_p50_ms),
        ms(s.uncorrected_p95_ms),
        ms(s.uncorrected_p99_ms),
    ]
}

/// A table with one column per named summary.
fn summaries_table(h: &mut String, cols: &[(&str, &Summary)]) {
    h.push_str("<table><tr><th></th>");
    for (name, _) in cols {
        let _ = write!(h, "<th>{}</th>", escape(name));
    }
    h.push_str("</tr>");
    let values: Vec<[String; 9]> = cols.iter().map(|(_, s)| summary_values(s)).collect();
    figure_rows(h, &SUMMARY_ROWS, &values);
    if cols.iter().any(|(_, s)| s.scheduled > 0) {
        let values: Vec<[String; 7]> = cols.iter().map(|(_, s)| schedule_values(s)).collect();
        figure_rows(h, &SCHEDULE_ROWS, &values);
    }
    h.push_str("</table>");
}

/// One row per figure `names[i]`, with a cell per summary: `values[summary][i]`.
fn figure_rows<const N: usize>(h: &mut String, names: &[&str; N], values: &[[String; N]]) {
    for (i, row) in names.iter().enumerate() {
        let _ = write!(h, "<tr><th>{row}</th>");
        for v in values {
            let _ = write!(h, r#"<td class="num">{}</td>"#, escape(&v[i]));
        }
        h.push_str("</tr>");
    }
}

fn summary_section(h: &mut String, r: &RunReport) {
    h.push_str("<section><h2>Measured load (client side)</h2>");
    let mut cols: Vec<(&str, &Summary)> = vec![("all routes", &r.summary)];
    cols.extend(r.routes.iter().map(|x| (x.name.as_str(), &x.summary)));
    summaries_table(h, &cols);
    if r.summary.scheduled > 0 {
        h.push_str("<p>p50 to max are <b>corrected</b> latencies: from each request's scheduled start, so waiting in the load generator counts; the <b>uncorrected</b> rows are service times from the actual send.</p>");
    }
    h.push_str("</section>");
}

/// Sharded load: each generator shard's rate, lag, CPU and clock offset.
fn generators_section(h: &mut String, r: &RunReport) {
    table_section(
        h,
        "<section><h2>Load generators (shards, merged exactly)</h2><table><tr><th>shard</th><th>where</th><th>requests</th><th>rate</th><th>late starts</th><th>p99 lag</th><th>CPU</th><th>clock offset</th></tr>",
        &r.generators,
        |h, g| {
            let _ = write!(
                h,
                r#"<tr><td class="num">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{} of {}</td><td class="num">{}</td><td class="num">{:.2} s ({:.2} cores)</td><td class="num">{:+.2} ms (rtt {:.2} ms)</td></tr>"#,
                g.shard,
                escape(&g.name),
                g.requests,
                rps(Some(g.rate_rps)),
                g.late_starts,
                g.lag_starts,
                ms(g.lag_p99_ms),
                g.cpu_seconds,
                g.busy_cores,
                g.clock_offset_ms,
                g.clock_rtt_ms,
            );
        },
    );
}

/// The app processes' CPU per arm run (locally started apps).
fn app_cpu_section(h: &mut String, r: &RunReport) {
    table_section(
        h,
        "<section><h2>App CPU (measured load, /proc schedstat)</h2><table><tr><th>arm</th><th>replicate</th><th>requests</th><th>CPU</th><th>per request</th></tr>",
        &r.app_cpu,
        |h, c| {
            let [arm, figures @ ..] = c.cells("–");
            let _ = write!(h, "<tr><td>{}</td>", escape(&arm));
            for v in figures {
                let _ = write!(h, r#"<td class="num">{}</td>"#, escape(&v));
            }
            h.push_str("</tr>");
        },
    );
}

/// A section of one table row per item, after `head` (the section's markup up to and with the
/// header row); nothing when there are no items.
fn table_section<T>(h: &mut String, head: &str, items: &[T], row: impl Fn(&mut String, &T)) {
    if items.is_empty() {
        return;
    }
    h.push_str(head);
    for x in items {
        row(h, x);
    }
    h.push_str("</table></section>");
}

fn arms_section(h: &mut String, r: &RunReport) {
    h.push_str("<section><h2>A/B arms (measured load, client side)</h2>");
    let cols: Vec<(&str, &Summary)> = r
        .arms
        .iter()
        .map(|a| (a.name.as_str(), &a.summary))
        .collect();
    summaries_table(h, &cols);
    h.push_str("</section>");
}

/// Faults as bands, the warm-up as a grey band.
fn bands(r: &RunReport) -> Vec<Band> {
    let mut b: Vec<Band> = r
        .phases
        .iter()
        .filter(|p| p.name == "warmup")
        .map(|p| Band {
            start: p.start,
            end: p.end,
            label: "warm-up".into(),
            color: WARMUP,
        })
        .collect();
    let end = r.phases.iter().map(|p| p.end).fold(f64::NAN, f64::max);
    b.extend(r.faults.iter().map(|f| Band {
        start: f.start,
        end: f.end.unwrap_or(end),
        label: f.kind.clone(),
        color: FAULT,
    }));
    b
}

/// Delivered alert notifications as marks.
fn marks(r: &RunReport) -> Vec<Mark> {
    r.alerts
        .iter()
        .filter(|a| (200..300).contains(&a.status))
        .map(|a| {
            let (word, color) = match a.transition {
                AlertTransition::Firing => ("firing", ERR),
                AlertTransition::Resolved => ("resolved", OK),
            };
            Mark {
                x: a.t,
                label: format!("{:.2} s: {} {} via {}", a.t, a.alert, word, a.channel),
                color,
            }
        })
        .collect()
}

fn x_range(r: &RunReport, s: &Series) -> Option<(f64, f64)> {
    let lo = r
        .phases
        .iter()
        .map(|p| p.start)
        .chain(s.client.first().map(|c| c.t as f64))
        .fold(f64::INFINITY, f64::min);
    let hi = r
        .phases
        .iter()
        .map(|p| p.end)
        .chain(s.client.last().map(|c| c.t as f64 + 1.0))
        .fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi > lo).then_some((lo, hi))
}

fn latency_chart(s: &Series, title: &str) -> Chart {
    let mut c = Chart::new(title, "ms (log)");
    c.scale = Scale::Log;
    // Each second is drawn at its middle.
    let pts = |f: fn(&ClientSecond) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        s.client.iter().map(|c| (c.t as f64 + 0.5, f(c))).collect()
    };
    c.lines.push(Line {
        name: "p50".into(),
        color: P50,
        points: pts(|c| c.p50_ms),
        dashed: false,
    });
    c.lines.push(Line {
        name: "p95".into(),
        color: P95,
        points: pts(|c| c.p95_ms),
        dashed: false,
    });
    c.lines.push(Line {
        name: "p99".into(),
        color: P99,
        points: pts(|c| c.p99_ms),
        dashed: true,
    });
    c
}

fn throughput_chart(s: &Series, title: &str) -> Chart {
    let mut c = Chart::new(title, "per second");
    c.lines.push(Line {
        name: "requests/s".into(),
        color: P95,
        points: s
            .client
            .iter()
            .map(|c| (c.t as f64 + 0.5, Some(c.requests as f64)))
            .collect(),
        dashed: false,
    });
    c.lines.push(Line {
        name: "errors/s".into(),
        color: ERR,
        points: s
            .client
            .iter()
            .map(|c| (c.t as f64 + 0.5, Some(c.errors as f64)))
            .collect(),
        dashed: false,
    });
    c
}

fn errors_chart(s: &Series) -> Chart {
    let mut c = Chart::new("Error rate", "%");
    c.lines.push(Line {
        name: "errors / requests".into(),
        color: ERR,
        points: s
            .client
            .iter()
            .map(|c| {
                let rate = (c.requests > 0).then(|| c.errors as f64 * 100.0 / c.requests as f64);
                (c.t as f64 + 0.5, rate)
            })
            .collect(),
        dashed: false,
    });
    c
}

/// One line per app instance of a server-side figure.
fn server_chart(
    samples: &[ServerSample],
    title: &str,
    unit: &str,
    name: &str,
    f: fn(&ServerSample) -> Option<f64>,
) -> Chart {
    let mut c = Chart::new(title, unit);
    let mut by_instance: BTreeMap<usize, Vec<(f64, Option<f64>)>> = BTreeMap::new();
    for s in samples {
        by_instance.entry(s.instance).or_default().push((s.t, f(s)));
    }
    let many = by_instance.len() > 1;
    for (i, (inst, mut pts)) in by_instance.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        c.lines.push(Line {
            name: if many {
                format!("{name} #{}", inst + 1)
            } else {
                name.to_owned()
            },
            color: ARM_COLORS[i % ARM_COLORS.len()],
            points: pts,
            dashed: false,
        });
    }
    c
}

fn decorate(c: &mut Chart, r: &RunReport, x: Option<(f64, f64)>) {
    c.x_range = x;
    c.bands = bands(r);
    c.marks = marks(r);
}

/// Thresholds of overall-latency SLAs, drawn on latency charts: one line per distinct
/// threshold, naming every phase it applies to (labels drawn on top of each other are unreadable).
fn latency_thresholds(r: &RunReport) -> Vec<HLine> {
    let mut out: Vec<(String, f64, Vec<String>)> = Vec::new();
    for s in r.slas.iter().filter(|s| {
        matches!(
            s.metric.as_str(),
            "latency_p95" | "latency_p99" | "latency_p50"
        ) && s.route.is_none()
    }) {
        let head = format!("{} {} {}", s.metric, s.comparator, s.threshold_text);
        match out.iter_mut().find(|(h, _, _)| *h == head) {
            Some((_, _, phases)) if !phases.contains(&s.phase) => phases.push(s.phase.clone()),
            Some(_) => {}
            None => out.push((head, s.threshold, vec![s.phase.clone()])),
        }
    }
    out.into_iter()
        .map(|(head, y, phases)| HLine {
            y,
            label: format!("{head} ({})", phases.join(", ")),
        })
        .collect()
}

/// What the bands, marks and dashed lines of the charts mean (the charts' own legends
/// name only their lines; hovering a mark names its alert and channel).
fn chart_key(h: &mut String, r: &RunReport) {
    let mut parts = vec!["grey band: warm-up (not measured)".to_string()];
    if !r.faults.is_empty() {
        parts.push(format!(
            r#"<span style="color:{FAULT}">orange band</span>: a fault, from when it took effect to when it was undone"#
        ));
    }
    if !r.alerts.is_empty() {
        parts.push(format!(
            r#"<span style="color:{ERR}">▼ red</span>: an alert's firing notification delivered to the sink, <span style="color:{OK}">▼ green</span>: its resolution (hover a mark for the alert and channel; all deliveries are listed below)"#
        ));
    }
    if !latency_thresholds(r).is_empty() {
        parts.push(r#"<span style="color:#b00">dashed red</span>: latency SLA thresholds (phase in brackets)"#.to_string());
    }
    let _ = write!(h, r#"<p class="key">{}.</p>"#, parts.join("; "));
}

fn charts_section(h: &mut String, r: &RunReport) {
    let x = x_range(r, &r.series);
    h.push_str("<section><h2>Over time</h2>");
    chart_key(h, r);
    h.push_str("<div class=\"charts\">");
    let mut lat = latency_chart(&r.series, "Client latency percentiles (per second)");
    decorate(&mut lat, r, x);
    lat.hlines = latency_thresholds(r);
    h.push_str(&lat.render());
    let mut tp = throughput_chart(&r.series, "Throughput and errors");
    decorate(&mut tp, r, x);
    h.push_str(&tp.render());
    let mut er = errors_chart(&r.series);
    decorate(&mut er, r, x);
    h.push_str(&er.render());
    let srv = &r.series.server;
    let mut util = server_chart(
        srv,
        "Pool utilization (in use / max)",
        "%",
        "utilization",
        |s| s.pool.as_ref().map(|p| p.utilization_percent),
    );
    util.y_range = Some((0.0, 100.0));
    decorate(&mut util, r, x);
    h.push_str(&util.render());
    let mut health = server_chart(srv, "Health score (composite)", "score", "health", |s| {
        s.health_score
    });
    health.y_range = Some((0.0, 100.0));
    decorate(&mut health, r, x);
    h.push_str(&health.render());
    let mut sp95 = server_chart(
        srv,
        "Server-side p95 (app's own metrics)",
        "ms",
        "server p95",
        |s| s.server_p95_ms,
    );
    decorate(&mut sp95, r, x);
    h.push_str(&sp95.render());
    h.push_str("</div></section>");
}

/// The arms side by side: one column per arm, the same axes in every column.
fn arms_charts(h: &mut String, r: &RunReport) {
    let n = r.arm_series.len();
    let _ = write!(
        h,
        r#"<section><h2>Arms side by side</h2><div class="arms" style="grid-template-columns:repeat({n},minmax(0,1fr))">"#
    );
    let warmup: Vec<Band> = bands(r).into_iter().filter(|b| b.color == WARMUP).collect();
    // Rows of charts, one column per arm.
    let mut columns: Vec<(String, Vec<Chart>)> = r
        .arm_series
        .iter()
        .map(|(name, s)| {
            let x = x_range(r, s);
            let mut util = server_chart(
                &s.server,
                &format!("{name}: pool utilization"),
                "%",
                "utilization",
                |s| s.pool.as_ref().map(|p| p.utilization_percent),
            );
            util.y_range = Some((0.0, 100.0));
            let mut health = server_chart(
                &s.server,
                &format!("{name}: health score"),
                "score",
                "health",
                |s| s.health_score,
            );
            health.y_range = Some((0.0, 100.0));
            let mut charts = vec![
                latency_chart(s, &format!("{name}: latency")),
                throughput_chart(s, &format!("{name}: throughput and errors")),
                errors_chart(s),
                util,
                health,
            ];
            for c in &mut charts {
                c.x_range = x;
                c.bands = warmup.clone();
            }
            charts[2].title = format!("{name}: error rate");
            (name.clone(), charts)
        })
        .collect();
    // Shared y axes (latency, throughput, error rate) so the columns compare at a glance.
    for row in 0..3 {
        let (lo, hi) = columns
            .iter()
            .flat_map(|(_, cs)| {
                cs[row]
                    .lines
                    .iter()
                    .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            continue;
        }
        let range = if row == 0 {
            let bottom = 10f64.powf(lo.log10().floor());
            (bottom, 10f64.powf(hi.log10().ceil()).max(bottom * 10.0))
        } else {
            let step = chart::nice_step(hi / 5.0);
            (0.0, (hi / step).ceil() * step)
        };
        for (_, cs) in &mut columns {
            cs[row].y_range = Some(range);
        }
    }
    for (name, charts) in columns {
        let _ = write!(h, r#"<div class="arm"><h3>{}</h3>"#, escape(&name));
        for c in charts {
            h.push_str(&c.render());
        }
        h.push_str("</div>");
    }
    h.push_str("</div></section>");
}

/// Faults, silences and the alert notifications received, as they happened.
fn faults_and_alerts(h: &mut String, r: &RunReport) {
    table_section(
        h,
        "<section><h2>Faults (as they happened)</h2><table><tr><th>kind</th><th>target</th><th>planned at</th><th>began</th><th>ended</th><th>lasted</th></tr>",
        &r.faults,
        |h, f| {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{:.2} s</td><td class="num">{:.3} s</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                escape(&f.kind),
                escape(f.target.as_deref().unwrap_or("")),
                f.planned_at,
                f.start,
                f.end
                    .map(|e| format!("{e:.3} s"))
                    .unwrap_or_else(|| "not ended".into()),
                f.end
                    .map(|e| format!("{:.3} s", e - f.start))
                    .unwrap_or_else(|| "–".into()),
            );
        },
    );
    table_section(
        h,
        "<section><h2>Alert silences</h2><table><tr><th>alert</th><th>planned at</th><th>in force from</th><th>until</th></tr>",
        &r.silences,
        |h, s| {
            let _ = write!(
                h,
                r#"<tr><td><code>{}</code></td><td class="num">{:.2} s</td><td class="num">{:.3} s</td><td class="num">{:.3} s</td></tr>"#,
                escape(s.alert.as_deref().unwrap_or("every alert")),
                s.planned_at,
                s.start,
                s.end,
            );
        },
    );
    table_section(
        h,
        "<section><h2>Alert notifications received</h2><table><tr><th>at</th><th>channel</th><th>alert</th><th>transition</th><th>answered</th></tr>",
        &r.alerts,
        |h, a| {
            let _ = write!(
                h,
                r#"<tr><td class="num">{:.3} s</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class="num">{}</td></tr>"#,
                a.t,
                escape(&a.channel),
                escape(&a.alert),
                match a.transition {
                    AlertTransition::Firing => "firing",
                    AlertTransition::Resolved => "resolved",
                },
                a.status
            );
        },
    );
}

//! report.html from a run's observations: self-contained (no script, no external resource),
//! charts with fault bands and alert marks, SLA verdicts, and arms side by side.
//! The pages are also written to `$CARGO_TARGET_TMPDIR/html/` to look at in a browser.

use poolproof::app::host::HostFacts;
use poolproof::observe::{
    AlertDelivery, AlertTransition, ClientSeries, FaultEvent, Observations, PoolStats,
    ServerSample, Window,
};
use poolproof::report::{ReportInput, RunReport};
use poolproof::scenario;
use poolproof::sla::{self, EvalInput};
use std::collections::BTreeMap;
use std::time::Duration;

const FAULT_SCENARIO: &str = r#"
name: alert-latency
description: 2.5 s of database latency <raises> the P95 critical alert & resolves
load:
  users: 8
  warmup: 3s
  duration: 30s
  transactions:
    - { name: profile, weight: 3, method: GET, path: "/api/users/{{rand:1..9}}" }
    - { name: buddies, weight: 1, method: GET, path: "/api/buddies?user_id=1" }
faults:
  - { at: 10s, for: 10s, kind: db_latency, latency: 2500ms }
slas:
  - { metric: alert_latency, comparator: "<=", threshold: 5s, alert: request_latency_critical, channel: slack }
  - { metric: alert_resolution, comparator: "<=", threshold: 10s, alert: request_latency_critical, channel: slack }
  - { metric: latency_p95, comparator: "<=", threshold: 50ms, phase: before }
  - { metric: health_score, comparator: "<", threshold: 80, aggregate: min, phase: during }
"#;

const AB_SCENARIO: &str = r#"
name: pooling-ab
description: pooled vs unpooled
load:
  users: 8
  warmup: 2s
  duration: 20s
  transactions:
    - { name: profile, weight: 1, method: GET, path: "/api/users/1" }
arms:
  - { name: pooled, env: { ENABLE_CONNECTION_POOLING: "true" } }
  - { name: unpooled, env: { ENABLE_CONNECTION_POOLING: "false" } }
slas:
  - { metric: p95_improvement, comparator: ">=", threshold: 60%, arms: [pooled, unpooled] }
  - { metric: capacity_ratio, comparator: ">=", threshold: x3, arms: [pooled, unpooled] }
"#;

fn host() -> HostFacts {
    HostFacts {
        hostname: "test-host".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        cpus: 2,
        memory_bytes: 4096 << 20,
        ..HostFacts::default()
    }
}

/// `rps` requests a second at `base_ms`, `slow_ms` inside [slow_from, slow_to).
fn run(
    rps: u32,
    base_ms: u64,
    slow: Option<(i64, i64, u64)>,
    secs: i64,
    warmup: i64,
) -> Observations {
    let mut c = ClientSeries::new(vec!["profile".into(), "buddies".into()]);
    for t in -warmup..secs {
        let in_fault = slow.is_some_and(|(a, b, _)| (a..b).contains(&t));
        let n = if in_fault { 3 } else { rps };
        for i in 0..n {
            let at = t as f64 + (i as f64 + 0.5) / n as f64;
            let jitter = (i % 7) as u64;
            let ms = if in_fault {
                slow.map(|s| s.2).unwrap_or(0) + jitter * 10
            } else {
                base_ms + jitter
            };
            let route = if i % 4 == 0 { "buddies" } else { "profile" };
            c.record(route, at, Some(Duration::from_millis(ms)), None);
        }
    }
    let server = (0..secs)
        .map(|t| {
            let in_fault = slow.is_some_and(|(a, b, _)| (a..b).contains(&t));
            ServerSample {
                t: t as f64 + 0.3,
                instance: 0,
                pool: Some(PoolStats {
                    mode: "pooled".into(),
                    max: 20,
                    in_use: if in_fault { 8 } else { 1 },
                    utilization_percent: if in_fault { 40.0 } else { 5.0 },
                    acquisitions: 100 * t as u64,
                    ..PoolStats::default()
                }),
                health_score: Some(if in_fault { 55.0 } else { 96.0 }),
                server_p95_ms: Some(if in_fault {
                    2600.0
                } else {
                    base_ms as f64 + 2.0
                }),
                ..ServerSample::default()
            }
        })
        .collect();
    Observations {
        client: c,
        server,
        warmup: Some(Window::new(-warmup as f64, 0.0)),
        load: Window::new(0.0, secs as f64),
        ..Observations::default()
    }
}

fn write(name: &str, html: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("html");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), html).unwrap();
}

/// Self-contained: no scripts, no links or sources outside the page.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script in the page");
    for bad in ["src=", "href=", "@import", "url("] {
        assert!(
            !lower.contains(bad),
            "external reference `{bad}` in the page"
        );
    }
    let external = lower.matches("http").count();
    let xmlns = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(external, xmlns, "only the SVG namespace may name a URL");
}

#[test]
fn fault_run_page_has_charts_bands_marks_and_verdicts() {
    let s = scenario::load_str(FAULT_SCENARIO, "alert-latency.yaml").unwrap();
    let mut obs = run(200, 2, Some((10, 20, 2600)), 30, 3);
    obs.faults.push(FaultEvent {
        kind: "db_latency".into(),
        target: Some("postgres".into()),
        planned_at: 10.0,
        start: 10.001,
        end: Some(20.002),
    });
    let alert = |t: f64, ch: &str, tr| AlertDelivery {
        t,
        channel: ch.into(),
        alert: "request_latency_critical".into(),
        transition: tr,
        status: 200,
    };
    obs.alerts = vec![
        alert(13.4, "slack", AlertTransition::Firing),
        alert(13.5, "email", AlertTransition::Firing),
        alert(24.0, "slack", AlertTransition::Resolved),
    ];
    let arms = BTreeMap::new();
    let slas = sla::evaluate_all(
        &s.slas,
        EvalInput {
            obs: &obs,
            arms: &arms,
            arm_replicates: &BTreeMap::new(),
            arms_mode: poolproof::scenario::ArmsMode::Interleaved,
            arm_names: &[],
            transactions: &s.load.transactions,
        },
    );
    let rep = RunReport::build(ReportInput {
        scenario: &s,
        scenario_path: None,
        run_id: "20260101T000000Z-html",
        started_at: "2026-01-01T00:00:00Z",
        wall_time_s: Some(40.0),
        host: host(),
        obs: &obs,
        arms: &arms,
        slas: &slas,
        interrupted: false,
        notes: vec!["sampler: 1 gap".into()],
    });
    let html = poolproof::report::html::page(&rep);
    write("fault.html", &html);
    assert_self_contained(&html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("PASSED"), "all four SLAs hold in this data");
    assert_eq!(
        html.matches("<svg").count(),
        6,
        "latency, throughput, errors, utilization, health, server p95"
    );
    // The fault is a band on every chart, the two firings and one resolution are marks.
    assert_eq!(
        html.matches(r#"class="band""#).count(),
        12,
        "warm-up + fault on 6 charts"
    );
    assert_eq!(html.matches(r#"class="mark""#).count(), 18);
    assert!(html.contains("13.40 s: request_latency_critical firing via slack"));
    assert!(
        html.contains("latency_p95 &lt;= 50ms (before)"),
        "threshold line on the latency chart"
    );
    assert!(html.contains(
        "2.5 s of database latency &lt;raises&gt; the P95 critical alert &amp; resolves"
    ));
    assert!(
        html.contains("<td class=\"num\">10.001 s</td>"),
        "the fault's actual start"
    );
    assert!(html.contains(r#"<td class="met">met</td>"#));
    assert!(html.contains("sampler: 1 gap"));
}

#[test]
fn ab_page_shows_arms_side_by_side_with_shared_axes_and_a_failed_verdict() {
    let s = scenario::load_str(AB_SCENARIO, "pooling-ab.yaml").unwrap();
    let mut arms = BTreeMap::new();
    arms.insert("pooled".to_string(), run(900, 2, None, 20, 2));
    arms.insert("unpooled".to_string(), run(400, 9, None, 20, 2));
    let names = vec!["pooled".to_string(), "unpooled".to_string()];
    let slas = sla::evaluate_all(
        &s.slas,
        EvalInput {
            obs: &arms["pooled"],
            arms: &arms,
            arm_replicates: &BTreeMap::new(),
            arms_mode: poolproof::scenario::ArmsMode::Interleaved,
            arm_names: &names,
            transactions: &s.load.transactions,
        },
    );
    let mut rep = RunReport::build(ReportInput {
        scenario: &s,
        scenario_path: None,
        run_id: "20260101T000000Z-ab",
        started_at: "2026-01-01T00:00:00Z",
        wall_time_s: Some(50.0),
        host: host(),
        obs: &arms["pooled"],
        arms: &arms,
        slas: &slas,
        interrupted: false,
        notes: vec![],
    });
    rep.app_cpu = vec![poolproof::report::AppCpuRun {
        arm: Some("pooled".into()),
        replicate: 1,
        requests: 18_000,
        cpu_seconds: 0.72,
        cpu_us_per_request: Some(40.0),
    }];
    let html = poolproof::report::html::page(&rep);
    write("ab.html", &html);
    assert!(html.contains(
        r#"<tr><td>pooled</td><td class="num">1</td><td class="num">18000</td><td class="num">0.720 s</td><td class="num">40.00 µs</td></tr>"#
    ));
    // Ratio SLAs show how many pairs they rest on (one here: no interval).
    assert!(html.contains("<th>interval (n pairs)</th>"));
    assert!(html.contains(r#"<td class="num">n=1</td>"#));
    assert_self_contained(&html);
    // 900 vs 400 rps is x2.25 < x3: the capacity SLA fails and the page says so.
    assert!(html.contains("FAILED"));
    assert!(html.contains(r#"<td class="failed">FAILED</td>"#));
    assert!(html.contains("Arms side by side"));
    assert!(html.contains("grid-template-columns:repeat(2,"));
    assert!(html.contains("pooled: latency") && html.contains("unpooled: latency"));
    assert_eq!(
        html.matches("<svg").count(),
        10,
        "five charts per arm, nothing else"
    );
    // The two throughput charts share their y axis: the same tick labels in both, up to
    // 1k (900 rps rounded up), although the unpooled arm alone would stop at 400.
    let ticks: Vec<Vec<&str>> = html
        .split(": throughput and errors</text>")
        .skip(1)
        .map(|chunk| {
            let chunk = &chunk[..chunk.find("</svg>").unwrap()];
            chunk
                .split(r##"text-anchor="end" fill="#555">"##)
                .skip(1)
                .map(|t| &t[..t.find('<').unwrap()])
                .collect()
        })
        .collect();
    assert_eq!(ticks.len(), 2);
    assert_eq!(ticks[0], ticks[1], "shared axes");
    assert_eq!(ticks[0].last(), Some(&"1k"));
}

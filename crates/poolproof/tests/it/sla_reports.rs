//! SLA evaluation and reports against synthetic observations with known answers, and the
//! normalized view / report.md / junit.xml snapshots.

use poolproof::app::host::HostFacts;
use poolproof::observe::{
    AlertDelivery, AlertTransition, ClientSeries, ErrorKind, FaultEvent, Observations, PoolStats,
    ServerSample, Window,
};
use poolproof::report::{self, NormalizedReport, ReportInput, RunReport};
use poolproof::scenario::{self, Scenario};
use poolproof::sla::{self, EvalInput, SlaResult, Verdict};
use std::collections::BTreeMap;
use std::time::Duration;

const SCENARIO: &str = r#"
name: synthetic
description: Known answers | pipes & <markup>
load:
  users: 4
  warmup: 2s
  duration: 10s
  transactions:
    - { name: fast, weight: 3, method: GET, path: "/fast/{{rand:1..9}}" }
    - { name: slow, weight: 1, method: GET, path: /slow }
faults:
  - { at: 4s, for: 2s, kind: db_latency, latency: 500ms }
slas:
  - { metric: latency_p50, comparator: "<=", threshold: 10ms, route: fast }
  - { metric: latency_p95, comparator: "<", threshold: 0.001ms }
  - { metric: latency_p99, comparator: "<=", threshold: 150ms, route: slow }
  - { metric: latency_max, comparator: "<", threshold: 1s }
  - { metric: error_rate, comparator: "<=", threshold: 5% }
  - { metric: throughput, comparator: ">=", threshold: 35 }
  - { metric: pool_efficiency, comparator: ">=", threshold: 90% }
  - { metric: pool_utilization, comparator: "<=", threshold: 80% }
  - { metric: acquire_wait_p95, comparator: "<=", threshold: 5ms }
  - { metric: health_score, comparator: ">=", threshold: 70, aggregate: min }
  - { metric: health_score, comparator: ">=", threshold: 85, aggregate: mean, phase: before }
  - { metric: server_latency_p95, comparator: "<=", threshold: 100ms }
  - { metric: server_latency_p95, comparator: "<=", threshold: 150ms, route: slow }
  - { metric: latency_p95, comparator: "<=", threshold: 30ms, phase: after }
  - { metric: error_rate, comparator: "<=", threshold: 1%, phase: during }
  - { metric: alert_latency, comparator: "<=", threshold: 5s, alert: high_request_latency_p95_critical, channel: slack }
  - { metric: alert_resolution, comparator: "<=", threshold: 10s, alert: high_request_latency_p95_critical }
  - { metric: duplicate_notifications, comparator: "<=", threshold: 0 }
  - { metric: recovery_time, comparator: "<=", threshold: 2s }
"#;

fn scenario() -> Scenario {
    scenario::load_str(SCENARIO, "synthetic.yaml").expect("valid synthetic scenario")
}

/// 10 s of load at 40 requests/s: `fast` 30/s at 5 ms, `slow` 10/s at 100 ms; during the
/// fault (4–6 s) `slow` takes 400 ms and 3 of its 10 requests per second fail with 500.
/// Warm-up (-2..0 s) has 1 s latencies that must never count.
fn observations() -> Observations {
    let mut c = ClientSeries::new(vec!["fast".into(), "slow".into()]);
    let ms = |n: u64| Some(Duration::from_millis(n));
    for t in -2..10i64 {
        for i in 0..30 {
            let at = t as f64 + (i as f64 + 0.5) / 30.0;
            c.record("fast", at, if t < 0 { ms(1000) } else { ms(5) }, None);
        }
        for i in 0..10 {
            let at = t as f64 + (i as f64 + 0.5) / 10.0;
            let during = (4..6).contains(&t);
            let err = (during && i % 4 == 0).then_some(ErrorKind::Status(500));
            c.record("slow", at, if during { ms(400) } else { ms(100) }, err);
        }
    }
    let server = (0..10)
        .map(|t| ServerSample {
            t: t as f64 + 0.5,
            instance: 0,
            pool: Some(PoolStats {
                mode: "pooled".into(),
                size: 10,
                idle: 6,
                in_use: 4,
                waiting: 0,
                max: 20,
                utilization_percent: if t == 5 { 75.0 } else { 20.0 },
                efficiency_percent: 99.0,
                acquisitions: 1000 + 400 * t as u64,
                connections_opened: 5 + 4 * t as u64,
                acquire_timeouts: 0,
                fallback_activations: 0,
                acquire_wait_p95_ms: 0.2,
                acquire_wait_mean_ms: 0.1,
                health_score: 100.0,
            }),
            health_score: Some(if (4..6).contains(&t) { 72.0 } else { 95.0 }),
            server_p95_ms: Some(if (4..6).contains(&t) { 390.0 } else { 95.0 }),
            // Labelled as the app labels them; `POST /slow` is another route (method).
            route_p95_ms: [
                ("GET /fast/{n}".to_string(), 5.0),
                (
                    "GET /slow".to_string(),
                    if (4..6).contains(&t) { 400.0 } else { 100.0 },
                ),
                ("POST /slow".to_string(), 9000.0),
            ]
            .into_iter()
            .collect(),
            server_rps: Some(40.0),
            mode: Some("pooled".into()),
            errors: vec![],
            ..ServerSample::default()
        })
        .collect();
    let alert = |t: f64, channel: &str, transition| AlertDelivery {
        t,
        channel: channel.into(),
        alert: "high_request_latency_p95_critical".into(),
        transition,
        status: 200,
    };
    Observations {
        client: c,
        server,
        db: Vec::new(),
        pgbouncer: Vec::new(),
        warmup: Some(Window::new(-2.0, 0.0)),
        load: Window::new(0.0, 10.0),
        faults: vec![FaultEvent {
            kind: "db_latency".into(),
            target: Some("postgres".into()),
            planned_at: 4.0,
            start: 4.0,
            end: Some(6.0),
        }],
        alerts: vec![
            alert(6.5, "slack", AlertTransition::Firing),
            alert(6.6, "email", AlertTransition::Firing),
            alert(9.0, "slack", AlertTransition::Resolved),
        ],
        silences: Vec::new(),
        app_cpu: Vec::new(),
        stages: Vec::new(),
        generator: None,
        shards: Vec::new(),
        gaps: Vec::new(),
    }
}

fn evaluate(obs: &Observations) -> (Scenario, Vec<SlaResult>) {
    let s = scenario();
    let arms = BTreeMap::new();
    let results = sla::evaluate_all(
        &s.slas,
        EvalInput {
            obs,
            arms: &arms,
            arm_replicates: &BTreeMap::new(),
            arms_mode: poolproof::scenario::ArmsMode::Interleaved,
            arm_names: &[],
            transactions: &s.load.transactions,
        },
    );
    (s, results)
}

fn by_label<'a>(results: &'a [SlaResult], prefix: &str) -> &'a SlaResult {
    results
        .iter()
        .find(|r| r.label.starts_with(prefix))
        .unwrap_or_else(|| panic!("no SLA {prefix}"))
}

fn approx(v: Option<f64>, want: f64, rel: f64) -> bool {
    v.is_some_and(|v| (v - want).abs() <= want.abs() * rel)
}

#[test]
fn verdicts_and_measured_values_match_the_known_answers() {
    let (_, r) = evaluate(&observations());
    let p50 = by_label(&r, "latency_p50[fast]");
    assert!(approx(p50.measured, 5.0, 0.002), "{p50:?}");
    assert_eq!(p50.verdict, Verdict::Met);

    // The impossible SLA fails, naming threshold and value.
    let impossible = by_label(&r, "latency_p95 < ");
    assert_eq!(impossible.verdict, Verdict::Failed);
    assert!(impossible.measured.unwrap() > 0.001);

    // slow p99 over the load: 20 of 100 slow requests take 400 ms → p99 = 400 ms > 150 ms.
    let p99 = by_label(&r, "latency_p99[slow]");
    assert!(approx(p99.measured, 400.0, 0.002), "{p99:?}");
    assert_eq!(p99.verdict, Verdict::Failed);

    // Max excludes the warm-up's 1 s latencies.
    let max = by_label(&r, "latency_max");
    assert!(approx(max.measured, 400.0, 0.002), "{max:?}");
    assert_eq!(max.verdict, Verdict::Met);

    // 6 errors (3 per fault second) of 400 requests.
    let er = by_label(&r, "error_rate <=");
    assert!(approx(er.measured, 6.0 / 400.0, 1e-9), "{er:?}");
    assert_eq!(er.verdict, Verdict::Met);

    // 394 successes over 10 s.
    let thr = by_label(&r, "throughput");
    assert!(approx(thr.measured, 39.4, 1e-9), "{thr:?}");
    assert_eq!(thr.verdict, Verdict::Met);

    // Δopened 36 / Δacquisitions 3600 between the first and last sample → 99 %.
    let eff = by_label(&r, "pool_efficiency");
    assert!(approx(eff.measured, 0.99, 1e-9), "{eff:?}");
    assert_eq!(eff.verdict, Verdict::Met);

    let util = by_label(&r, "pool_utilization");
    assert!(approx(util.measured, 0.75, 1e-9));
    assert_eq!(util.verdict, Verdict::Met);

    assert!(approx(by_label(&r, "acquire_wait_p95").measured, 0.2, 1e-9));

    let hmin = by_label(&r, "health_score >=");
    assert_eq!(hmin.measured, Some(72.0));
    assert_eq!(hmin.verdict, Verdict::Met);
    let hbefore = by_label(&r, "health_score@before");
    assert_eq!(hbefore.measured, Some(95.0));

    // Mean of 8 × 95 and 2 × 390.
    let sp95 = by_label(&r, "server_latency_p95");
    assert!(
        approx(sp95.measured, (8.0 * 95.0 + 2.0 * 390.0) / 10.0, 1e-9),
        "{sp95:?}"
    );
    assert_eq!(sp95.verdict, Verdict::Failed);
    // Per route: `/slow` samples, mean of 8 × 100 and 2 × 400.
    let slow = by_label(&r, "server_latency_p95[slow]");
    assert!(approx(slow.measured, 160.0, 1e-9), "{slow:?}");
    assert_eq!(slow.verdict, Verdict::Failed);

    // After the fault only 5 ms and 100 ms responses: p95 = 100 ms > 30 ms.
    let after = by_label(&r, "latency_p95@after");
    assert!(approx(after.measured, 100.0, 0.002));
    assert_eq!(after.verdict, Verdict::Failed);

    // During the fault: 6 errors of 80 requests.
    let during = by_label(&r, "error_rate@during");
    assert!(approx(during.measured, 6.0 / 80.0, 1e-9));
    assert_eq!(during.verdict, Verdict::Failed);

    let al = by_label(&r, "alert_latency");
    assert!(approx(al.measured, 2500.0, 1e-9), "{al:?}");
    assert_eq!(al.verdict, Verdict::Met);
    let res = by_label(&r, "alert_resolution");
    assert!(approx(res.measured, 3000.0, 1e-9), "{res:?}");
    assert_eq!(by_label(&r, "duplicate_notifications").measured, Some(0.0));

    // Recovery against `latency_p95 < 0.001ms` (displayed `1us`, impossible) and `error_rate <= 5%`: never.
    let rec = by_label(&r, "recovery_time");
    assert_eq!(rec.verdict, Verdict::NoData);
    assert!(!sla::all_met(&r));
}

#[test]
fn no_data_is_a_failure_never_a_silent_pass() {
    let mut obs = observations();
    obs.server.clear();
    obs.faults.clear();
    obs.alerts.clear();
    obs.client = ClientSeries::new(vec!["fast".into(), "slow".into()]);
    let (_, r) = evaluate(&obs);
    for s in &r {
        if s.metric == "throughput" || s.metric == "duplicate_notifications" {
            // An empty load has a measurable 0 rps (fails >= 35) and zero duplicates.
            continue;
        }
        assert!(
            matches!(s.verdict, Verdict::NoData | Verdict::NotEvaluated),
            "{}: {:?}",
            s.label,
            s.verdict
        );
        assert!(!s.passed());
        assert_eq!(s.measured_text, "-");
        assert!(!s.detail.is_empty());
    }
    assert_eq!(by_label(&r, "throughput").verdict, Verdict::Failed);
}

#[test]
fn per_route_server_p95_without_its_route_says_which_routes_the_app_reported() {
    let mut obs = observations();
    for s in &mut obs.server {
        s.route_p95_ms.remove("GET /slow");
    }
    let (_, r) = evaluate(&obs);
    let slow = by_label(&r, "server_latency_p95[slow]");
    assert_eq!(slow.verdict, Verdict::NoData, "{slow:?}");
    assert!(
        slow.detail.contains("`GET /slow`") && slow.detail.contains("POST /slow"),
        "{}",
        slow.detail
    );
    // The overall figure does not depend on routes[].
    assert_eq!(by_label(&r, "server_latency_p95").verdict, Verdict::Failed);
}

#[test]
fn duplicate_notifications_count_repeated_transitions() {
    let mut obs = observations();
    let dup = AlertDelivery {
        t: 7.0,
        ..obs.alerts[0].clone()
    };
    obs.alerts.push(dup);
    // A failed delivery (sink answered 500) is a retry, not a duplicate.
    obs.alerts.push(AlertDelivery {
        t: 7.5,
        status: 500,
        ..obs.alerts[0].clone()
    });
    let (_, r) = evaluate(&obs);
    let d = by_label(&r, "duplicate_notifications");
    assert_eq!(d.measured, Some(1.0));
    assert_eq!(d.verdict, Verdict::Failed);
}

fn build_report(obs: &Observations) -> RunReport {
    let (s, results) = evaluate(obs);
    let arms = BTreeMap::new();
    RunReport::build(ReportInput {
        scenario: &s,
        scenario_path: Some("scenarios/synthetic.yaml"),
        run_id: "20260101T000000Z-test",
        started_at: "2026-01-01T00:00:00Z",
        wall_time_s: Some(14.0),
        host: HostFacts {
            hostname: "test-host".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
            memory_bytes: 4096 << 20,
            ..HostFacts::default()
        },
        obs,
        arms: &arms,
        slas: &results,
        interrupted: false,
        notes: vec![],
    })
}

#[test]
fn reports_name_the_failing_slas_and_snapshot_their_normalized_view() {
    let rep = build_report(&observations());
    assert!(!rep.passed);
    assert_eq!(rep.schema_version, 1);
    assert!(
        rep.failed_slas.iter().any(|l| l == "latency_p95 < 1us"),
        "{:?}",
        rep.failed_slas
    );
    // Series cover warm-up and load, one entry per second.
    assert_eq!(rep.series.client.len(), 12);
    assert_eq!(rep.series.client[0].t, -2);
    assert_eq!(rep.summary.requests, 400);

    let md = report::markdown(&rep);
    assert!(md.contains("FAILED"));
    assert!(md.contains("**`latency_p95 < 1us`**"), "{md}");
    assert!(
        md.contains("Known answers \\| pipes & \\<markup\\>"),
        "markdown escaped: {md}"
    );
    let junit = report::junit_xml(&rep);
    assert!(junit.contains("name=\"latency_p95 &lt; 1us\""), "{junit}");
    assert!(junit.contains("<failure message=\"latency_p95 &lt; 1us FAILED: measured"));

    insta::assert_yaml_snapshot!("synthetic_normalized", NormalizedReport::of(&rep));
    insta::assert_snapshot!("synthetic_report_md", md);
    insta::assert_snapshot!("synthetic_junit", junit);
}

#[test]
fn reports_are_written_and_json_round_trips_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let rep = build_report(&observations());
    let summary = dir.path().join("step-summary.md");
    // set_var is safe in edition 2021; nextest runs each test in its own process, so no other
    // test sees it.
    std::env::set_var("GITHUB_STEP_SUMMARY", &summary);
    let paths = report::write_all(
        &rep,
        &report::run_dir(dir.path(), &rep.scenario, &rep.run_id),
    )
    .unwrap();
    std::env::remove_var("GITHUB_STEP_SUMMARY");
    assert_eq!(paths.step_summary.as_deref(), Some(summary.as_path()));
    let back = report::read_json(&paths.json).unwrap();
    assert_eq!(back, rep);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths.json).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("latency_p95 < 1us"));
    assert!(std::fs::read_to_string(&paths.junit)
        .unwrap()
        .starts_with("<?xml"));
    assert!(paths.markdown.exists());
}

#[test]
fn settings_hide_secret_env_values_and_url_passwords() {
    let text = SCENARIO.replace(
        "load:\n",
        "app:\n  env:\n    RESEND_API_KEY: re_live_abc123\n    SLACK_WEBHOOK_URL: http://u:hunter2@127.0.0.1:9/hook\n    DATABASE_POOL_SIZE: \"20\"\nload:\n",
    );
    let s = scenario::load_str(&text, "s.yaml").unwrap();
    let obs = observations();
    let arms = BTreeMap::new();
    let rep = RunReport::build(ReportInput {
        scenario: &s,
        scenario_path: None,
        run_id: "r",
        started_at: "t",
        wall_time_s: None,
        host: HostFacts::default(),
        obs: &obs,
        arms: &arms,
        slas: &[],
        interrupted: false,
        notes: vec![],
    });
    let json = serde_json::to_string(&rep).unwrap();
    assert!(!json.contains("re_live_abc123"));
    assert!(!json.contains("hunter2"));
    assert!(json.contains("\"DATABASE_POOL_SIZE\":\"20\""));
    assert!(rep.passed, "no SLA, not interrupted");
}

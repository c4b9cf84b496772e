//! End to end, `arms_mode: concurrent`: the real `poolproof` binary runs two arms of pooled-app
//! side by side against real Postgres and Redis (provisioned by poolproof-services) under one
//! load. Each arm must get its own client series and app CPU figures (from /proc), and a
//! deliberately costly arm (a new database connection per request and a JSON log line per
//! request; measured here at +7 % app CPU per request for pooling off alone) must be caught by
//! `cpu_per_request_increase` on its whole 95 % interval, with exit 1.

use crate::support::{report_json, validate_in};

const SCENARIO: &str = r#"name: concurrent-arms
description: a cheap and a costly arm side by side
app:
  ready_timeout: 60s
  env:
    LOG_REQUESTS: "false"
fixtures:
  users: 200
  buddy_requests: 400
load:
  users: 4
  ramp: 1s
  warmup: 2s
  duration: 8s
  rate_limit: 300
  transactions:
    - name: profile
      path: /api/users/{{rand:1..200}}
arms:
  - name: cheap
    env: { ENABLE_CONNECTION_POOLING: "true" }
  - name: costly
    env: { ENABLE_CONNECTION_POOLING: "false", LOG_REQUESTS: "true" }
arms_mode: concurrent
slas:
  - { metric: cpu_per_request_increase, comparator: "<=", threshold: 1%, arms: [costly, cheap], confidence: 95% }
  - { metric: cpu_per_request_increase, comparator: "<=", threshold: 1%, arms: [cheap, costly], confidence: 95% }
  - { metric: error_rate, comparator: "<=", threshold: 1% }
"#;

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn concurrent_arms_each_get_their_cpu_figures_and_a_costly_arm_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, text) = validate_in(dir.path(), "concurrent-arms", SCENARIO);
    assert_eq!(
        code,
        Some(1),
        "the costly arm must fail with exit 1:\n{text}"
    );
    let row = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` row:\n{text}"))
            .to_owned()
    };
    // The first row is costly vs cheap, the second the reverse: same label, so take both.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("cpu_per_request_increase <= 1%"))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].trim_end().ends_with("FAILED"), "{}", rows[0]);
    assert!(rows[1].trim_end().ends_with("met"), "{}", rows[1]);
    assert!(
        row("error_rate <= 1%").trim_end().ends_with("met"),
        "{text}"
    );

    let report = report_json(dir.path(), "concurrent-arms");

    // One CPU figure per arm, plausible for a real process: some CPU, some requests, between
    // 1 µs and 100 ms per request, and the costly arm above the cheap one.
    let cpu = report["app_cpu"].as_array().expect("app_cpu");
    assert_eq!(cpu.len(), 2, "{cpu:?}");
    let per = |arm: &str| {
        let c = cpu
            .iter()
            .find(|c| c["arm"] == arm)
            .unwrap_or_else(|| panic!("no app_cpu for {arm}: {cpu:?}"));
        assert_eq!(c["replicate"], 1);
        assert!(f(&c["requests"]) > 200.0, "{c}");
        assert!(f(&c["cpu_seconds"]) > 0.0, "{c}");
        let us = f(&c["cpu_us_per_request"]);
        assert!((1.0..100_000.0).contains(&us), "{arm}: {us} µs per request");
        us
    };
    let (cheap, costly) = (per("cheap"), per("costly"));
    assert!(
        costly > 1.02 * cheap,
        "costly {costly} µs vs cheap {cheap} µs"
    );

    // The SLA rests on per-second pairs with an interval, all of it above the bar.
    let sla = &report["slas"][0];
    assert!(f(&sla["pairs"]) >= 5.0, "{sla}");
    assert!(f(&sla["measured"]) > 0.02, "{sla}");
    assert!(f(&sla["interval"]["lo"]) > 0.01, "{sla}");
    assert_eq!(f(&sla["confidence"]), 0.95, "{sla}");
    assert!(sla["detail"]
        .as_str()
        .is_some_and(|d| d.contains("per-second pairs")));

    // Both arms got load: each completed at least a third of the requests.
    let arms = report["arms"].as_array().expect("arms");
    let total: f64 = arms.iter().map(|a| f(&a["summary"]["requests"])).sum();
    for a in arms {
        assert!(f(&a["summary"]["requests"]) > total / 3.0, "{arms:?}");
    }
}

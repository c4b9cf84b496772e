//! End to end, `crossover:`: the real `poolproof` binary runs two groups of pooled-app side by
//! side and switches their monitoring at run time, so that each group holds each arm in turn.
//! The app's own view must agree with the schedule: every server sample the regrouping puts in
//! the `monitored` arm comes from an app that answered its monitoring API with data, and every
//! one in the `unmonitored` arm from an app that answered "paused". A wrong rotation, a switch
//! that did not land, or seconds attributed to the wrong group would mix the two.

use crate::support::{report_json, validate_in};

const SCENARIO: &str = r#"name: crossover-arms
description: monitoring switched between two app groups every 2 s
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
  duration: 12s
  rate_limit: 300
  transactions:
    - name: profile
      path: /api/users/{{rand:1..200}}
arms:
  - name: monitored
    env: { ENABLE_PERFORMANCE_MONITORING: "true" }
  - name: unmonitored
    env: { ENABLE_PERFORMANCE_MONITORING: "false" }
arms_mode: concurrent
crossover: 2s
slas:
  - { metric: cpu_per_request_increase, comparator: "<=", threshold: 50%, arms: [monitored, unmonitored] }
  - { metric: error_rate, comparator: "<=", threshold: 1% }
"#;

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn crossover_arms_follow_the_apps_own_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, text) = validate_in(dir.path(), "crossover-arms", SCENARIO);
    assert_eq!(code, Some(0), "{text}");

    let report = report_json(dir.path(), "crossover-arms");

    // 12 s in 2 s periods: 5 switches, noted with how long they took.
    let notes = report["notes"].as_array().expect("notes");
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("crossover: every 2s the 2 app groups")
                && n.contains("(5 switches over 1 replicates"))),
        "{notes:?}"
    );

    // The app's own answer in each measured second agrees with the arm it was put in.
    let samples = |arm: &str| -> Vec<serde_json::Value> {
        report["arm_series"][arm]["server"]
            .as_array()
            .unwrap_or_else(|| panic!("no server series for {arm}"))
            .iter()
            .filter(|s| f(&s["t"]) >= 0.0)
            .cloned()
            .collect()
    };
    let (on, off) = (samples("monitored"), samples("unmonitored"));
    // Six periods of two seconds, the first of each left out: about 6 samples each.
    for (arm, s) in [("monitored", &on), ("unmonitored", &off)] {
        assert!(
            (4..=8).contains(&s.len()),
            "{arm}: {} samples: {s:?}",
            s.len()
        );
    }
    let answered = |s: &serde_json::Value| !s["server_p95_ms"].is_null();
    let agree =
        on.iter().filter(|s| answered(s)).count() + off.iter().filter(|s| !answered(s)).count();
    // A sample sent just before a switch may be answered just after it: allow one.
    assert!(
        agree + 1 >= on.len() + off.len(),
        "monitored {on:?}\nunmonitored {off:?}"
    );

    // Both arms have every measured second but the switches': each about half the requests,
    // and a CPU figure.
    let arms = report["arms"].as_array().expect("arms");
    let total: f64 = arms.iter().map(|a| f(&a["summary"]["requests"])).sum();
    for a in arms {
        let share = f(&a["summary"]["requests"]) / total;
        assert!((0.4..0.6).contains(&share), "{arms:?}");
    }
    let cpu = report["app_cpu"].as_array().expect("app_cpu");
    assert_eq!(cpu.len(), 2, "{cpu:?}");
    for c in cpu {
        assert!(f(&c["requests"]) > 100.0, "{c}");
        assert!(f(&c["cpu_seconds"]) > 0.0, "{c}");
    }
}

//! `abort_on_fail: true` end to end: a real run against real services and pooled-app whose
//! error budget is spent within its first second stops early, fails with exit 1, tears down,
//! and says in report.json, report.md and report.html that it stopped, when and why.

use crate::support::{report_json, validate_in};

/// Half the requests go to a route pooled-app does not have (404 where 200 is expected), so
/// the 1 % error budget of the planned 30 s is spent within about a second.
const SCENARIO: &str = r#"name: abort-early
description: abort_on_fail end to end
app:
  instances: 1
  ready_timeout: 60s
fixtures:
  users: 200
  buddy_requests: 200
load:
  model: open
  rate: 40
  max_in_flight: 8
  ramp: 1s
  warmup: 1s
  duration: 30s
  transactions:
    - { name: profile, path: "/api/users/{{rand:1..200}}", expect_status: 200 }
    - { name: missing, path: /api/no-such-route, expect_status: 200 }
slas:
  - { metric: latency_p95, comparator: "<=", threshold: 2s }
  - { metric: error_rate, comparator: "<=", threshold: 1%, abort_on_fail: true }
"#;

#[test]
fn a_spent_error_budget_stops_the_run_early_and_fails_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = validate_in(dir.path(), "abort-early", SCENARIO);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("STOPPED EARLY"),
        "terminal does not say so:\n{out}"
    );

    let json = report_json(dir.path(), "abort-early");
    let stop = &json["early_stop"];
    assert_eq!(stop["sla"], "error_rate <= 1%", "{stop}");
    assert_eq!(stop["sla_index"], 1, "{stop}");
    let at = stop["at_s"].as_f64().expect("at_s");
    let planned = stop["planned_s"].as_f64().expect("planned_s");
    assert_eq!(planned, 30.0);
    // 40 rps, half of them errors: 1 % of at most ~1,270 requests (ramp, warm-up and 30 s of
    // starts, 8 in flight) is spent at the 13th error, under a second in. A stop within a
    // quarter of the plan leaves room for a slow host.
    assert!(
        at > 0.0 && at / planned < 0.25,
        "stopped at {at} s of {planned} s"
    );
    // The measured window in the report ends where the load stopped.
    let load = json["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "load"))
        .unwrap_or_else(|| panic!("no load phase in {}", json["phases"]));
    let end = load["end"].as_f64().expect("load phase end");
    assert!(end / planned < 0.25, "load phase ends at {end} s");
    assert!(
        (end - at).abs() < 1.0,
        "load ends at {end} s, stop at {at} s"
    );
    let reason = stop["reason"].as_str().expect("reason");
    assert!(
        reason.contains("errors in the first") && reason.contains("can complete"),
        "{reason}"
    );

    // The SLA that stopped the run failed on the figure that decided it; the other was judged
    // on the shortened load and says so.
    let slas = json["slas"].as_array().expect("slas");
    assert_eq!(slas[1]["verdict"], "failed", "{}", slas[1]);
    assert!(slas[1]["measured"].as_f64().expect("measured") > 0.01);
    assert!(
        slas[1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("stopped early")),
        "{}",
        slas[1]
    );
    assert!(
        slas[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the run stopped early")),
        "{}",
        slas[0]
    );
    assert_eq!(json["passed"], false);

    let run = std::fs::read_dir(dir.path().join("reports/abort-early"))
        .expect("run dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .next()
        .expect("one run");
    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    assert!(md.contains("**Stopped early**"), "{md}");
    assert!(
        md.contains(&format!("stopped early at {at:.1} s of 30 s planned")),
        "{md}"
    );
    let html = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert!(
        html.contains("<strong>Stopped early</strong>"),
        "report.html lacks the stop"
    );
    assert!(html.contains("error_rate &lt;= 1%") || html.contains("error_rate <= 1%"));
}

/// The same scenario without `abort_on_fail` runs its whole plan: the early stop above is the
/// flag's doing, not the failing route's.
#[test]
fn without_abort_on_fail_the_same_run_goes_to_the_end() {
    let text = SCENARIO
        .replace(", abort_on_fail: true", "")
        .replace("duration: 30s", "duration: 4s");
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = validate_in(dir.path(), "abort-early", &text);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("STOPPED EARLY"), "{out}");
    let json = report_json(dir.path(), "abort-early");
    assert!(json.get("early_stop").is_none(), "{}", json["early_stop"]);
    let load = json["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "load"))
        .unwrap_or_else(|| panic!("no load phase in {}", json["phases"]));
    assert_eq!(load["end"].as_f64(), Some(4.0), "{load}");
}

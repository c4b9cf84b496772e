//! The open load model against real Postgres, Redis and pooled-app: a 2 s Postgres stall
//! injected through the fault timeline at a fixed arrival rate must show in the corrected
//! tail (latency from each request's scheduled start) and in the late/dropped counts, where
//! the closed model's uncorrected view hides it (coordinated omission, issue 11).

use crate::support;

fn report(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let runs = dir.join("reports").join(name);
    let run = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| panic!("no run directory under {}", runs.display()));
    let text = std::fs::read(run.join("report.json")).expect("read report.json");
    serde_json::from_slice(&text).expect("report.json is JSON")
}

const STALL: &str = r#"name: open-stall
description: a 2 s Postgres pause at a fixed arrival rate
app:
  ready_timeout: 60s
fixtures:
  users: 200
  buddy_requests: 400
load:
  model: open
  rate: 100
  max_in_flight: 50
  warmup: 2s
  duration: 12s
  transactions:
    - name: buddies
      path: /api/buddies?user_id={{rand:1..200}}
faults:
  - { at: 4s, for: 2s, kind: postgres_pause }
slas:
  - { metric: latency_p95, comparator: ">=", threshold: 500ms }
  - { metric: offered_rate, comparator: ">=", threshold: 95 }
"#;

#[test]
fn a_postgres_stall_at_a_fixed_rate_shows_in_the_corrected_tail_and_the_late_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = support::validate_in(dir.path(), "open-stall", STALL);
    assert_eq!(code, Some(0), "{out}");
    let r = report(dir.path(), "open-stall");
    let s = &r["summary"];
    let corrected = s["p95_ms"].as_f64().expect("corrected p95");
    let uncorrected = s["uncorrected_p95_ms"].as_f64().expect("uncorrected p95");
    let late = s["late"].as_u64().unwrap_or(0);
    let dropped = s["dropped"].as_u64().unwrap_or(0);
    assert!(corrected >= 500.0, "corrected p95 {corrected} ms\n{out}");
    assert!(late + dropped > 0, "no start was late or dropped: {s}");
    assert!(
        uncorrected < corrected,
        "uncorrected p95 {uncorrected} ms is not below corrected {corrected} ms"
    );
    // The schedule was offered in full: 100/s over 12 s, whatever the server did.
    let scheduled = s["scheduled"].as_u64().unwrap_or(0);
    assert!((1150..=1250).contains(&scheduled), "scheduled {scheduled}");
    // The fault really happened, and the generator kept its own clock.
    assert_eq!(
        r["faults"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r["faults"]
    );
    let g = &r["generator"];
    assert!(g["starts"].as_u64().unwrap_or(0) > 0, "{g}");
}

/// The same stall in the closed model (8 users paced at 100/s): what used to be reported.
/// Its slots missed during the stall are now counted as dropped instead of vanishing.
#[test]
fn the_closed_model_counts_the_paced_slots_it_missed_during_the_stall() {
    let text = STALL
        .replace("name: open-stall", "name: closed-stall")
        .replace(
            "  model: open\n  rate: 100\n  max_in_flight: 50\n",
            "  users: 8\n  rate_limit: 100\n",
        )
        .replace(
            "  - { metric: latency_p95, comparator: \">=\", threshold: 500ms }\n",
            "  - { metric: dropped_requests, comparator: \"<=\", threshold: 1% }\n",
        );
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = support::validate_in(dir.path(), "closed-stall", &text);
    assert_eq!(code, Some(1), "dropped_requests <= 1% must fail: {out}");
    let r = report(dir.path(), "closed-stall");
    let s = &r["summary"];
    let dropped = s["dropped"].as_u64().unwrap_or(0);
    // 2 s at 100/s, less what the 8 users sent before they all blocked.
    assert!(dropped >= 100, "dropped {dropped}: {s}");
    // Offered is what was scheduled; throughput is what was carried.
    let offered = s["offered_rps"].as_f64().unwrap_or(0.0);
    let throughput = s["throughput_rps"].as_f64().unwrap_or(0.0);
    assert!(
        offered > throughput + 5.0,
        "offered {offered}, throughput {throughput}"
    );
}

//! Server-side sources against real services: the `postgres` source's session counter agrees
//! with pooled-app's own `connections_opened` over a run, and a broken `fixtures.sql` stops the
//! run with its FILE:LINE:COLUMN before any app starts.

use crate::support::{report_json, validate_in};
use serde_json::Value;

/// pooled-app pooled and unpooled, sampled by its own API and by Postgres at the same ticks.
const AGREEMENT: &str = r#"
name: sources-agree
app:
  env: { DATABASE_POOL_SIZE: "10", DATABASE_POOL_MIN: "10", LOG_REQUESTS: "false" }
sources: [pooled-app, postgres]
load:
  model: open
  rate: 25
  warmup: 2s
  duration: 8s
  transactions:
    - { name: profile, path: "/api/users/{{rand:1..1000}}" }
arms:
  - { name: unpooled, env: { ENABLE_CONNECTION_POOLING: "false" } }
  - { name: pooled, env: { ENABLE_CONNECTION_POOLING: "true" } }
slas:
  - { metric: db_sessions_opened_per_request, comparator: ">=", threshold: 0.5, arm: unpooled }
  - { metric: db_sessions_opened_per_request, comparator: "<=", threshold: 0.05, arm: pooled }
  - { metric: db_connections_peak, comparator: "<=", threshold: 12, arm: pooled }
"#;

/// (Δ sessions at Postgres, Δ connections_opened of the app) between the first and the last
/// tick of measured load at which both sources answered.
fn deltas(series: &Value, load_end: f64) -> (i64, i64) {
    let db: Vec<(f64, i64)> = series["db"]
        .as_array()
        .expect("series.db")
        .iter()
        .filter_map(|s| Some((s["t"].as_f64()?, s["sessions"].as_i64()?)))
        .collect();
    let app: Vec<(f64, i64)> = series["server"]
        .as_array()
        .expect("series.server")
        .iter()
        .filter_map(|s| Some((s["t"].as_f64()?, s["pool"]["connections_opened"].as_i64()?)))
        .collect();
    // Both sources are read at the same tick, so their times are the same number.
    let both: Vec<(f64, i64, i64)> = db
        .iter()
        .filter(|(t, _)| (0.0..load_end).contains(t))
        .filter_map(|(t, s)| app.iter().find(|(u, _)| u == t).map(|(_, o)| (*t, *s, *o)))
        .collect();
    assert!(both.len() >= 5, "too few common ticks: {both:?}");
    let (first, last) = (both[0], both[both.len() - 1]);
    (last.1 - first.1, last.2 - first.2)
}

#[test]
fn postgres_sessions_agree_with_pooled_apps_connections_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out) = validate_in(dir.path(), "sources-agree", AGREEMENT);
    assert_eq!(code, Some(0), "{out}");
    let report = report_json(dir.path(), "sources-agree");
    for arm in ["unpooled", "pooled"] {
        let (sessions, opened) = deltas(&report["arm_series"][arm], 8.0);
        println!("{arm}: {sessions} sessions at Postgres, {opened} connections opened by the app");
        assert!(
            (sessions - opened).abs() <= 2,
            "{arm}: Postgres counted {sessions} sessions, pooled-app {opened} connections opened"
        );
        if arm == "unpooled" {
            // A connection per request at 25/s: the comparison is over real churn.
            assert!(opened >= 100, "{arm}: only {opened} connections opened");
        }
    }
}

#[test]
fn a_broken_sql_fixture_fails_with_its_position_before_the_app_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = dir.path().join("seed.sql");
    std::fs::write(&sql, "CREATE TABLE ok (id int);\nSELEC 1;\n").expect("write sql");
    let text = format!(
        "name: bad-fixture\napp:\n  command: [/bin/sleep, \"60\"]\nfixtures:\n  sql: {}\nsources: [postgres]\nload:\n  users: 1\n  duration: 1s\n  transactions: [{{name: a, path: /}}]\n",
        sql.display()
    );
    let (code, out) = validate_in(dir.path(), "bad-fixture", &text);
    assert_eq!(code, Some(2), "{out}");
    let want = format!(
        "{}:2:1: fixtures.sql: syntax error at or near \"SELEC\"",
        sql.display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("applying fixtures.sql"), "{out}");
    assert!(!out.contains("starting /bin/sleep"), "{out}");
}

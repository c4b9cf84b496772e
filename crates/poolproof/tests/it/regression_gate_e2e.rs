//! End to end through the real binaries (poolproof, pooled-app, Postgres, Redis): a baseline
//! saved from the normal app; the same scenario against its own baseline is not flagged; the
//! app slowed by a one-connection pool under concurrent load is flagged as a regression.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::workspace_root;

/// 16 concurrent users at 120 requests/s on a DB-bound route; the pool size comes from
/// $GATE_POOL_SIZE. Every Postgres answer is delayed 5 ms by the fault proxy (a database a
/// network hop away): on loopback a query takes ~0.3 ms, so one connection would serve the
/// whole load and the pool size could not matter at rates this 2-core host can generate.
/// With the delay, 10 connections keep up (p50 ~8.5 ms) and one connection saturates: the
/// closed loop of 16 users then waits ~250 ms per request and throughput drops to ~64/s.
/// 4 replicates of 4 s: enough for the bootstrap, ~50 s per run.
const SCENARIO: &str = r#"name: gate-e2e
description: regression gate end to end
app:
  instances: 1
  ready_timeout: 60s
  env:
    DATABASE_POOL_SIZE: "${GATE_POOL_SIZE:-10}"
    DATABASE_POOL_MIN: "1"
fixtures:
  users: 200
  buddy_requests: 400
load:
  users: 16
  ramp: 1s
  warmup: 1s
  duration: 4s
  rate_limit: 120
  transactions:
    - name: buddies
      weight: 1
      method: GET
      path: /api/buddies?user_id={{rand:1..200}}
      expect_status: 200
faults:
  - at: 0s
    for: 4s
    kind: db_latency
    latency: 5ms
replicates: 4
"#;

struct Env {
    dir: tempfile::TempDir,
    scenario: PathBuf,
}

impl Env {
    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    fn poolproof(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_poolproof"));
        c.current_dir(workspace_root())
            .env("TMPDIR", self.dir.path().join("tmp"))
            .env_remove("GATE_POOL_SIZE")
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdin(Stdio::null());
        c
    }

    /// `validate` with extra args; returns (exit code, stdout, stderr, run dir).
    fn validate(&self, extra: &[&str], pool: Option<&str>) -> (i32, String, String, PathBuf) {
        let before = self.run_dirs();
        let mut c = self.poolproof();
        c.arg("validate")
            .arg(&self.scenario)
            .arg("--reports-dir")
            .arg(self.reports())
            .args(extra);
        if let Some(p) = pool {
            c.env("GATE_POOL_SIZE", p);
        }
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("spawn poolproof: {e}"));
        let new: Vec<PathBuf> = self
            .run_dirs()
            .into_iter()
            .filter(|d| !before.contains(d))
            .collect();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(
            new.len(),
            1,
            "one new run dir expected: {new:?}\n{stdout}\n{stderr}"
        );
        (
            out.status.code().unwrap_or(-1),
            stdout,
            stderr,
            new[0].clone(),
        )
    }

    fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.reports().join("gate-e2e"))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn verdicts(cmp: &serde_json::Value) -> Vec<(String, String)> {
    cmp["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["metric"].as_str().unwrap_or("?").to_string(),
                        r["verdict"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn baseline_from_the_normal_app_flags_the_one_connection_pool_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap_or_else(|e| panic!("{e}"));
    let scenario = dir.path().join("gate-e2e.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let env = Env { dir, scenario };

    // 1. The normal app; its replicates land in report.json.
    let (code, out, err, base_run) = env.validate(&[], None);
    assert_eq!(code, 0, "{out}\n{err}");
    let report = json(&base_run.join("report.json"));
    let reps = report["replicates"].as_array().cloned().unwrap_or_default();
    assert_eq!(reps.len(), 4, "{}", report["replicates"]);
    assert!(reps
        .iter()
        .all(|r| r["load_generator"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.0));
    // Measuring order recorded per replicate (single arm: 1, 2, 3, 4).
    let order: Vec<(u64, u64)> = reps
        .iter()
        .map(|r| {
            (
                r["position"].as_u64().unwrap_or(0),
                r["index"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(order, [(1, 1), (2, 2), (3, 3), (4, 4)]);
    let md = std::fs::read_to_string(base_run.join("report.md")).unwrap_or_default();
    assert!(md.contains("## Host noise (replicate spread)"), "{md}");
    let html = std::fs::read_to_string(base_run.join("report.html")).unwrap_or_default();
    assert!(html.contains("Replicates (measuring order)"));
    assert!(html.contains("This run: 4 replicates"));

    // 2. Baseline.
    let out = env
        .poolproof()
        .args(["baseline", "save"])
        .arg(&base_run)
        .arg("--reports-dir")
        .arg(env.reports())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let baseline = env.reports().join("baselines/gate-e2e.json");
    let b = json(&baseline);
    assert_eq!(b["replicates"].as_array().map(Vec::len), Some(4));
    assert!(b["host"]["cpu_model"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let baseline_arg = baseline.to_string_lossy().into_owned();

    // Measured here (docs/regression-gating.md, "End to end"): between identical runs of this
    // scenario on this shared 2-core host (other builds running) the mean p95 drifted by up to
    // +40 % (9.2 vs 12.8 ms) and its replicate spread reached 36 %; at a 25 % tolerance 4 of 12
    // such pairs came out inconclusive. The gate gets the tolerance and spread limit one would
    // configure for such a host; the slowdown it must catch is ~30x in latency.
    let gate = [
        "--baseline",
        &baseline_arg,
        "--tolerance",
        "50%",
        "--erratic-cv",
        "40%",
        // The noise limits are tested in compare_cli.rs; on a shared host with builds beside
        // it CPU pressure stays above 90 % and would make every comparison here inconclusive.
        "--max-cpu-pressure",
        "100%",
        "--max-generator-late",
        "100%",
    ];

    // 3. The normal app against its own baseline: nothing regressed. Exit 4 is accepted only
    //    when the comparison itself says why it could not decide (a metric's interval reaching
    //    past the tolerance, or a saturated load generator), never as a silent pass.
    let (code, out, err, same_run) = env.validate(&gate, None);
    let cmp = json(&same_run.join("comparison.json"));
    println!("same app (exit {code}):\n{out}\n{err}");
    let same = verdicts(&cmp);
    assert!(
        !same.iter().any(|(_, v)| v == "regressed"),
        "{same:?}\n{out}"
    );
    assert_ne!(cmp["outcome"], "regressed", "{cmp}");
    match code {
        0 => assert_eq!(cmp["outcome"], "pass", "{cmp}"),
        4 => {
            assert_eq!(cmp["outcome"], "inconclusive", "{cmp}");
            let reason = cmp["outcome_reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("could not decide") || reason.contains("saturated"),
                "{reason}"
            );
        }
        _ => panic!("exit {code}: {out}\n{err}"),
    }
    assert!(std::fs::read_to_string(same_run.join("comparison.md"))
        .is_ok_and(|m| m.contains("| latency_p95 |")));
    // The comparison is in the run's own reports too.
    let md = std::fs::read_to_string(same_run.join("report.md")).unwrap_or_default();
    assert!(md.contains("## Regression gate: gate-e2e"), "{md}");
    assert!(md.contains("| latency_p95 |"), "{md}");
    let html = std::fs::read_to_string(same_run.join("report.html")).unwrap_or_default();
    assert!(html.contains("Per-replicate values, BASE vs NEW"));
    assert!(html.contains("<td><code>latency_p95</code></td>"));

    // 4. One connection for 16 users: flagged, exit 1.
    let (code, out, err, slow_run) = env.validate(&gate, Some("1"));
    let cmp = json(&slow_run.join("comparison.json"));
    println!("pool size 1 (exit {code}):\n{out}\n{err}");
    let settings = json(&slow_run.join("report.json"))["settings"]["app"]["env"].clone();
    assert_eq!(settings["DATABASE_POOL_SIZE"], "1", "{settings}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(cmp["outcome"], "regressed", "{cmp}");
    let slow = verdicts(&cmp);
    assert!(
        slow.iter()
            .any(|(m, v)| m.starts_with("latency_p") && v == "regressed"),
        "{slow:?}"
    );
    assert!(out.contains("**regressed**"), "{out}");
    let html = std::fs::read_to_string(slow_run.join("report.html")).unwrap_or_default();
    assert!(html.contains(">REGRESSED</span>"));
    assert!(html.contains(r#"<td class="failed">regressed</td>"#));
}

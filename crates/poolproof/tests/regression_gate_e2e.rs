//! End to end through the real binaries (poolproof, pooled-app, Postgres, Redis): a baseline
//! saved from the normal app; the same scenario against its own baseline is not flagged; the
//! app slowed by a one-connection pool under concurrent load is flagged as a regression.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("workspace root: {e}"))
}

/// 16 concurrent users on DB-bound routes; the pool size comes from $GATE_POOL_SIZE.
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
  rate_limit: 150
  transactions:
    - name: profile
      weight: 3
      method: GET
      path: /api/users/{{rand:1..200}}
      expect_status: 200
    - name: buddies
      weight: 1
      method: GET
      path: /api/buddies?user_id={{rand:1..200}}
      expect_status: 200
replicates: 3
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
    assert_eq!(reps.len(), 3, "{}", report["replicates"]);
    assert!(reps
        .iter()
        .all(|r| r["load_generator"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.0));
    let md = std::fs::read_to_string(base_run.join("report.md")).unwrap_or_default();
    assert!(md.contains("## Host noise (replicate spread)"), "{md}");

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
    assert_eq!(b["replicates"].as_array().map(Vec::len), Some(3));
    assert!(b["host"]["cpu_model"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let baseline_arg = baseline.to_string_lossy().into_owned();

    // This host is shared by several parallel builds, so run-to-run drift is far above a quiet
    // CI runner's: the gate gets the tolerance and spread limit one would configure here.
    let gate = [
        "--baseline",
        &baseline_arg,
        "--tolerance",
        "25%",
        "--erratic-cv",
        "40%",
    ];

    // 3. The normal app against its own baseline: nothing regressed.
    let (code, out, err, same_run) = env.validate(&gate, None);
    let cmp = json(&same_run.join("comparison.json"));
    println!("same app:\n{out}\n{err}");
    let same = verdicts(&cmp);
    assert!(
        !same.iter().any(|(_, v)| v == "regressed"),
        "{same:?}\n{out}"
    );
    assert!(code == 0 || code == 4, "exit {code}: {out}\n{err}");
    assert!(std::fs::read_to_string(same_run.join("comparison.md"))
        .is_ok_and(|m| m.contains("| latency_p95 |")));

    // 4. One connection for 16 users: flagged, exit 1.
    let (code, out, err, slow_run) = env.validate(&gate, Some("1"));
    let cmp = json(&slow_run.join("comparison.json"));
    println!("pool size 1:\n{out}\n{err}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(cmp["outcome"], "regressed", "{cmp}");
    let slow = verdicts(&cmp);
    assert!(
        slow.iter()
            .any(|(m, v)| m.starts_with("latency_p") && v == "regressed"),
        "{slow:?}"
    );
    assert!(out.contains("**regressed**"), "{out}");
}

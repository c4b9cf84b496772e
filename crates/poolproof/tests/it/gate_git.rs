//! `poolproof gate` end to end from git, through the real binaries (poolproof, pooled-app built
//! by cargo from two commits, Postgres, Redis): in a clone of this workspace, a head commit that
//! adds a 2 ms `pg_sleep` to the buddies route's database work is flagged against its parent
//! (exit 1, latency regressed); the same commit against itself passes (exit 0) without
//! building anything, from the gate's build cache. An unknown `--base` is a usage error.
//!
//! The builds go to a target directory of the test's own, seeded from the test's target
//! directory (hard links, so every compiled dependency is reused and only pooled-app
//! compiles): building in the shared one would replace its `release/pooled-app`, the binary
//! other tests run at the same time, with the slowed one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::support::workspace_root;

/// Runs git in `dir`; panics with its stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=poolproof-test"])
        .args(["-c", "user.email=test@poolproof.invalid"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The target directory this test binary was built into (`<target>/release/deps/it-…`).
fn own_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no target dir above {}", exe.display()))
}

/// Mirrors `src` into `dst`: pooled-app's own files (which the gate's builds rewrite) and
/// cargo's fingerprints are copied, everything else (compiled dependencies) hard-linked.
fn seed(src: &Path, dst: &Path, copy_all: bool) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    let Ok(entries) = std::fs::read_dir(src) else {
        return;
    };
    for e in entries.flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            seed(&from, &to, copy_all);
        } else if ft.is_file() {
            let own = copy_all || name.contains("pooled_app") || name.contains("pooled-app");
            let r = if own {
                std::fs::copy(&from, &to).map(|_| ())
            } else {
                std::fs::hard_link(&from, &to)
            };
            r.unwrap_or_else(|e| panic!("{} → {}: {e}", from.display(), to.display()));
        }
    }
}

/// A target directory whose `release/` reuses the test's compiled dependencies.
fn seeded_target(dir: &Path) -> PathBuf {
    let src = own_target_dir().join("release");
    let dst = dir.join("release");
    seed(&src.join("deps"), &dst.join("deps"), false);
    seed(&src.join("build"), &dst.join("build"), false);
    seed(&src.join(".fingerprint"), &dst.join(".fingerprint"), true);
    // pooled-app's incremental caches only: rustc writes new session directories and never
    // rewrites a file in place, so links are safe and save most of a cold compile.
    if let Ok(rd) = std::fs::read_dir(src.join("incremental")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("pooled_app-") {
                seed(
                    &e.path(),
                    &dst.join("incremental").join(e.file_name()),
                    false,
                );
            }
        }
    }
    dir.to_path_buf()
}

struct Gate {
    code: i32,
    stderr: String,
    comparison: serde_json::Value,
}

fn gate(repo: &Path, target: &Path, reports: &Path, scenario: &Path, base: &str) -> Gate {
    let before = run_dirs(reports);
    let out = Command::new(env!("CARGO_BIN_EXE_poolproof"))
        .args(["gate", "--base", base, "--replicates", "4"])
        // Short replicates on a shared 2-core host: the base's p50 spread reached cv 16.6 %
        // (above the default 15 % erratic limit) in the first run of this test.
        .args(["--tolerance", "20%", "--erratic-cv", "40%"])
        // This test proves the paired judgement, not the noise limits: on a host with other
        // builds beside it, CPU pressure stays above 90 % (docs/regression-gating.md, "Noise
        // limits"), which would make every run inconclusive.
        .args(["--max-cpu-pressure", "100%", "--max-generator-late", "100%"])
        .arg("--reports-dir")
        .arg(reports)
        .arg(scenario)
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn poolproof: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let new: Vec<PathBuf> = run_dirs(reports)
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert_eq!(new.len(), 1, "one new run dir: {new:?}\n{stdout}\n{stderr}");
    let path = new[0].join("comparison.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}\n{stderr}", path.display()));
    assert!(new[0].join("comparison.md").is_file());
    Gate {
        code: out.status.code().unwrap_or(-1),
        stderr: format!("{stdout}\n{stderr}"),
        comparison: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn run_dirs(reports: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(reports.join("gate"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

fn verdict(c: &serde_json::Value, metric: &str) -> (String, f64) {
    c["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["metric"] == metric))
        .map(|r| {
            (
                r["verdict"].as_str().unwrap_or("?").to_owned(),
                r["change"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .unwrap_or_else(|| panic!("no {metric} row in {c}"))
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn gate_flags_a_2ms_query_built_from_git_and_passes_a_commit_against_itself_from_cache() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let root = workspace_root();
    let repo = tmp.path().join("repo");
    let repo_arg = repo.to_string_lossy().into_owned();
    let root_arg = root.to_string_lossy().into_owned();
    git(
        tmp.path(),
        &["clone", "--quiet", "--shared", &root_arg, &repo_arg],
    );
    let base = git(&root, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "--quiet", "--detach", &base]);
    // The head: 2 ms more database work on every buddies request.
    let route = repo.join("crates/pooled-app/src/workload/buddies.rs");
    let src = std::fs::read_to_string(&route).unwrap_or_else(|e| panic!("{e}"));
    let anchor = "    let t = Instant::now();\n    let rows = conn\n";
    assert!(
        src.contains(anchor),
        "buddies.rs changed: update the anchor"
    );
    let slowed = src.replacen(
        anchor,
        "    let t = Instant::now();\n    let _ = sqlx::query(\"SELECT pg_sleep(0.002)\").execute(conn.as_mut()).await;\n    let rows = conn\n",
        1,
    );
    std::fs::write(&route, slowed).unwrap_or_else(|e| panic!("{e}"));
    git(
        &repo,
        &["commit", "--quiet", "-am", "slow the buddies route by 2 ms"],
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);

    let target = seeded_target(&tmp.path().join("target"));
    let reports = tmp.path().join("reports");
    // The scenario of this work tree, outside the clone (it may not be committed yet).
    let scenario = tmp.path().join("gate.yaml");
    std::fs::copy(root.join("scenarios/gate.yaml"), &scenario)
        .unwrap_or_else(|e| panic!("scenarios/gate.yaml: {e}"));

    // An unknown ref: one line naming it, exit 2, nothing built.
    let out = Command::new(env!("CARGO_BIN_EXE_poolproof"))
        .args(["gate", "--base", "no-such-ref"])
        .arg(&scenario)
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap_or_else(|e| panic!("spawn poolproof: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.trim().lines().count() == 1 && err.starts_with("--base no-such-ref: "),
        "{err}"
    );

    // Head (2 ms slower) against its parent: both built from git, the regression flagged.
    let g = gate(&repo, &target, &reports, &scenario, &base);
    assert_eq!(g.code, 1, "{}", g.stderr);
    assert_eq!(
        g.stderr.matches("building pooled-app at").count(),
        2,
        "{}",
        g.stderr
    );
    assert_eq!(g.comparison["outcome"], "regressed", "{}", g.stderr);
    assert_eq!(g.comparison["design"], "paired");
    let (v, change) = verdict(&g.comparison, "latency_p50");
    assert_eq!(v, "regressed", "{}", g.comparison);
    assert!(change > 0.3, "latency_p50 change {change}");
    let cached = |c: &str| target.join("gate-cache").join(c).join("pooled-app");
    assert!(cached(&base).is_file() && cached(&head).is_file());
    let stamps = (mtime(&cached(&base)), mtime(&cached(&head)));
    // The base's worktree is gone.
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);

    // The head against itself: both sides from the cache (cargo not run), no regression.
    let g = gate(&repo, &target, &reports, &scenario, "HEAD");
    assert_eq!(g.code, 0, "{}\n{}", g.stderr, g.comparison);
    assert!(!g.stderr.contains("building pooled-app"), "{}", g.stderr);
    assert_eq!(g.stderr.matches(": cached ").count(), 2, "{}", g.stderr);
    assert_eq!(g.comparison["outcome"], "pass");
    assert_eq!(stamps, (mtime(&cached(&base)), mtime(&cached(&head))));
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
}

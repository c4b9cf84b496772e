//! Helpers shared by the tests that run the `poolproof` binary on a scenario.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (scenarios, fixtures and the pooled-app binary are found from there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs `poolproof validate` on `text`, written as `<name>.yaml` in a temp dir with its reports
/// beside it; returns the exit code and stdout+stderr.
pub fn validate(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    validate_in(dir.path(), name, text)
}

/// [`validate`] in `dir`: the reports stay in `dir/reports/<scenario name>/<run id>/`.
pub fn validate_in(dir: &Path, name: &str, text: &str) -> (Option<i32>, String) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write scenario");
    let out = Command::new(env!("CARGO_BIN_EXE_poolproof"))
        .arg("validate")
        .arg(&path)
        .arg("--reports-dir")
        .arg(dir.join("reports"))
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .expect("run poolproof");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// Installs fixtures/apps/asyncpg-app's venv (ci/ensure-asyncpg-app.sh, idempotent) so that
/// scenarios running it can start it.
pub fn ensure_asyncpg_app() {
    let out = Command::new(workspace_root().join("ci/ensure-asyncpg-app.sh"))
        .stdin(Stdio::null())
        .output()
        .expect("run ci/ensure-asyncpg-app.sh");
    assert!(
        out.status.success(),
        "ci/ensure-asyncpg-app.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The report.json of the one run under `dir/reports/<name>/`.
pub fn report_json(dir: &Path, name: &str) -> serde_json::Value {
    let runs = dir.join("reports").join(name);
    let run = std::fs::read_dir(&runs)
        .expect("run directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("report.json").is_file())
        .unwrap_or_else(|| panic!("no report.json under {}", runs.display()));
    let text = std::fs::read_to_string(run.join("report.json")).expect("read report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

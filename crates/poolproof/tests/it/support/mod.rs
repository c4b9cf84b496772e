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

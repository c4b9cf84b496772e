//! Finding the `pooled-app` binary: the scenario's `app.binary`, else the one next to the
//! running poolproof binary, else a `cargo build --release -p pooled-app` when run inside
//! the workspace.

use super::AppError;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const APP_BIN: &str = "pooled-app";

/// Returns the path of the app binary to run.
///
/// `configured` is `app.binary` from the scenario (relative paths are taken from the current
/// directory, like the other paths on the command line). When it is not given, the binary next to
/// `current_exe` is used (both are built into the same `target/release`), and failing that, the
/// app is built with cargo if the current directory is the poolproof workspace.
pub async fn locate_binary(configured: Option<&Path>) -> Result<PathBuf, AppError> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(AppError::BinaryMissing {
                path: path.to_path_buf(),
            })
        };
    }
    let beside = beside_current_exe();
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let workspace = std::env::current_dir()
        .ok()
        .filter(|d| d.join("crates").join(APP_BIN).join("Cargo.toml").is_file());
    match workspace {
        Some(dir) => build(&dir).await,
        None => Err(AppError::NotFound {
            searched: beside.unwrap_or_else(|| PathBuf::from(APP_BIN)),
        }),
    }
}

/// `target/release/pooled-app` when poolproof runs as `target/release/poolproof`; test binaries
/// live one level deeper (`target/release/deps`), so their parent is tried as well.
fn beside_current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let here = dir.join(APP_BIN);
    if here.is_file() || dir.file_name() != Some("deps".as_ref()) {
        return Some(here);
    }
    dir.parent().map(|d| d.join(APP_BIN))
}

async fn build(workspace: &Path) -> Result<PathBuf, AppError> {
    eprintln!("poolproof: building pooled-app (cargo build --release -p pooled-app)");
    let output =
        tokio::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                APP_BIN,
                "--message-format",
                "short",
            ])
            .current_dir(workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| AppError::Build(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(AppError::Build(
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let path = target.join("release").join(APP_BIN);
    if path.is_file() {
        Ok(path)
    } else {
        Err(AppError::BinaryMissing { path })
    }
}

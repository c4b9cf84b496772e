//! Test support, one module per part: real Postgres and Redis from `poolproof-services`, the app
//! run in-process, the Slack/Resend stand-in receiver and a small load loop.
#![allow(dead_code)]

pub mod app;
pub mod load;
pub mod receiver;
pub mod services;

/// The repository's root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `ci/<script>` (an `ensure-*.sh` installer) and returns the path it prints.
pub fn ensure(script: &str) -> std::path::PathBuf {
    let out = std::process::Command::new(workspace_root().join("ci").join(script))
        .output()
        .expect("run ci script");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

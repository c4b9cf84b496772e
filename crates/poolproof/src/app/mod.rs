//! Bringing up the system under test: prepare its database (`fixtures.sql`), locate (or build)
//! the `pooled-app` binary or take the scenario's `app.command`, start N instances with the
//! scenario's environment, wait until each is ready, and stop them all.

pub mod cpu;
pub mod fixtures;
pub mod host;
mod instance;
mod locate;
pub mod log_trim;
pub mod meter;

pub use instance::{free_port, wait_ready_url, AppInstance, InstanceSpec};
pub use locate::locate_binary;

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong while bringing the app up (all are infrastructure failures, exit 3).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("app binary {path} does not exist (set app.binary or build pooled-app)")]
    BinaryMissing { path: PathBuf },
    #[error("pooled-app not found next to poolproof ({searched}) and not in a cargo workspace to build it")]
    NotFound { searched: PathBuf },
    #[error("`cargo build --release -p pooled-app` failed: {0}")]
    Build(String),
    #[error("could not start app instance {instance} ({binary}): {source}")]
    Spawn {
        instance: usize,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("could not open the log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not find a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("app instance {instance} exited during start-up ({status}); last log lines:\n{tail}")]
    Exited {
        instance: usize,
        status: String,
        tail: String,
    },
    #[error("app at {url} not ready within {timeout:?} (last: {last})")]
    ExternalNotReady {
        url: String,
        timeout: Duration,
        last: String,
    },
    #[error(
        "app instance {instance} not ready at {url} within {timeout:?} (last: {last}); log: {log}"
    )]
    NotReady {
        instance: usize,
        url: String,
        timeout: Duration,
        last: String,
        log: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(dir: &std::path::Path, binary: &str, args: &[&str]) -> InstanceSpec {
        let port = free_port().expect("port");
        InstanceSpec {
            number: 1,
            binary: PathBuf::from(binary),
            args: args.iter().map(|a| a.to_string()).collect(),
            ready: "/readyz".to_owned(),
            env: BTreeMap::from([("BIND_ADDR".to_owned(), format!("127.0.0.1:{port}"))]),
            port,
            port_env: None,
            log_path: dir.join("app-1.log"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_that_exits_at_start_up_is_reported_with_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = spec(
            dir.path(),
            "/bin/sh",
            &["-c", "echo 'bad DATABASE_URL postgres://u:pw@h/db'; exit 3"],
        );
        let mut inst = AppInstance::spawn(&s).expect("spawn");
        let err = inst
            .wait_ready(&reqwest::Client::new(), Duration::from_secs(5))
            .await
            .expect_err("sh never becomes ready");
        let msg = err.to_string();
        assert!(matches!(err, AppError::Exited { instance: 1, .. }), "{msg}");
        assert!(
            msg.contains("exit status: 3") && msg.contains("bad DATABASE_URL"),
            "{msg}"
        );
        assert!(
            msg.contains("u:***@h") && !msg.contains("pw"),
            "password leaked: {msg}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_port_taken_before_the_app_binds_it_is_replaced_by_a_fresh_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A real server that reads its port from PORT, started on a port another process holds.
        let mut s = spec(
            dir.path(),
            "/bin/sh",
            &[
                "-c",
                "exec python3 -m http.server --bind 127.0.0.1 \"$PORT\"",
            ],
        );
        let held = std::net::TcpListener::bind(("127.0.0.1", s.port)).expect("hold the port");
        s.ready = "/".to_owned();
        s.port_env = Some("PORT".to_owned());
        s.env.insert("PORT".to_owned(), s.port.to_string());
        let mut inst = AppInstance::spawn(&s).expect("spawn");
        inst.wait_ready(&reqwest::Client::new(), Duration::from_secs(20))
            .await
            .expect("ready on another port");
        let held_port = held.local_addr().expect("addr").port();
        assert!(
            !inst.url.ends_with(&format!(":{held_port}")),
            "{} is still the taken port",
            inst.url
        );
        let body = reqwest::get(format!("{}/", inst.url))
            .await
            .expect("the restarted server answers");
        assert!(body.status().is_success());
        inst.stop(Duration::from_secs(2)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readiness_has_a_deadline_and_drop_kills_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A process group of two: sh and its child sleep; both must go.
        let script = format!(
            "sleep 60 & echo $! > {}/child.pid; wait",
            dir.path().display()
        );
        let s = spec(dir.path(), "/bin/sh", &["-c", &script]);
        let mut inst = AppInstance::spawn(&s).expect("spawn");
        let started = std::time::Instant::now();
        let err = inst
            .wait_ready(&reqwest::Client::new(), Duration::from_millis(600))
            .await
            .expect_err("nothing listens on the port");
        assert!(matches!(err, AppError::NotReady { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4));
        let pid = inst.pid().expect("pid");
        let grandchild = std::fs::read_to_string(dir.path().join("child.pid")).expect("child pid");
        drop(inst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for p in [pid.to_string(), grandchild.trim().to_owned()] {
            let state = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // Gone, or a zombie awaiting its reaper: either way not running.
            assert!(
                state.is_empty() || state.contains(") Z"),
                "still running: {state}"
            );
        }
    }
}

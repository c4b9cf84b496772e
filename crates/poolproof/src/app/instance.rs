//! One running app process (pooled-app or the scenario's `app.command`): spawned in its own
//! process group with its output in a log file, polled on its readiness path until ready, and killed (the whole group) on stop or drop; a
//! stopped instance's log is trimmed to its first and last part ([`super::log_trim`]).

use super::AppError;
use crate::teardown;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Variables passed through from poolproof's own environment.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// How to start one instance.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// 1-based instance number, used in the log file name and messages.
    pub number: usize,
    pub binary: PathBuf,
    /// Command-line arguments (pooled-app takes none; configuration is its environment).
    pub args: Vec<String>,
    /// The readiness path polled until it answers 200 (`/readyz` for pooled-app).
    pub ready: String,
    /// The complete environment overrides (DATABASE_URL, BIND_ADDR, scenario env, arm env...).
    pub env: BTreeMap<String, String>,
    /// Port the instance binds on 127.0.0.1 (must match BIND_ADDR in `env`).
    pub port: u16,
    /// The variable besides `BIND_ADDR` that tells an `app.command` its port.
    pub port_env: Option<String>,
    pub log_path: PathBuf,
}

/// Start-ups tried per instance when the port turns out taken (another process bound it
/// between the pick and the app's bind).
const PORT_ATTEMPTS: u32 = 3;

impl InstanceSpec {
    /// The same instance on another port: `BIND_ADDR` and `port_env` follow where they hold
    /// the port poolproof chose (a scenario that fixed its own is left alone).
    fn with_port(&self, port: u16) -> InstanceSpec {
        let mut spec = self.clone();
        let old_addr = format!("127.0.0.1:{}", self.port);
        if spec.env.get("BIND_ADDR") == Some(&old_addr) {
            spec.env
                .insert("BIND_ADDR".to_owned(), format!("127.0.0.1:{port}"));
        }
        if let Some(var) = &self.port_env {
            if spec.env.get(var) == Some(&self.port.to_string()) {
                spec.env.insert(var.clone(), port.to_string());
            }
        }
        spec.port = port;
        spec
    }
}

/// A started instance; dropping it kills its process group.
#[derive(Debug)]
pub struct AppInstance {
    pub number: usize,
    pub url: String,
    pub log_path: PathBuf,
    ready: String,
    child: Option<Child>,
    pgid: Option<Pid>,
    /// How it was started, to start it again on another port after a clash.
    spec: InstanceSpec,
    /// Start-ups so far.
    attempts: u32,
}

/// A free TCP port on 127.0.0.1 (checked, released: the app binds it right after; below the
/// ephemeral range, see [`poolproof_services::free_loopback_port`]).
pub fn free_port() -> Result<u16, AppError> {
    poolproof_services::free_loopback_port().map_err(AppError::Port)
}

impl AppInstance {
    /// Spawns the instance; does not wait for readiness (see [`AppInstance::wait_ready`]).
    pub fn spawn(spec: &InstanceSpec) -> Result<Self, AppError> {
        let log = std::fs::File::create(&spec.log_path).map_err(|source| AppError::Log {
            path: spec.log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| AppError::Log {
            path: spec.log_path.clone(),
            source,
        })?;
        let mut cmd = Command::new(&spec.binary);
        // A clean environment: the run's settings only, so a variable left in the user's shell
        // (say DATABASE_POOL_SIZE) cannot change what is measured.
        cmd.args(&spec.args)
            .env_clear()
            .envs(
                INHERITED
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Own process group: a terminal's Ctrl-C reaches poolproof only, which then stops the
            // instances in order; and killpg reaches anything the app may have spawned.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: die_with_parent is async-signal-safe; an instance never outlives a SIGKILLed
        // harness.
        unsafe {
            cmd.pre_exec(teardown::die_with_parent);
        }
        let child = cmd.spawn().map_err(|source| AppError::Spawn {
            instance: spec.number,
            binary: spec.binary.clone(),
            source,
        })?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        if let Some(pgid) = pgid {
            teardown::register_process_group(pgid);
        }
        Ok(Self {
            number: spec.number,
            url: format!("http://127.0.0.1:{}", spec.port),
            log_path: spec.log_path.clone(),
            ready: spec.ready.clone(),
            child: Some(child),
            pgid,
            spec: spec.clone(),
            attempts: 1,
        })
    }

    /// After an exit at start-up: if the log says the port was taken, the instance started
    /// again on a fresh port (true); otherwise false.
    fn restart_after_port_clash(&mut self, tail: &str) -> Result<bool, AppError> {
        if !poolproof_services::says_port_taken(tail) || self.attempts >= PORT_ATTEMPTS {
            return Ok(false);
        }
        let port = free_port()?;
        tracing::debug!(
            "app instance {}: port {} was taken at start-up; starting again on {port}",
            self.number,
            self.spec.port
        );
        let mut fresh = AppInstance::spawn(&self.spec.with_port(port))?;
        fresh.attempts = self.attempts + 1;
        // The old instance has exited; replacing it releases its process group.
        *self = fresh;
        Ok(true)
    }

    /// The process id while the instance runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Polls `GET <ready path>` until it answers 200 (pass or warn), the process exits, or
    /// `timeout` passes.
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(), AppError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let tail = log_tail(&self.log_path, 8);
                    if self.restart_after_port_clash(&tail)? {
                        continue;
                    }
                    return Err(AppError::Exited {
                        instance: self.number,
                        status: status.to_string(),
                        tail,
                    });
                }
            }
            let last = match probe_ready(client, &self.url, &self.ready).await {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                return Err(AppError::NotReady {
                    instance: self.number,
                    url: format!("{}{}", self.url, self.ready),
                    timeout,
                    last,
                    log: self.log_path.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the instance: SIGTERM to its group, up to `grace` to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            if let Some(pgid) = self.pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
        }
        self.release_group();
        match super::log_trim::trim_middle(&self.log_path, super::log_trim::KEEP_EACH_END) {
            Ok(0) => {}
            Ok(dropped) => tracing::debug!(
                "app instance {}: {dropped} bytes of its log dropped (first and last part kept)",
                self.number
            ),
            Err(e) => tracing::warn!(
                "app instance {}: could not trim its log {}: {e}",
                self.number,
                self.log_path.display()
            ),
        }
    }

    fn release_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // Anything left in the group (the app's own children) goes too.
            let _ = killpg(pgid, Signal::SIGKILL);
            teardown::unregister_process_group(pgid);
        }
    }
}

impl Drop for AppInstance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pgid) = self.pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            // tokio reaps the killed child in the background (kill_on_drop).
            let _ = child.start_kill();
        }
        self.release_group();
    }
}

/// Polls `GET <base><ready>` of an app poolproof did not start (external provider) until it
/// answers 200 or `timeout` passes.
pub async fn wait_ready_url(
    client: &reqwest::Client,
    base: &str,
    ready: &str,
    timeout: Duration,
) -> Result<(), AppError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe_ready(client, base, ready).await {
            Ok(()) => return Ok(()),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(AppError::ExternalNotReady {
                url: crate::redact::redact_urls(base),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One readiness probe: Ok on 200, else a short reason.
async fn probe_ready(client: &reqwest::Client, base: &str, ready: &str) -> Result<(), String> {
    match client
        .get(format!("{base}{ready}"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) if e.is_connect() => Err("connection refused".into()),
        Err(e) if e.is_timeout() => Err("no answer within 2s".into()),
        Err(_) => Err("request failed".into()),
    }
}

/// The last `n` lines of a log file, redacted, for error messages.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    let tail = lines.into_iter().rev().collect::<Vec<_>>().join("\n");
    crate::redact::redact_urls(&tail)
}

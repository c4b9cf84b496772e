//! Where generator shards run: `local` (processes of this binary on this machine), `swarm`
//! (a Docker Swarm replicated job from a locally built image holding this binary, on the host
//! network) or `kubernetes` (an Indexed Job, rendered here; applied with kubectl). Each
//! launch is torn down when dropped: processes killed, services, secrets and a swarm this run
//! created removed, also on an error, Ctrl-C or a panic.

use crate::scenario::GeneratorEngine;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a launch needs to know.
pub struct LaunchSpec<'a> {
    pub count: u32,
    /// The coordinator's URL as the shards reach it.
    pub coordinator_url: String,
    /// The run key (passed by environment, never on a command line or in a manifest).
    pub key: &'a str,
    /// Where shard logs go (local engine).
    pub log_dir: &'a Path,
    /// Name stem for services and jobs.
    pub run_name: String,
}

/// Shards running on an engine.
pub enum Launched {
    Local(LocalShards),
    Swarm(SwarmJob),
    Kubernetes(KubeJob),
}

/// An engine could not start the shards (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("generators ({engine}): {message}")]
pub struct EngineError {
    pub engine: &'static str,
    pub message: String,
}

fn err(engine: &'static str, message: impl Into<String>) -> EngineError {
    EngineError {
        engine,
        message: message.into(),
    }
}

/// Starts `spec.count` shards on `engine`.
pub async fn launch(
    engine: GeneratorEngine,
    spec: &LaunchSpec<'_>,
) -> Result<Launched, EngineError> {
    match engine {
        GeneratorEngine::Local => LocalShards::start(spec).map(Launched::Local),
        GeneratorEngine::Swarm => SwarmJob::start(spec).await.map(Launched::Swarm),
        GeneratorEngine::Kubernetes => KubeJob::start(spec).await.map(Launched::Kubernetes),
    }
}

impl Launched {
    /// Shards whose process or task ended, by the name they register with, and how.
    ///
    /// Asked four times a second. Each query of a remote engine is a CLI process (`docker
    /// service ps` costs ~27 ms of CPU here), which on a small host steals the cores the app
    /// and the shards measure on: four a second put 2-5 ms on every second's p99. So the
    /// remote engines are queried on every call only while a shard has yet to register (a
    /// task rejected before it ran has no other sign); after that, Swarm is queried when its
    /// event stream reports a shard container's death, and Kubernetes every few seconds.
    /// Heartbeats catch a dead shard either way; the query adds how it ended.
    pub async fn exited(&mut self, awaiting_registration: bool) -> Vec<(String, String)> {
        match self {
            Launched::Local(l) => l.exited(),
            Launched::Swarm(s) => s.exited(awaiting_registration).await,
            Launched::Kubernetes(k) => k.exited(awaiting_registration).await,
        }
    }

    /// Where to look, for messages.
    pub fn describe(&self) -> String {
        match self {
            Launched::Local(l) => format!("local shard logs in {}", l.log_dir.display()),
            Launched::Swarm(s) => format!("swarm service {}", s.service),
            Launched::Kubernetes(k) => format!("kubernetes job {}", k.job),
        }
    }
}

/// The shard name a local shard registers with (its pid).
pub fn local_name(pid: u32) -> String {
    format!("pid {pid}")
}

/// Local shards: this binary's `generate`, one process group each, killed when dropped (and
/// by the panic hook's registry, and by the kernel if poolproof dies: parent-death signal).
pub struct LocalShards {
    children: Vec<(std::process::Child, PathBuf)>,
    log_dir: PathBuf,
}

impl LocalShards {
    fn start(spec: &LaunchSpec<'_>) -> Result<LocalShards, EngineError> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().map_err(|e| err("local", format!("own binary: {e}")))?;
        std::fs::create_dir_all(spec.log_dir)
            .map_err(|e| err("local", format!("{}: {e}", spec.log_dir.display())))?;
        let mut shards = LocalShards {
            children: Vec::new(),
            log_dir: spec.log_dir.to_path_buf(),
        };
        for i in 0..spec.count {
            let log = spec.log_dir.join(format!("shard-{i}.log"));
            let file = std::fs::File::create(&log)
                .map_err(|e| err("local", format!("{}: {e}", log.display())))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("generate")
                .env("POOLPROOF_COORDINATOR", &spec.coordinator_url)
                .env("POOLPROOF_RUN_KEY", spec.key)
                .env_remove("POOLPROOF_GENERATOR_NAME")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .process_group(0);
            // SAFETY: die_with_parent is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(crate::teardown::die_with_parent);
            }
            let child = cmd
                .spawn()
                .map_err(|e| err("local", format!("{}: {e}", exe.display())))?;
            crate::teardown::register_process_group(nix::unistd::Pid::from_raw(child.id() as i32));
            shards.children.push((child, log));
        }
        Ok(shards)
    }

    fn exited(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (child, log) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                // The coordinator ignores this for a shard that sent its result first.
                let pid = child.id();
                let last = std::fs::read_to_string(&*log)
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                out.push((local_name(pid), format!("{status}; last log line: {last}")));
            }
        }
        out
    }
}

impl Drop for LocalShards {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            crate::teardown::unregister_process_group(pgid);
        }
    }
}

/// Runs a command to completion; its trimmed stdout, or an error with its stderr.
async fn run(engine: &'static str, program: &str, args: &[&str]) -> Result<String, EngineError> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| err(engine, format!("{program}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Err(err(
            engine,
            format!(
                "`{program} {}` failed ({}): {line}",
                args.first().copied().unwrap_or(""),
                out.status
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The default image name for shards: this binary, in an image built on this machine.
pub const IMAGE_REPO: &str = "poolproof/generator";

/// Builds (once per binary) an image holding this binary and the shared libraries it loads,
/// imported from a root filesystem like the Postgres and Redis images (no registry here).
pub async fn ensure_image(engine: &'static str) -> Result<String, EngineError> {
    let exe = std::env::current_exe().map_err(|e| err(engine, format!("own binary: {e}")))?;
    let meta =
        std::fs::metadata(&exe).map_err(|e| err(engine, format!("{}: {e}", exe.display())))?;
    let stamp = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let tag = format!(
        "{IMAGE_REPO}:{}-{:x}",
        env!("CARGO_PKG_VERSION"),
        stamp ^ meta.len()
    );
    if run(engine, "docker", &["image", "inspect", &tag])
        .await
        .is_ok()
    {
        return Ok(tag);
    }
    let root = tempfile::tempdir().map_err(|e| err(engine, format!("temp dir: {e}")))?;
    let copy = |from: &Path, to: &Path| -> Result<(), EngineError> {
        let dest = root.path().join(to.strip_prefix("/").unwrap_or(to));
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(|e| err(engine, format!("{}: {e}", p.display())))?;
        }
        std::fs::copy(from, &dest)
            .map(|_| ())
            .map_err(|e| err(engine, format!("{}: {e}", from.display())))
    };
    copy(&exe, Path::new("/poolproof"))?;
    let ldd = run(engine, "ldd", &[&exe.to_string_lossy()]).await?;
    for lib in ldd.lines().filter_map(shared_library_path) {
        let real = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.clone());
        copy(&real, &lib)?;
    }
    // rustls (reqwest, goose) loads the system's CA certificates even for plain HTTP.
    for certs in ["/etc/ssl/certs/ca-certificates.crt"] {
        if Path::new(certs).exists() {
            copy(Path::new(certs), Path::new(certs))?;
        }
    }
    std::fs::create_dir_all(root.path().join("tmp"))
        .map_err(|e| err(engine, format!("tmp: {e}")))?;
    let script = format!(
        "tar -C '{}' -c . | docker import --change 'ENTRYPOINT [\"/poolproof\"]' - '{tag}' >/dev/null",
        root.path().display()
    );
    run(engine, "bash", &["-o", "pipefail", "-c", &script]).await?;
    // One image per build of the binary: earlier builds' images are dead weight (one in use
    // by another run refuses removal, which is fine).
    if let Ok(tags) = run(
        engine,
        "docker",
        &[
            "image",
            "ls",
            IMAGE_REPO,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
    )
    .await
    {
        for old in tags.lines().filter(|t| *t != tag) {
            let _ = run(engine, "docker", &["image", "rm", old]).await;
        }
    }
    Ok(tag)
}

/// The library path in one line of `ldd` output (`libc.so.6 => /lib/…/libc.so.6 (0x…)` or
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`); `None` for the vDSO.
fn shared_library_path(line: &str) -> Option<PathBuf> {
    let line = line.trim();
    let path = match line.split_once("=>") {
        Some((_, rest)) => rest.split_whitespace().next()?,
        None => line.split_whitespace().next()?,
    };
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// How long after a shard container's death its task's state is queried: Swarm updates it
/// a moment after the container exits.
const TASK_STATE_SETTLES: std::time::Duration = std::time::Duration::from_secs(3);

/// How often a Kubernetes job's pods are queried once every shard has registered.
const KUBERNETES_QUERY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A Docker Swarm replicated job of shards on the host network.
pub struct SwarmJob {
    service: String,
    /// This run initialised the swarm, so it leaves it again.
    created_swarm: bool,
    /// `docker events` for this run's shard containers dying: a line per death.
    deaths: Option<DeathWatch>,
    /// Query the tasks until then: the task's state follows its container's death.
    query_until: Option<std::time::Instant>,
}

/// A `docker events` process reporting this run's shard containers as they die.
struct DeathWatch {
    _events: tokio::process::Child,
    died: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl DeathWatch {
    fn start(owner_label: &str) -> Result<DeathWatch, EngineError> {
        use tokio::io::AsyncBufReadExt;
        let label = format!("label={owner_label}");
        let mut cmd = tokio::process::Command::new("docker");
        cmd.args([
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=die",
            "--filter",
            &label,
            "--format",
            "{{.ID}}",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        // SAFETY: die_with_parent is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(crate::teardown::die_with_parent);
        }
        let mut events = cmd
            .spawn()
            .map_err(|e| err("swarm", format!("docker events: {e}")))?;
        let stdout = events
            .stdout
            .take()
            .ok_or_else(|| err("swarm", "docker events: no output pipe"))?;
        let (tx, died) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(_)) = lines.next_line().await {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        Ok(DeathWatch {
            _events: events,
            died,
        })
    }
}

impl SwarmJob {
    async fn start(spec: &LaunchSpec<'_>) -> Result<SwarmJob, EngineError> {
        const E: &str = "swarm";
        let state = run(
            E,
            "docker",
            &["info", "--format", "{{.Swarm.LocalNodeState}}"],
        )
        .await?;
        let created_swarm = state != "active";
        if created_swarm {
            run(
                E,
                "docker",
                &["swarm", "init", "--advertise-addr", "127.0.0.1"],
            )
            .await?;
        }
        let owner = format!("poolproof.generators={}", std::process::id());
        let mut job = SwarmJob {
            service: String::new(),
            created_swarm,
            deaths: None,
            query_until: None,
        };
        // Before the service, so that no death is missed; after `job`, so that a failure
        // still leaves the swarm this run created.
        job.deaths = Some(DeathWatch::start(&owner)?);
        job.service = spec.run_name.clone();
        let image = ensure_image(E).await?;
        let replicas = spec.count.to_string();
        let coordinator = format!("POOLPROOF_COORDINATOR={}", spec.coordinator_url);
        let key = format!("POOLPROOF_RUN_KEY={}", spec.key);
        let created = run(
            E,
            "docker",
            &[
                "service",
                "create",
                "--detach",
                "--quiet",
                "--name",
                &job.service,
                "--mode",
                "replicated-job",
                "--replicas",
                &replicas,
                "--max-concurrent",
                &replicas,
                "--restart-condition",
                "none",
                "--network",
                "host",
                "--label",
                &owner,
                "--container-label",
                &owner,
                "--env",
                &coordinator,
                "--env",
                &key,
                "--env",
                "POOLPROOF_GENERATOR_NAME={{.Task.ID}}",
                &image,
                "generate",
            ],
        )
        .await;
        if let Err(e) = created {
            job.service.clear();
            return Err(e);
        }
        Ok(job)
    }

    async fn exited(&mut self, awaiting_registration: bool) -> Vec<(String, String)> {
        let now = std::time::Instant::now();
        if let Some(watch) = &mut self.deaths {
            use tokio::sync::mpsc::error::TryRecvError;
            let mut died = false;
            loop {
                match watch.died.try_recv() {
                    Ok(()) => died = true,
                    Err(TryRecvError::Empty) => break,
                    // The event stream ended (the engine restarted?): ask on every call again.
                    Err(TryRecvError::Disconnected) => {
                        died = true;
                        break;
                    }
                }
            }
            if died {
                self.query_until = Some(now + TASK_STATE_SETTLES);
            }
        }
        let after_death = self.query_until.is_some_and(|t| now <= t);
        if !(awaiting_registration || after_death) {
            return Vec::new();
        }
        let Ok(out) = run(
            "swarm",
            "docker",
            &[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}}\t{{.CurrentState}}\t{{.Error}}",
                &self.service,
            ],
        )
        .await
        else {
            return Vec::new();
        };
        let mut ended = Vec::new();
        for l in out.lines() {
            let mut f = l.splitn(3, '\t');
            let (Some(id), Some(state)) = (f.next(), f.next()) else {
                continue;
            };
            let error = f.next().unwrap_or("");
            if ["Failed", "Rejected", "Shutdown", "Orphaned", "Remove"]
                .iter()
                .any(|s| state.starts_with(s))
            {
                // The task's last words: the service is removed after the run.
                let last = run(
                    "swarm",
                    "docker",
                    &["service", "logs", "--raw", "--tail", "3", id],
                )
                .await
                .ok()
                .and_then(|s| s.lines().last().map(str::to_string))
                .unwrap_or_default();
                ended.push((
                    id.to_string(),
                    format!("task {state}: {error}; last log line: {last}"),
                ));
            }
        }
        ended
    }
}

impl Drop for SwarmJob {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        if !self.service.is_empty() {
            quiet(&["service", "rm", &self.service]);
            // `service rm` returns before the tasks' containers are gone: remove them too.
            let filter = format!("label=com.docker.swarm.service.name={}", self.service);
            for _ in 0..100 {
                let left = Command::new("docker")
                    .args(["ps", "-aq", "--filter", &filter])
                    .output()
                    .map(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .split_whitespace()
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if left.is_empty() {
                    break;
                }
                let mut args = vec!["rm", "-f"];
                args.extend(left.iter().map(String::as_str));
                quiet(&args);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        if self.created_swarm {
            quiet(&["swarm", "leave", "--force"]);
        }
    }
}

/// The manifest of an Indexed Job running `count` shards of `image` against `coordinator_url`;
/// the run key comes from the Secret `<name>-key` (created at run time, never rendered).
pub fn kubernetes_manifest(name: &str, count: u32, image: &str, coordinator_url: &str) -> String {
    format!(
        r#"# poolproof load generators: one Indexed Job, shard = JOB_COMPLETION_INDEX.
# The run key is read from the Secret {name}-key (key: key), which `poolproof validate`
# creates with kubectl at run time; create it yourself when applying this by hand.
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: poolproof-generator
spec:
  completionMode: Indexed
  completions: {count}
  parallelism: {count}
  backoffLimit: 0
  ttlSecondsAfterFinished: 600
  template:
    metadata:
      labels:
        app.kubernetes.io/name: poolproof-generator
    spec:
      restartPolicy: Never
      containers:
        - name: generator
          image: {image}
          imagePullPolicy: IfNotPresent
          args: ["generate"]
          env:
            - name: POOLPROOF_COORDINATOR
              value: "{coordinator_url}"
            - name: POOLPROOF_RUN_KEY
              valueFrom:
                secretKeyRef:
                  name: {name}-key
                  key: key
            - name: POOLPROOF_GENERATOR_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          resources:
            requests:
              cpu: "1"
              memory: 256Mi
"#
    )
}

/// Shards as a Kubernetes Indexed Job, applied with kubectl to the current context.
pub struct KubeJob {
    job: String,
    last_query: Option<std::time::Instant>,
}

impl KubeJob {
    async fn start(spec: &LaunchSpec<'_>) -> Result<KubeJob, EngineError> {
        const E: &str = "kubernetes";
        let image = std::env::var("POOLPROOF_GENERATOR_IMAGE")
            .unwrap_or_else(|_| format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION")));
        let job = KubeJob {
            job: spec.run_name.clone(),
            last_query: None,
        };
        let literal = format!("--from-literal=key={}", spec.key);
        run(
            E,
            "kubectl",
            &[
                "create",
                "secret",
                "generic",
                &format!("{}-key", job.job),
                &literal,
            ],
        )
        .await?;
        let manifest = kubernetes_manifest(&job.job, spec.count, &image, &spec.coordinator_url);
        let file = tempfile::NamedTempFile::new().map_err(|e| err(E, format!("temp file: {e}")))?;
        std::fs::write(file.path(), manifest).map_err(|e| err(E, format!("manifest: {e}")))?;
        run(
            E,
            "kubectl",
            &["apply", "-f", &file.path().to_string_lossy()],
        )
        .await?;
        Ok(job)
    }

    async fn exited(&mut self, awaiting_registration: bool) -> Vec<(String, String)> {
        let now = std::time::Instant::now();
        let due = self
            .last_query
            .is_none_or(|t| now.duration_since(t) >= KUBERNETES_QUERY_EVERY);
        if !(awaiting_registration || due) {
            return Vec::new();
        }
        self.last_query = Some(now);
        let selector = format!("job-name={}", self.job);
        let Ok(out) = run(
            "kubernetes",
            "kubectl",
            &[
                "get",
                "pods",
                "-l",
                &selector,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}",
            ],
        )
        .await
        else {
            return Vec::new();
        };
        out.lines()
            .filter_map(|l| {
                let (name, phase) = l.split_once('\t')?;
                (phase == "Failed").then(|| (name.to_string(), format!("pod {phase}")))
            })
            .collect()
    }
}

impl Drop for KubeJob {
    fn drop(&mut self) {
        for what in [
            format!("job/{}", self.job),
            format!("secret/{}-key", self.job),
        ] {
            let _ = Command::new("kubectl")
                .args(["delete", "--ignore-not-found", "--wait=false", &what])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_library_paths_and_skip_the_vdso() {
        assert_eq!(
            shared_library_path("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            shared_library_path("\t/lib64/ld-linux-x86-64.so.2 (0x00007f)"),
            Some(PathBuf::from("/lib64/ld-linux-x86-64.so.2"))
        );
        assert_eq!(shared_library_path("\tlinux-vdso.so.1 (0x00007ffd)"), None);
    }
}

//! End to end: the real `poolproof` binary runs small scenarios against real Postgres, Redis and
//! pooled-app instances (containers where a Docker engine answers, else local processes) and is
//! judged by its exit code, stdout and the files it leaves — and by what it does not leave behind
//! after a SIGINT.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::workspace_root;

/// The scenario text of a short run; `slas` is the YAML of the `slas:` list.
fn scenario(name: &str, duration: &str, slas: &str) -> String {
    format!(
        r#"name: {name}
description: end-to-end test scenario
app:
  instances: 1
  ready_timeout: 60s
fixtures:
  users: 200
  buddy_requests: 400
load:
  users: 4
  ramp: 1s
  warmup: 1s
  duration: {duration}
  rate_limit: 200
  transactions:
    - name: profile
      weight: 3
      method: GET
      path: /api/users/{{{{rand:1..200}}}}
      expect_status: 200
    - name: buddies
      weight: 1
      method: GET
      path: /api/buddies?user_id={{{{rand:1..200}}}}
      expect_status: 200
slas:
{slas}
"#
    )
}

struct Run {
    dir: tempfile::TempDir,
    scenario: PathBuf,
}

impl Run {
    fn new(name: &str, text: &str) -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&scenario, text).expect("write scenario");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp");
        Run { dir, scenario }
    }

    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_poolproof"));
        cmd.arg("validate")
            .arg(&self.scenario)
            .arg("--reports-dir")
            .arg(self.reports())
            .current_dir(workspace_root())
            // Everything the run creates in temp dirs lands here, so the test can see it is gone.
            .env("TMPDIR", self.dir.path().join("tmp"))
            .stdin(Stdio::null());
        cmd
    }

    /// The single run directory `reports/<name>/<run-id>/`.
    fn run_dir(&self, name: &str) -> PathBuf {
        let base = self.reports().join(name);
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
            .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        assert_eq!(dirs.len(), 1, "run dirs: {dirs:?}");
        dirs.remove(0)
    }

    /// What the run left in its TMPDIR: anything but the services crate's shared state dir
    /// (its initdb template cache), plus any pid file of a still registered service in there.
    fn tmp_leftovers(&self) -> Vec<PathBuf> {
        let list = |p: PathBuf| -> Vec<PathBuf> {
            std::fs::read_dir(p)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        let tmp = self.dir.path().join("tmp");
        let state = tmp.join("poolproof-services");
        let mut left: Vec<PathBuf> = list(tmp).into_iter().filter(|p| *p != state).collect();
        left.extend(list(state.join("pids")));
        left
    }
}

/// The first `scheme://user:password@` with a password other than `***`, if any.
fn unredacted_url_password(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let tail = &rest[i + 3..];
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        if let Some(at) = authority.rfind('@') {
            if let Some((_, pw)) = authority[..at].split_once(':') {
                if pw != "***" && !pw.is_empty() {
                    return Some(authority.to_owned());
                }
            }
        }
        rest = &tail[end..];
    }
    None
}

fn output(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run poolproof");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_short_scenario_passes_and_writes_every_report() {
    let slas = "  - { metric: error_rate, comparator: \"<=\", threshold: 1% }\n  - { metric: latency_p95, comparator: \"<\", threshold: 500ms }\n  - { metric: throughput, comparator: \">=\", threshold: 20 }\n  - { metric: pool_efficiency, comparator: \">=\", threshold: 50% }";
    let run = Run::new("e2e-pass", &scenario("e2e-pass", "5s", slas));
    let (code, stdout, stderr) = output(run.command());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let dir = run.run_dir("e2e-pass");
    for f in ["report.json", "report.md", "junit.xml", "app-1.log"] {
        let p = dir.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} missing or empty", p.display());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("read report.json"))
            .expect("report.json is JSON");
    assert!(json.is_object());
    assert!(
        stdout.contains("latency_p95"),
        "verdict table lacks the SLA:\n{stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(
            unredacted_url_password(text).is_none(),
            "a URL password was printed: {text}"
        );
    }
    for entry in std::fs::read_dir(&dir).expect("run dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("report") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(
                unredacted_url_password(&text).is_none(),
                "{:?} holds a URL password",
                entry.path()
            );
        }
    }
    assert!(
        run.tmp_leftovers().is_empty(),
        "temp leftovers: {:?}",
        run.tmp_leftovers()
    );
}

#[test]
fn an_impossible_sla_fails_with_exit_1_and_is_named() {
    let slas = "  - { metric: latency_p95, comparator: \"<\", threshold: 0.001ms }\n  - { metric: error_rate, comparator: \"<=\", threshold: 5% }";
    let run = Run::new("e2e-impossible", &scenario("e2e-impossible", "3s", slas));
    let (code, stdout, stderr) = output(run.command());
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let failing: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("latency_p95"))
        .collect();
    assert!(
        failing
            .iter()
            .any(|l| l.to_ascii_uppercase().contains("FAIL")),
        "latency_p95 not named as failing on stdout:\n{stdout}"
    );
    let dir = run.run_dir("e2e-impossible");
    for f in ["report.md", "junit.xml"] {
        let text = std::fs::read_to_string(dir.join(f)).expect(f);
        assert!(text.contains("latency_p95"), "{f} does not name the SLA");
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    assert!(junit.contains("<failure"), "junit has no failure");
}

/// A proxy fault (database latency) routes the app's DATABASE_URL through the harness' proxy; the
/// proxy must outlive the fault. It used to be dropped with the timeline's last fault, so the app
/// met "connection refused" for the rest of the run and looked as if it never recovered.
#[test]
fn the_database_path_survives_the_end_of_a_latency_fault() {
    let slas = "  - { metric: error_rate, comparator: \"<=\", threshold: 1%, phase: after }";
    let text = format!(
        "{}faults:\n  - {{ at: 1s, for: 1s, kind: db_latency, latency: 200ms }}\n",
        scenario("e2e-latency-after", "5s", slas)
    );
    let run = Run::new("e2e-latency-after", &text);
    let (code, stdout, stderr) = output(run.command());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run.run_dir("e2e-latency-after").join("report.json"))
            .expect("read report.json"),
    )
    .expect("report.json is JSON");
    let faults = json["faults"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        faults.len(),
        1,
        "the fault did not happen: {}",
        json["faults"]
    );
}

/// Processes descending from `root` (by parent pid), with their start times (to tell a reused
/// pid from the same process).
fn descendants(root: u32) -> BTreeSet<(u32, u64)> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, start)) = stat(pid) {
            parent_of.push((pid, ppid, start));
        }
    }
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, start) in &parent_of {
            if *ppid == p && found.insert((*pid, *start)) {
                frontier.push(*pid);
            }
        }
    }
    found
}

/// (ppid, starttime) of a live, non-zombie process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

fn containers_with_label(label: &str) -> Option<Vec<String>> {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("label={label}")])
        .output()
        .ok()?;
    if !out.status.success() {
        return None; // no engine: the run used processes
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn sigint_mid_load_leaves_nothing_behind() {
    let slas = "  - { metric: error_rate, comparator: \"<=\", threshold: 50% }";
    let run = Run::new("e2e-sigint", &scenario("e2e-sigint", "60s", slas));
    let mut cmd = run.command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn poolproof");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for measured load to start (plain progress lines off a terminal), then 2 s more.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut log = String::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(1));
        if let Ok(l) = &line {
            log.push_str(l);
            log.push('\n');
            if l.contains("e2e-sigint: load") {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("poolproof ended before load ({status}):\n{log}");
        }
        assert!(Instant::now() < deadline, "load never started:\n{log}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let run_id = run
        .run_dir("e2e-sigint")
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    let started = descendants(pid);
    assert!(!started.is_empty(), "no child process seen during load");

    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "poolproof did not stop within 60 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(l) = rx.try_recv() {
        log.push_str(&l);
        log.push('\n');
    }
    assert_eq!(
        status.code(),
        Some(130),
        "exit after SIGINT: {status}\n{log}"
    );

    let alive: Vec<_> = started
        .iter()
        .filter(|(p, start)| stat(*p).map(|(_, s)| s) == Some(*start))
        .collect();
    assert!(
        alive.is_empty(),
        "processes of the run still alive: {alive:?}"
    );
    if let Some(left) = containers_with_label(&format!("poolproof.run={run_id}")) {
        assert!(left.is_empty(), "containers of run {run_id} left: {left:?}");
    }
    assert!(
        run.tmp_leftovers().is_empty(),
        "temp leftovers: {:?}",
        run.tmp_leftovers()
    );
}

/// `target/release/pooled-app`, built if missing (the test drives it itself).
fn pooled_app_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_poolproof")).with_file_name("pooled-app");
    if !bin.is_file() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "pooled-app"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build");
        assert!(status.success(), "building pooled-app failed");
    }
    bin
}

/// A pooled-app started by the test (not by poolproof), killed on drop.
struct ExternalApp(std::process::Child);

impl Drop for ExternalApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_external_provider_runs_against_an_app_the_test_started() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (postgres, redis) = rt
        .block_on(poolproof_services::start_both(
            &poolproof_services::Options::default(),
        ))
        .expect("start postgres and redis");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let token = "e2e-token-5f2c9a";
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::fs::File::create(dir.path().join("app.log")).expect("log");
    let app = ExternalApp(
        Command::new(pooled_app_binary())
            .env("DATABASE_URL", postgres.url())
            .env("REDIS_URL", redis.url())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("PERFORMANCE_API_TOKEN", token)
            .env("SEED_USERS", "200")
            .env("SEED_BUDDY_REQUESTS", "400")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start pooled-app"),
    );
    let text = r#"name: e2e-external
services:
  provider: external
app:
  url: ${E2E_APP_URL}
  token: ${E2E_APP_TOKEN}
  ready_timeout: 60s
load:
  users: 2
  ramp: 1s
  warmup: 1s
  duration: 3s
  rate_limit: 100
  transactions:
    - name: profile
      path: /api/users/{{rand:1..200}}
slas:
  - { metric: error_rate, comparator: "<=", threshold: 1% }
  - { metric: latency_p95, comparator: "<", threshold: 500ms, route: profile }
"#;
    let run = Run::new("e2e-external", text);
    let mut cmd = run.command();
    cmd.env("E2E_APP_URL", format!("http://127.0.0.1:{port}"))
        .env("E2E_APP_TOKEN", token);
    let (code, stdout, stderr) = output(cmd);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("(external)"),
        "not run with the external provider:\n{stderr}"
    );
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token was printed"
    );
    let dir = run.run_dir("e2e-external");
    for f in ["report.json", "report.md", "junit.xml"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // poolproof started no app and no services of its own.
    assert!(!dir.join("app-1.log").exists());

    // Faults are refused with the external provider: exit 2, one line naming the field.
    let faulty = Run::new(
        "e2e-external-faults",
        &text
            .replace("name: e2e-external", "name: e2e-external-faults")
            .replace(
                "slas:",
                "faults:\n  - { at: 1s, for: 1s, kind: postgres_pause }\nslas:",
            ),
    );
    let mut cmd = faulty.command();
    cmd.env("E2E_APP_URL", format!("http://127.0.0.1:{port}"))
        .env("E2E_APP_TOKEN", token);
    let (code, stdout, stderr) = output(cmd);
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("faults"), "{stderr}");

    drop(app);
    rt.block_on(async {
        let _ = postgres.shutdown().await;
        let _ = redis.shutdown().await;
    });
}

//! Sharded load generators through the real `poolproof` binary, against real Postgres, Redis
//! and pooled-app: three local shards merge exactly into one report; a Swarm shard killed
//! mid-run fails the run with exit 3 by name and leaves no service or container; the
//! Kubernetes manifest passes kubectl's client-side decoding.

use crate::support::{validate_in, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shipped() -> String {
    std::fs::read_to_string(workspace_root().join("scenarios/sharded-load.yaml"))
        .expect("shipped scenario")
}

fn report_json(reports: &Path) -> serde_json::Value {
    let runs = reports.join("sharded-load");
    let run = std::fs::read_dir(&runs)
        .expect("run dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .expect("a run with report.json");
    serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap()
}

#[test]
fn three_local_shards_merge_exactly_and_each_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = validate_in(dir.path(), "sharded-load", &shipped());
    // A verdict (the SLAs' latency depends on how busy this host is); what is checked here is
    // the merge and the per-shard figures.
    assert!(matches!(code, Some(0 | 1 | 4)), "{out}");
    let r = report_json(&dir.path().join("reports"));
    let shards = r["generators"]
        .as_array()
        .expect("generators in report.json");
    assert_eq!(shards.len(), 3, "{shards:?}");
    let mut names: Vec<&str> = shards.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 3, "three distinct processes: {names:?}");
    // Exact merge: the run's requests are the shards' requests, summed.
    let sum: u64 = shards.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(r["summary"]["requests"].as_u64().unwrap(), sum);
    let scheduled: u64 = shards
        .iter()
        .map(|s| s["scheduled"].as_u64().unwrap())
        .sum();
    assert_eq!(r["summary"]["scheduled"].as_u64().unwrap(), scheduled);
    // Each took a third of the 300/s schedule (every third slot), and its clock agreed.
    for s in shards {
        let rate = s["rate_rps"].as_f64().unwrap();
        assert!((rate - 100.0).abs() < 15.0, "shard rate {rate}: {s}");
        assert!(s["clock_offset_ms"].as_f64().unwrap().abs() < 50.0, "{s}");
        assert!(s["cpu_seconds"].as_f64().unwrap() > 0.0, "{s}");
    }
    let md = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join("reports/sharded-load"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path().join("report.md"))
            .find(|p| p.exists())
            .unwrap(),
    )
    .unwrap();
    assert!(md.contains("Load generators (3 shards"), "{md}");
}

fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn engine_answers() -> bool {
    docker(&["info", "--format", "{{.ServerVersion}}"]).is_some_and(|v| !v.is_empty())
}

#[test]
fn a_killed_swarm_shard_fails_the_run_with_exit_3_by_name_and_leaves_nothing_behind() {
    if !engine_answers() {
        assert!(
            std::env::var_os("POOLPROOF_EXPECT_CONTAINERS").is_none(),
            "POOLPROOF_EXPECT_CONTAINERS is set but no Docker engine answers"
        );
        eprintln!("skipped: no Docker engine (the swarm engine needs one)");
        return;
    }
    let swarm_before = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Long enough to kill a shard well inside measured load.
    let text = shipped().replace("duration: 15s", "duration: 40s");
    let path = dir.path().join("sharded-load.yaml");
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_poolproof"))
        .args(["validate", "--generator-engine", "swarm", "--reports-dir"])
        .arg(dir.path().join("reports"))
        .arg(&path)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run poolproof");
    let label = format!("label=poolproof.generators={}", child.id());
    // Wait for the three shard containers, then into measured load (start_after 10 s + ramp
    // and warm-up 4 s after the service starts).
    let deadline = Instant::now() + Duration::from_secs(180);
    let running = loop {
        let ids = docker(&["ps", "-q", "--filter", &label]).unwrap_or_default();
        let ids: Vec<String> = ids.lines().map(str::to_string).collect();
        if ids.len() == 3 {
            break ids;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "shards never ran: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(20));
    docker(&["kill", &running[1]]).expect("docker kill a shard");
    let out = child.wait_with_output().expect("poolproof ends");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    // The engine's death event, not the heartbeat timeout, tells (the task's state is in it).
    assert!(
        text.contains("generator shard ")
            && text.contains("ended without reporting its measurements: task "),
        "the message names the shard and how its task ended: {text}"
    );
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &label]).unwrap(),
        "",
        "containers left"
    );
    let services = docker(&["service", "ls", "-q", "--filter", &label]).unwrap_or_default();
    assert_eq!(services, "", "services left");
    let swarm_after = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap();
    assert_eq!(
        swarm_after, swarm_before,
        "the swarm state the run created is gone"
    );
}

fn ensure_kubectl() -> PathBuf {
    let out = Command::new(workspace_root().join("ci/ensure-kubectl.sh"))
        .output()
        .expect("run ci/ensure-kubectl.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Every key and scalar of `ours` is in `theirs` (kubectl drops fields its types lack).
fn subset(ours: &serde_yaml::Value, theirs: &serde_yaml::Value, at: &str) {
    use serde_yaml::Value;
    match (ours, theirs) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in a {
                let key = k.as_str().unwrap_or("?");
                let other = b.get(k).unwrap_or_else(|| {
                    panic!("kubectl dropped {at}.{key}: not a field of its type")
                });
                subset(v, other, &format!("{at}.{key}"));
            }
        }
        (Value::Sequence(a), Value::Sequence(b)) => {
            // `set env` appends its variable to the container's env.
            assert!(a.len() <= b.len(), "{at}: kubectl dropped items");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                subset(x, y, &format!("{at}[{i}]"));
            }
        }
        (x, y) => assert_eq!(x, y, "{at}"),
    }
}

#[test]
fn the_kubernetes_indexed_job_passes_kubectl_client_side_decoding() {
    let kubectl = ensure_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(&scenario, shipped()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_poolproof"))
        .args([
            "generators",
            "render",
            "--engine",
            "kubernetes",
            "--image",
            "registry.example/poolproof:1",
        ])
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = String::from_utf8(out.stdout).unwrap();
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, &manifest).unwrap();
    // No cluster here: `set env --local` decodes the manifest into kubectl's own typed Job
    // (a wrong type or shape fails) and prints it back without contacting a server.
    let checked = Command::new(&kubectl)
        .args(["set", "env", "--local", "-o", "yaml", "-f"])
        .arg(&file)
        .arg("POOLPROOF_CHECK=1")
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let ours: serde_yaml::Value = serde_yaml::from_str(&manifest).unwrap();
    let theirs: serde_yaml::Value = serde_yaml::from_slice(&checked.stdout).unwrap();
    subset(&ours, &theirs, "");
    assert_eq!(ours["spec"]["completionMode"], "Indexed");
    assert_eq!(ours["spec"]["completions"], 3);
    let env = ours["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap();
    let key = env
        .iter()
        .find(|e| e["name"] == "POOLPROOF_RUN_KEY")
        .unwrap();
    assert!(
        key.get("value").is_none(),
        "the run key is never in the manifest"
    );
    assert_eq!(key["valueFrom"]["secretKeyRef"]["key"], "key");
    // A broken manifest does fail the same check.
    let broken = manifest.replace("completions: 3", "completions: [3]");
    std::fs::write(&file, broken).unwrap();
    let bad = Command::new(&kubectl)
        .args(["set", "env", "--local", "-o", "yaml", "-f"])
        .arg(&file)
        .arg("POOLPROOF_CHECK=1")
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "kubectl accepted a list for completions"
    );
}

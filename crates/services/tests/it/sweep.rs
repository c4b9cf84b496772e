//! A run killed with SIGKILL leaves its services behind; `sweep_leftovers` removes them
//! and nothing of a live run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use poolproof_services::{start_redis, sweep_leftovers, Options, Provider};

fn docker_ps(label: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=poolproof.run={label}"),
        ])
        .output()
        .expect("docker ps runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn pids_of(label: &str) -> Vec<i32> {
    let dir = poolproof_services::state_dir().join("pids");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|text| text.lines().any(|l| l == format!("run={label}")))
        .filter_map(|text| {
            let child = text.lines().find_map(|l| l.strip_prefix("child="))?;
            child.split(':').next()?.parse().ok()
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            != Some('Z')
    })
}

/// Starts `poolproof-services up` in its own process, waits for "ready", kills it with SIGKILL.
fn killed_run(provider: Provider, label: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_poolproof-services"))
        .args(["--provider", provider.as_str(), "--run-label", label, "up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("poolproof-services starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("readable output");
        assert!(!line.contains(":***@") || line.starts_with("DATABASE_URL="));
        if line.starts_with("ready") {
            ready = true;
            break;
        }
    }
    assert!(ready, "poolproof-services up never became ready");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

async fn engine_and_images() -> bool {
    let defaults = Options::default();
    let present = poolproof_services::engine_answers().await
        && Command::new("docker")
            .args([
                "image",
                "inspect",
                &defaults.postgres_image,
                &defaults.redis_image,
            ])
            .output()
            .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("POOLPROOF_EXPECT_CONTAINERS").is_none(),
            "POOLPROOF_EXPECT_CONTAINERS is set but no engine or no local images"
        );
        eprintln!("SKIP: no Docker engine or images (run ci/services.sh)");
    }
    present
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_removes_processes_of_a_killed_run_only() {
    // A live run's service must survive the sweep.
    let live = start_redis(&Options::default().with_provider(Provider::Processes))
        .await
        .expect("redis starts");
    let live_pid = live.pid().await.expect("pid") as i32;

    let label = format!("sweep-test-processes-{}", std::process::id());
    killed_run(Provider::Processes, &label);
    let orphans = pids_of(&label);
    assert_eq!(orphans.len(), 2, "postgres and redis pid files");
    assert!(
        orphans.iter().all(|pid| alive(*pid)),
        "orphans outlive their killed owner"
    );

    // Other test processes sweep too (on their first start), so the count this call returns
    // is not ours to assert; what must hold is that the orphans are gone afterwards.
    sweep_leftovers().await.expect("sweep");
    assert!(pids_of(&label).is_empty());
    for _ in 0..100 {
        if orphans.iter().all(|pid| !alive(*pid)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(orphans.iter().all(|pid| !alive(*pid)), "orphans killed");
    assert!(alive(live_pid), "a live run's service is left alone");
    live.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_removes_containers_of_a_killed_run_only() {
    if !engine_and_images().await {
        return;
    }
    let live_options = Options::default().with_provider(Provider::Containers);
    let live = start_redis(&live_options).await.expect("redis starts");

    let label = format!("sweep-test-containers-{}", std::process::id());
    killed_run(Provider::Containers, &label);
    assert_eq!(
        docker_ps(&label).len(),
        2,
        "postgres and redis containers left behind"
    );

    sweep_leftovers().await.expect("sweep");
    // Another test process sweeping at its start may be removing the same containers: its
    // removal wins, ours is refused, and the containers are listed until the engine is done.
    for _ in 0..100 {
        if docker_ps(&label).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(docker_ps(&label).is_empty(), "orphaned containers removed");
    assert_eq!(
        docker_ps(&live_options.run_label).len(),
        1,
        "a live run's container is left alone"
    );
    live.shutdown().await.expect("shutdown");
    assert!(docker_ps(&live_options.run_label).is_empty());
}

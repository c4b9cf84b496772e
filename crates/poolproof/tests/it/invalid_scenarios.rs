//! Runs the real `poolproof check` on every broken scenario of fixtures/invalid-scenarios/ and
//! on the shipped scenarios: exit codes, one located stderr line, no panic, no hang, no secret.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "hunter2-from-the-environment";
/// A hang is a failure; this bound is generous so that a loaded machine never trips it.
const DEADLINE: Duration = Duration::from_secs(20);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `poolproof ARGS` from the workspace root, killing it at the deadline.
fn poolproof(args: &[&str], envs: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poolproof"));
    cmd.args(args)
        .current_dir(root())
        .env("POOLPROOF_TEST_SECRET", SECRET)
        .env_remove("POOLPROOF_SURELY_UNSET_VARIABLE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start poolproof: {e}"));
    // Drain pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("poolproof {args:?} still running after {DEADLINE:?}: a hang");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for poolproof: {e}"),
        }
    };
    Outcome {
        code: status.code(),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

struct Expectation {
    file: String,
    position: Option<String>,
    substring: String,
}

fn expectations() -> Vec<Expectation> {
    let path = root().join("fixtures/invalid-scenarios/expected.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.splitn(3, " | ").collect();
            assert_eq!(parts.len(), 3, "bad expected.txt line: {l}");
            Expectation {
                file: parts[0].trim().to_string(),
                position: (parts[1].trim() != "-").then(|| parts[1].trim().to_string()),
                substring: parts[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn every_broken_scenario_exits_2_with_one_located_line() {
    let exps = expectations();
    assert!(
        exps.len() >= 30,
        "the corpus needs at least 30 broken scenarios, has {}",
        exps.len()
    );

    // Every file in the corpus has an expectation and vice versa.
    let dir = root().join("fixtures/invalid-scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = exps.iter().map(|e| e.file.clone()).collect();
    listed.sort();
    assert_eq!(files, listed, "expected.txt and the .yaml files differ");

    let mut failures = Vec::new();
    for e in &exps {
        let rel = format!("fixtures/invalid-scenarios/{}", e.file);
        let out = poolproof(&["check", &rel], &[]);
        let lines: Vec<&str> = out.stderr.lines().collect();
        let prefix = match &e.position {
            Some(p) => format!("{rel}:{p}: "),
            None => format!("{rel}: "),
        };
        let problems: Vec<String> = [
            (out.code != Some(2)).then(|| format!("exit code {:?}, want 2", out.code)),
            (lines.len() != 1).then(|| format!("{} stderr lines, want 1", lines.len())),
            (!out.stderr.starts_with(&prefix)).then(|| format!("does not start with {prefix:?}")),
            (!out.stderr.contains(&e.substring)).then(|| format!("lacks {:?}", e.substring)),
            out.stderr
                .contains("panicked")
                .then(|| "panicked".to_string()),
            out.stderr
                .contains(SECRET)
                .then(|| "shows the secret".to_string()),
            (!out.stdout.is_empty()).then(|| format!("unexpected stdout {:?}", out.stdout)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    stderr: {}",
                e.file,
                problems.join("; "),
                out.stderr.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} broken scenarios misbehave:\n{}",
        failures.len(),
        exps.len(),
        failures.join("\n")
    );
}

#[test]
fn shipped_scenarios_check_ok() {
    let out = poolproof(
        &["check", "scenarios"],
        &[("POOLPROOF_APP_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
    let oks = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("ok scenarios/"))
        .count();
    assert!(oks >= 2, "stdout: {}", out.stdout);
    assert!(
        out.stdout.contains("ok scenarios/smoke.yaml"),
        "stdout: {}",
        out.stdout
    );
}

#[test]
fn mixed_files_report_each_and_exit_2() {
    let out = poolproof(
        &[
            "check",
            "scenarios/smoke.yaml",
            "fixtures/invalid-scenarios/empty.yaml",
            "does/not/exist.yaml",
        ],
        &[],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stdout.contains("ok scenarios/smoke.yaml"),
        "stdout: {}",
        out.stdout
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "stderr: {}", out.stderr);
    assert!(
        lines[0].starts_with("fixtures/invalid-scenarios/empty.yaml:1:1: "),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "does/not/exist.yaml: cannot read: no such file");
}

#[test]
fn oversized_file_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("name: huge\ndescription: \"");
    text.push_str(&"x".repeat(2 * 1024 * 1024));
    text.push_str("\"\n");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
    let p = path.display().to_string();
    let out = poolproof(&["check", &p], &[]);
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stderr.lines().count(), 1, "stderr: {}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!("{p}: "))
            && out.stderr.contains("limited to 1048576 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(poolproof(&["check"], &[]).code, Some(2));
    assert_eq!(poolproof(&["frobnicate"], &[]).code, Some(2));
    assert_eq!(
        poolproof(&["validate", "--replicates", "0"], &[]).code,
        Some(2)
    );
    let help = poolproof(&["--help"], &[]);
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
}

#[test]
fn validate_refuses_invalid_scenarios_before_running() {
    let out = poolproof(
        &["validate", "fixtures/invalid-scenarios/unknown-route.yaml"],
        &[],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unknown route \"profil\""),
        "{}",
        out.stderr
    );
}

#[test]
fn list_shows_names_tags_and_load_time() {
    let out = poolproof(&["list"], &[]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let smoke = out
        .stdout
        .lines()
        .find(|l| l.starts_with("smoke "))
        .unwrap_or_else(|| panic!("no smoke row: {}", out.stdout));
    assert!(
        smoke.contains("28s") && smoke.contains("smoke,ci"),
        "{smoke}"
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("smoke-external ")),
        "{}",
        out.stdout
    );
}

//! `poolproof baseline save` and `poolproof compare` through the real binary, on report.json
//! files holding seeded synthetic replicates: exit codes, the table, warnings, saved files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use poolproof::app::host::HostFacts;
use poolproof::app::meter::CpuUsage;
use poolproof::compare::{load_figures, save_baseline, Baseline, ReplicateSummary};
use poolproof::observe::Observations;
use poolproof::report::{ReportInput, RunReport};
use poolproof::stats::rng::Rng;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_poolproof"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap_or_else(|e| panic!("spawn: {e}"));
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Five replicates with 4 % lognormal noise around the given p95 (and matching other figures).
fn replicates(seed: u64, p95: f64, loadgen_busy: f64) -> Vec<ReplicateSummary> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut noisy = |m: f64| m * (0.04 * rng.normal() - 0.0008).exp();
    (1..=5)
        .map(|i| ReplicateSummary {
            index: i,
            latency_p50_ms: noisy(p95 / 3.0),
            latency_p95_ms: noisy(p95),
            latency_p99_ms: noisy(p95 * 1.4),
            throughput_rps: noisy(16_000.0 / p95),
            pool_efficiency: Some(noisy(0.97).min(1.0)),
            pool_utilization: Some(noisy(0.3)),
            acquire_wait_p95_ms: Some(noisy(0.1)),
            server_latency_p95_ms: Some(noisy(p95 * 0.8)),
            load_generator: Some(CpuUsage {
                cpu_seconds: loadgen_busy * 30.0,
                wall_seconds: 30.0,
                cores: 2,
                host_cpu_pressure: None,
            }),
            ..Default::default()
        })
        .collect()
}

fn write_report(
    dir: &Path,
    name: &str,
    reps: &[ReplicateSummary],
    host: serde_json::Value,
) -> PathBuf {
    let run = dir.join("reports/smoke").join(name);
    std::fs::create_dir_all(&run).unwrap_or_else(|e| panic!("{e}"));
    let v = serde_json::json!({
        "schema_version": 1,
        "scenario": {"name": "smoke"},
        "host": host,
        "replicates": reps,
    });
    std::fs::write(run.join("report.json"), v.to_string()).unwrap_or_else(|e| panic!("{e}"));
    run
}

fn this_host() -> serde_json::Value {
    let h = poolproof::app::host::HostFacts::collect();
    serde_json::to_value(h).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn baseline_then_compare_gates_regressions_and_passes_the_same_app() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let reports = tmp.path().join("reports");
    let base_run = write_report(tmp.path(), "base", &replicates(1, 20.0, 0.3), this_host());

    let (code, out, err) = run(bin()
        .args(["baseline", "save"])
        .arg(&base_run)
        .arg("--reports-dir")
        .arg(&reports));
    assert_eq!(code, 0, "{out}{err}");
    let baseline = reports.join("baselines/smoke.json");
    assert!(out.contains("smoke.json"), "{out}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(saved["format"], "poolproof-baseline/1");
    assert_eq!(saved["replicates"].as_array().map(Vec::len), Some(5));
    assert!(saved["host"]["cpu_model"].is_string());

    // The same app again (other noise draws): no regression.
    let same = write_report(tmp.path(), "same", &replicates(2, 20.0, 0.3), this_host());
    let (code, out, err) = run(bin().arg("compare").arg(&baseline).arg(&same));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("| latency_p95 |") && out.contains("unchanged"),
        "{out}"
    );
    assert!(!err.contains("different hosts"), "{err}");

    // 30 % slower: regression, exit 1, and the JSON says which metrics.
    let slow = write_report(tmp.path(), "slow", &replicates(3, 26.0, 0.3), this_host());
    let json = tmp.path().join("cmp.json");
    let (code, out, err) = run(bin()
        .arg("compare")
        .arg(&baseline)
        .arg(&slow)
        .arg("--json")
        .arg(&json));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("**regressed**"), "{out}");
    let cmp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cmp["outcome"], "regressed");
    let p95 = cmp["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["metric"] == "latency_p95"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(p95["verdict"], "regressed", "{p95}");
    assert!(
        p95["interval"]["lo"].as_f64().unwrap_or(0.0) > 0.05,
        "{p95}"
    );

    // A wider tolerance for every latency metric lets it pass.
    let (code, out, err) = run(bin()
        .arg("compare")
        .arg(&baseline)
        .arg(&slow)
        .args(["--tolerance", "60%"]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn other_host_is_a_warning_and_a_field() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = write_report(tmp.path(), "a", &replicates(4, 20.0, 0.3), this_host());
    let mut other = this_host();
    other["hostname_hash"] = "0000000000000000".into();
    other["cores"] = 64.into();
    let b = write_report(tmp.path(), "b", &replicates(5, 20.0, 0.3), other);
    let json = tmp.path().join("cmp.json");
    let (code, out, err) = run(bin()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--json")
        .arg(&json));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: BASE and NEW ran on different hosts (differ in: hostname, cores)"),
        "{err}"
    );
    assert!(out.contains("different hosts"), "{out}");
    let cmp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cmp["host_mismatch"],
        serde_json::json!(["hostname", "cores"])
    );
}

#[test]
fn saturated_load_generator_is_inconclusive_exit_4() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = write_report(tmp.path(), "a", &replicates(6, 20.0, 0.3), this_host());
    // Even a clear regression is not trusted when the client was CPU-bound.
    let b = write_report(tmp.path(), "b", &replicates(7, 30.0, 0.95), this_host());
    let (code, out, err) = run(bin().arg("compare").arg(&a).arg(&b));
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("saturated"), "{out}");
    assert!(out.contains("Outcome: inconclusive"), "{out}");
}

#[test]
fn bad_inputs_exit_2_with_a_located_line() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let a = write_report(tmp.path(), "a", &replicates(8, 20.0, 0.3), this_host());
    let broken = tmp.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"scenario\": \"smoke\",\n  \"replicates\": [\n}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = run(bin().arg("compare").arg(&a).arg(&broken));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.json:4:1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, _, err) = run(bin()
        .arg("compare")
        .arg(&a)
        .arg(tmp.path().join("missing.json")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.json: cannot read"), "{err}");

    let (code, _, err) = run(bin()
        .arg("compare")
        .arg(&a)
        .arg(&a)
        .args(["--metric-tolerance", "latency_p42=5%"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown metric `latency_p42`"), "{err}");
}

/// The report module's report.json (as the run loop writes it) loads as run figures: this
/// pins the contract between `report` and `compare`.
#[test]
fn report_json_from_the_report_module_loads_with_replicates_and_host() {
    let scenario = poolproof::scenario::load_str(
        "name: gate-contract\nload:\n  users: 1\n  duration: 1s\n  transactions:\n    - name: p\n      method: GET\n      path: /\n      expect_status: 200\n",
        "contract.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let obs = Observations::default();
    let arms = std::collections::BTreeMap::new();
    let mut report = RunReport::build(ReportInput {
        scenario: &scenario,
        scenario_path: None,
        run_id: "r1",
        started_at: "2026-11-27T08:00:00Z",
        wall_time_s: None,
        host: HostFacts::collect(),
        obs: &obs,
        arms: &arms,
        slas: &[],
        interrupted: false,
        notes: Vec::new(),
    });
    report.replicates = (1..=3)
        .map(|i| ReplicateSummary {
            index: i,
            latency_p50_ms: 5.0,
            latency_p95_ms: 20.0 + f64::from(i),
            latency_p99_ms: 30.0,
            throughput_rps: 300.0,
            ..Default::default()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let paths = poolproof::report::write_all(&report, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let f = load_figures(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.scenario, "gate-contract");
    assert_eq!(f.replicates, report.replicates);
    // The report header's host shape maps onto this host's facts.
    let host = f.host.unwrap_or_else(|| panic!("host missing"));
    assert!(
        host.differences(&HostFacts::collect()).is_empty(),
        "{host:?}"
    );
    assert_eq!(f.tools.get("goose").map(String::is_empty), Some(false));
    let saved =
        save_baseline(dir.path(), &dir.path().join("reports")).unwrap_or_else(|e| panic!("{e}"));
    let b: Baseline = serde_json::from_str(&std::fs::read_to_string(saved).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let here = HostFacts::collect();
    assert!(b.host.differences(&here).is_empty(), "{:?}", b.host);
    assert_eq!(
        (&b.host.cpu_model, &b.host.kernel),
        (&here.cpu_model, &here.kernel)
    );
    let md = std::fs::read_to_string(paths.markdown).unwrap_or_default();
    assert!(md.contains("## Host noise (replicate spread)"), "{md}");
    assert!(md.contains("| - | latency_p95 |"), "{md}");
}

/// Host CPU pressure or generator lag over its limit turns even a clear regression into
/// "inconclusive" (exit 4), naming the figure, the limit and the replicate; under the limits
/// the same figures give their verdict.
#[test]
fn noise_over_the_limits_is_inconclusive_and_named() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let quiet = |seed, p95| replicates(seed, p95, 0.3);
    let a = write_report(tmp.path(), "a", &quiet(16, 20.0), this_host());
    let b = write_report(tmp.path(), "b", &quiet(17, 30.0), this_host());
    let (code, out, err) = run(bin().arg("compare").arg(&a).arg(&b));
    assert_eq!(code, 1, "a quiet +50 % must regress:\n{out}{err}");

    // Replicate 2 of NEW ran on a host whose CPUs were contended 62 % of the time.
    let mut pressured = quiet(17, 30.0);
    if let Some(cpu) = pressured[1].load_generator.as_mut() {
        cpu.host_cpu_pressure = Some(0.62);
    }
    let c = write_report(tmp.path(), "c", &pressured, this_host());
    let (code, out, err) = run(bin().arg("compare").arg(&a).arg(&c));
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains("host CPU pressure 0.62 > 0.40 in NEW #2"),
        "{out}"
    );
    // A higher limit lets the verdict through.
    let (code, out, err) = run(bin()
        .arg("compare")
        .arg(&a)
        .arg(&c)
        .arg("--max-cpu-pressure")
        .arg("70%"));
    assert_eq!(code, 1, "{out}{err}");

    // Replicate 1 of BASE: its generator sent 12 % of its starts late.
    let mut lagging = quiet(16, 20.0);
    lagging[0].generator_late_share = Some(0.12);
    let d = write_report(tmp.path(), "d", &lagging, this_host());
    let (code, out, err) = run(bin().arg("compare").arg(&d).arg(&b));
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains("load generator late starts 12 % > 5 % in BASE #1"),
        "{out}"
    );
}

//! The Prometheus and Alertmanager files in `deploy/` with the real tools from Debian
//! (`ci/ensure-promtool.sh`): `promtool check rules`, `promtool test rules` (the rule unit
//! tests in deploy/prometheus/rules.test.yml), `promtool check config`, `amtool check-config`
//! and the Alertmanager routing by severity; and that the alerting rules are the app's six
//! default rules (same metric, threshold, window, `for` and severity).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pooled_app::alerts::rules::{default_rules, Metric};
use serde_yaml::Value;

use crate::support::{ensure, workspace_root};

/// Runs a tool; returns its combined output, asserting success.
fn run_ok(bin: &Path, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {}: {text}",
        bin.display(),
        args.join(" ")
    );
    text
}

fn tools() -> (PathBuf, PathBuf) {
    let promtool = ensure("ensure-promtool.sh");
    let amtool = promtool.with_file_name("amtool");
    assert!(amtool.exists(), "{} missing", amtool.display());
    (promtool, amtool)
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let (promtool, _) = tools();
    let dir = workspace_root().join("deploy/prometheus");
    let out = run_ok(&promtool, &["check", "rules", "rules.yml"], &dir);
    assert!(out.contains("SUCCESS: 14 rules found"), "{out}");
    let out = run_ok(&promtool, &["test", "rules", "rules.test.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_ok(
        &promtool,
        &["check", "config", "--syntax-only", "prometheus.yml"],
        &dir,
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_test_rules_fails_on_a_wrong_threshold() {
    // The unit tests decide: the same tests against a rules file whose critical latency
    // threshold was moved to 3 s must fail.
    let (promtool, _) = tools();
    let src = workspace_root().join("deploy/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(src.join("rules.yml")).unwrap();
    let moved = rules.replace(
        "instance:pooled_app_request_duration_seconds:p95_20s >= 2\n",
        "instance:pooled_app_request_duration_seconds:p95_20s >= 3\n",
    );
    assert_ne!(rules, moved);
    std::fs::write(tmp.path().join("rules.yml"), moved).unwrap();
    std::fs::copy(
        src.join("rules.test.yml"),
        tmp.path().join("rules.test.yml"),
    )
    .unwrap();
    let out = Command::new(&promtool)
        .args(["test", "rules", "rules.test.yml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("PooledAppRequestLatencyCritical"), "{text}");
}

#[test]
fn alertmanager_config_routes_by_severity() {
    let (_, amtool) = tools();
    let dir = workspace_root().join("deploy/alertmanager");
    let out = run_ok(&amtool, &["check-config", "alertmanager.yml"], &dir);
    assert!(
        out.contains("SUCCESS") && out.contains("1 inhibit rules"),
        "{out}"
    );
    for (labels, receiver) in [
        (
            ["severity=critical", "metric=request_p95"],
            "slack-and-email",
        ),
        (["severity=warning", "metric=request_p95"], "slack"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend(labels);
        run_ok(&amtool, &args, &dir);
    }
    // The inhibition: critical mutes warning on the same metric, job and instance.
    let cfg: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("alertmanager.yml")).unwrap())
            .unwrap();
    let inhibit = &cfg["inhibit_rules"][0];
    assert_eq!(inhibit["source_matchers"][0], "severity=\"critical\"");
    assert_eq!(inhibit["target_matchers"][0], "severity=\"warning\"");
    let equal: Vec<&str> = inhibit["equal"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(equal, ["metric", "job", "instance"]);
}

fn seconds(v: &Value) -> Duration {
    let s = v.as_str().unwrap();
    Duration::from_secs(s.strip_suffix('s').unwrap().parse().unwrap())
}

#[test]
fn alerting_rules_are_the_apps_six_default_rules() {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/prometheus/rules.yml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let alerts: Vec<&Value> = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect();
    let defaults = default_rules().rules;
    assert_eq!(alerts.len(), defaults.len());
    assert_eq!(defaults.len(), 6);
    // What the expression must contain for each metric and threshold.
    let recorded = |name: &str| -> String {
        doc["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap())
            .find(|r| r["record"] == name)
            .and_then(|r| r["expr"].as_str())
            .unwrap_or_else(|| panic!("recording rule {name}"))
            .to_owned()
    };
    for rule in &defaults {
        let a = alerts
            .iter()
            .find(|a| a["labels"]["rule_id"] == rule.id.0.as_str())
            .unwrap_or_else(|| panic!("no Prometheus alert for {}", rule.id.0));
        assert_eq!(a["labels"]["severity"], rule.severity.to_string().as_str());
        assert_eq!(a["labels"]["metric"], rule.metric.name());
        assert_eq!(seconds(&a["for"]), rule.for_.0, "{}", rule.id.0);
        assert_eq!(a["annotations"]["summary"], rule.summary.as_str());
        let expr = a["expr"].as_str().unwrap();
        let window = format!("[{}s]", rule.window_secs());
        let t = rule.threshold.0;
        match rule.metric {
            Metric::RequestP95 => {
                let p95 = recorded("instance:pooled_app_request_duration_seconds:p95_20s");
                assert!(p95.starts_with("histogram_quantile(0.95,"), "{p95}");
                let buckets =
                    recorded("instance:pooled_app_request_duration_seconds_bucket:rate20s");
                assert!(buckets.contains(&window), "{buckets}");
                assert!(
                    expr.ends_with(&format!(">= {}", t / 1000.0)),
                    "{}: {expr}",
                    rule.id.0
                );
            }
            Metric::DbQueryMax => {
                assert!(expr.contains(&window), "{expr}");
                let le = t / 1000.0;
                let le_match = if le.fract() == 0.0 {
                    format!("le=~`{le}|{le}\\.0`")
                } else {
                    format!("le=~`{}`", le.to_string().replace('.', "\\."))
                };
                assert!(
                    expr.contains(&le_match),
                    "{}: {expr} lacks {le_match}",
                    rule.id.0
                );
            }
            Metric::ErrorRate => {
                for r in [
                    "instance:pooled_app_requests:rate20s",
                    "instance:pooled_app_request_errors:rate20s",
                ] {
                    assert!(recorded(r).contains(&window), "{r}");
                }
                assert!(
                    expr.contains(&format!(">= {t} and ")),
                    "{}: {expr}",
                    rule.id.0
                );
                assert!(
                    expr.ends_with(&format!(
                        "* {} >= {}",
                        rule.window_secs(),
                        rule.min_requests
                    )),
                    "{}: min_requests: {expr}",
                    rule.id.0
                );
            }
            other => panic!("no Prometheus counterpart written for {other:?}"),
        }
    }
}

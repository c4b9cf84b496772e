//! The committed sample reports (fixtures/sample-reports/, one real `just validate` run of
//! scenarios/smoke.yaml): they still parse as the current report schema, their normalized
//! view is snapshot-tested on real data, the per-route server p95 came from the app's
//! `routes[]`, and no file holds a secret or a path of the machine that wrote it.

use poolproof::report::{self, NormalizedReport};
use poolproof::sla::Verdict;
use std::path::{Path, PathBuf};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sample-reports/smoke")
}

fn read(name: &str) -> String {
    let path = sample_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn normalized_view_of_a_real_smoke_run() {
    let rep = report::read_json(&sample_dir().join("report.json")).expect("sample report.json");
    assert_eq!(rep.scenario, "smoke");
    // A real run: every SLA measured (none "no data"), every second of load sampled.
    assert!(rep.slas.len() >= 16, "{}", rep.slas.len());
    for s in &rep.slas {
        assert!(
            s.measured.is_some() && matches!(s.verdict, Verdict::Met | Verdict::Failed),
            "{}: {:?} {}",
            s.label,
            s.verdict,
            s.detail
        );
    }
    assert!(rep.series.server.len() >= 25, "{}", rep.series.server.len());
    let route = rep
        .slas
        .iter()
        .find(|s| s.metric == "server_latency_p95" && s.route.as_deref() == Some("profile"))
        .expect("a per-route server SLA");
    assert!(
        route.detail.contains("`GET /api/users/{id}`"),
        "{}",
        route.detail
    );
    insta::assert_yaml_snapshot!("smoke_real_run_normalized", NormalizedReport::of(&rep));
}

#[test]
fn markdown_and_junit_name_every_sla_of_the_json() {
    let rep = report::read_json(&sample_dir().join("report.json")).expect("sample report.json");
    let md = read("report.md");
    let junit = read("junit.xml");
    assert!(
        junit.contains(&format!("tests=\"{}\"", rep.slas.len())),
        "{junit}"
    );
    for s in &rep.slas {
        assert!(
            md.contains(&format!("`{}`", s.label)),
            "report.md lacks {}",
            s.label
        );
        let escaped = s
            .label
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(junit.contains(&escaped), "junit.xml lacks {}", s.label);
    }
}

#[test]
fn sample_files_hold_no_secret_and_no_machine_path() {
    let mut files = 0;
    for entry in std::fs::read_dir(sample_dir()).expect("sample dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("text file");
        files += 1;
        for needle in [
            "/work/",
            "/tmp/",
            "/root/",
            "/home/",
            "postgres://",
            "redis://",
            "password",
            "DATABASE_URL",
            "REDIS_URL",
            "Bearer ",
        ] {
            assert!(
                !text.contains(needle),
                "{} contains {needle:?}",
                path.display()
            );
        }
    }
    assert!(files >= 3, "{files} sample files");
}

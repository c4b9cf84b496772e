//! Run history: one line of JSON per `poolproof validate` or `poolproof gate` run, appended to a
//! history file (`--history FILE` or `POOLPROOF_HISTORY`), so that a metric's trend over
//! commits can be printed (`poolproof history`), drawn (report.html) and used as a baseline
//! ("the last K runs on branch main", `poolproof compare --baseline-history`).
//!
//! A record carries where the run came from (commit, branch, scenario, host, time) and what it
//! measured: per gated metric the mean over replicates with its bootstrap interval, plus the
//! replicates themselves (the same [`ReplicateSummary`] a baseline stores), which is what a
//! history baseline hands to the existing bootstrap in [`crate::compare`].
//!
//! The file is JSON Lines: one record per line, appended with a single `write` on a file opened
//! with `O_APPEND`, so concurrent runs never interleave within a line. A line that does not
//! parse is an error naming `file:line`, never skipped silently: a trend with a hole in it
//! would mislead.

pub mod cli;
pub mod provenance;
pub mod record;
pub mod trend;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::metric::GateMetric;
use crate::compare::noise::by_arm;
use crate::compare::summary::ReplicateSummary;
use crate::compare::verdict::GateConfig;
use crate::stats::bootstrap::{self, Interval};
use crate::stats::rng::{derive_seed, Rng};

pub use provenance::Provenance;
pub use trend::{trend_markdown, Trend};

/// Format tag of history records; bump on incompatible changes.
pub const HISTORY_FORMAT: &str = "poolproof-history/1";

/// Which command wrote a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// `poolproof validate`: the run's own replicates.
    Validate,
    /// `poolproof gate`: the head arm's replicates (the commit is the head's).
    Gate,
}

/// One metric of one run: the mean over its replicates with a bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricPoint {
    /// Arm name for A/B scenarios; absent for single-arm scenarios and gate runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub metric: GateMetric,
    /// Mean over the replicates, in the metric's unit (ms, rps, fraction).
    pub mean: f64,
    /// Percentile bootstrap interval of the mean at `confidence`; absent below two replicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// Replicates the mean is over.
    pub n: usize,
}

/// One line of a history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRecord {
    /// [`HISTORY_FORMAT`].
    pub format: String,
    /// RFC 3339 UTC time the run started.
    pub timestamp: String,
    /// `git rev-parse HEAD` where poolproof ran; null outside a git repository.
    pub commit: Option<String>,
    /// The branch (see [`provenance`]); null when detached and not named by the environment.
    pub branch: Option<String>,
    /// The work tree had uncommitted changes: the figures are not quite `commit`'s.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    pub scenario: String,
    /// Hostname of the machine the run measured on.
    pub host: String,
    pub kind: RunKind,
    /// The run's directory (its reports).
    pub run_dir: String,
    /// Confidence level of the intervals in `metrics`.
    pub confidence: f64,
    /// `validate --baseline` and `gate`: the comparison's outcome (pass, regressed,
    /// inconclusive) and what it compared against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Every measured gated metric, arm by arm, in table order.
    pub metrics: Vec<MetricPoint>,
    /// The replicates the metrics are over (a history baseline pools these).
    pub replicates: Vec<ReplicateSummary>,
}

/// What a run hands over to become a record.
pub struct RunFacts<'a> {
    pub provenance: &'a Provenance,
    pub timestamp: &'a str,
    pub scenario: &'a str,
    pub host: &'a str,
    pub kind: RunKind,
    pub run_dir: &'a Path,
    pub replicates: Vec<ReplicateSummary>,
    pub outcome: Option<String>,
    pub base: Option<String>,
}

impl HistoryRecord {
    /// The record of a run: each metric's mean and bootstrap interval, with the gate's
    /// bootstrap settings and seed (the same inputs give the same intervals).
    pub fn of(f: RunFacts<'_>, gate: &GateConfig) -> Self {
        HistoryRecord {
            format: HISTORY_FORMAT.to_owned(),
            timestamp: f.timestamp.to_owned(),
            commit: f.provenance.commit.clone(),
            branch: f.provenance.branch.clone(),
            dirty: f.provenance.dirty,
            scenario: f.scenario.to_owned(),
            host: f.host.to_owned(),
            kind: f.kind,
            run_dir: f.run_dir.display().to_string(),
            confidence: gate.bootstrap.confidence,
            outcome: f.outcome,
            base: f.base,
            metrics: metric_points(&f.replicates, gate),
            replicates: f.replicates,
        }
    }

    /// The point of `metric` (of `arm`), if measured.
    pub fn point(&self, arm: Option<&str>, metric: GateMetric) -> Option<&MetricPoint> {
        self.metrics
            .iter()
            .find(|p| p.metric == metric && p.arm.as_deref() == arm)
    }

    /// The commit's first 7 digits, as `git log --oneline` shows it; `-` when unknown.
    pub fn commit_short(&self) -> String {
        match &self.commit {
            Some(c) => {
                let s = c.get(..7).unwrap_or(c);
                if self.dirty {
                    format!("{s}+")
                } else {
                    s.to_owned()
                }
            }
            None => "-".to_owned(),
        }
    }
}

/// Mean and interval of every measured metric, arm by arm.
pub fn metric_points(reps: &[ReplicateSummary], gate: &GateConfig) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for (arm, rs) in by_arm(reps) {
        for m in GateMetric::ALL {
            let values: Vec<f64> = rs.iter().filter_map(|r| m.value(r)).collect();
            if values.is_empty() {
                continue;
            }
            let label = format!("history/{}/{}", arm.as_deref().unwrap_or(""), m.name());
            let mut rng = Rng::seed_from_u64(derive_seed(gate.seed, &label));
            let interval = bootstrap::mean_interval(&values, &gate.bootstrap, &mut rng)
                .filter(|i| i.lo.is_finite() && i.hi.is_finite());
            out.push(MetricPoint {
                arm: arm.clone(),
                metric: m,
                mean: bootstrap::mean(&values),
                interval,
                n: values.len(),
            });
        }
    }
    out
}

/// Why a history file could not be read or appended to.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: cannot read history: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a history record: {msg}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{path}: cannot append to history: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Parses one line (1-based `line` for messages). A field that does not fit is named by its
/// path (`metrics[2].metric`), the JSON error by its column.
pub fn parse_line(path: &Path, line: usize, text: &str) -> Result<HistoryRecord, HistoryError> {
    let corrupt = |msg: String| HistoryError::Corrupt {
        path: path.to_path_buf(),
        line,
        msg,
    };
    // serde_json ends its messages with " at line 1 column N": the line is the file's here,
    // and the column is said once, up front.
    let bare = |e: &serde_json::Error| {
        let s = e.to_string();
        match s.rfind(" at line ") {
            Some(i) => s[..i].to_owned(),
            None => s,
        }
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let rec: HistoryRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            corrupt(format!(
                "column {}: not valid JSON: {}",
                inner.column(),
                bare(&inner)
            ))
        } else if field == "." {
            corrupt(bare(&inner))
        } else {
            corrupt(format!("field `{field}`: {}", bare(&inner)))
        }
    })?;
    de.end()
        .map_err(|e| corrupt(format!("column {}: text after the record", e.column())))?;
    if rec.format != HISTORY_FORMAT {
        return Err(corrupt(format!(
            "field `format`: unsupported `{}` (this poolproof reads {HISTORY_FORMAT})",
            rec.format
        )));
    }
    Ok(rec)
}

/// Every record of a history file, in file order; blank lines are ignored. A file that does
/// not exist yet is an empty history (the first run creates it).
pub fn read(path: &Path) -> Result<Vec<HistoryRecord>, HistoryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(path, i + 1, l))
        .collect()
}

/// Appends one record as one line. The line is written with a single `write` on a file opened
/// with `O_APPEND` (the kernel places it at the end atomically with respect to other
/// appenders), so runs sharing a history file never interleave inside a line.
pub fn append(path: &Path, rec: &HistoryRecord) -> Result<(), HistoryError> {
    let werr = |source| HistoryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_string(rec).map_err(|e| werr(std::io::Error::other(e)))?;
    line.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(werr)?;
    let n = f.write(line.as_bytes()).map_err(werr)?;
    if n != line.len() {
        // A short write on a regular file means the disk is full: say so rather than retry,
        // which would let another appender's line land inside this one.
        return Err(werr(std::io::Error::other(format!(
            "short write ({n} of {} bytes): the last line is cut off",
            line.len()
        ))));
    }
    Ok(())
}

/// Which records to look at: one scenario, one branch, the last K.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub scenario: Option<String>,
    pub branch: Option<String>,
    pub last: Option<usize>,
}

impl Selection {
    /// The records that match, in file order, keeping the last `last` of them.
    pub fn apply<'a>(&self, records: &'a [HistoryRecord]) -> Vec<&'a HistoryRecord> {
        let mut v: Vec<&HistoryRecord> = records
            .iter()
            .filter(|r| self.scenario.as_ref().is_none_or(|s| &r.scenario == s))
            .filter(|r| {
                self.branch
                    .as_ref()
                    .is_none_or(|b| r.branch.as_ref() == Some(b))
            })
            .collect();
        if let Some(k) = self.last {
            let skip = v.len().saturating_sub(k);
            v.drain(..skip);
        }
        v
    }

    /// The selection in words, for messages: `scenario smoke, branch main, last 5`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.scenario {
            parts.push(format!("scenario {s}"));
        }
        if let Some(b) = &self.branch {
            parts.push(format!("branch {b}"));
        }
        if let Some(k) = self.last {
            parts.push(format!("last {k}"));
        }
        if parts.is_empty() {
            "all runs".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: Interval = Interval { lo: 0.0, hi: 0.0 };

    pub(crate) fn rep(i: u32, p95: f64) -> ReplicateSummary {
        ReplicateSummary {
            index: i,
            latency_p50_ms: p95 / 3.0,
            latency_p95_ms: p95,
            latency_p99_ms: p95 * 1.5,
            throughput_rps: 400.0 + f64::from(i),
            ..Default::default()
        }
    }

    pub(crate) fn record(commit: &str, branch: &str, p95: &[f64]) -> HistoryRecord {
        let reps = p95
            .iter()
            .enumerate()
            .map(|(i, v)| rep(i as u32 + 1, *v))
            .collect();
        HistoryRecord::of(
            RunFacts {
                provenance: &Provenance {
                    commit: Some(commit.to_owned()),
                    branch: Some(branch.to_owned()),
                    dirty: false,
                },
                timestamp: "2026-12-05T21:00:00Z",
                scenario: "smoke",
                host: "ci-1",
                kind: RunKind::Validate,
                run_dir: Path::new("reports/smoke/r"),
                replicates: reps,
                outcome: None,
                base: None,
            },
            &GateConfig::default(),
        )
    }

    #[test]
    fn records_round_trip_through_the_file_one_line_each() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = dir.path().join("sub/history.jsonl");
        assert!(read(&p).unwrap_or_else(|e| panic!("{e}")).is_empty());
        let a = record("a".repeat(40).as_str(), "main", &[20.0, 21.0, 19.0]);
        let b = record("b".repeat(40).as_str(), "feature", &[30.0, 31.0, 29.0]);
        append(&p, &a).unwrap_or_else(|e| panic!("{e}"));
        append(&p, &b).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 2, "{text}");
        let back = read(&p).unwrap_or_else(|e| panic!("{e}"));
        // serde_json may read a float back one ulp off: equal up to that.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(1.0);
        assert_eq!(back.len(), 2);
        for (got, want) in back.iter().zip([&a, &b]) {
            assert_eq!(
                (&got.commit, &got.branch, &got.scenario, got.kind),
                (&want.commit, &want.branch, &want.scenario, want.kind)
            );
            assert_eq!(got.replicates.len(), want.replicates.len());
            assert_eq!(got.metrics.len(), want.metrics.len());
            for (g, w) in got.metrics.iter().zip(&want.metrics) {
                let (gi, wi) = (g.interval.unwrap_or(NO), w.interval.unwrap_or(NO));
                assert!(
                    g.metric == w.metric
                        && close(g.mean, w.mean)
                        && close(gi.lo, wi.lo)
                        && close(gi.hi, wi.hi),
                    "{g:?} vs {w:?}"
                );
            }
        }
        let p95 = a
            .point(None, GateMetric::LatencyP95)
            .unwrap_or_else(|| panic!("no p95 point"));
        assert_eq!((p95.mean, p95.n), (20.0, 3));
        let i = p95.interval.unwrap_or_else(|| panic!("no interval"));
        assert!(i.lo < 20.0 && i.hi > 20.0 && i.lo > 15.0, "{i:?}");
        // Metrics that were not measured get no point.
        assert!(a.point(None, GateMetric::PoolEfficiency).is_none());
    }

    #[test]
    fn a_corrupt_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = dir.path().join("h.jsonl");
        let good = serde_json::to_string(&record(&"c".repeat(40), "main", &[1.0, 2.0]))
            .unwrap_or_else(|e| panic!("{e}"));
        let cases = [
            (
                "{\"format\": \"poolproof-history/1\", \"timestamp\"",
                "h.jsonl:3: not a history record: column",
            ),
            (
                "not json",
                "h.jsonl:3: not a history record: column 2: not valid JSON: expected ident",
            ),
            (
                &good.replace("\"latency_p95\"", "\"latency_p96\""),
                "h.jsonl:3: not a history record: field `metrics[1].metric`",
            ),
            (
                &good.replace(HISTORY_FORMAT, "poolproof-history/9"),
                "h.jsonl:3: not a history record: field `format`: unsupported",
            ),
            (
                &format!("{good} {{}}"),
                "h.jsonl:3: not a history record: column",
            ),
        ];
        for (bad, want) in cases {
            std::fs::write(&p, format!("{good}\n\n{bad}\n{good}\n"))
                .unwrap_or_else(|e| panic!("{e}"));
            let e = read(&p).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(want), "{bad:?}: got {e:?}, want {want:?}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn selection_filters_scenario_and_branch_and_keeps_the_last_k() {
        let mut recs: Vec<HistoryRecord> = (0..5)
            .map(|i| record(&format!("{i}").repeat(40), "main", &[10.0 + f64::from(i)]))
            .collect();
        recs[2].branch = Some("feature".into());
        recs[3].scenario = "other".into();
        let sel = Selection {
            scenario: Some("smoke".into()),
            branch: Some("main".into()),
            last: Some(2),
        };
        let got: Vec<String> = sel.apply(&recs).iter().map(|r| r.commit_short()).collect();
        assert_eq!(got, ["1111111", "4444444"]);
        assert_eq!(sel.describe(), "scenario smoke, branch main, last 2");
        assert_eq!(Selection::default().apply(&recs).len(), 5);
    }
}

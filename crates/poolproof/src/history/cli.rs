//! The history's command-line edge: the `--history FILE` flag of `validate` and `gate`,
//! `poolproof history FILE` (the trend per metric), and the history baseline of
//! `poolproof compare --baseline-history FILE` ("the last K runs on branch main").
//!
//! Exit codes of `poolproof history`: 0 the trend was printed; 2 the file cannot be read, a
//! line is not a record (named `file:line`), or no recorded run matches the filters.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{read, HistoryError, HistoryRecord, Selection, Trend};
use crate::compare::comparison::RunFigures;
use crate::compare::metric::GateMetric;
use crate::exit::Exit;

/// `--history FILE` of `validate` and `gate`.
#[derive(Debug, Clone, Default, Args)]
pub struct RecordArgs {
    /// Append this run's summary (commit, branch, scenario, host, metrics with intervals) as
    /// one JSON line to FILE, and draw the scenario's trend from it in report.html.
    #[arg(long, value_name = "FILE", env = "POOLPROOF_HISTORY")]
    pub history: Option<PathBuf>,
}

impl RecordArgs {
    /// Reads the history file before the run, so that a corrupt file is a usage error found
    /// before minutes of load, not after. Prints the error.
    pub fn check(&self) -> Result<(), Exit> {
        match &self.history {
            Some(p) => read(p).map(|_| ()).map_err(|e| {
                eprintln!("{e}");
                Exit::Invalid
            }),
            None => Ok(()),
        }
    }
}

/// Which recorded runs: shared by `poolproof history` and the history baseline.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only runs on this branch.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Only the last K matching runs.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub last: Option<u32>,
}

/// `poolproof history FILE`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The history file (`--history` of `validate` or `gate` wrote it).
    pub file: PathBuf,
    /// Only runs of this scenario.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only this metric (default: every metric the runs measured).
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<GateMetric>,
}

fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`poolproof history … | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// The records of `path` numbered from 1 in file order.
fn numbered(records: &[HistoryRecord]) -> Vec<(usize, &HistoryRecord)> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| (i + 1, r))
        .collect()
}

/// The trend of the runs `sel` picks out of `records`, numbered by their place in the file.
pub fn select_trend(
    records: &[HistoryRecord],
    sel: &Selection,
    metric: Option<GateMetric>,
) -> Trend {
    let picked: Vec<&HistoryRecord> = sel.apply(records);
    let numbered: Vec<(usize, &HistoryRecord)> = numbered(records)
        .into_iter()
        .filter(|(_, r)| picked.iter().any(|p| std::ptr::eq(*p, *r)))
        .collect();
    Trend::of(sel.describe(), &numbered, metric)
}

/// What the file holds, for the "nothing matches" message.
fn holdings(records: &[HistoryRecord]) -> String {
    let mut scen: Vec<&str> = records.iter().map(|r| r.scenario.as_str()).collect();
    scen.sort_unstable();
    scen.dedup();
    let mut br: Vec<&str> = records.iter().filter_map(|r| r.branch.as_deref()).collect();
    br.sort_unstable();
    br.dedup();
    format!(
        "it holds {} runs; scenarios: {}; branches: {}",
        records.len(),
        if scen.is_empty() {
            "-".into()
        } else {
            scen.join(", ")
        },
        if br.is_empty() {
            "-".into()
        } else {
            br.join(", ")
        }
    )
}

/// `poolproof history`: prints the trend table per metric.
pub fn cmd_history(args: &HistoryArgs) -> Exit {
    // `read` takes a missing file for an empty history (a first run creates it); asked to
    // show one, a missing file is a mistyped path.
    if !args.file.exists() {
        eprintln!("{}: no such history file", args.file.display());
        return Exit::Invalid;
    }
    let records = match read(&args.file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let sel = Selection {
        scenario: args.scenario.clone(),
        branch: args.filter.branch.clone(),
        last: args.filter.last.map(|k| k as usize),
    };
    let mut trend = select_trend(&records, &sel, args.metric);
    trend.selection = format!("{}, {}", args.file.display(), trend.selection);
    if trend.metrics.iter().all(|m| m.points.is_empty()) {
        eprintln!(
            "{}: no recorded run matches ({}{}); {}",
            args.file.display(),
            sel.describe(),
            args.metric
                .map(|m| format!(", metric {m}"))
                .unwrap_or_default(),
            holdings(&records)
        );
        return Exit::Invalid;
    }
    print_stdout(&super::trend_markdown(&trend));
    Exit::Ok
}

/// `--baseline-history FILE` of `poolproof compare`: BASE is the pooled replicates of recorded
/// runs instead of one file.
#[derive(Debug, Clone, Args)]
pub struct HistoryBaselineArgs {
    /// Use recorded runs of NEW's scenario as BASE (with --branch, --last; default the last
    /// 5 runs): their replicates pooled, judged with the same bootstrap as a baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline_history: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Runs a history baseline pools when `--last` is not given.
pub const DEFAULT_BASELINE_RUNS: usize = 5;

/// Why a history baseline cannot be formed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryBaselineError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{path}: no recorded run to compare with ({selection}); {holdings}")]
    Empty {
        path: PathBuf,
        selection: String,
        holdings: String,
    },
}

/// BASE from the history: the last K runs of NEW's scenario (on `branch` when given), their
/// replicates pooled as one sample. NEW itself is left out when it was recorded already (its
/// replicates are in the file unchanged), so a run is never compared with itself.
pub fn history_baseline(
    path: &Path,
    filter: &FilterArgs,
    new: &RunFigures,
) -> Result<RunFigures, HistoryBaselineError> {
    let records = read(path)?;
    let others: Vec<HistoryRecord> = records
        .iter()
        .filter(|r| r.replicates != new.replicates)
        .cloned()
        .collect();
    let sel = Selection {
        scenario: Some(new.scenario.clone()),
        branch: filter.branch.clone(),
        last: Some(filter.last.map_or(DEFAULT_BASELINE_RUNS, |k| k as usize)),
    };
    let picked = sel.apply(&others);
    if picked.is_empty() {
        return Err(HistoryBaselineError::Empty {
            path: path.to_path_buf(),
            selection: sel.describe(),
            holdings: holdings(&records),
        });
    }
    let commits: Vec<String> = picked.iter().map(|r| r.commit_short()).collect();
    let label = format!(
        "{}: {} runs ({}; commits {})",
        path.display(),
        picked.len(),
        sel.describe(),
        commits.join(", ")
    );
    // Replicate numbers restart in every run; renumbered so that each stays distinct.
    let replicates = picked
        .iter()
        .flat_map(|r| r.replicates.iter().cloned())
        .enumerate()
        .map(|(i, mut r)| {
            r.index = i as u32 + 1;
            r.position = None;
            r
        })
        .collect();
    let mut hosts: Vec<&str> = picked.iter().map(|r| r.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    // One host for all of them: compare warns when NEW ran elsewhere. Several: unknown.
    let host = (hosts.len() == 1).then(|| crate::app::host::HostFacts {
        hostname: hosts[0].to_owned(),
        ..Default::default()
    });
    Ok(RunFigures {
        label,
        scenario: new.scenario.clone(),
        replicates,
        host,
        tools: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::append;
    use super::super::tests::record;
    use super::*;

    #[test]
    fn a_history_baseline_pools_the_last_k_runs_of_the_branch_and_never_new_itself() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = dir.path().join("h.jsonl");
        let runs = [
            record(&"1".repeat(40), "main", &[50.0, 51.0]),
            record(&"2".repeat(40), "main", &[20.0, 21.0]),
            record(&"3".repeat(40), "feature", &[90.0, 91.0]),
            record(&"4".repeat(40), "main", &[22.0, 23.0]),
            record(&"5".repeat(40), "main", &[24.0, 25.0]),
        ];
        for r in &runs {
            append(&p, r).unwrap_or_else(|e| panic!("{e}"));
        }
        let new = RunFigures {
            label: "new".into(),
            scenario: "smoke".into(),
            replicates: runs[4].replicates.clone(),
            host: None,
            tools: Default::default(),
        };
        let filter = FilterArgs {
            branch: Some("main".into()),
            last: Some(2),
        };
        let b = history_baseline(&p, &filter, &new).unwrap_or_else(|e| panic!("{e}"));
        let p95: Vec<f64> = b.replicates.iter().map(|r| r.latency_p95_ms).collect();
        assert_eq!(p95, [20.0, 21.0, 22.0, 23.0], "{}", b.label);
        let idx: Vec<u32> = b.replicates.iter().map(|r| r.index).collect();
        assert_eq!(idx, [1, 2, 3, 4]);
        assert!(b.label.contains("commits 2222222, 4444444"), "{}", b.label);

        let none = FilterArgs {
            branch: Some("release".into()),
            last: None,
        };
        let e = history_baseline(&p, &none, &new)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("h.jsonl: no recorded run") && e.contains("branches: feature, main"),
            "{e}"
        );
    }
}

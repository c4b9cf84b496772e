//! The run loop's hook into the history: builds a finished run's record, the scenario's trend
//! for report.html (the file's earlier runs plus this one), and appends the record once the
//! reports are written.

use std::path::{Path, PathBuf};

use super::cli::select_trend;
use super::{append, read, HistoryError, HistoryRecord, Provenance, RunFacts, RunKind, Selection};
use crate::compare::comparison::Comparison;
use crate::compare::summary::ReplicateSummary;
use crate::compare::verdict::GateConfig;
use crate::report::RunReport;

/// Runs of the scenario report.html draws.
const CHART_RUNS: usize = 30;

/// A run's history record, waiting for its reports to be written.
pub struct Pending {
    path: PathBuf,
    record: HistoryRecord,
    /// The scenario's trend up to and including this run; `None` when the file could not be
    /// read (the message is printed).
    pub trend: Option<super::Trend>,
}

/// What the gate compared, for a record of `poolproof gate`: the head arm's name and the
/// base's label.
pub struct GateSides<'a> {
    pub head_arm: &'a str,
    pub base_label: &'a str,
}

/// Builds the record of a finished run. `gate`: a `poolproof gate` run (the head arm's
/// replicates are recorded, without their arm name, so they line up with `validate` runs of
/// the same scenario); `baseline`: what `validate --baseline` compared against.
pub fn prepare(
    path: &Path,
    report: &RunReport,
    run_dir: &Path,
    gate: Option<GateSides<'_>>,
    baseline: Option<&Path>,
    comparison: Option<&Comparison>,
    cfg: &GateConfig,
) -> Pending {
    let (kind, replicates, base) = match &gate {
        Some(g) => (
            RunKind::Gate,
            report
                .replicates
                .iter()
                .filter(|r| r.arm.as_deref() == Some(g.head_arm))
                .map(|r| ReplicateSummary {
                    arm: None,
                    ..r.clone()
                })
                .collect(),
            Some(g.base_label.to_owned()),
        ),
        None => (
            RunKind::Validate,
            report.replicates.clone(),
            baseline.map(|b| b.display().to_string()),
        ),
    };
    let provenance = Provenance::here();
    // Whole seconds in UTC: the history's `When` column, not a log timestamp.
    let timestamp = chrono::DateTime::parse_from_rfc3339(&report.started_at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| report.started_at.clone());
    let record = HistoryRecord::of(
        RunFacts {
            provenance: &provenance,
            timestamp: &timestamp,
            scenario: &report.scenario,
            host: &report.host.hostname,
            kind,
            run_dir,
            replicates,
            outcome: comparison.map(|c| c.outcome.as_str().to_owned()),
            base,
        },
        cfg,
    );
    let trend = match read(path) {
        Ok(mut records) => {
            records.push(record.clone());
            let sel = Selection {
                scenario: Some(report.scenario.clone()),
                branch: None,
                last: Some(CHART_RUNS),
            };
            Some(select_trend(&records, &sel, None))
        }
        Err(e) => {
            eprintln!("warning: no trend in report.html: {e}");
            None
        }
    };
    Pending {
        path: path.to_path_buf(),
        record,
        trend,
    }
}

impl Pending {
    /// Appends the record; a run that measured nothing is not recorded.
    pub fn append(self) -> Result<(), HistoryError> {
        if self.record.replicates.is_empty() {
            return Ok(());
        }
        append(&self.path, &self.record)
    }
}

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
    let replicates = recorded_replicates(&report.replicates, gate.as_ref());
    let (kind, base) = match &gate {
        Some(g) => (RunKind::Gate, Some(g.base_label.to_owned())),
        None => (RunKind::Validate, baseline.map(|b| b.display().to_string())),
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

/// The replicates a record keeps: a gate run's head arm, without its arm name (so they line up
/// with `validate` runs of the scenario); every replicate of any other run.
fn recorded_replicates(
    reps: &[ReplicateSummary],
    gate: Option<&GateSides<'_>>,
) -> Vec<ReplicateSummary> {
    match gate {
        Some(g) => reps
            .iter()
            .filter(|r| r.arm.as_deref() == Some(g.head_arm))
            .map(|r| ReplicateSummary {
                arm: None,
                ..r.clone()
            })
            .collect(),
        None => reps.to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_run_records_its_head_arm_as_a_plain_run() {
        let rep = |arm: &str, index: u32, p95: f64| ReplicateSummary {
            arm: Some(arm.to_owned()),
            index,
            latency_p95_ms: p95,
            ..Default::default()
        };
        let reps = [
            rep("base", 1, 10.0),
            rep("head", 1, 12.0),
            rep("head", 2, 13.0),
            rep("base", 2, 11.0),
        ];
        let sides = GateSides {
            head_arm: "head",
            base_label: "main (abc)",
        };
        let got = recorded_replicates(&reps, Some(&sides));
        let view: Vec<(Option<String>, u32, f64)> = got
            .iter()
            .map(|r| (r.arm.clone(), r.index, r.latency_p95_ms))
            .collect();
        assert_eq!(view, [(None, 1, 12.0), (None, 2, 13.0)]);
        // Any other run keeps every replicate, arms and all.
        assert_eq!(recorded_replicates(&reps, None), reps.to_vec());
    }
}

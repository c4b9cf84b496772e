//! Compares two runs (BASE and NEW), metric by metric and arm by arm, and reduces the rows to
//! one outcome with its exit code.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metric::GateMetric;
use super::noise::{by_arm, noise_summary, NoiseSummary};
use super::summary::ReplicateSummary;
use super::verdict::{decide, decide_paired, GateConfig, GateVerdict, MetricComparison};
use crate::app::host::HostFacts;
use crate::exit::Exit;

/// The figures of one run, whether loaded from a baseline or a report.json.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// Where it came from (a path), for messages.
    pub label: String,
    pub scenario: String,
    pub replicates: Vec<ReplicateSummary>,
    pub host: Option<HostFacts>,
    pub tools: BTreeMap<String, String>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No gated metric regressed and every one was decided.
    Pass,
    /// At least one gated metric regressed (exit 1).
    Regressed,
    /// The load generator saturated, or a metric could not be decided (exit 4).
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Regressed => "regressed",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// A full comparison of NEW against BASE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub base: String,
    pub new: String,
    /// Separate runs, or pairs measured side by side.
    pub design: Design,
    pub rows: Vec<MetricComparison>,
    pub base_noise: NoiseSummary,
    pub new_noise: NoiseSummary,
    /// Host facts that differ between BASE and NEW (empty: same host, or unknown).
    pub host_mismatch: Vec<String>,
    pub warnings: Vec<String>,
    pub outcome: Outcome,
    pub outcome_reason: String,
    pub tolerance: f64,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// How a gate's outcome ends the command: 0 pass, 1 regression, 4 inconclusive.
impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Pass => Exit::Ok,
            Outcome::Regressed => Exit::Failed,
            Outcome::Inconclusive => Exit::Inconclusive,
        }
    }
}

/// How the replicates of BASE and NEW relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Separate runs (a baseline, an earlier report): replicates compared as two samples.
    Independent,
    /// One run measured both, replicate by replicate (`poolproof gate`): replicate i of BASE
    /// and NEW form a pair, judged on the per-pair change ([`decide_paired`]).
    Paired,
}

/// Compares NEW against BASE as separate runs. Metrics missing on either side are skipped
/// (with a warning when only one side has them).
pub fn compare(base: &RunFigures, new: &RunFigures, cfg: &GateConfig) -> Comparison {
    compare_with(base, new, cfg, Design::Independent)
}

/// Compares NEW against BASE with the given design. With [`Design::Paired`], replicates pair
/// up by their number; a replicate without its partner is left out (with a warning).
pub fn compare_with(
    base: &RunFigures,
    new: &RunFigures,
    cfg: &GateConfig,
    design: Design,
) -> Comparison {
    let mut warnings = Vec::new();
    if base.scenario != new.scenario {
        warnings.push(format!(
            "comparing different scenarios: BASE is `{}`, NEW is `{}`",
            base.scenario, new.scenario
        ));
    }
    let host_mismatch: Vec<String> = match (&base.host, &new.host) {
        (Some(a), Some(b)) => a.differences(b).into_iter().map(String::from).collect(),
        _ => Vec::new(),
    };
    if !host_mismatch.is_empty() {
        warnings.push(format!(
            "BASE and NEW ran on different hosts (differ in: {}): changes may come from the host, not the code",
            host_mismatch.join(", ")
        ));
    } else if base.host.is_none() || new.host.is_none() {
        warnings.push("host facts missing on one side: cannot tell whether the hosts match".into());
    }

    let b_arms = by_arm(&base.replicates);
    let n_arms = by_arm(&new.replicates);
    let mut rows = Vec::new();
    for (arm, brs) in &b_arms {
        let Some(nrs) = n_arms.get(arm) else {
            warnings.push(format!(
                "arm `{}` is only in BASE",
                arm.as_deref().unwrap_or("-")
            ));
            continue;
        };
        for m in GateMetric::ALL {
            if design == Design::Paired {
                let pairs: Vec<(f64, f64)> = brs
                    .iter()
                    .filter_map(|b| {
                        let n = nrs.iter().find(|n| n.index == b.index)?;
                        Some((m.value(b)?, m.value(n)?))
                    })
                    .collect();
                if !pairs.is_empty() {
                    rows.push(decide_paired(arm.as_deref(), m, &pairs, cfg));
                }
                continue;
            }
            let bv: Vec<f64> = brs.iter().filter_map(|r| m.value(r)).collect();
            let nv: Vec<f64> = nrs.iter().filter_map(|r| m.value(r)).collect();
            match (bv.is_empty(), nv.is_empty()) {
                (false, false) => rows.push(decide(arm.as_deref(), m, &bv, &nv, cfg)),
                (true, true) => {}
                (b_missing, _) => warnings.push(format!(
                    "{m}{} measured only in {}: not compared",
                    arm.as_deref()
                        .map(|a| format!(" ({a})"))
                        .unwrap_or_default(),
                    if b_missing { "NEW" } else { "BASE" }
                )),
            }
        }
    }
    if design == Design::Paired {
        let indexes = |rs: &[ReplicateSummary]| {
            let mut v: Vec<u32> = rs.iter().map(|r| r.index).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (bi, ni) = (indexes(&base.replicates), indexes(&new.replicates));
        let unpaired: Vec<String> = bi
            .iter()
            .filter(|i| !ni.contains(i))
            .chain(ni.iter().filter(|i| !bi.contains(i)))
            .map(|i| format!("#{i}"))
            .collect();
        if !unpaired.is_empty() {
            warnings.push(format!(
                "replicates without a partner left out: {}",
                unpaired.join(", ")
            ));
        }
    }
    for arm in n_arms.keys().filter(|a| !b_arms.contains_key(*a)) {
        warnings.push(format!(
            "arm `{}` is only in NEW",
            arm.as_deref().unwrap_or("-")
        ));
    }

    let base_noise = noise_summary(&base.replicates, cfg);
    let new_noise = noise_summary(&new.replicates, cfg);
    let (outcome, outcome_reason) = outcome_of(&rows, &base_noise, &new_noise);
    Comparison {
        scenario: new.scenario.clone(),
        base: base.label.clone(),
        new: new.label.clone(),
        design,
        rows,
        base_noise,
        new_noise,
        host_mismatch,
        warnings,
        outcome,
        outcome_reason,
        tolerance: cfg.tolerance,
        confidence: cfg.bootstrap.confidence,
        resamples: cfg.bootstrap.resamples,
        seed: cfg.seed,
    }
}

fn row_name(r: &MetricComparison) -> String {
    match &r.arm {
        Some(a) => format!("{a}/{}", r.metric),
        None => r.metric.name().to_string(),
    }
}

/// Saturation first: a CPU-bound load generator distorts every client-side figure in either
/// direction, so no verdict of that run is trusted. Then host CPU pressure and generator lag
/// over their limits (inconclusive, naming the replicate and the figure), then regressions,
/// then undecided rows.
fn outcome_of(rows: &[MetricComparison], b: &NoiseSummary, n: &NoiseSummary) -> (Outcome, String) {
    if b.is_saturated() || n.is_saturated() {
        let list = |s: &NoiseSummary| {
            s.saturated
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if b.is_saturated() {
            parts.push(format!("BASE replicates {}", list(b)));
        }
        if n.is_saturated() {
            parts.push(format!("NEW replicates {}", list(n)));
        }
        return (
            Outcome::Inconclusive,
            format!(
                "the load generator saturated its CPU in {}: its figures cannot be trusted",
                parts.join(" and ")
            ),
        );
    }
    // Then host CPU pressure and generator lag: a contended host or a late generator moves
    // the figures of the replicates it hit, which pairs do not cancel when it hit one side.
    let noisy: Vec<String> = b
        .noise_reasons("BASE")
        .into_iter()
        .chain(n.noise_reasons("NEW"))
        .collect();
    if !noisy.is_empty() {
        return (
            Outcome::Inconclusive,
            format!(
                "too noisy to judge: {} (quiet the host and run again)",
                noisy.join("; ")
            ),
        );
    }
    let names = |v: GateVerdict| {
        rows.iter()
            .filter(|r| r.verdict == v)
            .map(row_name)
            .collect::<Vec<_>>()
    };
    let regressed = names(GateVerdict::Regressed);
    if !regressed.is_empty() {
        return (
            Outcome::Regressed,
            format!("regressed: {}", regressed.join(", ")),
        );
    }
    let undecided = names(GateVerdict::Inconclusive);
    if !undecided.is_empty() {
        return (
            Outcome::Inconclusive,
            format!(
                "could not decide: {} (add replicates or quiet the host)",
                undecided.join(", ")
            ),
        );
    }
    if rows.is_empty() {
        return (
            Outcome::Inconclusive,
            "no metric measured on both sides".into(),
        );
    }
    (Outcome::Pass, "no gated metric regressed".into())
}

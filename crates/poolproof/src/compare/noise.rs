//! Noise self-check: how noisy the host was (replicate spread per metric) and whether the
//! load generator itself was CPU-bound (measured by [`crate::app::meter::CpuMeter`]).
//!
//! Saturation rule: the load generator is saturated in a replicate when the poolproof
//! process kept ≥ 0.9 cores busy on average during the measured phase (CPU time / wall time).
//! Why one core and not the whole host: goose funnels every request's metrics through a single
//! aggregating task, and the app and the databases share the host; a client near one full
//! core no longer issues requests on schedule, so its latencies include its own queueing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metric::GateMetric;
use super::summary::ReplicateSummary;
use super::verdict::{GateConfig, SideStats};
use crate::app::meter::CpuUsage;

/// Identifies a replicate in messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicateId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub index: u32,
}

impl std::fmt::Display for ReplicateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.arm {
            Some(a) => write!(f, "{a} #{}", self.index),
            None => write!(f, "#{}", self.index),
        }
    }
}

/// The host noise of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseSummary {
    pub replicates: usize,
    /// Spread per arm ("" for single-arm) and metric: sd / max(mean, min effect).
    pub cv: BTreeMap<String, BTreeMap<GateMetric, f64>>,
    /// Metrics whose spread exceeds the erratic limit ("arm/metric" or "metric").
    pub too_wide: Vec<String>,
    /// Highest load-generator CPU over the replicates, in busy cores and as host share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_generator_busy_cores_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_generator_host_share_max: Option<f64>,
    /// Replicates where the load generator was saturated.
    pub saturated: Vec<ReplicateId>,
    /// Highest host CPU pressure over the replicates (share of time some task waited for a
    /// CPU; reported, not gated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_pressure_max: Option<f64>,
}

impl NoiseSummary {
    pub fn is_saturated(&self) -> bool {
        !self.saturated.is_empty()
    }
}

/// Groups replicates by arm (None first), keeping replicate order.
pub(crate) fn by_arm(
    reps: &[ReplicateSummary],
) -> BTreeMap<Option<String>, Vec<&ReplicateSummary>> {
    let mut m: BTreeMap<Option<String>, Vec<&ReplicateSummary>> = BTreeMap::new();
    for r in reps {
        m.entry(r.arm.clone()).or_default().push(r);
    }
    m
}

/// Computes the noise summary of one run's replicates.
pub fn noise_summary(reps: &[ReplicateSummary], cfg: &GateConfig) -> NoiseSummary {
    let mut cv = BTreeMap::new();
    let mut too_wide = Vec::new();
    for (arm, rs) in by_arm(reps) {
        let mut per = BTreeMap::new();
        for m in GateMetric::ALL {
            let vals: Vec<f64> = rs.iter().filter_map(|r| m.value(r)).collect();
            if vals.len() < 2 {
                continue;
            }
            let s = SideStats::of(&vals, m.default_min_effect());
            if s.cv > cfg.erratic_cv {
                too_wide.push(match &arm {
                    Some(a) => format!("{a}/{m}"),
                    None => m.name().to_string(),
                });
            }
            per.insert(m, s.cv);
        }
        cv.insert(arm.unwrap_or_default(), per);
    }
    let cpu: Vec<(&ReplicateSummary, CpuUsage)> = reps
        .iter()
        .filter_map(|r| r.load_generator.map(|c| (r, c)))
        .collect();
    let max = |f: fn(&CpuUsage) -> f64| {
        cpu.iter()
            .map(|(_, c)| f(c))
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    };
    let saturated = cpu
        .iter()
        .filter(|(_, c)| c.busy_cores() >= cfg.saturation_busy_cores)
        .map(|(r, _)| ReplicateId {
            arm: r.arm.clone(),
            index: r.index,
        })
        .collect();
    NoiseSummary {
        replicates: reps.len(),
        cv,
        too_wide,
        load_generator_busy_cores_max: max(CpuUsage::busy_cores),
        load_generator_host_share_max: max(CpuUsage::host_share),
        saturated,
        host_cpu_pressure_max: cpu
            .iter()
            .filter_map(|(_, c)| c.host_cpu_pressure)
            .reduce(f64::max),
    }
}

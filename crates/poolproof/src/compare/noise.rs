//! Noise self-check: how noisy the host was (replicate spread per metric), whether the
//! load generator itself was CPU-bound (measured by [`crate::app::meter::CpuMeter`]), and
//! whether the host's CPUs were contended (PSI) or the generator fell behind its schedule
//! beyond the calibrated limits (`GateConfig::max_host_cpu_pressure`,
//! `max_generator_late_share`): either makes the comparison inconclusive, never a verdict.
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
    /// CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_pressure_max: Option<f64>,
    /// Replicates whose host CPU pressure exceeded the limit, with their pressure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pressured: Vec<Exceeded>,
    /// Highest share of late starts of the load generator over the replicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_late_share_max: Option<f64>,
    /// Replicates whose load generator lagged its schedule beyond the limit, with the share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<Exceeded>,
}

/// A replicate whose noise figure went over its limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exceeded {
    pub replicate: ReplicateId,
    pub value: f64,
    pub limit: f64,
}

impl NoiseSummary {
    pub fn is_saturated(&self) -> bool {
        !self.saturated.is_empty()
    }

    /// Why this side's figures are too noisy to judge (host CPU pressure or generator lag over
    /// their limits), one phrase per kind naming each replicate, the side as `side`:
    /// `host CPU pressure 0.62 > 0.40 in NEW #2`, or with several replicates
    /// `host CPU pressure over 0.40 in BASE #1 (0.97), #3 (0.99)`.
    pub fn noise_reasons(&self, side: &str) -> Vec<String> {
        let id = |r: &ReplicateId| match &r.arm {
            // Paired gates strip the arm; the side names it.
            Some(a) => format!("{a} #{}", r.index),
            None => format!("#{}", r.index),
        };
        let phrase = |what: &str, list: &[Exceeded], show: &dyn Fn(f64) -> String| match list {
            [] => None,
            [one] => Some(format!(
                "{what} {} > {} in {side} {}",
                show(one.value),
                show(one.limit),
                id(&one.replicate)
            )),
            [first, ..] => Some(format!(
                "{what} over {} in {side} {}",
                show(first.limit),
                list.iter()
                    .map(|e| format!("{} ({})", id(&e.replicate), show(e.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        let pressure = phrase("host CPU pressure", &self.pressured, &|v| format!("{v:.2}"));
        // Three significant digits: a share just over the limit must not read as equal to it.
        let lag = phrase("load generator late starts", &self.lagging, &|v| {
            format!("{} %", crate::sla::sig3(v * 100.0))
        });
        pressure.into_iter().chain(lag).collect()
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
    let id = |r: &ReplicateSummary| ReplicateId {
        arm: r.arm.clone(),
        index: r.index,
    };
    let pressured = reps
        .iter()
        .filter_map(|r| {
            let p = r.load_generator?.host_cpu_pressure?;
            (p > cfg.max_host_cpu_pressure).then(|| Exceeded {
                replicate: id(r),
                value: p,
                limit: cfg.max_host_cpu_pressure,
            })
        })
        .collect();
    let lagging = reps
        .iter()
        .filter_map(|r| {
            let share = r.generator_late_share?;
            (share > cfg.max_generator_late_share).then(|| Exceeded {
                replicate: id(r),
                value: share,
                limit: cfg.max_generator_late_share,
            })
        })
        .collect();
    NoiseSummary {
        pressured,
        lagging,
        generator_late_share_max: reps
            .iter()
            .filter_map(|r| r.generator_late_share)
            .reduce(f64::max),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(index: u32, pressure: Option<f64>, late: Option<f64>) -> ReplicateSummary {
        ReplicateSummary {
            index,
            latency_p95_ms: 5.0,
            load_generator: Some(CpuUsage {
                cpu_seconds: 0.5,
                wall_seconds: 10.0,
                cores: 2,
                host_cpu_pressure: pressure,
            }),
            generator_late_share: late,
            ..Default::default()
        }
    }

    #[test]
    fn replicates_over_a_noise_limit_are_named_with_their_figure() {
        let cfg = GateConfig::default();
        let reps = [
            rep(1, Some(0.97), Some(0.002)),
            rep(2, Some(0.05), Some(0.12)),
            rep(6, Some(0.05), Some(0.0502)),
            rep(3, Some(0.99), None),
            // At the limit is not over it; no PSI on this kernel is no evidence either way.
            rep(
                4,
                Some(cfg.max_host_cpu_pressure),
                Some(cfg.max_generator_late_share),
            ),
            rep(5, None, Some(0.0)),
        ];
        let n = noise_summary(&reps, &cfg);
        let ids = |v: &[Exceeded]| v.iter().map(|e| e.replicate.index).collect::<Vec<_>>();
        assert_eq!(ids(&n.pressured), [1, 3]);
        assert_eq!(ids(&n.lagging), [2, 6]);
        assert_eq!(n.generator_late_share_max, Some(0.12));
        assert_eq!(
            n.noise_reasons("BASE"),
            [
                "host CPU pressure over 0.40 in BASE #1 (0.97), #3 (0.99)",
                "load generator late starts over 5 % in BASE #2 (12 %), #6 (5.02 %)",
            ]
        );
        // A quiet side has nothing to say.
        let quiet = noise_summary(&[rep(1, Some(0.04), Some(0.0))], &cfg);
        assert!(quiet.noise_reasons("NEW").is_empty());
    }
}

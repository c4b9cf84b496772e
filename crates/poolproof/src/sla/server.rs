//! Server-side SLA metrics from the app's sampled monitoring endpoints.

use super::{phase_kind, Measure};
use crate::observe::{Observations, ServerSample};
use crate::scenario::{Aggregate, Metric, Sla};
use std::collections::BTreeMap;

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    let phase = phase_kind(sla.phase);
    let windows = obs.windows(phase);
    if windows.is_empty() {
        return Measure::NoData(format!(
            "phase `{}` does not occur in this run",
            phase.as_str()
        ));
    }
    let samples: Vec<&ServerSample> = obs.server_samples_in(&windows).collect();
    let n = samples.len();
    let within = format!("{n} samples in `{}`", phase.as_str());
    let values = |f: &dyn Fn(&ServerSample) -> Option<f64>| -> Vec<f64> {
        samples
            .iter()
            .filter_map(|s| f(s))
            .filter(|v| v.is_finite())
            .collect()
    };
    let none = |what: &str| Measure::NoData(format!("no {what} in the {within}"));
    match sla.metric {
        Metric::PoolUtilization => {
            let v = values(&|s| s.pool.as_ref().map(|p| p.utilization_percent / 100.0));
            match max(&v) {
                Some(value) => Measure::Value {
                    value,
                    detail: format!("peak of {} pool samples ({within})", v.len()),
                },
                None => none("pool stats"),
            }
        }
        Metric::AcquireWaitP95 => {
            let v = values(&|s| s.pool.as_ref().map(|p| p.acquire_wait_p95_ms));
            match max(&v) {
                Some(value) => Measure::Value {
                    value,
                    detail: format!("highest reported acquire-wait p95 (cumulative since app start) of {} samples", v.len()),
                },
                None => none("pool stats"),
            }
        }
        Metric::HealthScore => {
            let v = values(&|s| s.health_score);
            let agg = sla.aggregate_or_default();
            let value = match agg {
                Aggregate::Min => v.iter().copied().reduce(f64::min),
                Aggregate::Mean => (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
            };
            let name = match agg {
                Aggregate::Min => "min",
                Aggregate::Mean => "mean",
            };
            match value {
                Some(value) => Measure::Value {
                    value,
                    detail: format!("{name} of {} health samples ({within})", v.len()),
                },
                None => none("health score"),
            }
        }
        Metric::ServerLatencyP95 => {
            if let Some(route) = &sla.route {
                return Measure::NotEvaluated(format!(
                    "per-route server p95 (route {route}) is not sampled; use the overall server p95"
                ));
            }
            let v = values(&|s| s.server_p95_ms);
            if v.is_empty() {
                return none("server p95");
            }
            let value = v.iter().sum::<f64>() / v.len() as f64;
            Measure::Value {
                value,
                detail: format!(
                    "mean of {} per-second server p95 samples ({within})",
                    v.len()
                ),
            }
        }
        Metric::PoolEfficiency => efficiency(&samples, &within),
        other => Measure::NotEvaluated(format!("{} is not a server-side metric", other.as_str())),
    }
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

/// 1 − Δopened / Δacquisitions over the phase, summed over instances.
fn efficiency(samples: &[&ServerSample], within: &str) -> Measure {
    let mut by_instance: BTreeMap<usize, Vec<&ServerSample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.pool.is_some()) {
        by_instance.entry(s.instance).or_default().push(s);
    }
    if by_instance.is_empty() {
        return Measure::NoData(format!("no pool stats in the {within}"));
    }
    let (mut d_acq, mut d_open) = (0u64, 0u64);
    for list in by_instance.values_mut() {
        list.sort_by(|a, b| a.t.total_cmp(&b.t));
        let (Some(first), Some(last)) = (
            list.first().and_then(|s| s.pool.as_ref()),
            list.last().and_then(|s| s.pool.as_ref()),
        ) else {
            continue;
        };
        d_acq += last.acquisitions.saturating_sub(first.acquisitions);
        d_open += last
            .connections_opened
            .saturating_sub(first.connections_opened);
    }
    if d_acq > 0 {
        let value = (1.0 - d_open as f64 / d_acq as f64).clamp(0.0, 1.0);
        return Measure::Value {
            value,
            detail: format!("{d_open} connections opened for {d_acq} acquisitions ({within})"),
        };
    }
    if by_instance.values().any(|l| l.len() >= 2) {
        return Measure::NoData(format!("no acquisitions between samples in the {within}"));
    }
    // A single sample per instance: the app's own cumulative figure is all there is.
    let v: Vec<f64> = by_instance
        .values()
        .filter_map(|l| {
            l.last()
                .and_then(|s| s.pool.as_ref())
                .map(|p| p.efficiency_percent / 100.0)
        })
        .collect();
    match v.iter().copied().reduce(f64::min) {
        Some(value) => Measure::Value {
            value,
            detail: format!(
                "app-reported cumulative efficiency (one sample per instance, {within})"
            ),
        },
        None => Measure::NoData(format!("no pool stats in the {within}")),
    }
}

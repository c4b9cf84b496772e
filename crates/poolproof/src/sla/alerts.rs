//! Fault-related SLA metrics: alert latency and resolution, duplicate notifications,
//! recovery time.

use super::{phase_kind, Measure};
use crate::observe::{AlertDelivery, AlertTransition, FaultEvent, Observations, Window};
use crate::scenario::{Metric, Phase, Sla};

fn successful(d: &AlertDelivery) -> bool {
    (200..300).contains(&d.status)
}

fn channel_matches(sla: &Sla, d: &AlertDelivery) -> bool {
    sla.channel.is_none_or(|c| c.to_string() == d.channel)
}

fn faults_in_order(obs: &Observations) -> Vec<&FaultEvent> {
    let mut f: Vec<&FaultEvent> = obs.faults.iter().collect();
    f.sort_by(|a, b| a.start.total_cmp(&b.start));
    f
}

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    match sla.metric {
        Metric::DuplicateNotifications => duplicates(sla, obs),
        Metric::AlertLatency | Metric::AlertResolution => latency(sla, obs),
        other => Measure::NotEvaluated(format!("{} is not an alert metric", other.as_str())),
    }
}

/// Fault start → first successful firing delivery (or fault end → resolution), worst fault.
fn latency(sla: &Sla, obs: &Observations) -> Measure {
    let Some(alert) = sla.alert.as_deref() else {
        return Measure::NotEvaluated(format!("{} needs `alert:`", sla.metric.as_str()));
    };
    let faults = faults_in_order(obs);
    if faults.is_empty() {
        return Measure::NoData("no fault happened in this run".into());
    }
    let resolution = sla.metric == Metric::AlertResolution;
    let mut worst: Option<f64> = None;
    for f in faults {
        let firing = obs.alerts.iter().filter(|d| {
            d.alert == alert
                && d.transition == AlertTransition::Firing
                && successful(d)
                && channel_matches(sla, d)
                && d.t >= f.start
        });
        let first_firing = firing.map(|d| d.t).reduce(f64::min);
        let value = if resolution {
            let Some(end) = f.end else {
                return Measure::NoData(format!(
                    "the {} fault at {:.1} s never ended",
                    f.kind, f.start
                ));
            };
            let after = first_firing.unwrap_or(f.start);
            let resolved = obs
                .alerts
                .iter()
                .filter(|d| {
                    d.alert == alert
                        && d.transition == AlertTransition::Resolved
                        && successful(d)
                        && channel_matches(sla, d)
                        && d.t >= after
                })
                .map(|d| d.t)
                .reduce(f64::min);
            match resolved {
                Some(t) => (t - end).max(0.0) * 1000.0,
                None => {
                    return Measure::NoData(format!(
                    "no resolution of `{alert}` delivered after the {} fault ended at {end:.1} s",
                    f.kind
                ))
                }
            }
        } else {
            match first_firing {
                Some(t) => (t - f.start) * 1000.0,
                None => {
                    return Measure::NoData(format!(
                        "no `{alert}` delivered after the {} fault started at {:.1} s",
                        f.kind, f.start
                    ))
                }
            }
        };
        worst = Some(worst.map_or(value, |w: f64| w.max(value)));
    }
    match worst {
        Some(value) => Measure::Value {
            value,
            detail: format!(
                "worst over {} fault(s), channel {}",
                obs.faults.len(),
                sla.channel
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "any".into())
            ),
        },
        None => Measure::NoData("no fault happened in this run".into()),
    }
}

/// Successful deliveries repeating the previous transition of the same alert on the same
/// channel (firing, firing without a resolution between them) are duplicates.
fn duplicates(sla: &Sla, obs: &Observations) -> Measure {
    let mut ds: Vec<&AlertDelivery> = obs
        .alerts
        .iter()
        .filter(|d| successful(d) && channel_matches(sla, d))
        .filter(|d| sla.alert.as_deref().is_none_or(|a| a == d.alert))
        .collect();
    ds.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut last: std::collections::BTreeMap<(&str, &str), AlertTransition> = Default::default();
    let mut dup = 0u64;
    for d in &ds {
        let key = (d.alert.as_str(), d.channel.as_str());
        if last.get(&key) == Some(&d.transition) {
            dup += 1;
        }
        last.insert(key, d.transition);
    }
    Measure::Value {
        value: dup as f64,
        detail: format!("{} successful deliveries examined", ds.len()),
    }
}

/// Seconds needed after a fault ends until the per-second p95 and error rate are back within
/// the scenario's all-route `latency_p95` / `error_rate` SLAs of every phase but `during`
/// (`before` says what normal is, `after` and `load` what is expected once the fault is
/// over) for 3 consecutive seconds (or until the end of load, if fewer remain). Worst fault
/// counts.
pub(crate) fn recovery_time(all: &[Sla], obs: &Observations) -> Measure {
    let refs: Vec<&Sla> = all
        .iter()
        .filter(|s| s.route.is_none() && s.phase != Phase::During)
        .filter(|s| matches!(s.metric, Metric::LatencyP95 | Metric::ErrorRate))
        .collect();
    if refs.is_empty() {
        return Measure::NotEvaluated(
            "recovery_time needs an all-route latency_p95 or error_rate SLA (of any phase but \
             during) to define recovery"
                .into(),
        );
    }
    let faults = faults_in_order(obs);
    if faults.is_empty() {
        return Measure::NoData("no fault happened in this run".into());
    }
    let load = obs.windows(phase_kind(Phase::Load));
    let Some(load) = load.first().copied() else {
        return Measure::NoData("no measured load".into());
    };
    let complies = |t: i64| -> bool {
        let w = obs
            .client
            .window(&[Window::new(t as f64, t as f64 + 1.0)], None);
        refs.iter().all(|s| {
            let v = match s.metric {
                Metric::LatencyP95 => w.latency.quantile_ms(0.95),
                _ => w.error_rate(),
            };
            v.is_some_and(|v| s.comparator.holds(v, s.threshold.canonical()))
        })
    };
    let last_second = (load.end.ceil() as i64) - 1;
    let mut worst = 0.0f64;
    for f in faults {
        let Some(end) = f.end else {
            return Measure::NoData(format!(
                "the {} fault at {:.1} s never ended",
                f.kind, f.start
            ));
        };
        let mut recovered = None;
        let mut t = end.floor() as i64;
        while t <= last_second {
            let run_end = (t + 2).min(last_second);
            if (t..=run_end).all(complies) {
                recovered = Some(t);
                break;
            }
            t += 1;
        }
        match recovered {
            Some(t) => worst = worst.max((t as f64 - end).max(0.0) * 1000.0),
            None => {
                return Measure::NoData(format!(
                    "not recovered by the end of load after the {} fault ended at {end:.1} s",
                    f.kind
                ))
            }
        }
    }
    Measure::Value {
        value: worst,
        detail: format!(
            "per-second p95/error rate back within {} reference SLA(s), worst fault",
            refs.len()
        ),
    }
}

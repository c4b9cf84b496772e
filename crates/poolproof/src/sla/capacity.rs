//! `max_sustained_rate`: the highest open-model stage rate at which every per-second
//! latency, error-rate and dropped-request SLA of the scenario still holds, so stepping the
//! rate up finds the knee without bisecting by hand.
//!
//! A stage holds when each of its whole seconds meets every such SLA (all phases but the
//! fault-relative ones; a `stage:` selector does not limit this, the SLA's threshold is the
//! definition of "holds"). Stages are walked in order and the walk stops at the first stage
//! that does not hold: past the knee, a later stage that happens to pass is noise, not
//! capacity. A stage's rate is the rate it reaches (its end).

use crate::observe::{ClientSeries, Observations, Window};
use crate::scenario::{Metric, Phase, Sla, Timing};

/// The max sustained rate (rps) and how it was found; `Err` says why there is none.
pub(crate) fn sustained(all: &[Sla], obs: &Observations) -> Result<(f64, String), String> {
    let refs: Vec<&Sla> = all
        .iter()
        .filter(|s| s.phase == Phase::Load)
        .filter(|s| {
            s.metric.is_latency()
                || matches!(s.metric, Metric::ErrorRate | Metric::DroppedRequests)
        })
        .collect();
    if refs.is_empty() {
        return Err("max_sustained_rate needs a latency, error_rate or dropped_requests SLA (phase load) to say what holding a rate means".into());
    }
    if obs.stages.is_empty() {
        return Err("no open-model stages in this run".into());
    }
    let load = obs.load;
    let mut best: Option<f64> = None;
    let mut held = 0usize;
    let mut failure = None;
    for (i, stage) in obs.stages.iter().enumerate() {
        let Some(w) = stage.window().intersect(&load) else {
            continue;
        };
        let seconds = ClientSeries::seconds_in(&[w]);
        if seconds.is_empty() {
            // A step (`for: 0s`) or a stage cut short: nothing to judge.
            continue;
        }
        if let Some(why) = seconds.iter().find_map(|t| breach(&refs, obs, *t)) {
            failure = Some(format!(
                "stage {} ({} rps) did not hold: {why}",
                i + 1,
                super::value::sig3(stage.rps)
            ));
            break;
        }
        held += 1;
        best = Some(best.map_or(stage.rps, |b: f64| b.max(stage.rps)));
    }
    let mut detail = format!(
        "{held} stage(s) held every second of {} SLA(s)",
        refs.len()
    );
    if let Some(f) = failure {
        detail.push_str(&format!("; {f}"));
    }
    Ok((best.unwrap_or(0.0), detail))
}

/// The first reference SLA second `t` breaks, as text; `None` when it meets them all.
fn breach(refs: &[&Sla], obs: &Observations, t: i64) -> Option<String> {
    let w = [Window::new(t as f64, t as f64 + 1.0)];
    for s in refs {
        let stats = obs.client.window(&w, s.route.as_deref());
        let q = match s.metric {
            Metric::LatencyP50 => Some(0.5),
            Metric::LatencyP95 => Some(0.95),
            Metric::LatencyP99 => Some(0.99),
            Metric::LatencyMax => Some(1.0),
            _ => None,
        };
        let value = match (s.metric, q) {
            (_, Some(q)) => {
                let h = if s.timing == Some(Timing::Uncorrected) {
                    &stats.service
                } else {
                    &stats.latency
                };
                h.quantile_ms(q)
            }
            (Metric::ErrorRate, _) => stats.error_rate(),
            // A second without a scheduled start (a rate under 1/s) drops nothing.
            (Metric::DroppedRequests, _) => Some(stats.dropped_rate().unwrap_or(0.0)),
            _ => None,
        };
        let ok = value.is_some_and(|v| v.is_finite() && s.comparator.holds(v, s.threshold.canonical()));
        if !ok {
            let got = value.map_or("nothing completed".to_string(), |v| {
                super::format_value(v, super::Unit::of(s.metric, &s.threshold))
            });
            return Some(format!("second {t}: {} measured {got}", s.label()));
        }
    }
    None
}

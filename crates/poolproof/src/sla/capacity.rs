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
            s.metric.is_latency() || matches!(s.metric, Metric::ErrorRate | Metric::DroppedRequests)
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
    let mut detail = format!("{held} stage(s) held every second of {} SLA(s)", refs.len());
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
        let ok =
            value.is_some_and(|v| v.is_finite() && s.comparator.holds(v, s.threshold.canonical()));
        if !ok {
            let got = value.map_or("nothing completed".to_string(), |v| {
                super::format_value(v, super::Unit::of(s.metric, &s.threshold))
            });
            return Some(format!("second {t}: {} measured {got}", s.label()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::StageSpan;
    use std::time::Duration;

    fn sla(text: &str) -> Sla {
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Four 2 s stages at 100, 200, 300 and 400 rps; seconds 4..6 (the 300 rps stage) are
    /// slow, the 400 rps stage fast again.
    fn obs() -> Observations {
        let mut o = Observations {
            load: Window::new(0.0, 8.0),
            ..Observations::default()
        };
        o.client = ClientSeries::new(vec!["r".into()]);
        for (i, rps) in [100.0, 200.0, 300.0, 400.0].into_iter().enumerate() {
            let start = 2.0 * i as f64;
            o.stages.push(StageSpan {
                start,
                end: start + 2.0,
                from_rps: rps,
                rps,
            });
        }
        for t in 0..8 {
            let ms = if (4..6).contains(&t) { 500 } else { 10 };
            for _ in 0..50 {
                o.client
                    .record("r", t as f64 + 0.5, Some(Duration::from_millis(ms)), None);
            }
        }
        o
    }

    #[test]
    fn the_knee_is_the_last_stage_before_the_first_that_breaks_a_per_second_sla() {
        let all = vec![
            sla("{metric: latency_p95, comparator: '<=', threshold: 100ms, stage: 1}"),
            sla("{metric: max_sustained_rate, comparator: '>=', threshold: 1}"),
        ];
        let (rate, detail) = sustained(&all, &obs()).unwrap();
        assert_eq!(rate, 200.0, "{detail}");
        assert!(
            detail.contains("stage 3 (300 rps) did not hold"),
            "{detail}"
        );
        // A looser bar holds every stage.
        let loose = vec![sla(
            "{metric: latency_p95, comparator: '<=', threshold: 1s}",
        )];
        assert_eq!(sustained(&loose, &obs()).unwrap().0, 400.0);
        // A bar nothing meets: no stage held.
        let strict = vec![sla(
            "{metric: latency_p50, comparator: '<=', threshold: 1ms}",
        )];
        assert_eq!(sustained(&strict, &obs()).unwrap().0, 0.0);
    }

    #[test]
    fn without_a_defining_sla_or_stages_there_is_no_figure() {
        let only = vec![sla("{metric: throughput, comparator: '>=', threshold: 1}")];
        assert!(sustained(&only, &obs()).is_err());
        let mut closed = obs();
        closed.stages.clear();
        let lat = vec![sla(
            "{metric: latency_p95, comparator: '<=', threshold: 1s}",
        )];
        assert!(sustained(&lat, &closed).is_err());
    }
}

//! Fault-related SLA metrics: alert latency and resolution, duplicate notifications,
//! notifications that inhibition or a silence should have held back, recovery time.

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
        Metric::NotificationsWhileInhibited => while_inhibited(sla, obs),
        Metric::NotificationsWhileSilenced => while_silenced(sla, obs),
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

/// Successful firing deliveries of `alert` (on `channel`, or any) as the sink saw them.
fn firings<'a>(
    obs: &'a Observations,
    sla: &'a Sla,
    alert: &'a str,
) -> impl Iterator<Item = f64> + 'a {
    obs.alerts
        .iter()
        .filter(move |d| {
            d.alert == alert
                && d.transition == AlertTransition::Firing
                && successful(d)
                && channel_matches(sla, d)
        })
        .map(|d| d.t)
}

/// The spans during which `alert` was firing at the sink: from its first successful firing
/// delivery (any channel) to its first successful resolution after that (any channel), or to
/// the end of the run.
fn firing_spans(obs: &Observations, alert: &str) -> Vec<(f64, f64)> {
    let mut ds: Vec<&AlertDelivery> = obs
        .alerts
        .iter()
        .filter(|d| d.alert == alert && successful(d))
        .collect();
    ds.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut spans = Vec::new();
    let mut open: Option<f64> = None;
    for d in ds {
        match (d.transition, open) {
            (AlertTransition::Firing, None) => open = Some(d.t),
            (AlertTransition::Resolved, Some(start)) => {
                spans.push((start, d.t));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        spans.push((start, f64::INFINITY));
    }
    spans
}

/// Firing deliveries of `alert` that arrived while `inhibited_by` was firing at the sink. With
/// nothing firing to inhibit it, the SLA has no data (it would otherwise pass unexamined).
fn while_inhibited(sla: &Sla, obs: &Observations) -> Measure {
    let (Some(alert), Some(by)) = (sla.alert.as_deref(), sla.inhibited_by.as_deref()) else {
        return Measure::NotEvaluated(
            "notifications_while_inhibited needs `alert:` and `inhibited_by:`".into(),
        );
    };
    let spans = firing_spans(obs, by);
    if spans.is_empty() {
        return Measure::NoData(format!(
            "`{by}` never fired at the sink, so nothing inhibited `{alert}`"
        ));
    }
    let all: Vec<f64> = firings(obs, sla, alert).collect();
    let during = all
        .iter()
        .filter(|t| spans.iter().any(|(s, e)| **t > *s && **t < *e))
        .count();
    let covered: f64 = spans
        .iter()
        .map(|(s, e)| e.min(obs.load.end.max(*s)) - s)
        .sum();
    Measure::Value {
        value: during as f64,
        detail: format!(
            "`{by}` fired {} time(s) ({covered:.1} s at the sink); `{alert}` firing delivered {} time(s) in all",
            spans.len(),
            all.len()
        ),
    }
}

/// Firing deliveries whose alert a scenario silence muted when they arrived.
fn while_silenced(sla: &Sla, obs: &Observations) -> Measure {
    let silences: Vec<_> = obs
        .silences
        .iter()
        .filter(|s| match (&sla.alert, &s.alert) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .collect();
    if silences.is_empty() {
        return Measure::NoData(match &sla.alert {
            Some(a) => format!("no silence of `{a}` was in force in this run"),
            None => "no silence was in force in this run".into(),
        });
    }
    let mut examined = 0usize;
    let mut during = 0usize;
    for d in obs.alerts.iter().filter(|d| {
        d.transition == AlertTransition::Firing
            && successful(d)
            && channel_matches(sla, d)
            && sla.alert.as_deref().is_none_or(|a| a == d.alert)
    }) {
        examined += 1;
        if silences.iter().any(|s| s.mutes(&d.alert, d.t)) {
            during += 1;
        }
    }
    Measure::Value {
        value: during as f64,
        detail: format!(
            "{} silence(s); {examined} firing deliveries examined",
            silences.len()
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{SilenceEvent, Window};

    fn delivery(t: f64, alert: &str, firing: bool) -> AlertDelivery {
        AlertDelivery {
            t,
            channel: "slack".into(),
            alert: alert.into(),
            transition: if firing {
                AlertTransition::Firing
            } else {
                AlertTransition::Resolved
            },
            status: 200,
        }
    }

    fn sla(text: &str) -> Sla {
        serde_yaml::from_str(text).unwrap()
    }

    fn obs(alerts: Vec<AlertDelivery>) -> Observations {
        Observations {
            load: Window::new(0.0, 30.0),
            alerts,
            ..Observations::default()
        }
    }

    fn value(m: Measure) -> f64 {
        match m {
            Measure::Value { value, .. } => value,
            Measure::NoData(w) | Measure::NotEvaluated(w) => panic!("no value: {w}"),
            Measure::Paired { value, .. } => value,
        }
    }

    const INHIBITED: &str = "{ metric: notifications_while_inhibited, comparator: '<=', threshold: 0, alert: warn, inhibited_by: crit }";

    #[test]
    fn warnings_delivered_while_the_critical_fired_are_counted() {
        let s = sla(INHIBITED);
        // crit fires 10-20 s; warn delivered at 5 s (before), 15 s (during), 22 s (after).
        let o = obs(vec![
            delivery(5.0, "warn", true),
            delivery(10.0, "crit", true),
            delivery(15.0, "warn", true),
            delivery(20.0, "crit", false),
            delivery(22.0, "warn", true),
        ]);
        assert_eq!(value(while_inhibited(&s, &o)), 1.0);
        // Held: only before and after.
        let held = obs(vec![
            delivery(10.0, "crit", true),
            delivery(20.0, "crit", false),
            delivery(20.5, "warn", true),
        ]);
        assert_eq!(value(while_inhibited(&s, &held)), 0.0);
        // A critical that never resolved covers the rest of the run; failed deliveries do not count.
        let mut open = obs(vec![
            delivery(10.0, "crit", true),
            delivery(25.0, "warn", true),
        ]);
        open.alerts.push(AlertDelivery {
            status: 500,
            ..delivery(26.0, "warn", true)
        });
        assert_eq!(value(while_inhibited(&s, &open)), 1.0);
        // Nothing fired to inhibit the warning: no data, not a pass.
        let none = obs(vec![delivery(5.0, "warn", true)]);
        assert!(matches!(while_inhibited(&s, &none), Measure::NoData(_)));
    }

    #[test]
    fn firings_inside_a_silence_of_their_alert_are_counted() {
        let mut o = obs(vec![
            delivery(3.0, "a", true),  // inside the silence of a
            delivery(4.0, "b", true),  // another alert
            delivery(6.0, "a", false), // a resolution
            delivery(9.0, "a", true),  // after it ended
        ]);
        o.silences = vec![SilenceEvent {
            alert: Some("a".into()),
            planned_at: 2.0,
            start: 2.1,
            end: 8.1,
        }];
        let all = sla("{ metric: notifications_while_silenced, comparator: '<=', threshold: 0 }");
        assert_eq!(value(while_silenced(&all, &o)), 1.0);
        let b = sla(
            "{ metric: notifications_while_silenced, comparator: '<=', threshold: 0, alert: b }",
        );
        assert!(matches!(while_silenced(&b, &o), Measure::NoData(_)));
        // A silence of every alert mutes b too.
        o.silences[0].alert = None;
        assert_eq!(value(while_silenced(&b, &o)), 1.0);
        o.silences.clear();
        assert!(matches!(while_silenced(&all, &o), Measure::NoData(_)));
    }
}

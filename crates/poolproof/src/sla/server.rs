//! Server-side SLA metrics from the app's sampled monitoring endpoints.

use super::{phase_kind, Measure};
use crate::observe::{Observations, ServerSample};
use crate::scenario::{Aggregate, Metric, Sla, Transaction};
use std::collections::BTreeMap;

pub(crate) fn measure(sla: &Sla, obs: &Observations, transactions: &[Transaction]) -> Measure {
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
        Metric::ServerLatencyP95 => match &sla.route {
            Some(route) => route_p95(route, &samples, transactions, &within),
            None => {
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
        },
        Metric::PoolEfficiency => efficiency(&samples, &within),
        Metric::FallbackActivations => fallback_activations(&samples, &within),
        other => Measure::NotEvaluated(format!("{} is not a server-side metric", other.as_str())),
    }
}

/// Per-route server p95: the mean, over the phase's samples, of the p95 the app reports for
/// the route the transaction `route` is served by (`routes[]` of the realtime summary, the
/// app's last 60 s). The app labels routes `METHOD /template` (`GET /api/users/{id}`).
fn route_p95(
    route: &str,
    samples: &[&ServerSample],
    transactions: &[Transaction],
    within: &str,
) -> Measure {
    let Some(tx) = transactions.iter().find(|t| t.name == route) else {
        return Measure::NotEvaluated(format!("route `{route}` names no transaction"));
    };
    let method = tx.method.as_str();
    let path = tx.path.as_str();
    let mut values = Vec::new();
    let mut matched: Vec<&str> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in samples {
        let best = s
            .route_p95_ms
            .iter()
            .filter_map(|(label, p95)| {
                route_match(method, path, label).map(|score| (score, label.as_str(), *p95))
            })
            .max_by_key(|(score, _, _)| *score);
        match best {
            Some((_, label, p95)) if p95.is_finite() => {
                values.push(p95);
                if !matched.contains(&label) {
                    matched.push(label);
                }
            }
            _ => {
                for label in s.route_p95_ms.keys() {
                    if !seen.contains(&label.as_str()) && seen.len() < 8 {
                        seen.push(label);
                    }
                }
            }
        }
    }
    if values.is_empty() {
        let reported = if seen.is_empty() {
            "the app reported no per-route figures".to_string()
        } else {
            format!("the app reported only {}", seen.join(", "))
        };
        return Measure::NoData(format!(
            "no server p95 for `{method} {path}` in the {within}: {reported}"
        ));
    }
    let value = values.iter().sum::<f64>() / values.len() as f64;
    Measure::Value {
        value,
        detail: format!(
            "mean of {} per-second server p95 samples of `{}` (the app's last 60 s; {within})",
            values.len(),
            matched.join("`, `")
        ),
    }
}

/// Whether the app's route `label` (`GET /api/users/{id}`, or a bare template) serves a
/// transaction's `method` and path template (`/api/users/{{rand:1..5000}}?x=1`): same
/// method, same segment count, each segment equal or a `{param}` of the route. Returns the
/// number of literal segments that matched, so the most specific route wins (`/users/me`
/// over `/users/{id}`, as the app's router prefers). The query string is ignored.
pub(crate) fn route_match(method: &str, path: &str, label: &str) -> Option<usize> {
    let template = match label.split_once(' ') {
        Some((m, t)) if m.eq_ignore_ascii_case(method) => t,
        Some(_) => return None,
        None => label,
    };
    let path = path.split('?').next().unwrap_or(path);
    let a: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let b: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    if a.len() != b.len() {
        return None;
    }
    let is_param = |r: &str| r.starts_with('{') && r.ends_with('}') && !r.starts_with("{{");
    let mut literal = 0;
    for (p, r) in a.iter().zip(&b) {
        if p == r {
            literal += 1;
        } else if p.is_empty() || !is_param(r) {
            return None;
        }
    }
    Some(literal)
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

/// The samples with pool stats of each instance, in time order.
fn pool_series<'a>(samples: &[&'a ServerSample]) -> BTreeMap<usize, Vec<&'a ServerSample>> {
    let mut by_instance: BTreeMap<usize, Vec<&ServerSample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.pool.is_some()) {
        by_instance.entry(s.instance).or_default().push(s);
    }
    for list in by_instance.values_mut() {
        list.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
    by_instance
}

/// Switches to fallback within the phase: the difference of the app's `fallback_activations`
/// counter between an instance's first and last sample, plus one for an instance already in
/// fallback at its first sample (it switched before the phase but is still there).
fn fallback_activations(samples: &[&ServerSample], within: &str) -> Measure {
    let by_instance = pool_series(samples);
    if by_instance.is_empty() {
        return Measure::NoData(format!("no pool stats in the {within}"));
    }
    let mut switches = 0u64;
    let mut in_fallback = 0usize;
    for list in by_instance.values() {
        let (Some(first), Some(last)) = (
            list.first().and_then(|s| s.pool.as_ref()),
            list.last().and_then(|s| s.pool.as_ref()),
        ) else {
            continue;
        };
        switches += last
            .fallback_activations
            .saturating_sub(first.fallback_activations);
        if first.mode == "fallback" {
            switches += 1;
        }
        in_fallback += list
            .iter()
            .filter(|s| s.pool.as_ref().is_some_and(|p| p.mode == "fallback"))
            .count();
    }
    Measure::Value {
        value: switches as f64,
        detail: format!("{in_fallback} pool samples in fallback mode ({within})"),
    }
}

/// 1 − Δopened / Δacquisitions over the phase, summed over instances.
fn efficiency(samples: &[&ServerSample], within: &str) -> Measure {
    let by_instance = pool_series(samples);
    if by_instance.is_empty() {
        return Measure::NoData(format!("no pool stats in the {within}"));
    }
    let (mut d_acq, mut d_open) = (0u64, 0u64);
    for list in by_instance.values() {
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

#[cfg(test)]
mod tests {
    use super::route_match;

    #[test]
    fn transaction_paths_match_route_labels() {
        let users = "/api/users/{{rand:1..5000}}";
        // The count includes the empty segment before the leading `/`.
        assert_eq!(route_match("GET", users, "GET /api/users/{id}"), Some(3));
        assert_eq!(route_match("GET", users, "/api/users/{id}"), Some(3));
        assert_eq!(
            route_match("GET", "/api/users/7", "GET /api/users/{id}"),
            Some(3)
        );
        assert_eq!(route_match("POST", users, "GET /api/users/{id}"), None);
        assert_eq!(
            route_match(
                "GET",
                "/api/buddies?user_id={{rand:1..9}}",
                "GET /api/buddies"
            ),
            Some(3)
        );
        assert_eq!(
            route_match("POST", "/api/buddy/respond", "POST /api/buddy/respond"),
            Some(4)
        );
        assert_eq!(
            route_match("POST", "/api/buddy/respond", "GET /api/users/{id}"),
            None
        );
        assert_eq!(
            route_match("GET", "/api/users/1/x", "GET /api/users/{id}"),
            None
        );
        assert_eq!(
            route_match("GET", "/api/users", "GET /api/users/{id}"),
            None
        );
        // The literal route is more specific than the parameter.
        assert!(
            route_match("GET", "/api/users/me", "GET /api/users/me")
                > route_match("GET", "/api/users/me", "GET /api/users/{id}")
        );
    }
}

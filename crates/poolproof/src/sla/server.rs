//! Server-side SLA metrics from the app's sampled sources: pooled-app's JSON API where it was
//! sampled, else the OpenTelemetry names of the app's `/metrics` (`prometheus` source); the
//! database's own figures are in [`super::database`].

use super::{phase_windows, Measure};
use crate::observe::{Observations, PoolStats, PromHistogram, ServerSample};
use crate::sampler::prometheus as names;
use crate::scenario::{Aggregate, Metric, Sla, Transaction};
use std::collections::BTreeMap;

pub(crate) fn measure(sla: &Sla, obs: &Observations, transactions: &[Transaction]) -> Measure {
    let (phase, windows) = match phase_windows(sla, obs) {
        Ok(w) => w,
        Err(missing) => return missing,
    };
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
            if let Some(value) = max(&v) {
                return Measure::Value {
                    value,
                    detail: format!("peak of {} pool samples ({within})", v.len()),
                };
            }
            let v = values(&|s| {
                let o = s.otel.as_ref()?;
                Some(o.used? / o.max.filter(|m| *m > 0.0)?)
            });
            match max(&v) {
                Some(value) => Measure::Value {
                    value,
                    detail: format!(
                        "peak of {} /metrics samples of {}{{state=used}} / {} ({within})",
                        v.len(),
                        names::COUNT,
                        names::MAX
                    ),
                },
                None => none(&format!(
                    "pool figures: looked for pooled-app's {} and {}{{db_client_connection_state=\"used\"}} with {} on /metrics",
                    crate::sampler::POOL,
                    names::COUNT,
                    names::MAX
                )),
            }
        }
        Metric::AcquireWaitP95 => {
            let v = values(&|s| s.pool.as_ref().map(|p| p.acquire_wait_p95_ms));
            if let Some(value) = max(&v) {
                return Measure::Value {
                    value,
                    detail: format!("highest reported acquire-wait p95 (cumulative since app start) of {} samples", v.len()),
                };
            }
            let (hist, n) = phase_histogram(&samples, &|s| s.otel.as_ref()?.wait.clone());
            match hist.as_ref().map(|h| (h.quantile(0.95), h.total())) {
                Some((Some(p95), total)) => Measure::Value {
                    value: p95 * 1000.0,
                    detail: format!(
                        "p95 of the {total:.0} acquisitions {} counted in the phase ({n} instances; {within})",
                        names::WAIT_TIME[0]
                    ),
                },
                Some((None, _)) => none(&format!(
                    "acquisitions: {} counted none between the phase's first and last sample",
                    names::WAIT_TIME[0]
                )),
                None => none(&format!(
                    "acquire wait: looked for pooled-app's {} and the {}[_seconds]_bucket histogram on /metrics",
                    crate::sampler::POOL,
                    names::WAIT_TIME[0]
                )),
            }
        }
        Metric::PendingRequests => {
            let pooled = per_tick_sum(&samples, &|s| s.pool.as_ref().map(|p| f64::from(p.waiting)));
            let (v, what) = if pooled.is_empty() {
                (
                    per_tick_sum(&samples, &|s| s.otel.as_ref()?.pending),
                    format!("{} on /metrics", names::PENDING),
                )
            } else {
                (pooled, "pooled-app's pool `waiting`".to_owned())
            };
            match max(&v) {
                Some(value) => Measure::Value {
                    value,
                    detail: format!(
                        "peak of {} per-second sums over instances of {what} ({within})",
                        v.len()
                    ),
                },
                None => none(&format!(
                    "pending requests: looked for pooled-app's {} (`waiting`) and {} on /metrics",
                    crate::sampler::POOL,
                    names::PENDING
                )),
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
        Metric::ServerLatencyP95
            if !samples
                .iter()
                .any(|s| s.server_p95_ms.is_some() || !s.route_p95_ms.is_empty()) =>
        {
            http_p95(sla.route.as_deref(), &samples, transactions, &within)
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

/// What a cumulative histogram counted over the phase: per instance the difference between
/// its first and last sample that has one, added up over instances; with the number of
/// instances that had two samples.
fn phase_histogram(
    samples: &[&ServerSample],
    pick: &dyn Fn(&ServerSample) -> Option<PromHistogram>,
) -> (Option<PromHistogram>, usize) {
    let mut by_instance: BTreeMap<usize, Vec<(f64, PromHistogram)>> = BTreeMap::new();
    for s in samples {
        if let Some(h) = pick(s) {
            by_instance.entry(s.instance).or_default().push((s.t, h));
        }
    }
    let mut total: Option<PromHistogram> = None;
    let mut n = 0;
    for list in by_instance.values_mut() {
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            continue;
        };
        let d = last.1.since(&first.1);
        if list.len() >= 2 {
            n += 1;
        }
        match total.as_mut() {
            Some(t) => t.add(&d),
            None => total = Some(d),
        }
    }
    (total, n)
}

/// Per sampling tick (the instances of one tick share its time), the sum over instances of
/// `f`; ticks where no instance had a figure are left out.
fn per_tick_sum(samples: &[&ServerSample], f: &dyn Fn(&ServerSample) -> Option<f64>) -> Vec<f64> {
    let mut ticks: BTreeMap<u64, f64> = BTreeMap::new();
    for s in samples {
        if let Some(v) = f(s).filter(|v| v.is_finite()) {
            *ticks.entry(s.t.to_bits()).or_insert(0.0) += v;
        }
    }
    ticks.into_values().collect()
}

/// Server p95 from `http_server_request_duration_seconds` (`prometheus` source): the p95 of
/// what the histogram counted over the phase, all routes or the route `route`'s transaction
/// matches.
fn http_p95(
    route: Option<&str>,
    samples: &[&ServerSample],
    transactions: &[Transaction],
    within: &str,
) -> Measure {
    let tx = match route {
        Some(r) => match transactions.iter().find(|t| t.name == r) {
            Some(t) => Some(t),
            None => return Measure::NotEvaluated(format!("route `{r}` names no transaction")),
        },
        None => None,
    };
    let label = |s: &ServerSample| -> Option<String> {
        let tx = tx?;
        s.http
            .keys()
            .filter_map(|k| route_match(tx.method.as_str(), tx.path.as_str(), k).map(|n| (n, k)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, k)| k.clone())
    };
    // Per sample, the chosen route's histogram, or every route's added up.
    let pick = |s: &ServerSample| -> Option<PromHistogram> {
        let chosen = label(s);
        let mut all: Option<PromHistogram> = None;
        for (k, h) in &s.http {
            if tx.is_none() || chosen.as_deref() == Some(k.as_str()) {
                match all.as_mut() {
                    Some(a) => a.add(h),
                    None => all = Some(h.clone()),
                }
            }
        }
        all
    };
    let (hist, n) = phase_histogram(samples, &pick);
    let what = match tx {
        Some(t) => format!("`{} {}`", t.method, t.path),
        None => "all routes".to_owned(),
    };
    match hist.as_ref().map(|h| (h.quantile(0.95), h.total())) {
        Some((Some(p95), total)) => Measure::Value {
            value: p95 * 1000.0,
            detail: format!(
                "p95 of the {total:.0} requests to {what} {} counted in the phase ({n} instances; {within})",
                names::HTTP_DURATION
            ),
        },
        Some((None, _)) => Measure::NoData(format!(
            "{} counted no requests to {what} in the {within}",
            names::HTTP_DURATION
        )),
        None => {
            let mut seen: Vec<&str> = samples
                .iter()
                .flat_map(|s| s.http.keys().map(String::as_str))
                .collect();
            seen.sort_unstable();
            seen.dedup();
            seen.truncate(8);
            if seen.is_empty() {
                Measure::NoData(format!(
                    "no server p95 in the {within}: looked for pooled-app's {} and {}_bucket{{http_request_method, http_route}} on /metrics",
                    crate::sampler::REALTIME,
                    names::HTTP_DURATION
                ))
            } else {
                Measure::NoData(format!(
                    "no server p95 for {what} in the {within}: {} reported only {}",
                    names::HTTP_DURATION,
                    seen.join(", ")
                ))
            }
        }
    }
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

/// An instance's first and last pool stats (of its [`pool_series`]).
fn first_and_last<'a>(list: &[&'a ServerSample]) -> Option<(&'a PoolStats, &'a PoolStats)> {
    Some((list.first()?.pool.as_ref()?, list.last()?.pool.as_ref()?))
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
        let Some((first, last)) = first_and_last(list) else {
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
        let Some((first, last)) = first_and_last(list) else {
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
    use super::*;
    use crate::observe::{OtelPool, Window};

    fn hist(le_counts: &[(f64, f64)]) -> PromHistogram {
        PromHistogram {
            buckets: le_counts.to_vec(),
            count: le_counts.last().map_or(0.0, |b| b.1),
            sum: 0.0,
        }
    }

    /// Two instances scraped for 5 ticks: 20 acquisitions and 10 requests a tick each, every
    /// one below 1 ms except one in ten between 10 and 20 ms; `used` 2 of 10, 5 at t=2.
    fn scraped() -> Observations {
        let mut server = Vec::new();
        for tick in 0..5 {
            for instance in 0..2 {
                let n = f64::from(tick) * 20.0;
                let r = f64::from(tick) * 10.0;
                server.push(ServerSample {
                    t: f64::from(tick) + 0.5,
                    instance,
                    otel: Some(OtelPool {
                        used: Some(if tick == 2 && instance == 1 { 5.0 } else { 2.0 }),
                        max: Some(10.0),
                        pending: Some(f64::from(tick % 2)),
                        wait: Some(hist(&[(0.001, n * 0.9), (0.02, n), (f64::INFINITY, n)])),
                        ..OtelPool::default()
                    }),
                    http: [(
                        "GET /api/users/{id}".to_string(),
                        hist(&[(0.005, r * 0.9), (0.1, r), (f64::INFINITY, r)]),
                    )]
                    .into_iter()
                    .collect(),
                    ..ServerSample::default()
                });
            }
        }
        Observations {
            load: Window::new(0.0, 5.0),
            server,
            ..Observations::default()
        }
    }

    fn sla(text: &str) -> Sla {
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn value(m: Measure) -> f64 {
        match m {
            Measure::Value { value, .. } => value,
            Measure::NoData(why) | Measure::NotEvaluated(why) => panic!("no value: {why}"),
            Measure::Paired { .. } => panic!("paired"),
        }
    }

    #[test]
    fn prometheus_figures_stand_in_for_pooled_apps_api() {
        let o = scraped();
        let tx: Vec<Transaction> = serde_yaml::from_str(
            "[{name: profile, path: '/api/users/{{rand:1..9}}'}, {name: other, path: /x}]",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tx[0].path.as_str(), "/api/users/{{rand:1..9}}");
        assert_eq!(
            route_match("GET", tx[0].path.as_str(), "GET /api/users/{id}"),
            Some(3)
        );
        let m = |t: &str| measure(&sla(t), &o, &tx);
        assert_eq!(
            value(m(
                "{metric: pool_utilization, comparator: '<=', threshold: 90%}"
            )),
            0.5
        );
        // Ticks sum their instances: 0+0, 1+1, ...
        assert_eq!(
            value(m(
                "{metric: pending_requests, comparator: '<=', threshold: 3}"
            )),
            2.0
        );
        // 160 acquisitions over the phase, 10 % of them in (1 ms, 20 ms]: p95 halfway there.
        let wait = value(m(
            "{metric: acquire_wait_p95, comparator: '<=', threshold: 5ms}",
        ));
        assert!((wait - 10.5).abs() < 1e-9, "{wait}");
        let p95 = value(m(
            "{metric: server_latency_p95, comparator: '<=', threshold: 50ms}",
        ));
        assert!((p95 - 52.5).abs() < 1e-9, "{p95}");
        let routed = value(m(
            "{metric: server_latency_p95, comparator: '<=', threshold: 50ms, route: profile}",
        ));
        assert!((routed - 52.5).abs() < 1e-9, "{routed}");
        match m("{metric: server_latency_p95, comparator: '<=', threshold: 50ms, route: other}") {
            Measure::NoData(why) => assert!(why.contains("`GET /x`"), "{why}"),
            _ => panic!("a route the app never served has no data"),
        }
    }

    #[test]
    fn missing_names_are_no_data_naming_them() {
        let o = Observations {
            load: Window::new(0.0, 5.0),
            server: vec![ServerSample {
                t: 1.0,
                otel: Some(OtelPool::default()),
                ..ServerSample::default()
            }],
            ..Observations::default()
        };
        for (metric, name) in [
            ("pool_utilization", "db_client_connection_max"),
            ("pending_requests", "db_client_connection_pending_requests"),
            ("acquire_wait_p95", "db_client_connection_wait_time"),
            (
                "server_latency_p95",
                "http_server_request_duration_seconds_bucket",
            ),
        ] {
            let threshold = if metric.ends_with("p95") { "5ms" } else { "1" };
            let s = sla(&format!(
                "{{metric: {metric}, comparator: '<=', threshold: {threshold}}}"
            ));
            match measure(&s, &o, &[]) {
                Measure::NoData(why) => assert!(why.contains(name), "{metric}: {why}"),
                _ => panic!("{metric}: expected no data"),
            }
        }
    }

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

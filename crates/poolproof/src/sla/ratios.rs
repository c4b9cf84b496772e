//! A/B ratio SLA metrics between two arms' observations (measured load window, all routes).
//!
//! Every ratio SLA is the mean of per-pair values: arm A and arm B of the same replicate form
//! a pair (the order is rotated replicate by replicate, so host drift hits both alike), and
//! the value of each pair is computed from that pair alone (e.g. 1 − throughput A / B). The
//! report shows the mean, n and a 95 % paired bootstrap interval of the mean (reproducible:
//! the seed is derived from the SLA's label); with `confidence:` the verdict is decided on
//! that interval instead of the mean. With `arms_mode: concurrent` the pairs are the seconds
//! of each replicate instead (see [`per_second`]).

use super::value::{format_value, sig3, Unit};
use super::{EvalInput, Measure};
use crate::observe::{Observations, PhaseKind, Window};
use crate::scenario::{ArmsMode, Metric, Sla, Threshold};
use crate::stats::bootstrap::{mean, mean_interval, statistic_interval, BootstrapConfig};
use crate::stats::rng::{derive_seed, Rng};

/// The fixed root of every ratio SLA's bootstrap seed ("poolproo"): same data, same interval.
const SEED: u64 = 0x706f_6f6c_7072_6f6f;
/// Per-pair values listed in the detail before it is cut short.
const LISTED_PAIRS: usize = 8;

pub(crate) fn measure(sla: &Sla, all: &[Sla], input: &EvalInput<'_>) -> Measure {
    if !sla.metric.is_ratio() {
        return Measure::NotEvaluated(format!("{} is not a ratio metric", sla.metric.as_str()));
    }
    let (treatment, baseline) = match (&sla.arms, input.arm_names) {
        (Some(p), _) => (p.treatment.as_str(), p.baseline.as_str()),
        (None, [a, b, ..]) => (a.as_str(), b.as_str()),
        (None, _) => {
            return Measure::NotEvaluated(format!("{} needs two arms", sla.metric.as_str()));
        }
    };
    let pairs = replicate_pairs(input, treatment, baseline);
    if pairs.is_empty() {
        return Measure::NoData(format!(
            "arms `{treatment}` and `{baseline}` were not both run"
        ));
    }
    let as_ratio = matches!(sla.threshold, Threshold::Ratio(_));
    let names = format!("{treatment} vs {baseline}");
    if sla.metric == Metric::CapacityRatio && pairs.iter().any(|(_, t, _)| !t.stages.is_empty()) {
        // The open model offers both arms the same rate: capacity is how high each arm's
        // sustained rate goes, not what it happened to complete.
        return sustained_ratio(sla, all, &pairs, &names);
    }
    if input.arms_mode == ArmsMode::Concurrent && sla.metric != Metric::ConnectionOverheadReduction
    {
        return per_second(sla, &pairs, as_ratio, &names);
    }
    let mut values = Vec::new();
    let mut first_detail = None;
    let mut skipped: Vec<String> = Vec::new();
    for (replicate, t, b) in &pairs {
        let (tw, bw) = (load_windows(sla, t), load_windows(sla, b));
        match pair_value(sla.metric, (t, &tw), (b, &bw), as_ratio, &names) {
            Ok((v, detail)) => {
                values.push(v);
                first_detail.get_or_insert((*replicate, detail));
            }
            Err(why) => skipped.push(format!("replicate {replicate}: {why}")),
        }
    }
    let Some((first_replicate, first_detail)) = first_detail else {
        return Measure::NoData(skipped.join("; "));
    };
    let unit = Unit::of(sla.metric, &sla.threshold);
    let mut detail = if values.len() == 1 {
        first_detail
    } else {
        format!(
            "mean of {} replicate pairs ({}); replicate {first_replicate}: {first_detail}",
            values.len(),
            listed(&values, unit)
        )
    };
    if !skipped.is_empty() {
        detail.push_str(&format!("; skipped {}", skipped.join("; ")));
    }
    summarize(sla, &values, detail)
}

/// Fewest responses per arm in a second for that second's p95 to be one pair of
/// `p95_improvement` (below it the 95th percentile is one of the last few requests).
const MIN_P95_RESPONSES: u64 = 20;

/// Concurrent arms: the arms ran at the same time, so each second of measured load is a pair
/// (both arms under the same host conditions); pairs are pooled over replicates. Throughput
/// and CPU per request are ratios of sums over the paired seconds (requests and CPU add up;
/// a mean of per-second ratios would let a few thin or late-sampled seconds swing it), with
/// a bootstrap over seconds; p95 is the mean of per-second values. The detail also gives the
/// whole-window figures of the first replicate.
fn per_second(
    sla: &Sla,
    pairs: &[(u32, &Observations, &Observations)],
    as_ratio: bool,
    names: &str,
) -> Measure {
    let mut values = Vec::new();
    // (treatment numerator, denominator, baseline numerator, denominator) per second.
    let mut sums: Vec<[f64; 4]> = Vec::new();
    let mut skipped = 0usize;
    // How many units each replicate contributed: its seconds share its processes, so the
    // interval resamples replicates as well as seconds (stats::bootstrap::statistic_interval).
    let (mut sum_clusters, mut value_clusters) = (Vec::new(), Vec::new());
    for (_, t, b) in pairs {
        let (s0, v0) = (sums.len(), values.len());
        let (tw, bw) = (load_windows(sla, t), load_windows(sla, b));
        let mut seconds = crate::observe::ClientSeries::seconds_in(&tw);
        let theirs = crate::observe::ClientSeries::seconds_in(&bw);
        seconds.retain(|s| theirs.contains(s));
        for s in seconds {
            let w = [Window::new(s as f64, s as f64 + 1.0)];
            match sla.metric {
                Metric::ThroughputLoss | Metric::CapacityRatio => {
                    let ok = |o: &Observations| o.client.window(&w, None).successes() as f64;
                    sums.push([ok(t), 1.0, ok(b), 1.0]);
                    continue;
                }
                Metric::CpuPerRequestIncrease => {
                    match (t.app_cpu_in(&w), b.app_cpu_in(&w)) {
                        (Some(tc), Some(bc)) => sums.push([
                            tc.cpu_ns as f64,
                            tc.requests as f64,
                            bc.cpu_ns as f64,
                            bc.requests as f64,
                        ]),
                        _ => skipped += 1,
                    }
                    continue;
                }
                _ => {}
            }
            if sla.metric == Metric::P95Improvement
                && (t.client.window(&w, None).latency.count() < MIN_P95_RESPONSES
                    || b.client.window(&w, None).latency.count() < MIN_P95_RESPONSES)
            {
                skipped += 1;
                continue;
            }
            match pair_value(sla.metric, (t, &w), (b, &w), as_ratio, names) {
                Ok((v, _)) => values.push(v),
                Err(_) => skipped += 1,
            }
        }
        sum_clusters.push(sums.len() - s0);
        value_clusters.push(values.len() - v0);
    }
    let ratio_of_sums = !sums.is_empty();
    if ratio_of_sums {
        let metric = sla.metric;
        let stat = |ix: &mut dyn Iterator<Item = usize>| {
            let mut a = [0.0f64; 4];
            for i in ix {
                for (acc, v) in a.iter_mut().zip(sums[i]) {
                    *acc += v;
                }
            }
            ratio_of(metric, a)
        };
        let point = stat(&mut (0..sums.len()));
        if point.is_finite() {
            let (cfg, mut rng) = bootstrap_for(sla);
            let interval = statistic_interval(
                &sum_clusters,
                point,
                |ix| stat(&mut ix.iter().copied()),
                &cfg,
                &mut rng,
            );
            return finish_per_second(
                sla,
                pairs,
                as_ratio,
                names,
                skipped,
                Measure::Paired {
                    value: point,
                    detail: String::new(),
                    pairs: sums.len(),
                    interval,
                    confidence: cfg.confidence,
                },
            );
        }
    }
    if values.is_empty() {
        return Measure::NoData(format!(
            "no second with figures in both arms ({names}){}",
            whole_window(sla, pairs, as_ratio, names)
        ));
    }
    let point = mean(&values);
    let (cfg, mut rng) = bootstrap_for(sla);
    let interval = statistic_interval(
        &value_clusters,
        point,
        |ix| ix.iter().map(|i| values[*i]).sum::<f64>() / ix.len() as f64,
        &cfg,
        &mut rng,
    );
    let measure = Measure::Paired {
        value: point,
        detail: String::new(),
        pairs: values.len(),
        interval,
        confidence: cfg.confidence,
    };
    finish_per_second(sla, pairs, as_ratio, names, skipped, measure)
}

/// `; whole window of replicate R: …` for the first pair, or nothing.
fn whole_window(
    sla: &Sla,
    pairs: &[(u32, &Observations, &Observations)],
    as_ratio: bool,
    names: &str,
) -> String {
    pairs
        .first()
        .and_then(|(r, t, b)| {
            let (tw, bw) = (load_windows(sla, t), load_windows(sla, b));
            pair_value(sla.metric, (t, &tw), (b, &bw), as_ratio, names)
                .ok()
                .map(|(_, d)| format!("; whole window of replicate {r}: {d}"))
        })
        .unwrap_or_default()
}

/// An arm's measured load, narrowed to the SLA's `stage:` when it has one.
fn load_windows(sla: &Sla, o: &Observations) -> Vec<Window> {
    super::sla_windows(sla, o).unwrap_or_else(|_| o.windows(PhaseKind::Load))
}

/// `capacity_ratio` in the open model: max sustained rate (treatment) / (baseline), per pair.
fn sustained_ratio(
    sla: &Sla,
    all: &[Sla],
    pairs: &[(u32, &Observations, &Observations)],
    names: &str,
) -> Measure {
    let mut values = Vec::new();
    let mut first = None;
    let mut skipped = Vec::new();
    for (r, t, b) in pairs {
        match (
            super::capacity::sustained(all, t),
            super::capacity::sustained(all, b),
        ) {
            (Ok((tr, _)), Ok((br, _))) if br > 0.0 => {
                values.push(tr / br);
                first.get_or_insert(format!(
                    "max sustained rate {} rps vs {} rps ({names})",
                    sig3(tr),
                    sig3(br)
                ));
            }
            (Ok(_), Ok(_)) => skipped.push(format!(
                "replicate {r}: the baseline sustained no stage ({names})"
            )),
            (Err(e), _) | (_, Err(e)) => skipped.push(format!("replicate {r}: {e}")),
        }
    }
    let Some(mut detail) = first else {
        return Measure::NoData(skipped.join("; "));
    };
    if !skipped.is_empty() {
        detail.push_str(&format!("; skipped {}", skipped.join("; ")));
    }
    summarize(sla, &values, detail)
}

/// Puts the per-second detail on a measure.
fn finish_per_second(
    sla: &Sla,
    pairs: &[(u32, &Observations, &Observations)],
    as_ratio: bool,
    names: &str,
    skipped: usize,
    measure: Measure,
) -> Measure {
    let Measure::Paired {
        value,
        pairs: n,
        interval,
        confidence,
        ..
    } = measure
    else {
        return measure;
    };
    let how = match sla.metric {
        Metric::ThroughputLoss | Metric::CapacityRatio => "ratio of summed throughput over",
        Metric::CpuPerRequestIncrease => "ratio of summed CPU per summed request over",
        _ => "mean of",
    };
    let mut detail = format!(
        "{how} {n} per-second pairs over {} replicate{} (arms run concurrently)",
        pairs.len(),
        if pairs.len() == 1 { "" } else { "s" }
    );
    if skipped > 0 {
        detail.push_str(&format!(", {skipped} seconds without figures skipped"));
    }
    detail.push_str(&whole_window(sla, pairs, as_ratio, names));
    Measure::Paired {
        value,
        detail,
        pairs: n,
        interval,
        confidence,
    }
}

/// A ratio metric from summed (treatment numerator, denominator, baseline numerator,
/// denominator): throughput (successes, 1) or CPU per request (CPU ns, requests).
fn ratio_of(metric: Metric, [tn, td, bn, bd]: [f64; 4]) -> f64 {
    let (t, b) = (tn / td, bn / bd);
    match metric {
        Metric::CapacityRatio => t / b,
        Metric::ThroughputLoss => 1.0 - t / b,
        _ => t / b - 1.0,
    }
}

/// The bootstrap settings and the seeded generator of an SLA (confidence from the SLA, 95 %
/// without one; the seed from its label, so the same data gives the same interval).
fn bootstrap_for(sla: &Sla) -> (BootstrapConfig, Rng) {
    let cfg = BootstrapConfig {
        confidence: sla.confidence.map_or(0.95, |c| c.fraction()),
        ..BootstrapConfig::default()
    };
    (cfg, Rng::seed_from_u64(derive_seed(SEED, &sla.label())))
}

/// The mean of `values` with its interval at the SLA's confidence (95 % without one).
pub(crate) fn summarize(sla: &Sla, values: &[f64], detail: String) -> Measure {
    let (cfg, mut rng) = bootstrap_for(sla);
    Measure::Paired {
        value: mean(values),
        detail,
        pairs: values.len(),
        interval: mean_interval(values, &cfg, &mut rng),
        confidence: cfg.confidence,
    }
}

/// `v1, v2, …` in the SLA's unit, the first [`LISTED_PAIRS`] of them.
fn listed(values: &[f64], unit: Unit) -> String {
    let mut s: Vec<String> = values
        .iter()
        .take(LISTED_PAIRS)
        .map(|v| format_value(*v, unit))
        .collect();
    if values.len() > LISTED_PAIRS {
        s.push("…".into());
    }
    s.join(", ")
}

/// (replicate, treatment, baseline) for every replicate both arms ran, in replicate order.
fn replicate_pairs<'a>(
    input: &EvalInput<'a>,
    treatment: &str,
    baseline: &str,
) -> Vec<(u32, &'a Observations, &'a Observations)> {
    if input.arm_replicates.is_empty() {
        return match (input.arms.get(treatment), input.arms.get(baseline)) {
            (Some(t), Some(b)) => vec![(1, t, b)],
            _ => Vec::new(),
        };
    }
    let (Some(ts), Some(bs)) = (
        input.arm_replicates.get(treatment),
        input.arm_replicates.get(baseline),
    ) else {
        return Vec::new();
    };
    ts.iter()
        .filter_map(|(r, t)| bs.get(r).map(|b| (*r, *t, *b)))
        .collect()
}

/// One pair's value of a ratio metric, each arm over its own windows; `Err` says why the
/// pair has none.
fn pair_value(
    metric: Metric,
    (t, tw): (&Observations, &[Window]),
    (b, bw): (&Observations, &[Window]),
    as_ratio: bool,
    names: &str,
) -> Result<(f64, String), String> {
    let (ts, bs) = (t.client.window(tw, None), b.client.window(bw, None));
    match metric {
        Metric::P95Improvement => {
            match (ts.latency.quantile_ms(0.95), bs.latency.quantile_ms(0.95)) {
                (Some(tp), Some(bp)) if tp > 0.0 && bp > 0.0 => Ok((
                    // A ratio threshold (x10) reads "baseline p95 is 10 times treatment's".
                    if as_ratio { bp / tp } else { 1.0 - tp / bp },
                    format!("p95 {tp:.3} ms vs {bp:.3} ms ({names})"),
                )),
                _ => Err(format!("a p95 is missing ({names})")),
            }
        }
        Metric::CapacityRatio | Metric::ThroughputLoss => {
            match (ts.throughput_rps(), bs.throughput_rps()) {
                (Some(tr), Some(br)) if br > 0.0 => {
                    let ratio = tr / br;
                    let value = if metric == Metric::CapacityRatio {
                        ratio
                    } else {
                        1.0 - ratio
                    };
                    Ok((
                        value,
                        format!("throughput {tr:.1} rps vs {br:.1} rps ({names})"),
                    ))
                }
                _ => Err(format!("no baseline throughput ({names})")),
            }
        }
        Metric::ConnectionOverheadReduction => match (connection_cost(t), connection_cost(b)) {
            (Some(tc), Some(bc)) => match overhead_reduction(&tc, &bc, as_ratio, names) {
                Measure::Value { value, detail } => Ok((value, detail)),
                _ => Err(format!("no connection figures ({names})")),
            },
            _ => Err(format!(
                "no connection counts during load in both arms: pooled-app's pool samples with acquisitions, or the postgres source's pg_stat_database.sessions ({names})"
            )),
        },
        Metric::CpuPerRequestIncrease => match (t.app_cpu_in(tw), b.app_cpu_in(bw)) {
            (Some(tc), Some(bc)) => match (tc.us_per_request(), bc.us_per_request()) {
                (Some(tu), Some(bu)) if bu > 0.0 => Ok((
                    tu / bu - 1.0,
                    format!(
                        "app CPU per request {} µs vs {} µs ({} vs {} requests; {names})",
                        sig3(tu),
                        sig3(bu),
                        tc.requests,
                        bc.requests
                    ),
                )),
                _ => Err(format!("no requests or no app CPU in a window ({names})")),
            },
            _ => Err(format!(
                "no app CPU samples at the window's ends ({names}; an external app, or /proc unreadable)"
            )),
        },
        other => Err(format!("{} is not a ratio metric", other.as_str())),
    }
}

/// Below this many connections opened per request the baseline has no per-request
/// connection overhead: a "reduction" of it would be a ratio of two noise figures (the pool
/// replacing one connection in one arm and not in the other read as −100 %).
const MIN_BASELINE_OPENED_PER_REQUEST: f64 = 0.01;

/// What getting database connections cost one arm over its measured load, from the app's
/// cumulative pool counters at the first and last pool sample of each instance in the load
/// window (summed over instances), against the client requests completed in that span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConnectionCost {
    pub requests: u64,
    /// Physical connections opened, not counting the pool filling up to its working size
    /// (growth of `size`): a one-off, not a per-request cost.
    pub opened: u64,
    /// Time spent getting connections (the wait in the pool's `acquire`, or connecting when
    /// unpooled), ms; `None` when no source reports it.
    pub acquire_ms: Option<f64>,
    /// Where the figures come from (`pooled-app`, `postgres`).
    pub source: &'static str,
}

impl ConnectionCost {
    pub fn opened_per_request(&self) -> f64 {
        self.opened as f64 / self.requests as f64
    }
    pub fn ms_per_request(&self) -> Option<f64> {
        self.acquire_ms.map(|ms| ms / self.requests as f64)
    }
}

/// `connection_overhead_reduction`: 1 − connections opened per request (treatment /
/// baseline); with a ratio threshold (x10), baseline / treatment, where a treatment that
/// opened none counts as one (a lower bound). The time per request is in the detail only:
/// pooled, it is queueing for a busy connection, not connection overhead.
fn overhead_reduction(
    t: &ConnectionCost,
    b: &ConnectionCost,
    as_ratio: bool,
    names: &str,
) -> Measure {
    let (to, bo) = (t.opened_per_request(), b.opened_per_request());
    let opened = if t.source == b.source {
        format!("{} connections opened", t.source)
    } else {
        format!("connections opened ({} vs {})", t.source, b.source)
    };
    let ms = |c: &ConnectionCost| c.ms_per_request().map_or_else(|| "unknown".into(), fmt_ms);
    let detail = format!(
        "{opened} per request {} vs {} ({} of {} requests vs {} of {}); \
         time getting a connection {} vs {} per request ({names})",
        sig3(to),
        sig3(bo),
        t.opened,
        t.requests,
        b.opened,
        b.requests,
        ms(t),
        ms(b),
    );
    if bo < MIN_BASELINE_OPENED_PER_REQUEST {
        return Measure::Value {
            value: if as_ratio { 1.0 } else { 0.0 },
            detail: format!(
                "nothing to reduce: the baseline opened fewer than \
                 {MIN_BASELINE_OPENED_PER_REQUEST} connections per request; {detail}"
            ),
        };
    }
    let value = if as_ratio {
        bo / to.max(1.0 / t.requests as f64)
    } else {
        1.0 - to / bo
    };
    Measure::Value { value, detail }
}

/// The connection cost of one arm over its measured load: from pooled-app's pool counters,
/// else from the database's session counter (`postgres` source; the time getting a connection
/// then from the `prometheus` source's wait-time histogram, when sampled).
pub(crate) fn connection_cost(o: &Observations) -> Option<ConnectionCost> {
    pool_connection_cost(o).or_else(|| db_connection_cost(o))
}

/// The sessions the database opened over the load window against the client requests
/// completed in the same span.
fn db_connection_cost(o: &Observations) -> Option<ConnectionCost> {
    let load = o.windows(PhaseKind::Load);
    let samples: Vec<_> = o
        .db_samples_in(&load)
        .filter_map(|s| s.sessions.map(|n| (s.t, n)))
        .collect();
    let (first, last) = (samples.first()?, samples.last()?);
    if last.0 <= first.0 {
        return None;
    }
    let span = crate::observe::Window::new(first.0, last.0);
    let requests = o.client.window(&[span], None).requests;
    let mut acquire_ms = None;
    let instances: std::collections::BTreeSet<usize> =
        o.server.iter().map(|s| s.instance).collect();
    for i in instances {
        let sums: Vec<f64> = o
            .server_samples_in(&[span])
            .filter(|s| s.instance == i)
            .filter_map(|s| s.otel.as_ref()?.wait.as_ref().map(|w| w.sum))
            .collect();
        if let (Some(a), Some(z)) = (sums.first(), sums.last()) {
            *acquire_ms.get_or_insert(0.0) += (z - a).max(0.0) * 1000.0;
        }
    }
    (requests > 0).then_some(ConnectionCost {
        requests,
        opened: last.1.saturating_sub(first.1),
        acquire_ms,
        source: "postgres",
    })
}

/// From pooled-app's counters; `None` without two pool samples of one instance in the load
/// window, or without requests between them.
fn pool_connection_cost(o: &Observations) -> Option<ConnectionCost> {
    let load = o.windows(PhaseKind::Load);
    let mut opened = 0u64;
    let mut acquire_ms = 0.0;
    let mut span: Option<(f64, f64)> = None;
    let instances: std::collections::BTreeSet<usize> =
        o.server.iter().map(|s| s.instance).collect();
    for i in instances {
        let samples: Vec<_> = o
            .server_samples_in(&load)
            .filter(|s| s.instance == i)
            .filter_map(|s| s.pool.as_ref().map(|p| (s.t, p)))
            .collect();
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            continue;
        };
        if last.1.acquisitions <= first.1.acquisitions {
            continue;
        }
        let growth = u64::from(last.1.size.saturating_sub(first.1.size));
        opened += last
            .1
            .connections_opened
            .saturating_sub(first.1.connections_opened)
            .saturating_sub(growth);
        let total = |p: &crate::observe::PoolStats| p.acquire_wait_mean_ms * p.acquisitions as f64;
        acquire_ms += (total(last.1) - total(first.1)).max(0.0);
        span = Some(match span {
            None => (first.0, last.0),
            Some((a, z)) => (a.min(first.0), z.max(last.0)),
        });
    }
    let (a, z) = span?;
    let requests = o
        .client
        .window(&[crate::observe::Window::new(a, z)], None)
        .requests;
    (requests > 0).then_some(ConnectionCost {
        requests,
        opened,
        acquire_ms: Some(acquire_ms),
        source: "pooled-app",
    })
}

fn fmt_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.1} µs", ms * 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod overhead_tests {
    use super::*;
    use crate::observe::{ClientSeries, PoolStats, ServerSample, Window};
    use std::time::Duration;

    /// 10 s of load at 100 requests a second. Per second the app opens `opened_per_s`
    /// connections and spends `ms_per_s` getting them; the pool grows from 5 to 20 connections
    /// during the first seconds (each growth step also opens a connection, which must not
    /// count). Before load (warm-up) 500 acquisitions and 500 connections happened, which
    /// must not count either.
    fn arm(opened_per_s: u64, ms_per_s: f64, pooled: bool) -> Observations {
        let mut client = ClientSeries::new(vec!["r".into()]);
        for t in 0..10 {
            for _ in 0..100 {
                client.record("r", t as f64 + 0.5, Some(Duration::from_millis(3)), None);
            }
        }
        let server = (0..10u64)
            .map(|t| {
                let acq = 500 + 100 * t;
                let size = if pooled {
                    (5 + 5 * t).min(20) as u32
                } else {
                    0
                };
                let growth = u64::from(size);
                let total = 500.0 * 9.0 + t as f64 * ms_per_s;
                ServerSample {
                    t: t as f64,
                    instance: 0,
                    pool: Some(PoolStats {
                        size,
                        acquisitions: acq,
                        connections_opened: 500 + opened_per_s * t + growth,
                        acquire_wait_mean_ms: total / acq as f64,
                        ..PoolStats::default()
                    }),
                    ..ServerSample::default()
                }
            })
            .collect();
        Observations {
            client,
            server,
            load: Window::new(0.0, 10.0),
            ..Observations::default()
        }
    }

    fn value(m: Measure) -> (f64, String) {
        match m {
            Measure::Value { value, detail } => (value, detail),
            _ => panic!("no value"),
        }
    }

    #[test]
    fn cost_counts_connections_and_time_within_the_load_window_without_pool_growth() {
        let c = connection_cost(&arm(100, 550.0, false)).unwrap();
        // Samples at 0 s and 9 s: 900 requests completed between them.
        assert_eq!((c.requests, c.opened), (900, 900));
        assert!((c.ms_per_request().unwrap() - 5.5).abs() < 1e-9, "{c:?}");
        let p = connection_cost(&arm(0, 2.0, true)).unwrap();
        assert_eq!(
            p.opened, 0,
            "the pool filling up is not per-request overhead"
        );
        assert!((p.ms_per_request().unwrap() - 0.02).abs() < 1e-9, "{p:?}");
        assert_eq!(connection_cost(&Observations::default()), None);
    }

    #[test]
    fn reduction_is_relative_to_the_baselines_connections_per_request() {
        let unpooled = connection_cost(&arm(100, 550.0, false)).unwrap();
        let pooled = connection_cost(&arm(0, 2.0, true)).unwrap();
        let churning = connection_cost(&arm(10, 60.0, true)).unwrap();
        let (v, d) = value(overhead_reduction(&pooled, &unpooled, false, "a vs b"));
        assert_eq!(v, 1.0, "{d}");
        let (v, _) = value(overhead_reduction(&churning, &unpooled, false, "a vs b"));
        assert!((v - 0.9).abs() < 1e-9, "{v}");
        // A ratio against a treatment that opened none is a lower bound (one connection).
        let (v, _) = value(overhead_reduction(&pooled, &unpooled, true, "a vs b"));
        assert!((v - 900.0).abs() < 1e-9, "{v}");
        // Worse than the baseline: negative.
        let (v, _) = value(overhead_reduction(&unpooled, &churning, false, "a vs b"));
        assert!((v - -9.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn pooled_against_pooled_reduces_nothing_even_when_their_wait_times_differ() {
        let a = connection_cost(&arm(0, 2.0, true)).unwrap();
        let b = connection_cost(&arm(0, 40.0, true)).unwrap();
        let (v, d) = value(overhead_reduction(&a, &b, false, "a vs b"));
        assert_eq!(v, 0.0, "{d}");
        assert!(d.starts_with("nothing to reduce"), "{d}");
        let (v, _) = value(overhead_reduction(&a, &b, true, "a vs b"));
        assert_eq!(v, 1.0);
    }
}

#[cfg(test)]
mod pair_tests {
    use super::super::{evaluate_all, ArmReplicates, EvalInput, SlaResult, Verdict};
    use crate::observe::{ClientSeries, Observations, Window};
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// 10 s of load at `rps` successful requests a second.
    fn arm(rps: u32) -> Observations {
        let mut client = ClientSeries::new(vec!["r".into()]);
        for t in 0..10 {
            for i in 0..rps {
                let at = t as f64 + (f64::from(i) + 0.5) / f64::from(rps);
                client.record("r", at, Some(Duration::from_millis(2)), None);
            }
        }
        Observations {
            client,
            load: Window::new(0.0, 10.0),
            ..Observations::default()
        }
    }

    fn scenario(slas: &str, replicates: u32) -> crate::scenario::Scenario {
        let text = format!(
            "name: t\nload: {{ users: 2, duration: 10s, transactions: [{{ name: r, path: / }}] }}\n\
             arms: [{{ name: a }}, {{ name: b }}]\nreplicates: {replicates}\nslas:\n{slas}"
        );
        crate::scenario::load_str(&text, "t.yaml").unwrap()
    }

    /// Treatment `a` runs at `a_rps[i]` and baseline `b` at 100 rps in replicate i + 1.
    fn run(slas: &str, a_rps: &[u32]) -> Vec<SlaResult> {
        let s = scenario(slas, a_rps.len() as u32);
        let a: Vec<Observations> = a_rps.iter().map(|r| arm(*r)).collect();
        let b: Vec<Observations> = a_rps.iter().map(|_| arm(100)).collect();
        let mut reps: ArmReplicates<'_> = BTreeMap::new();
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            let r = i as u32 + 1;
            reps.entry("a".into()).or_default().insert(r, a);
            reps.entry("b".into()).or_default().insert(r, b);
        }
        let last: BTreeMap<String, Observations> = [
            ("a".to_string(), a[a.len() - 1].clone()),
            ("b".to_string(), b[b.len() - 1].clone()),
        ]
        .into();
        let names = ["a".to_string(), "b".to_string()];
        evaluate_all(
            &s.slas,
            EvalInput {
                obs: &a[0],
                arms: &last,
                arm_replicates: &reps,
                arms_mode: crate::scenario::ArmsMode::Interleaved,
                arm_names: &names,
                transactions: &s.load.transactions,
            },
        )
    }

    #[test]
    fn every_replicate_pair_counts_and_the_interval_is_the_hand_computed_one() {
        // Losses per pair: 1 %, 2 %, 0 %; mean 1 %. Corrected pool 1 % + √(3/2)·(0, ±1 %):
        // with 3 values, 1/27 > 2.5 % of resample means are each extreme, so the percentile
        // interval is 1 % ± 1.2247 %, widened by t(2)/z = 4.3027 / 1.96 = 2.1953:
        // 1 % ± 2.6886 %.
        let r = run(
            "  - { metric: throughput_loss, comparator: \"<=\", threshold: 1.5%, arms: [a, b] }\n",
            &[99, 98, 100],
        );
        let r = &r[0];
        assert_eq!(r.pairs, Some(3));
        assert!((r.measured.unwrap() - 0.01).abs() < 1e-12, "{r:?}");
        let iv = r.interval.unwrap();
        assert!((iv.lo - -0.016886).abs() < 2e-5, "{iv:?}");
        assert!((iv.hi - 0.036886).abs() < 2e-5, "{iv:?}");
        assert_eq!(r.confidence, Some(0.95));
        // Without `confidence:` the verdict is the point estimate's.
        assert_eq!(r.verdict, Verdict::Met);
        assert!(
            r.detail
                .starts_with("mean of 3 replicate pairs (1 %, 2 %, 0 %)"),
            "{}",
            r.detail
        );
        assert_eq!(r.interval_text, "[-1.69 %, 3.69 %] n=3");
    }

    #[test]
    fn confidence_decides_on_the_whole_interval() {
        let slas = concat!(
            "  - { metric: throughput_loss, comparator: \"<=\", threshold: 5%, confidence: 95% }\n",
            "  - { metric: throughput_loss, comparator: \"<=\", threshold: 2%, confidence: 95% }\n",
            "  - { metric: capacity_ratio, comparator: \">=\", threshold: x0.5, confidence: 95% }\n",
        );
        let r = run(slas, &[99, 98, 100]);
        assert_eq!(r[0].verdict, Verdict::Met, "[-1.7 %, 3.7 %] is all <= 5 %");
        assert_eq!(
            r[1].verdict,
            Verdict::Inconclusive,
            "[-1.7 %, 3.7 %] straddles 2 %"
        );
        assert_eq!(r[2].verdict, Verdict::Met);
        assert!(!super::super::any_failed(&r[..2]));
        // A clear 10-12 % loss fails the 5 % bar on the whole interval.
        let r = run(slas, &[90, 89, 88]);
        assert_eq!(r[0].verdict, Verdict::Failed, "{:?}", r[0].interval);
        assert!(super::super::any_failed(&r));
    }

    #[test]
    fn cpu_per_request_increase_compares_app_cpu_over_completed_requests() {
        let s = scenario(
            "  - { metric: cpu_per_request_increase, comparator: \"<=\", threshold: 1% }\n",
            1,
        );
        // 100 requests a second; treatment 4.1 ms and baseline 4.0 ms of CPU per second:
        // 41 vs 40 µs per request, +2.5 %.
        let with_cpu = |ns_per_s: u64| {
            let mut o = arm(100);
            o.app_cpu = (0..=10u64)
                .map(|t| crate::observe::AppCpuSample {
                    t: t as f64 + 0.01,
                    cpu_ns: 5_000_000_000 + ns_per_s * t,
                })
                .collect();
            o
        };
        let (a, b) = (with_cpu(4_100_000), with_cpu(4_000_000));
        let arms: BTreeMap<String, Observations> =
            [("a".to_string(), a.clone()), ("b".to_string(), b)].into();
        let names = ["a".to_string(), "b".to_string()];
        let input = EvalInput {
            obs: &a,
            arms: &arms,
            arm_replicates: &BTreeMap::new(),
            arms_mode: crate::scenario::ArmsMode::Interleaved,
            arm_names: &names,
            transactions: &s.load.transactions,
        };
        let r = &evaluate_all(&s.slas, input)[0];
        assert!((r.measured.unwrap() - 0.025).abs() < 1e-9, "{r:?}");
        assert_eq!(r.verdict, Verdict::Failed);
        assert_eq!(
            r.detail,
            "app CPU per request 41 µs vs 40 µs (1000 vs 1000 requests; a vs b)"
        );
        // Without CPU samples (an external app) there is no figure: a failure, not a pass.
        let bare: BTreeMap<String, Observations> =
            [("a".to_string(), arm(100)), ("b".to_string(), arm(100))].into();
        let r = &evaluate_all(
            &s.slas,
            EvalInput {
                arms: &bare,
                ..input
            },
        )[0];
        assert_eq!(r.verdict, Verdict::NoData, "{r:?}");
    }

    /// `rates[s]` requests completed in second s, each taking `ms`.
    fn seconds(rates: &[u32], ms: u64) -> Observations {
        let mut client = ClientSeries::new(vec!["r".into()]);
        for (t, rps) in rates.iter().enumerate() {
            for i in 0..*rps {
                let at = t as f64 + (f64::from(i) + 0.5) / f64::from(*rps);
                client.record("r", at, Some(Duration::from_millis(ms)), None);
            }
        }
        Observations {
            client,
            load: Window::new(0.0, rates.len() as f64),
            ..Observations::default()
        }
    }

    #[test]
    fn concurrent_arms_pair_second_by_second() {
        let text = concat!(
            "name: t\nload: { users: 2, duration: 4s, transactions: [{ name: r, path: / }] }\n",
            "arms: [{ name: a }, { name: b }]\narms_mode: concurrent\nslas:\n",
            "  - { metric: throughput_loss, comparator: \"<=\", threshold: 1.5%, confidence: 95% }\n",
            "  - { metric: p95_improvement, comparator: \">=\", threshold: 40% }\n",
        );
        let s = crate::scenario::load_str(text, "t.yaml").unwrap();
        // Throughput is a ratio of sums over the paired seconds: 1 − 503/510 = 1.3725 % (the
        // per-second losses are 1 %, 2 %, 0 %, 1 %). In second 2 the arms complete only 10
        // requests each, too few for a p95 pair: 3 p95 pairs of 1 − 2/4 = 50 %.
        let a = seconds(&[99, 196, 10, 198], 2);
        let b = seconds(&[100, 200, 10, 200], 4);
        let reps: ArmReplicates<'_> = [
            ("a".to_string(), BTreeMap::from([(1, &a)])),
            ("b".to_string(), BTreeMap::from([(1, &b)])),
        ]
        .into();
        let names = ["a".to_string(), "b".to_string()];
        let r = evaluate_all(
            &s.slas,
            EvalInput {
                obs: &a,
                arms: &BTreeMap::new(),
                arm_replicates: &reps,
                arms_mode: crate::scenario::ArmsMode::Concurrent,
                arm_names: &names,
                transactions: &s.load.transactions,
            },
        );
        assert_eq!(r[0].pairs, Some(4));
        assert!(
            (r[0].measured.unwrap() - (1.0 - 503.0 / 510.0)).abs() < 1e-12,
            "{:?}",
            r[0]
        );
        assert!(
            r[0].detail
                .starts_with("ratio of summed throughput over 4 per-second pairs over 1 replicate"),
            "{}",
            r[0].detail
        );
        assert!(
            r[0].detail
                .ends_with("throughput 125.8 rps vs 127.5 rps (a vs b)"),
            "{}",
            r[0].detail
        );
        // Seconds of 1 %, 2 %, 0 % and 1 % loss: the 95 % interval ([0.56 %, 2.24 %] with this
        // seed) straddles 1.5 %.
        assert_eq!(r[0].verdict, Verdict::Inconclusive, "{:?}", r[0].interval);
        assert_eq!(r[1].pairs, Some(3));
        assert!((r[1].measured.unwrap() - 0.5).abs() < 0.01, "{:?}", r[1]);
        assert!(
            r[1].detail
                .starts_with("mean of 3 per-second pairs over 1 replicate")
                && r[1].detail.contains("1 seconds without figures skipped"),
            "{}",
            r[1].detail
        );
    }

    #[test]
    fn one_pair_has_a_value_but_no_interval() {
        let r = run(
            "  - { metric: capacity_ratio, comparator: \">=\", threshold: x1.1 }\n",
            &[120],
        );
        let r = &r[0];
        assert_eq!((r.pairs, r.interval), (Some(1), None));
        assert!((r.measured.unwrap() - 1.2).abs() < 1e-12);
        assert_eq!(r.verdict, Verdict::Met);
        assert_eq!(r.interval_text, "n=1");
        assert_eq!(r.detail, "throughput 120.0 rps vs 100.0 rps (a vs b)");
    }

    /// Arms `a` (treatment), `b` (baseline) and `c` (b's A/A control) at the given rates, one
    /// tuple per replicate.
    fn run_with_control(slas: &str, rps: &[(u32, u32, u32)]) -> Vec<SlaResult> {
        let text = format!(
            "name: t\nload: {{ users: 3, duration: 10s, transactions: [{{ name: r, path: / }}] }}\n\
             arms: [{{ name: a }}, {{ name: b }}, {{ name: c }}]\nreplicates: {}\nslas:\n{slas}",
            rps.len()
        );
        let s = crate::scenario::load_str(&text, "t.yaml").unwrap();
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let obs: Vec<Vec<Observations>> = rps
            .iter()
            .map(|&(a, b, c)| vec![arm(a), arm(b), arm(c)])
            .collect();
        let mut reps: ArmReplicates<'_> = BTreeMap::new();
        for (i, replicate) in obs.iter().enumerate() {
            for (name, o) in names.iter().zip(replicate) {
                reps.entry(name.clone())
                    .or_default()
                    .insert(i as u32 + 1, o);
            }
        }
        let last: BTreeMap<String, Observations> = names
            .iter()
            .cloned()
            .zip(obs[obs.len() - 1].iter().cloned())
            .collect();
        evaluate_all(
            &s.slas,
            EvalInput {
                obs: &obs[0][0],
                arms: &last,
                arm_replicates: &reps,
                arms_mode: crate::scenario::ArmsMode::Interleaved,
                arm_names: &names,
                transactions: &s.load.transactions,
            },
        )
    }

    const WITH_NOISE_FLOOR: &str =
        "  - { metric: throughput_loss, comparator: \"<=\", threshold: 1%, arms: [a, b], noise_floor: [c, b] }\n";

    #[test]
    fn a_quiet_noise_floor_leaves_the_verdict_and_shows_itself() {
        // The control matches the baseline exactly: an A/A interval of width 0.
        let r = run_with_control(
            WITH_NOISE_FLOOR,
            &[(199, 200, 200), (198, 200, 200), (199, 200, 200)],
        );
        assert_eq!(r[0].verdict, Verdict::Met, "{:?}", r[0]);
        assert!(
            r[0].detail.contains("; noise floor (c vs b) ["),
            "{}",
            r[0].detail
        );
    }

    #[test]
    fn a_noise_floor_wider_than_the_threshold_makes_a_close_value_inconclusive() {
        // The control loses +2 %, -2 % and 0 % against an identical baseline: an A/A interval
        // several points wide, around a treatment loss of 0.67 % against a 1 % threshold.
        let r = run_with_control(
            WITH_NOISE_FLOOR,
            &[(199, 200, 196), (198, 200, 204), (199, 200, 200)],
        );
        assert_eq!(r[0].verdict, Verdict::Inconclusive, "{:?}", r[0]);
        assert!(
            r[0].detail
                .contains("is wider than the threshold and the value lies within it"),
            "{}",
            r[0].detail
        );
    }

    #[test]
    fn a_gross_cost_fails_whatever_the_noise_floor() {
        // A 50 % loss is farther from the threshold than the A/A interval is wide.
        let r = run_with_control(
            WITH_NOISE_FLOOR,
            &[(100, 200, 196), (100, 200, 204), (100, 200, 200)],
        );
        assert_eq!(r[0].verdict, Verdict::Failed, "{:?}", r[0]);
    }
}

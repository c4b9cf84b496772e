//! A/B ratio SLA metrics between two arms' observations (measured load window, all routes).

use super::value::sig3;
use super::Measure;
use crate::observe::{Observations, PhaseKind};
use crate::scenario::{Metric, Sla, Threshold};
use std::collections::BTreeMap;

pub(crate) fn measure(
    sla: &Sla,
    arms: &BTreeMap<String, Observations>,
    arm_names: &[String],
) -> Measure {
    let (treatment, baseline) = match (&sla.arms, arm_names) {
        (Some(p), _) => (p.treatment.as_str(), p.baseline.as_str()),
        (None, [a, b, ..]) => (a.as_str(), b.as_str()),
        (None, _) => {
            return Measure::NotEvaluated(format!("{} needs two arms", sla.metric.as_str()));
        }
    };
    let (Some(t), Some(b)) = (arms.get(treatment), arms.get(baseline)) else {
        return Measure::NoData(format!(
            "arms `{treatment}` and `{baseline}` were not both run"
        ));
    };
    let stats = |o: &Observations| o.client.window(&o.windows(PhaseKind::Load), None);
    let (ts, bs) = (stats(t), stats(b));
    let as_ratio = matches!(sla.threshold, Threshold::Ratio(_));
    let names = format!("{treatment} vs {baseline}");
    match sla.metric {
        Metric::P95Improvement => {
            match (ts.latency.quantile_ms(0.95), bs.latency.quantile_ms(0.95)) {
                (Some(tp), Some(bp)) if tp > 0.0 && bp > 0.0 => Measure::Value {
                    // A ratio threshold (x10) reads "baseline p95 is 10 times treatment's".
                    value: if as_ratio { bp / tp } else { 1.0 - tp / bp },
                    detail: format!("p95 {tp:.3} ms vs {bp:.3} ms ({names})"),
                },
                _ => Measure::NoData(format!("a p95 is missing ({names})")),
            }
        }
        Metric::CapacityRatio | Metric::ThroughputLoss => {
            match (ts.throughput_rps(), bs.throughput_rps()) {
                (Some(tr), Some(br)) if br > 0.0 => {
                    let ratio = tr / br;
                    let value = if sla.metric == Metric::CapacityRatio {
                        ratio
                    } else {
                        1.0 - ratio
                    };
                    Measure::Value {
                        value,
                        detail: format!("throughput {tr:.1} rps vs {br:.1} rps ({names})"),
                    }
                }
                _ => Measure::NoData(format!("no baseline throughput ({names})")),
            }
        }
        Metric::ConnectionOverheadReduction => match (connection_cost(t), connection_cost(b)) {
            (Some(tc), Some(bc)) => overhead_reduction(&tc, &bc, as_ratio, &names),
            _ => Measure::NoData(format!(
                "no two pool samples with acquisitions during load in both arms ({names})"
            )),
        },
        other => Measure::NotEvaluated(format!("{} is not a ratio metric", other.as_str())),
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
    /// unpooled), ms.
    pub acquire_ms: f64,
}

impl ConnectionCost {
    pub fn opened_per_request(&self) -> f64 {
        self.opened as f64 / self.requests as f64
    }
    pub fn ms_per_request(&self) -> f64 {
        self.acquire_ms / self.requests as f64
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
    let detail = format!(
        "connections opened per request {} vs {} ({} of {} requests vs {} of {}); \
         time getting a connection {} vs {} per request ({names})",
        sig3(to),
        sig3(bo),
        t.opened,
        t.requests,
        b.opened,
        b.requests,
        fmt_ms(t.ms_per_request()),
        fmt_ms(b.ms_per_request()),
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

/// The connection cost of one arm over its measured load; `None` without two pool samples
/// of one instance in the load window, or without requests between them.
pub(crate) fn connection_cost(o: &Observations) -> Option<ConnectionCost> {
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
        acquire_ms,
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
        assert!((c.ms_per_request() - 5.5).abs() < 1e-9, "{c:?}");
        let p = connection_cost(&arm(0, 2.0, true)).unwrap();
        assert_eq!(
            p.opened, 0,
            "the pool filling up is not per-request overhead"
        );
        assert!((p.ms_per_request() - 0.02).abs() < 1e-9, "{p:?}");
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

//! A/B ratio SLA metrics between two arms' observations (measured load window, all routes).

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
        Metric::ConnectionOverheadReduction => {
            match (connection_overhead_ms(t), connection_overhead_ms(b)) {
                (Some(to), Some(bo)) if bo > 0.0 => Measure::Value {
                    // A ratio threshold (x10) reads "baseline overhead is 10 times treatment's".
                    value: if as_ratio {
                        if to > 0.0 {
                            bo / to
                        } else {
                            f64::INFINITY
                        }
                    } else {
                        1.0 - to / bo
                    },
                    detail: format!(
                        "connection overhead {} vs {} per request ({names})",
                        fmt_ms(to),
                        fmt_ms(bo)
                    ),
                },
                _ => Measure::NoData(format!(
                    "no pool samples with acquisitions during load ({names})"
                )),
            }
        }
        other => Measure::NotEvaluated(format!("{} is not a ratio metric", other.as_str())),
    }
}

/// Connection overhead per request over the measured load, in ms: the time the app spent
/// getting connections (waiting in the pool's `acquire`, or connecting when unpooled)
/// between its first and last pool sample in the load window, summed over instances, divided
/// by the client requests completed in the same span. From the app's cumulative
/// `acquire_wait.mean_us` × `acquisitions` at both ends.
pub(crate) fn connection_overhead_ms(o: &Observations) -> Option<f64> {
    let load = o.windows(PhaseKind::Load);
    let mut total_ms = 0.0;
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
        let total = |p: &crate::observe::PoolStats| p.acquire_wait_mean_ms * p.acquisitions as f64;
        total_ms += (total(last.1) - total(first.1)).max(0.0);
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
    (requests > 0).then(|| total_ms / requests as f64)
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

    /// `per_request_ms` of acquire time per request, 100 requests a second, 1 acquisition each.
    fn arm(per_request_ms: f64) -> Observations {
        let mut client = ClientSeries::new(vec!["r".into()]);
        for t in 0..10 {
            for _ in 0..100 {
                client.record("r", t as f64 + 0.5, Some(Duration::from_millis(3)), None);
            }
        }
        // Cumulative counters as the app reports them, with 500 acquisitions at a different
        // mean before load started (warm-up), which must not count.
        let server = (0..10)
            .map(|t| {
                let acq = 500 + 100 * t as u64;
                let total = 500.0 * 9.0 + 100.0 * t as f64 * per_request_ms;
                ServerSample {
                    t: t as f64,
                    instance: 0,
                    pool: Some(PoolStats {
                        acquisitions: acq,
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

    #[test]
    fn overhead_is_acquire_time_per_request_within_the_load_window() {
        let o = connection_overhead_ms(&arm(5.5)).unwrap();
        assert!((o - 5.5).abs() < 1e-9, "{o}");
        let p = connection_overhead_ms(&arm(0.02)).unwrap();
        assert!((p - 0.02).abs() < 1e-9, "{p}");
        assert_eq!(connection_overhead_ms(&Observations::default()), None);
    }
}

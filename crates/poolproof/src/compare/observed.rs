//! Builds a [`ReplicateSummary`] from one replicate's [`Observations`] (measured load phase).

use std::collections::BTreeMap;

use crate::observe::{Observations, PhaseKind, ServerSample};

use super::summary::ReplicateSummary;
use crate::app::meter::CpuUsage;

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Pool efficiency of the measured phase from the cumulative counters: per instance, the
/// acquisitions and connections opened between its first and last sample in the phase,
/// summed over instances. The app's own `efficiency_percent` counts since app start (warm-up
/// included), which would blur a comparison.
fn phase_efficiency(samples: &[&ServerSample]) -> Option<f64> {
    /// (acquisitions, connections opened) at an instance's first and last sample.
    type Counters = (Option<(u64, u64)>, Option<(u64, u64)>);
    let mut per: BTreeMap<usize, Counters> = BTreeMap::new();
    for s in samples {
        if let Some(p) = &s.pool {
            let e = per.entry(s.instance).or_default();
            let v = (p.acquisitions, p.connections_opened);
            if e.0.is_none() {
                e.0 = Some(v);
            }
            e.1 = Some(v);
        }
    }
    let (mut acq, mut opened) = (0u64, 0u64);
    for (first, last) in per.values() {
        if let (Some(f), Some(l)) = (first, last) {
            acq += l.0.saturating_sub(f.0);
            opened += l.1.saturating_sub(f.1);
        }
    }
    (acq > 0).then(|| (1.0 - opened as f64 / acq as f64).clamp(0.0, 1.0))
}

impl ReplicateSummary {
    /// Summarises the measured load phase of one replicate. `None` when no request completed
    /// in it (nothing to compare). `cpu` is the load generator's CPU over the phase
    /// (see [`crate::app::meter::CpuMeter`]).
    ///
    /// Server figures over the phase: utilization and server p95 are the mean of the per-second
    /// samples; acquire-wait p95 is the highest instance's value in the last sample (the app
    /// reports it cumulatively); efficiency comes from counter differences.
    pub fn from_observations(
        arm: Option<&str>,
        index: u32,
        obs: &Observations,
        cpu: Option<CpuUsage>,
    ) -> Option<Self> {
        let windows = obs.windows(PhaseKind::Load);
        let w = obs.client.window(&windows, None);
        if w.requests == 0 {
            return None;
        }
        let q = |p: f64| w.latency.quantile_ms(p).unwrap_or(0.0);
        let samples: Vec<&ServerSample> = obs.server_samples_in(&windows).collect();
        let pools = || samples.iter().filter_map(|s| s.pool.as_ref());
        let last_t = samples
            .iter()
            .filter(|s| s.pool.is_some())
            .map(|s| s.t)
            .max_by(f64::total_cmp);
        let acquire_wait = last_t.and_then(|t| {
            samples
                .iter()
                .filter(|s| s.t >= t - 1.0)
                .filter_map(|s| s.pool.as_ref().map(|p| p.acquire_wait_p95_ms))
                .max_by(f64::total_cmp)
        });
        Some(Self {
            arm: arm.map(str::to_string),
            index,
            position: None,
            latency_p50_ms: q(0.50),
            latency_p95_ms: q(0.95),
            latency_p99_ms: q(0.99),
            throughput_rps: w.throughput_rps().unwrap_or(0.0),
            error_rate: w.error_rate().unwrap_or(0.0),
            pool_efficiency: phase_efficiency(&samples),
            pool_utilization: mean(pools().map(|p| p.utilization_percent / 100.0)),
            acquire_wait_p95_ms: acquire_wait,
            server_latency_p95_ms: mean(samples.iter().filter_map(|s| s.server_p95_ms)),
            load_generator: cpu,
            generator_late_share: obs
                .generator
                .as_ref()
                .filter(|g| g.starts > 0)
                .map(|g| g.late as f64 / g.starts as f64),
            generator_lag_p99_ms: obs.generator.as_ref().and_then(|g| g.p99_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::observe::{PoolStats, Window};

    #[test]
    fn summarises_the_load_phase_only() {
        let mut obs = Observations {
            load: Window::new(0.0, 10.0),
            warmup: Some(Window::new(-2.0, 0.0)),
            ..Observations::default()
        };
        obs.client = crate::observe::ClientSeries::new(vec!["r".into()]);
        let recs = obs_record_all(&mut obs);
        assert_eq!(recs, 1000);
        for (i, t) in [-1.0, 0.5, 5.5, 9.5].into_iter().enumerate() {
            obs.server.push(ServerSample {
                t,
                instance: 0,
                pool: Some(PoolStats {
                    utilization_percent: if t < 0.0 { 100.0 } else { 40.0 },
                    acquisitions: 1000 * i as u64,
                    connections_opened: 10 * i as u64 + if t < 0.0 { 0 } else { 500 },
                    acquire_wait_p95_ms: 0.5 * i as f64,
                    ..PoolStats::default()
                }),
                server_p95_ms: Some(if t < 0.0 { 999.0 } else { 8.0 }),
                ..ServerSample::default()
            });
        }
        let cpu = CpuUsage {
            cpu_seconds: 2.0,
            wall_seconds: 10.0,
            cores: 2,
            host_cpu_pressure: None,
        };
        let r = ReplicateSummary::from_observations(Some("a"), 3, &obs, Some(cpu))
            .unwrap_or_else(|| panic!("requests were recorded"));
        assert_eq!(r.arm.as_deref(), Some("a"));
        assert_eq!(r.index, 3);
        // 10 seconds of 100 requests, latencies 1..=100 ms, every 10th an error.
        assert!((r.throughput_rps - 90.0).abs() < 1e-9, "{r:?}");
        assert!((r.error_rate - 0.1).abs() < 1e-9);
        assert!((r.latency_p50_ms - 50.0).abs() < 1.0, "{r:?}");
        assert!((r.latency_p99_ms - 99.0).abs() < 1.5, "{r:?}");
        // Warm-up sample (utilization 100 %, server p95 999 ms) excluded.
        assert!(
            (r.pool_utilization.unwrap_or(0.0) - 0.4).abs() < 1e-12,
            "{r:?}"
        );
        assert_eq!(r.server_latency_p95_ms, Some(8.0));
        // Between t=0.5 (acq 1000, opened 510) and t=9.5 (acq 3000, opened 530): 1 − 20/2000.
        assert!((r.pool_efficiency.unwrap_or(0.0) - 0.99).abs() < 1e-9);
        assert_eq!(r.acquire_wait_p95_ms, Some(1.5));
        assert_eq!(r.load_generator, Some(cpu));
    }

    fn obs_record_all(obs: &mut Observations) -> u64 {
        let mut n = 0;
        for sec in 0..10 {
            for i in 1..=100u64 {
                let ok = i % 10 != 0;
                obs.client.record(
                    "r",
                    sec as f64 + 0.5,
                    Some(Duration::from_millis(i)),
                    (!ok).then_some(crate::observe::ErrorKind::Status(500)),
                );
                n += 1;
            }
        }
        n
    }
}

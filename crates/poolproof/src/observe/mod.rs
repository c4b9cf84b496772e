//! The measured data of one run: what SLAs are evaluated against and what reports show.
//!
//! Every time is an offset in seconds from the start of measured load (warm-up and ramp are
//! negative). The load module fills [`ClientSeries`]; the run's sampler pushes one
//! [`ServerSample`] per instance per second; the fault timeline pushes [`FaultEvent`]s with
//! their actual start and end; the webhook sink pushes [`AlertDelivery`]s; the silence timeline
//! pushes [`SilenceEvent`]s.

mod client;
mod histogram;
mod server;
mod shards;
mod timeline;

pub use client::{ClientSeries, ErrorKind, RouteSecond, SecondBucket, SlotFate, WindowStats};
pub use histogram::LatencyHistogram;
pub use server::{DbSample, OtelPool, PgbouncerSample, PoolStats, PromHistogram, ServerSample};
pub use shards::ShardFigures;
pub use timeline::{AlertDelivery, AlertTransition, FaultEvent, PhaseKind, SilenceEvent, Window};

use serde::{Deserialize, Serialize};

/// The load generator's own timeliness (measured by `load`, judged by `run`) over measured load: how late users that were already
/// waiting for a scheduled start actually sent it.
#[derive(Debug, Clone, Default)]
pub struct GeneratorLag {
    /// Starts whose user was waiting for them (the generator alone decided their timing).
    pub starts: u64,
    /// Of those, the ones sent later than the late tolerance.
    pub late: u64,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Everything measured in one run (one arm, one replicate).
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Client-side measurements from the load generator, one bucket per second.
    pub client: ClientSeries,
    /// Server-side samples, once a second per app instance, in arrival order.
    pub server: Vec<ServerSample>,
    /// The database's own figures, once a second (`postgres` source).
    pub db: Vec<DbSample>,
    /// PgBouncer's pools and stats, once a second (`pgbouncer` source).
    pub pgbouncer: Vec<PgbouncerSample>,
    /// Ramp-up and warm-up before measured load (negative offsets); excluded from SLAs.
    pub warmup: Option<Window>,
    /// The measured load window, `[0, duration)`.
    pub load: Window,
    /// Faults as they really happened (not as planned).
    pub faults: Vec<FaultEvent>,
    /// Alert notifications received by the webhook sink.
    pub alerts: Vec<AlertDelivery>,
    /// Alert silences the scenario created, as they were in force at the app.
    pub silences: Vec<SilenceEvent>,
    /// CPU time of this arm's app processes (summed over instances) at the start of measured
    /// load and every second of it (`crate::app::cpu`); empty for an external app.
    pub app_cpu: Vec<AppCpuSample>,
    /// Open model: the arrival rate's stages over measured load (a constant rate is one).
    pub stages: Vec<StageSpan>,
    /// How late the generator itself started requests it had a free user for (scheduled
    /// loads only).
    pub generator: Option<GeneratorLag>,
    /// Sharded load: each generator shard's figures (empty for load run in process).
    pub shards: Vec<ShardFigures>,
    /// Seconds of measured load that belong to no measurement (`crossover:` switches): every
    /// phase's windows leave them out.
    pub gaps: Vec<Window>,
}

/// One stage of an open-model arrival rate: linear from `from_rps` to `rps` over
/// `[start, end)` (seconds from the start of measured load).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageSpan {
    pub start: f64,
    pub end: f64,
    pub from_rps: f64,
    pub rps: f64,
}

impl StageSpan {
    /// The stages of a scenario's load (empty for the closed model).
    pub fn of(load: &crate::scenario::Load) -> Vec<StageSpan> {
        load.stage_spans()
            .into_iter()
            .map(|(start, end, from_rps, rps)| StageSpan {
                start,
                end,
                from_rps,
                rps,
            })
            .collect()
    }
    pub fn window(&self) -> Window {
        Window::new(self.start, self.end)
    }
}

/// The CPU time the app processes had used (summed over instances) at offset `t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AppCpuSample {
    /// Seconds from the start of measured load.
    pub t: f64,
    /// Nanoseconds on a CPU since the processes started (schedstat).
    pub cpu_ns: u64,
}

/// App CPU time against the requests completed over the same whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AppCpu {
    pub cpu_ns: u64,
    /// Client-side requests completed in those seconds (successes and errors).
    pub requests: u64,
}

impl AppCpu {
    /// Microseconds of app CPU per completed request; `None` without requests.
    pub fn us_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cpu_ns as f64 / 1000.0 / self.requests as f64)
    }
}

/// How far a CPU sample may lie from the second boundary it stands for (the sampler wakes at
/// each boundary; a late wake-up on a busy host is a few ms, rarely more).
const CPU_SAMPLE_TOLERANCE_S: f64 = 0.25;

impl Observations {
    /// The time windows a phase covers, clipped to the measured load window.
    ///
    /// `before` runs from the start of load to the first fault's start, `during` is each
    /// fault's actual span (an unfinished fault lasts to the end of load), `after` runs from
    /// the last fault's end to the end of load. Without faults, `before`/`during`/`after`
    /// are empty, so SLAs on them report "no data" rather than passing silently.
    pub fn windows(&self, phase: PhaseKind) -> Vec<Window> {
        let load = self.load;
        let mut spans: Vec<Window> = self
            .faults
            .iter()
            .map(|f| Window::new(f.start, f.end.unwrap_or(load.end)))
            .collect();
        spans.sort_by(|a, b| a.start.total_cmp(&b.start));
        let out = match phase {
            PhaseKind::Warmup => self.warmup.into_iter().collect(),
            PhaseKind::Load => vec![load],
            PhaseKind::Before => spans
                .first()
                .map(|f| vec![Window::new(load.start, f.start)])
                .unwrap_or_default(),
            PhaseKind::During => spans,
            PhaseKind::After => spans
                .iter()
                .map(|f| f.end)
                .max_by(f64::total_cmp)
                .map(|end| vec![Window::new(end, load.end)])
                .unwrap_or_default(),
        };
        if phase == PhaseKind::Warmup {
            return out;
        }
        out.into_iter()
            .filter_map(|w| w.intersect(&load))
            .flat_map(|w| w.minus(&self.gaps))
            .collect()
    }

    /// App CPU time and completed requests over `windows` (whole seconds: a window's ends
    /// must each have a CPU sample within 0.25 s); `None` when a window
    /// lacks one, or without windows.
    pub fn app_cpu_in(&self, windows: &[Window]) -> Option<AppCpu> {
        let at = |t: f64| {
            self.app_cpu
                .iter()
                .filter(|s| (s.t - t).abs() <= CPU_SAMPLE_TOLERANCE_S)
                .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
                .map(|s| s.cpu_ns)
        };
        if windows.is_empty() {
            return None;
        }
        let mut cpu_ns = 0u64;
        for w in windows {
            cpu_ns += at(w.end)?.checked_sub(at(w.start)?)?;
        }
        Some(AppCpu {
            cpu_ns,
            requests: self.client.window(windows, None).requests,
        })
    }

    /// Database samples whose time lies in any of `windows`.
    pub fn db_samples_in<'a>(
        &'a self,
        windows: &'a [Window],
    ) -> impl Iterator<Item = &'a DbSample> + 'a {
        self.db
            .iter()
            .filter(move |s| windows.iter().any(|w| w.contains(s.t)))
    }

    /// PgBouncer samples whose time lies in any of `windows`.
    pub fn pgbouncer_samples_in<'a>(
        &'a self,
        windows: &'a [Window],
    ) -> impl Iterator<Item = &'a PgbouncerSample> + 'a {
        self.pgbouncer
            .iter()
            .filter(move |s| windows.iter().any(|w| w.contains(s.t)))
    }

    /// Server samples whose time lies in any of `windows`.
    pub fn server_samples_in<'a>(
        &'a self,
        windows: &'a [Window],
    ) -> impl Iterator<Item = &'a ServerSample> + 'a {
        self.server
            .iter()
            .filter(move |s| windows.iter().any(|w| w.contains(s.t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs_with_faults(faults: &[(f64, Option<f64>)]) -> Observations {
        Observations {
            load: Window::new(0.0, 30.0),
            warmup: Some(Window::new(-5.0, 0.0)),
            faults: faults
                .iter()
                .map(|(s, e)| FaultEvent {
                    kind: "db_latency".into(),
                    start: *s,
                    end: *e,
                    planned_at: *s,
                    target: None,
                })
                .collect(),
            ..Observations::default()
        }
    }

    #[test]
    fn phases_follow_actual_fault_times() {
        let o = obs_with_faults(&[(10.2, Some(15.7))]);
        assert_eq!(o.windows(PhaseKind::Load), vec![Window::new(0.0, 30.0)]);
        assert_eq!(o.windows(PhaseKind::Before), vec![Window::new(0.0, 10.2)]);
        assert_eq!(o.windows(PhaseKind::During), vec![Window::new(10.2, 15.7)]);
        assert_eq!(o.windows(PhaseKind::After), vec![Window::new(15.7, 30.0)]);
        assert_eq!(o.windows(PhaseKind::Warmup), vec![Window::new(-5.0, 0.0)]);
    }

    #[test]
    fn unfinished_fault_lasts_to_end_of_load_and_no_faults_means_no_fault_phases() {
        let o = obs_with_faults(&[(20.0, None), (5.0, Some(8.0))]);
        assert_eq!(o.windows(PhaseKind::Before), vec![Window::new(0.0, 5.0)]);
        assert_eq!(
            o.windows(PhaseKind::During),
            vec![Window::new(5.0, 8.0), Window::new(20.0, 30.0)]
        );
        assert!(o.windows(PhaseKind::After).is_empty());
        let none = obs_with_faults(&[]);
        for p in [PhaseKind::Before, PhaseKind::During, PhaseKind::After] {
            assert!(none.windows(p).is_empty(), "{p:?}");
        }
    }

    #[test]
    fn app_cpu_is_the_difference_of_the_samples_at_the_window_ends_per_request() {
        let mut o = obs_with_faults(&[]);
        o.client = ClientSeries::new(vec!["r".into()]);
        for t in 0..30 {
            for _ in 0..100 {
                o.client.record("r", t as f64 + 0.5, None, None);
            }
        }
        // 4 ms of CPU per second (40 µs per request), samples a few ms late.
        o.app_cpu = (0..=30)
            .map(|t| AppCpuSample {
                t: f64::from(t) + 0.003,
                cpu_ns: 1_000_000_000 + 4_000_000 * u64::from(t as u32),
            })
            .collect();
        let all = o.app_cpu_in(&o.windows(PhaseKind::Load)).unwrap();
        assert_eq!((all.cpu_ns, all.requests), (120_000_000, 3000));
        assert_eq!(all.us_per_request(), Some(40.0));
        let one = o.app_cpu_in(&[Window::new(7.0, 8.0)]).unwrap();
        assert_eq!((one.cpu_ns, one.requests), (4_000_000, 100));
        // A boundary without a sample near it has no figure, rather than a wrong one.
        o.app_cpu.retain(|s| s.t < 29.5);
        assert_eq!(o.app_cpu_in(&o.windows(PhaseKind::Load)), None);
        assert_eq!(o.app_cpu_in(&[]), None);
    }

    #[test]
    fn server_samples_are_selected_by_window() {
        let mut o = obs_with_faults(&[]);
        for t in [-1.0, 0.5, 29.5, 30.0] {
            o.server.push(ServerSample {
                t,
                ..ServerSample::default()
            });
        }
        let w = o.windows(PhaseKind::Load);
        let ts: Vec<f64> = o.server_samples_in(&w).map(|s| s.t).collect();
        assert_eq!(ts, vec![0.5, 29.5]);
    }
}

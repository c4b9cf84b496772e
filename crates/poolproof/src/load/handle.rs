//! A handle on a running attack: when measured load starts (the fault timeline counts from
//! it), stop it, and a snapshot of its live figures ([`LoadProgress`], which the terminal
//! display in `crate::progress` renders).

use super::recorder::Recorder;
use crate::observe::Window;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an attack is on its timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// Goose is configuring; no request yet.
    Starting,
    Ramp,
    Warmup,
    Measuring,
    /// Past the measured window, users are stopping.
    Stopping,
    Done,
}

impl LoadPhase {
    pub fn as_str(&self) -> &'static str {
        match self {
            LoadPhase::Starting => "starting",
            LoadPhase::Ramp => "ramp",
            LoadPhase::Warmup => "warm-up",
            LoadPhase::Measuring => "load",
            LoadPhase::Stopping => "stopping",
            LoadPhase::Done => "done",
        }
    }
}

/// A snapshot of a running attack.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProgress {
    pub phase: LoadPhase,
    /// Seconds from the start of measured load (negative during ramp and warm-up).
    pub elapsed_s: f64,
    /// Requests completed in the last complete second.
    pub rps: f64,
    /// Client p95 over the last 5 complete seconds, ms.
    pub p95_ms: Option<f64>,
    /// Requests completed so far (all phases).
    pub requests: u64,
    /// Errors so far (all phases).
    pub errors: u64,
}

/// A cheap, clonable handle on a running attack.
#[derive(Clone)]
pub struct LoadHandle {
    pub(crate) rec: Arc<Recorder>,
}

impl LoadHandle {
    /// A handle on load that generator shards run elsewhere, on a timeline that starts (its
    /// ramp) at `origin`: the fault timeline, samplers and progress follow it as they follow
    /// a local attack; the coordinator fills its live counters from the shards' heartbeats.
    pub fn remote(plan: &super::LoadPlan, origin: Instant) -> LoadHandle {
        let weights: Vec<usize> = plan.transactions.iter().map(|t| t.weight).collect();
        let rec = Recorder::new(
            plan.route_names(),
            &weights,
            plan.ramp,
            plan.warmup,
            plan.duration,
            None,
            None,
            None,
            plan.request_timeout,
            None,
            1,
        );
        rec.set_origin(origin);
        rec.remote.store(true, Ordering::SeqCst);
        LoadHandle { rec: Arc::new(rec) }
    }

    /// The instant measured load starts (`None` before the first request was sent).
    /// Fault timelines schedule their `at` offsets from it.
    pub fn measure_start(&self) -> Option<Instant> {
        self.rec.measure_start()
    }

    /// Waits until the start of measured load is known and returns it; `None` if the attack
    /// ended before sending any request.
    pub async fn wait_measure_start(&self) -> Option<Instant> {
        loop {
            if let Some(s) = self.rec.measure_start() {
                return Some(s);
            }
            if self.rec.finished.load(Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How long measured load lasts (unless stopped early).
    pub fn measured_duration(&self) -> Duration {
        self.rec.duration
    }

    /// Marks a remote load as over after its generators failed: what waits on its timeline
    /// stops waiting.
    pub(crate) fn abandon(&self) {
        self.rec
            .stop(Instant::now(), "poolproof: generators failed");
        self.rec.finished.store(true, Ordering::SeqCst);
    }

    /// Asks the attack to stop now (the outcome keeps what was measured).
    pub fn stop(&self) {
        self.rec.stop(Instant::now(), "poolproof: stop requested");
    }

    /// Stops the attack now for `reason` (an SLA already lost); the measured window ends here.
    pub fn stop_because(&self, reason: &str) {
        self.rec.stop(Instant::now(), reason);
    }

    /// Seconds from the start of measured load to now (negative during ramp and warm-up),
    /// `None` before the first request.
    pub fn elapsed_s(&self) -> Option<f64> {
        self.rec.offset(Instant::now())
    }

    /// Runs `f` on the live client series of the first target group (the only one unless
    /// arms run concurrently), under its lock: keep `f` short.
    pub fn with_series<R>(&self, f: impl FnOnce(&crate::observe::ClientSeries) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        self.rec.with_each_series(|s| {
            if let Some(f) = f.take() {
                out = Some(f(s));
            }
        });
        out
    }

    pub fn progress(&self) -> LoadProgress {
        let rec = &self.rec;
        let now = Instant::now();
        let elapsed_s = rec.offset(now);
        let phase = if rec.finished.load(Ordering::SeqCst) {
            LoadPhase::Done
        } else {
            match (elapsed_s, rec.origin()) {
                (None, _) | (_, None) => LoadPhase::Starting,
                (Some(t), Some(o)) => {
                    if now < o + rec.ramp {
                        LoadPhase::Ramp
                    } else if t < 0.0 {
                        LoadPhase::Warmup
                    } else if t < rec.duration.as_secs_f64() && !rec.stopping.load(Ordering::SeqCst)
                    {
                        LoadPhase::Measuring
                    } else {
                        LoadPhase::Stopping
                    }
                }
            }
        };
        let elapsed = elapsed_s.unwrap_or(f64::NEG_INFINITY);
        let (rps, p95_ms) = if elapsed.is_finite() {
            let last = elapsed.floor() - 1.0;
            // Over every target group (all arms when they run concurrently).
            let mut requests = 0u64;
            let mut five = crate::observe::LatencyHistogram::default();
            rec.with_each_series(|s| {
                requests += s.window(&[Window::new(last, last + 1.0)], None).requests;
                five.merge(
                    &s.window(&[Window::new(last - 4.0, last + 1.0)], None)
                        .latency,
                );
            });
            (requests as f64, five.quantile_ms(0.95))
        } else {
            (0.0, None)
        };
        LoadProgress {
            phase,
            elapsed_s: elapsed_s.unwrap_or(0.0),
            rps,
            p95_ms,
            requests: rec.completed.load(Ordering::Relaxed),
            errors: rec.errors.load(Ordering::Relaxed),
        }
    }
}

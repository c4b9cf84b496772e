//! The shared recorder every goose user writes into: the run's clock, the client series
//! (one per target group: one per arm when arms run concurrently) and live counters.

use crate::observe::{ClientSeries, ErrorKind, Window};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) struct Recorder {
    /// When the first user ran its first transaction: the start of the ramp.
    origin: OnceLock<Instant>,
    pub(crate) ramp: Duration,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// One series per target group (index = group).
    series: Vec<Mutex<ClientSeries>>,
    /// Every completed request, including those after the measured window.
    pub(crate) completed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) stopping: AtomicBool,
    /// When the attack was told to stop (end of the measured window, `stop()` or Ctrl-C).
    pub(crate) stop_at: OnceLock<Instant>,
    pub(crate) finished: AtomicBool,
    pub(crate) bearer_token: Option<String>,
    pacer: Option<Pacer>,
}

/// Spaces request starts `1 / rate` apart across all users. goose's own throttle releases
/// tokens in 10 ms batches on a millisecond timer and fell 12 % short of the asked rate here;
/// absolute slots keep the average exact. A user that finds the next slot in the past starts
/// at once, and missed slots are not made up in a burst.
struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    async fn wait(&self) {
        let slot = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

impl Recorder {
    pub(crate) fn new(
        routes: Vec<String>,
        ramp: Duration,
        warmup: Duration,
        duration: Duration,
        rate_limit: Option<u32>,
        bearer_token: Option<String>,
        groups: usize,
    ) -> Self {
        Recorder {
            origin: OnceLock::new(),
            ramp,
            warmup,
            duration,
            series: (0..groups.max(1))
                .map(|_| Mutex::new(ClientSeries::new(routes.clone())))
                .collect(),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            stop_at: OnceLock::new(),
            finished: AtomicBool::new(false),
            bearer_token,
            pacer: rate_limit.filter(|r| *r > 0).map(|r| Pacer {
                interval: Duration::from_secs_f64(1.0 / f64::from(r)),
                next: Mutex::new(None),
            }),
        }
    }

    /// Waits for this request's slot under the rate limit (at once without one).
    pub(crate) async fn pace(&self) {
        if let Some(p) = &self.pacer {
            p.wait().await;
        }
    }

    /// Starts the clock at the first call.
    pub(crate) fn mark_origin(&self) -> Instant {
        *self.origin.get_or_init(Instant::now)
    }

    pub(crate) fn origin(&self) -> Option<Instant> {
        self.origin.get().copied()
    }

    /// The instant measured load starts: ramp and warm-up after the origin.
    pub(crate) fn measure_start(&self) -> Option<Instant> {
        self.origin().map(|o| o + self.ramp + self.warmup)
    }

    /// Seconds from the start of measured load to `at` (negative before it).
    pub(crate) fn offset(&self, at: Instant) -> Option<f64> {
        let start = self.measure_start()?;
        Some(if at >= start {
            (at - start).as_secs_f64()
        } else {
            -(start - at).as_secs_f64()
        })
    }

    /// Stops the attack (goose's killswitch); the first caller's instant is kept.
    pub(crate) fn stop(&self, at: Instant, reason: &str) {
        let _ = self.stop_at.set(at);
        self.stopping.store(true, Ordering::SeqCst);
        goose::trigger_killswitch(reason);
    }

    /// `[0, duration)`, cut short when the attack stopped before the end.
    pub(crate) fn load_window(&self) -> Window {
        let full = self.duration.as_secs_f64();
        let end = match self.stop_at.get().and_then(|s| self.offset(*s)) {
            Some(t) => t.clamp(0.0, full),
            None if self.origin().is_none() => 0.0,
            None => full,
        };
        Window::new(0.0, end)
    }

    pub(crate) fn warmup_window(&self) -> Window {
        Window::new(-(self.ramp + self.warmup).as_secs_f64(), 0.0)
    }

    pub(crate) fn record(
        &self,
        group: usize,
        route: &str,
        completed_at: Instant,
        latency: Option<Duration>,
        error: Option<ErrorKind>,
    ) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if error.is_some() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let Some(t) = self.offset(completed_at) else {
            return;
        };
        if t >= self.duration.as_secs_f64() {
            return;
        }
        if let Some(Ok(mut s)) = self.series.get(group).map(Mutex::lock) {
            s.record(route, t, latency, error);
        }
    }

    /// Runs `f` on each group's series under its lock (for live progress).
    pub(crate) fn with_each_series(&self, mut f: impl FnMut(&ClientSeries)) {
        for s in &self.series {
            if let Ok(s) = s.lock() {
                f(&s);
            }
        }
    }

    /// The series of every group, in group order.
    pub(crate) fn take_series(&self) -> Vec<ClientSeries> {
        self.series
            .iter()
            .map(|s| match s.lock() {
                Ok(mut s) => std::mem::take(&mut *s),
                Err(p) => std::mem::take(&mut *p.into_inner()),
            })
            .collect()
    }
}

//! The shared recorder every goose user writes into: the run's clock, the client series
//! (one per target group: one per arm when arms run concurrently), the arrival schedule
//! (open model) or the pacer (closed model with a rate limit), the generator's own lag and
//! live counters.

use super::plan::{OpenPlan, ShardOf};
use super::schedule::{Schedule, LATE_TOLERANCE};
use crate::observe::{ClientSeries, ErrorKind, GeneratorLag, LatencyHistogram, SlotFate, Window};
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
    /// Route names by transaction index (a dropped start is recorded under its route).
    routes: Vec<String>,
    /// Every completed request, including those after the measured window.
    pub(crate) completed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) stopping: AtomicBool,
    /// When the attack was told to stop (end of the measured window, `stop()` or Ctrl-C).
    pub(crate) stop_at: OnceLock<Instant>,
    pub(crate) finished: AtomicBool,
    pub(crate) bearer_token: Option<String>,
    pacer: Option<Pacer>,
    /// Open model: the arrival schedule and the next slot no user has taken yet.
    pub(crate) schedule: Option<Schedule>,
    pub(crate) next_slot: AtomicU64,
    /// A start that found no free user for this long is dropped.
    pub(crate) drop_after: Duration,
    /// How late users that were waiting for their slot woke up, over measured load: the
    /// generator's own lag (CPU saturation, a late timer), not the server's.
    lag: Mutex<LatencyHistogram>,
    /// The load runs elsewhere (generator shards): stopping it is the coordinator's job,
    /// not goose's killswitch.
    pub(crate) remote: AtomicBool,
}

/// Spaces request starts `1 / rate` apart across all users (closed model with a rate
/// limit). goose's own throttle releases tokens in 10 ms batches on a millisecond timer and
/// fell 12 % short of the asked rate here; absolute slots keep the average exact. A user
/// that finds the next slot in the past by more than the late tolerance takes that oldest
/// missed slot (its latency counts from it) and the slots missed after it are dropped and
/// counted, not made up in a burst: a closed model does not queue, but it does not hide
/// what it did not send either.
struct Pacer {
    interval: Duration,
    state: Mutex<PacerState>,
    /// Route index per slot, cycling (for dropped slots, which no transaction ran).
    cycle: Vec<usize>,
}

struct PacerState {
    next: Option<Instant>,
    index: u64,
}

/// The slot a paced request takes, and the slots dropped before it (index, instant).
struct PaceClaim {
    slot: Instant,
    dropped: Vec<(u64, Instant)>,
}

impl Pacer {
    fn claim(&self) -> Option<PaceClaim> {
        let mut st = self.state.lock().ok()?;
        let now = Instant::now();
        let slot = st.next.unwrap_or(now);
        let mut dropped = Vec::new();
        let mut next = slot + self.interval;
        let mut index = st.index + 1;
        if now > slot + LATE_TOLERANCE {
            let missed = ((now - slot).as_secs_f64() / self.interval.as_secs_f64()).floor() as u64;
            for j in 1..=missed {
                dropped.push((st.index + j, slot + self.interval.mul_f64(j as f64)));
            }
            next = slot + self.interval.mul_f64((missed + 1) as f64);
            index = st.index + missed + 1;
        }
        st.next = Some(next);
        st.index = index;
        Some(PaceClaim { slot, dropped })
    }

    fn route(&self, i: u64) -> usize {
        if self.cycle.is_empty() {
            return 0;
        }
        self.cycle[(i % self.cycle.len() as u64) as usize]
    }
}

impl Recorder {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        routes: Vec<String>,
        weights: &[usize],
        ramp: Duration,
        warmup: Duration,
        duration: Duration,
        rate_limit: Option<f64>,
        open: Option<&OpenPlan>,
        shard: Option<ShardOf>,
        drop_after: Duration,
        bearer_token: Option<String>,
        groups: usize,
    ) -> Self {
        let schedule = open.map(|o| {
            let whole = Schedule::new(&o.segments, weights);
            match shard {
                Some(s) => whole.sharded(s.index, s.count),
                None => whole,
            }
        });
        Recorder {
            origin: OnceLock::new(),
            ramp,
            warmup,
            duration,
            series: (0..groups.max(1))
                .map(|_| Mutex::new(ClientSeries::new(routes.clone())))
                .collect(),
            routes,
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            stop_at: OnceLock::new(),
            finished: AtomicBool::new(false),
            bearer_token,
            pacer: rate_limit
                .filter(|r| r.is_finite() && *r > 0.0 && open.is_none())
                .map(|r| Pacer {
                    interval: Duration::from_secs_f64(1.0 / r),
                    state: Mutex::new(PacerState {
                        next: None,
                        index: 0,
                    }),
                    cycle: super::schedule::weighted_cycle(weights),
                }),
            schedule,
            next_slot: AtomicU64::new(0),
            drop_after,
            lag: Mutex::new(LatencyHistogram::new()),
            remote: AtomicBool::new(false),
        }
    }

    /// Closed model: waits for this request's slot under the rate limit and returns the
    /// instant its corrected latency counts from (at once and `None` without a rate limit).
    /// Records the slot's fate and the slots dropped before it.
    pub(crate) async fn pace(&self, group: usize, route: &str) -> Option<Instant> {
        let p = self.pacer.as_ref()?;
        let claim = p.claim()?;
        for (i, at) in &claim.dropped {
            let name = self.routes.get(p.route(*i)).map_or("", String::as_str);
            self.record_slot_at(group, name, *at, SlotFate::Dropped);
        }
        let waited_for_it = Instant::now() < claim.slot;
        tokio::time::sleep_until(claim.slot.into()).await;
        let woke = Instant::now();
        let fate = if woke > claim.slot + LATE_TOLERANCE {
            SlotFate::Late
        } else {
            SlotFate::OnTime
        };
        self.record_slot_at(group, route, claim.slot, fate);
        // A slot the user was waiting for went out when its timer fired: how late that was is
        // the generator's own lag (CPU starvation, a late timer), recorded as the open model's.
        if waited_for_it {
            if let Some(t) = self.offset(claim.slot) {
                self.note_lag(t, woke.saturating_duration_since(claim.slot));
            }
        }
        // As in the open model: a slot the user waited for counts from when its timer fired
        // (timer lateness is the generator's, not the server's); one already due when the user
        // got to it counts from its time.
        Some(if waited_for_it { woke } else { claim.slot })
    }

    /// The instant of offset `t` (seconds from the start of measured load), once known.
    pub(crate) fn instant_at(&self, t: f64) -> Option<Instant> {
        let start = self.measure_start()?;
        let d = Duration::from_secs_f64(t.abs());
        if t >= 0.0 {
            Some(start + d)
        } else {
            start.checked_sub(d)
        }
    }

    /// Records what became of one scheduled start (by its scheduled time).
    pub(crate) fn record_slot_at(&self, group: usize, route: &str, at: Instant, fate: SlotFate) {
        let Some(t) = self.offset(at) else {
            return;
        };
        self.record_slot(group, route, t, fate);
    }

    /// Like [`Recorder::record_slot_at`] with the scheduled offset in seconds.
    pub(crate) fn record_slot(&self, group: usize, route: &str, t: f64, fate: SlotFate) {
        if t >= self.duration.as_secs_f64() {
            return;
        }
        if let Some(Ok(mut s)) = self.series.get(group).map(Mutex::lock) {
            s.record_slot(route, t, fate);
        }
    }

    /// The route name of transaction `i`.
    pub(crate) fn route_name(&self, i: usize) -> &str {
        self.routes.get(i).map_or("", String::as_str)
    }

    /// Notes how late a waiting user woke for a slot due at offset `t`.
    pub(crate) fn note_lag(&self, t: f64, lag: Duration) {
        if t < 0.0 || t >= self.duration.as_secs_f64() {
            return;
        }
        if let Ok(mut h) = self.lag.lock() {
            h.record(lag);
        }
    }

    /// The lag histogram over measured load (a shard sends it to the coordinator whole).
    pub(crate) fn lag_histogram(&self) -> LatencyHistogram {
        self.lag.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The generator's lag over measured load.
    pub(crate) fn generator_lag(&self) -> GeneratorLag {
        let Ok(h) = self.lag.lock() else {
            return GeneratorLag::default();
        };
        let tol = LATE_TOLERANCE.as_micros() as u64;
        let late = h
            .inner()
            .iter_recorded()
            .filter(|v| v.value_iterated_to() > tol)
            .map(|v| v.count_at_value())
            .sum();
        GeneratorLag {
            starts: h.count(),
            late,
            p99_ms: h.quantile_ms(0.99),
            max_ms: h.max_ms(),
        }
    }

    /// Open model, after the attack: every slot due before the end of measured load that no
    /// user took was never sent: dropped.
    pub(crate) fn drop_unclaimed(&self) {
        let Some(sched) = &self.schedule else {
            return;
        };
        let end = self.load_window().end;
        let mut i = self.next_slot.load(Ordering::SeqCst);
        while let Some(t) = sched.time(i) {
            if t >= end {
                break;
            }
            let route = self.route_name(sched.route(i)).to_string();
            self.record_slot(0, &route, t, SlotFate::Dropped);
            i += 1;
        }
    }

    /// Sets the clock's origin ahead of the first request (a generator shard starts on the
    /// coordinator's instant); false when it was already set.
    pub(crate) fn set_origin(&self, origin: Instant) -> bool {
        self.origin.set(origin).is_ok()
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
        if !self.remote.load(Ordering::SeqCst) {
            goose::trigger_killswitch(reason);
        }
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
        latency: Option<(Duration, Duration)>,
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
            s.record_timed(route, t, latency, error);
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

//! Pool statistics: counters and HDR histograms updated on the acquire and query paths, and the
//! serializable [`PoolStatsSnapshot`] with the derived figures (utilization, efficiency, health score).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::exposition::buckets::AtomicCounts;

/// The kind of a SQL statement, for the query-time breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryKind {
    Select,
    Insert,
    Update,
    Delete,
    Other,
}

impl QueryKind {
    pub const ALL: [QueryKind; 5] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Other,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Other => "other",
        }
    }

    /// The upper-case label of the metrics collector's query-kind breakdown.
    pub fn label(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Other => "OTHER",
        }
    }
}

/// How the app reaches Postgres right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// Through the sqlx pool.
    Pooled,
    /// `ENABLE_CONNECTION_POOLING=false`: a new connection per acquisition, by configuration.
    Unpooled,
    /// The pool failed: direct connections with backoff while a probe waits for the pool to heal.
    Fallback,
}

impl PoolMode {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Pooled,
            1 => Self::Unpooled,
            _ => Self::Fallback,
        }
    }
    pub(crate) fn as_u8(self) -> u8 {
        match self {
            Self::Pooled => 0,
            Self::Unpooled => 1,
            Self::Fallback => 2,
        }
    }
}

fn new_histogram() -> Mutex<Histogram<u64>> {
    // 1 µs .. 1 h at 3 significant figures; larger values are clamped by `saturating_record`.
    #[allow(clippy::expect_used)]
    Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid"))
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Live counters, shared by the pool layer (all fields relaxed atomics or short-held mutexes).
#[derive(Debug)]
pub struct PoolStats {
    pub(crate) acquisitions: AtomicU64,
    pub(crate) pool_opened: AtomicU64,
    pub(crate) direct_opened: AtomicU64,
    pub(crate) closed_request_end: AtomicU64,
    pub(crate) closed_broken: AtomicU64,
    pub(crate) closed_pool_replaced: AtomicU64,
    pub(crate) acquire_timeouts: AtomicU64,
    pub(crate) acquire_errors: AtomicU64,
    /// Acquisitions refused because every connection stayed in use (a subset of the timeouts).
    pub(crate) exhausted: AtomicU64,
    pub(crate) query_errors: AtomicU64,
    pub(crate) waiting: AtomicI64,
    pub(crate) consecutive_failures: AtomicU32,
    pub(crate) fallback_activations: AtomicU64,
    pub(crate) recoveries: AtomicU64,
    /// ms since the Unix epoch of the last acquire timeout or error (0 = never).
    pub(crate) last_failure_ms: AtomicU64,
    acquire_wait: Mutex<Histogram<u64>>,
    query_time: [Mutex<Histogram<u64>>; 5],
    /// Query times per kind since the metrics collector last took them, in the collector's
    /// histogram shape. Created by the first take, so an app without a collector never records
    /// into them. Why not difference the cumulative histograms above: copying five 190 KB
    /// histograms a second (under the locks the query path records through) was most of the
    /// monitoring's own CPU.
    query_interval: OnceLock<[Mutex<Histogram<u64>>; 5]>,
    /// The taker (the metrics collector) is paused: the interval histograms record nothing.
    query_interval_paused: AtomicBool,
    /// The exported histograms (`/metrics`, OpenTelemetry `db.client.*`), in fixed buckets
    /// recorded with atomics: time to open a connection, to get one, how long one was held,
    /// and query time per kind.
    pub(crate) create_time: AtomicCounts,
    pub(crate) wait_time: AtomicCounts,
    pub(crate) use_time: AtomicCounts,
    pub(crate) operation_time: [AtomicCounts; 5],
}

impl Default for PoolStats {
    fn default() -> Self {
        Self {
            acquisitions: AtomicU64::new(0),
            pool_opened: AtomicU64::new(0),
            direct_opened: AtomicU64::new(0),
            closed_request_end: AtomicU64::new(0),
            closed_broken: AtomicU64::new(0),
            closed_pool_replaced: AtomicU64::new(0),
            acquire_timeouts: AtomicU64::new(0),
            acquire_errors: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            query_errors: AtomicU64::new(0),
            waiting: AtomicI64::new(0),
            consecutive_failures: AtomicU32::new(0),
            fallback_activations: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            last_failure_ms: AtomicU64::new(0),
            acquire_wait: new_histogram(),
            query_time: [
                new_histogram(),
                new_histogram(),
                new_histogram(),
                new_histogram(),
                new_histogram(),
            ],
            query_interval: OnceLock::new(),
            query_interval_paused: AtomicBool::new(false),
            create_time: AtomicCounts::default(),
            wait_time: AtomicCounts::default(),
            use_time: AtomicCounts::default(),
            operation_time: Default::default(),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl PoolStats {
    pub(crate) fn record_acquire_wait(&self, wait: Duration) {
        self.wait_time.record(wait);
        if let Ok(mut h) = self.acquire_wait.lock() {
            h.saturating_record(us(wait));
        }
    }

    pub(crate) fn record_query(&self, kind: QueryKind, took: Duration) {
        self.operation_time[kind.index()].record(took);
        let took = us(took);
        if let Ok(mut h) = self.query_time[kind.index()].lock() {
            h.saturating_record(took);
        }
        if let Some(interval) = self
            .query_interval
            .get()
            .filter(|_| !self.query_interval_paused.load(Ordering::Relaxed))
        {
            if let Ok(mut h) = interval[kind.index()].lock() {
                h.saturating_record(took);
            }
        }
    }

    /// Acquisitions waiting for a connection now.
    pub fn waiting(&self) -> u64 {
        u64::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Acquisitions that timed out since start-up.
    pub fn acquire_timeouts(&self) -> u64 {
        self.acquire_timeouts.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_failure_time(&self) {
        self.last_failure_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A copy of the query-time histogram of one kind (µs), for exact merged percentiles elsewhere.
    pub fn query_histogram(&self, kind: QueryKind) -> Option<Histogram<u64>> {
        self.query_time[kind.index()].lock().ok().map(|h| h.clone())
    }

    /// Stops (or restarts) recording for [`Self::take_query_times`] while its taker is paused.
    pub fn pause_query_times(&self, paused: bool) {
        self.query_interval_paused.store(paused, Ordering::Relaxed);
    }

    /// The query times (µs) of each kind that ran queries since the previous take, each in a
    /// histogram made by `new` (which also makes their empty successors). The first take starts
    /// the recording and returns nothing.
    pub fn take_query_times(
        &self,
        new: fn() -> Histogram<u64>,
    ) -> Vec<(QueryKind, Histogram<u64>)> {
        let Some(interval) = self.query_interval.get() else {
            let _ = self
                .query_interval
                .set(std::array::from_fn(|_| Mutex::new(new())));
            return Vec::new();
        };
        QueryKind::ALL
            .iter()
            .zip(interval)
            .filter_map(|(kind, m)| {
                if m.lock().ok()?.is_empty() {
                    return None;
                }
                // Allocated before locking and swapped, not copied: the query path recording
                // into this histogram waits for neither an allocation nor a copy.
                let fresh = new();
                let taken = std::mem::replace(&mut *m.lock().ok()?, fresh);
                Some((*kind, taken))
            })
            .collect()
    }

    /// A copy of the acquire-wait histogram (µs).
    pub fn acquire_wait_histogram(&self) -> Option<Histogram<u64>> {
        self.acquire_wait.lock().ok().map(|h| h.clone())
    }
}

/// Percentiles of one histogram, in µs.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// Query time per statement kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueryTimes {
    pub select: LatencySummary,
    pub insert: LatencySummary,
    pub update: LatencySummary,
    pub delete: LatencySummary,
    pub other: LatencySummary,
}

/// Connections closed, by reason.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ClosedByReason {
    /// Direct connections (unpooled or fallback mode) closed at the end of their request.
    pub request_end: u64,
    /// Closed because a query or liveness ping failed at the connection level.
    pub broken: u64,
    /// Pooled connections dropped with their pool when fallback mode built a fresh pool.
    pub pool_replaced: u64,
    /// Closed by the pool itself (idle timeout, max lifetime): opened by the pool minus its current size
    /// minus the reasons above that apply to pooled connections; an inference, sqlx reports no close events.
    pub pool_evicted: u64,
}

/// Everything `/api/performance/pool` shows. Names follow HikariCP/bb8.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolStatsSnapshot {
    pub mode: PoolMode,
    pub pooling_enabled: bool,
    /// Open pooled connections (0 when not pooled).
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    /// Tasks waiting in `acquire` right now.
    pub waiting: u32,
    pub max: u32,
    pub min: u32,
    /// in use / max, percent.
    pub utilization_percent: f64,
    /// Successful acquisitions (pooled or direct).
    pub acquisitions: u64,
    /// Physical connections opened (pool `after_connect` plus direct connects).
    pub connections_opened: u64,
    pub connections_closed: ClosedByReason,
    pub acquire_timeouts: u64,
    /// Failed acquisitions other than timeouts (connect errors in fallback or unpooled mode included).
    pub acquire_errors: u64,
    /// Acquisitions refused with 503 `pool exhausted`: every connection the layer may open stayed
    /// in use for the acquire timeout (overload; counted in `acquire_timeouts` too, never a
    /// step toward fallback).
    pub pool_exhausted: u64,
    pub query_errors: u64,
    /// Queries run (all kinds).
    pub query_count: u64,
    /// 1 − connections opened / acquisitions, percent, clamped to 0..=100 (0 before any acquisition).
    pub pool_efficiency_percent: f64,
    /// 0–100; see [`health_score`].
    pub health_score: u8,
    pub consecutive_failures: u32,
    pub fallback_activations: u64,
    pub recoveries: u64,
    /// Wait inside `acquire` (pooled) or connect time (direct), µs.
    pub acquire_wait: LatencySummary,
    pub query_time: QueryTimes,
}

/// Inputs of the health score that are not in the counters.
pub(crate) struct Gauges {
    pub mode: PoolMode,
    pub pooling_enabled: bool,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
    pub min: u32,
    /// Connections of the installed pool even when not in pooled mode (for the closed-by-reason inference).
    pub pool_size_actual: u32,
}

impl PoolStats {
    pub(crate) fn snapshot(&self, g: Gauges) -> PoolStatsSnapshot {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let acquisitions = ld(&self.acquisitions);
        let pool_opened = ld(&self.pool_opened);
        let opened = pool_opened + ld(&self.direct_opened);
        let in_use = g.size.saturating_sub(g.idle);
        let waiting = u32::try_from(self.waiting()).unwrap_or(u32::MAX);
        let utilization_percent = if g.max == 0 {
            0.0
        } else {
            round2(f64::from(in_use) * 100.0 / f64::from(g.max))
        };
        let pool_efficiency_percent = if acquisitions == 0 {
            0.0
        } else {
            // Not rounded: 98.996 % must not show as 99 %.
            (100.0 * (1.0 - opened as f64 / acquisitions as f64)).clamp(0.0, 100.0)
        };
        let closed_broken = ld(&self.closed_broken);
        let pool_replaced = ld(&self.closed_pool_replaced);
        let closed = ClosedByReason {
            request_end: ld(&self.closed_request_end),
            broken: closed_broken,
            pool_replaced,
            pool_evicted: pool_opened
                .saturating_sub(u64::from(g.pool_size_actual))
                .saturating_sub(pool_replaced)
                .saturating_sub(closed_broken),
        };
        let summary = |k: QueryKind| {
            self.query_time[k.index()]
                .lock()
                .map(|h| LatencySummary::of(&h))
                .unwrap_or_default()
        };
        let query_time = QueryTimes {
            select: summary(QueryKind::Select),
            insert: summary(QueryKind::Insert),
            update: summary(QueryKind::Update),
            delete: summary(QueryKind::Delete),
            other: summary(QueryKind::Other),
        };
        let query_count = query_time.select.count
            + query_time.insert.count
            + query_time.update.count
            + query_time.delete.count
            + query_time.other.count;
        let consecutive_failures = self.consecutive_failures.load(Ordering::Relaxed);
        let last_failure = ld(&self.last_failure_ms);
        let recent_failure = last_failure != 0 && now_ms().saturating_sub(last_failure) < 60_000;
        let health_score = health_score(HealthInputs {
            mode: g.mode,
            utilization_percent,
            waiting,
            consecutive_failures,
            recent_failure,
        });
        PoolStatsSnapshot {
            mode: g.mode,
            pooling_enabled: g.pooling_enabled,
            size: g.size,
            idle: g.idle,
            in_use,
            waiting,
            max: g.max,
            min: g.min,
            utilization_percent,
            acquisitions,
            connections_opened: opened,
            connections_closed: closed,
            acquire_timeouts: self.acquire_timeouts(),
            acquire_errors: ld(&self.acquire_errors),
            pool_exhausted: ld(&self.exhausted),
            query_errors: ld(&self.query_errors),
            query_count,
            pool_efficiency_percent,
            health_score,
            consecutive_failures,
            fallback_activations: ld(&self.fallback_activations),
            recoveries: ld(&self.recoveries),
            acquire_wait: self
                .acquire_wait
                .lock()
                .map(|h| LatencySummary::of(&h))
                .unwrap_or_default(),
            query_time,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Inputs of [`health_score`].
#[derive(Debug, Clone, Copy)]
pub struct HealthInputs {
    pub mode: PoolMode,
    pub utilization_percent: f64,
    pub waiting: u32,
    pub consecutive_failures: u32,
    /// An acquire timeout or error happened in the last 60 s.
    pub recent_failure: bool,
}

/// The pool health score, 0–100: start at 100 and subtract
/// - utilization above 75 %: up to 30 points, linearly to 100 %;
/// - 5 points per waiting task, at most 20;
/// - 10 points per consecutive acquire failure, at most 40;
/// - 10 points if an acquire failed within the last minute;
///
/// then cap at 40 in fallback mode (serving, but degraded). Unpooled mode has no pool to saturate, so
/// only the failure terms apply.
pub fn health_score(i: HealthInputs) -> u8 {
    let mut score = 100.0;
    if i.mode != PoolMode::Unpooled {
        score -= ((i.utilization_percent - 75.0).max(0.0) / 25.0 * 30.0).min(30.0);
        score -= (f64::from(i.waiting) * 5.0).min(20.0);
    }
    score -= (f64::from(i.consecutive_failures) * 10.0).min(40.0);
    if i.recent_failure {
        score -= 10.0;
    }
    if i.mode == PoolMode::Fallback {
        score = score.min(40.0);
    }
    score.clamp(0.0, 100.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 2).unwrap()
    }

    #[test]
    fn query_times_are_taken_per_interval_once_a_taker_asks() {
        let stats = PoolStats::default();
        // Before anyone takes, only the cumulative histograms record.
        stats.record_query(QueryKind::Select, Duration::from_micros(100));
        assert!(stats.take_query_times(small).is_empty());
        stats.record_query(QueryKind::Select, Duration::from_micros(200));
        stats.record_query(QueryKind::Select, Duration::from_micros(300));
        stats.record_query(QueryKind::Insert, Duration::from_millis(5));
        let taken = stats.take_query_times(small);
        let kinds: Vec<QueryKind> = taken.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [QueryKind::Select, QueryKind::Insert]);
        assert_eq!(taken[0].1.len(), 2);
        assert!(taken[0].1.equivalent(300, taken[0].1.max()));
        assert!(taken[1].1.equivalent(5000, taken[1].1.max()));
        // The taken histograms have the taker's shape; the cumulative one still has all three.
        assert_eq!(taken[0].1.sigfig(), 2);
        assert_eq!(stats.query_histogram(QueryKind::Select).unwrap().len(), 3);
        // Nothing new: nothing taken.
        assert!(stats.take_query_times(small).is_empty());
        stats.record_query(QueryKind::Delete, Duration::from_micros(7));
        let taken = stats.take_query_times(small);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0, taken[0].1.len()), (QueryKind::Delete, 1));
    }

    fn inputs() -> HealthInputs {
        HealthInputs {
            mode: PoolMode::Pooled,
            utilization_percent: 20.0,
            waiting: 0,
            consecutive_failures: 0,
            recent_failure: false,
        }
    }

    #[test]
    fn health_score_terms() {
        assert_eq!(health_score(inputs()), 100);
        assert_eq!(
            health_score(HealthInputs {
                utilization_percent: 100.0,
                ..inputs()
            }),
            70
        );
        assert_eq!(
            health_score(HealthInputs {
                waiting: 10,
                ..inputs()
            }),
            80
        );
        assert_eq!(
            health_score(HealthInputs {
                consecutive_failures: 2,
                recent_failure: true,
                ..inputs()
            }),
            70
        );
        assert_eq!(
            health_score(HealthInputs {
                mode: PoolMode::Fallback,
                ..inputs()
            }),
            40
        );
        assert_eq!(
            health_score(HealthInputs {
                mode: PoolMode::Unpooled,
                utilization_percent: 100.0,
                ..inputs()
            }),
            100
        );
    }

    /// A pool of `size` connections, all idle, configured `min..=max`; `max` 0: unpooled.
    fn gauges(size: u32, min: u32, max: u32) -> Gauges {
        let pooled = max > 0;
        Gauges {
            mode: if pooled {
                PoolMode::Pooled
            } else {
                PoolMode::Unpooled
            },
            pooling_enabled: pooled,
            size,
            idle: size,
            max,
            min,
            pool_size_actual: size,
        }
    }

    #[test]
    fn efficiency_is_share_of_acquisitions_without_a_new_connection() {
        let s = PoolStats::default();
        s.acquisitions.store(1000, Ordering::Relaxed);
        s.pool_opened.store(10, Ordering::Relaxed);
        let snap = s.snapshot(gauges(10, 5, 20));
        assert_eq!(snap.pool_efficiency_percent, 99.0);
        assert_eq!(snap.connections_closed.pool_evicted, 0);
        s.direct_opened.store(990, Ordering::Relaxed);
        assert_eq!(s.snapshot(gauges(0, 0, 0)).pool_efficiency_percent, 0.0);
    }
}

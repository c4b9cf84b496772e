//! The collector: takes request samples from the request path through bounded sharded buffers
//! ([`super::inbox`]: never blocking — a full buffer drops the sample and counts it), records them
//! into per-route HDR histograms for the current second, and once a second finishes the bucket:
//! rolling windows, the in-memory ring, the minute roll-up, the realtime snapshot, the baseline,
//! and the hand-off to the Redis writer. With monitoring off there is no collector task at all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::baseline::{Baseline, BaselineSlot};
use super::bucket::{Bucket, LiveBucket};
use super::histogram::{self, Hist, Latency};
use super::inbox::Inbox;
use super::rolling::Rolling;
use super::store::{FlushItem, StoreStatus};
use crate::clock::{second_aligned_interval, unix_now};
use crate::exposition::buckets::Counts;

/// One finished request (the convenience form of [`MetricsCollector::record`]; the middleware
/// hands its record over by reference without building one).
#[derive(Debug, Clone)]
pub struct Sample {
    pub method: Method,
    /// The matched route template; `None` for requests that matched no route.
    pub route: Option<MatchedPath>,
    pub status: u16,
    pub duration_us: u64,
}

impl crate::middleware::RequestObserver for MetricsCollector {
    #[inline]
    fn observe(&self, r: &crate::middleware::RequestRecord) {
        self.push(&r.method, r.route.as_ref(), r.status, r.duration_us());
    }
}

impl Sample {
    /// 5xx and 4xx both count as errors for the error rate (the report's "4xx/5xx response rate").
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// Routes of the monitoring stack itself: recorded per route, kept out of the app-traffic totals.
pub fn is_monitoring_route(route: &str) -> bool {
    let path = route.split_once(' ').map_or(route, |(_, p)| p);
    path.starts_with("/api/performance")
        || path == "/metrics"
        || path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/dashboard")
}

/// Query times (µs) per query kind, from the pool: each call hands over the kinds that ran
/// queries since the previous call (labelled `SELECT`, `INSERT`, ...), in the collector's shape.
pub trait QueryTimeSource: Send + Sync + 'static {
    fn take_query_times(&self) -> Vec<(&'static str, Hist)>;
    /// Stops (or restarts) recording what the next take would hand over, while the collector
    /// that takes it is paused.
    fn pause_query_times(&self, paused: bool);
}

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub enabled: bool,
    pub instance: String,
    /// Samples that may wait between two drains (about a second) in each thread's inbox shard;
    /// beyond it samples are dropped and counted.
    pub channel_capacity: usize,
    /// Seconds kept in memory (local summaries while Redis is away).
    pub ring_secs: usize,
    /// Extra rolling windows (seconds) the alert rules read.
    pub windows: Vec<u64>,
    /// Time after the first request over which the baseline is taken.
    pub baseline_secs: u64,
    /// Current p95 / baseline p95 at or above which a regression is reported.
    pub regression_ratio: f64,
}

impl CollectorConfig {
    pub fn new(instance: String) -> CollectorConfig {
        CollectorConfig {
            enabled: true,
            instance,
            channel_capacity: 1 << 16,
            ring_secs: 3600,
            windows: Vec::new(),
            baseline_secs: 300,
            regression_ratio: 1.5,
        }
    }
}

/// Windowed figures for the alert engine and the health monitor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowStats {
    pub requests: u64,
    pub errors: u64,
    pub error_rate_percent: f64,
    pub latency: Latency,
    pub db_p95_ms: Option<f64>,
    pub db_max_ms: Option<f64>,
    pub db_queries: u64,
}

/// Request figures over one window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub window_seconds: u64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate_percent: f64,
    pub rps: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    pub route: String,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindStats {
    pub kind: String,
    pub queries: u64,
    pub latency_ms: Latency,
}

impl RouteStats {
    /// Every route of `acc`, with its rate over `secs` seconds.
    pub fn all_of(acc: &LiveBucket, secs: f64) -> Vec<RouteStats> {
        acc.routes
            .iter()
            .map(|(k, r)| RouteStats {
                route: k.clone(),
                requests: r.hist.len(),
                errors: r.errors,
                rps: (r.hist.len() as f64 / secs * 100.0).round() / 100.0,
                latency_ms: Latency::of(&r.hist),
            })
            .collect()
    }
}

impl KindStats {
    /// Every query kind of `acc` that ran at least once.
    pub fn all_of(acc: &LiveBucket) -> Vec<KindStats> {
        acc.db
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| KindStats {
                kind: k.clone(),
                queries: h.len(),
                latency_ms: Latency::of(h),
            })
            .collect()
    }
}

/// One point of the per-second series the dashboard charts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub t: u64,
    pub rps: u64,
    pub errors: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub detected: bool,
    pub current_p95_ms: f64,
    pub baseline_p95_ms: f64,
    pub ratio: f64,
    pub threshold_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectorStatus {
    pub received: u64,
    pub dropped: u64,
    pub channel_capacity: usize,
    pub store: StoreStatus,
}

/// What `/metrics/realtime` shows; rebuilt once a second by the collector task.
#[derive(Debug, Clone, Serialize)]
pub struct Realtime {
    pub monitoring_enabled: bool,
    pub scope: &'static str,
    pub instance: String,
    pub timestamp: u64,
    /// Headline figures: the last 10 s of app traffic.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rps: f64,
    pub error_rate_percent: f64,
    pub last_second: Stats,
    pub last_10s: Stats,
    pub last_60s: Stats,
    pub routes: Vec<RouteStats>,
    pub query_kinds: Vec<KindStats>,
    pub series: Vec<Point>,
    pub baseline: Option<Baseline>,
    pub regression: Option<Regression>,
    pub collector: CollectorStatus,
}

const SERIES_POINTS: usize = 300;
/// The window `/metrics/realtime` lists routes and query kinds over.
const ROUTES_WINDOW_SECS: u64 = 60;

struct Live {
    current: LiveBucket,
    ring: VecDeque<Arc<Bucket>>,
    windows: Vec<Rolling>,
    minute: LiveBucket,
    series: VecDeque<Point>,
    baseline_acc: Option<(u64, LiveBucket)>,
    /// Per inbox shard: what each route it interned maps to.
    labels: Vec<Vec<Interned>>,
    /// Cumulative request-duration histograms per (method, route) since start, in the fixed
    /// buckets of `/metrics` (`http_server_request_duration_seconds`). Recorded here, from the
    /// samples the collector takes anyway, so the request path pays nothing for them.
    http: Vec<HttpSeries>,
}

/// One (method, route) a shard interned: its label, whether it is app traffic, and its index
/// in `Live::http`. Resolved once per shard and route, so a sample costs no lookup by name.
struct Interned {
    label: String,
    app: bool,
    series: usize,
}

/// Request durations of one (method, route) since start, per response status.
#[derive(Debug, Clone)]
pub struct HttpSeries {
    pub method: String,
    /// The matched route template; `None` for requests that matched no route.
    pub route: Option<String>,
    /// `(status, durations)`, in order of first appearance (a route sees few statuses).
    pub statuses: Vec<(u16, Counts)>,
}

impl HttpSeries {
    #[inline]
    fn record(&mut self, status: u16, us: u64) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, c)) => c.record_us(us),
            None => {
                let mut c = Counts::default();
                c.record_us(us);
                self.statuses.push((status, c));
            }
        }
    }
}

struct Shared {
    cfg: CollectorConfig,
    /// Paused at run time (`PUT /api/performance/monitoring`): nothing is recorded and no
    /// second is finished, as if monitoring were off, until resumed.
    paused: AtomicBool,
    received: AtomicU64,
    inbox: Inbox,
    live: Mutex<Live>,
    realtime: RwLock<Arc<Realtime>>,
    baseline: BaselineSlot,
    store_status: Arc<RwLock<StoreStatus>>,
}

/// Handle to the collector; cheap to clone, safe to call from the request path.
#[derive(Clone)]
pub struct MetricsCollector {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetricsCollector {
    /// Starts the collector task (none when `cfg.enabled` is false: nothing is recorded, so
    /// nothing needs finishing). `flush` receives every finished second and minute (the Redis
    /// writer); `queries` is the pool's query-time source. The task ends when every handle is gone.
    pub fn start(
        cfg: CollectorConfig,
        flush: Option<mpsc::Sender<FlushItem>>,
        store_status: Arc<RwLock<StoreStatus>>,
        queries: Option<Arc<dyn QueryTimeSource>>,
    ) -> (MetricsCollector, Option<JoinHandle<()>>) {
        let inbox = Inbox::new(if cfg.enabled {
            cfg.channel_capacity.max(1)
        } else {
            1
        });
        let now = unix_now();
        let mut windows: Vec<u64> = vec![10, 60];
        windows.extend(cfg.windows.iter().copied().filter(|w| *w > 0));
        windows.sort_unstable();
        windows.dedup();
        let live = Live {
            current: LiveBucket::new(now, 1),
            ring: VecDeque::new(),
            // The dashboard lists routes over the last minute; every other window is read for
            // its totals and query times.
            windows: windows
                .into_iter()
                .map(|w| Rolling::new(w, w == ROUTES_WINDOW_SECS))
                .collect(),
            minute: LiveBucket::new(now - now % 60, 60),
            series: VecDeque::new(),
            baseline_acc: None,
            labels: Vec::new(),
            http: Vec::new(),
        };
        let shared = Arc::new(Shared {
            realtime: RwLock::new(Arc::new(empty_realtime(&cfg, now))),
            cfg,
            paused: AtomicBool::new(false),
            received: AtomicU64::new(0),
            inbox,
            live: Mutex::new(live),
            baseline: BaselineSlot::default(),
            store_status,
        });
        let handle = shared
            .cfg
            .enabled
            .then(|| tokio::spawn(run(Arc::downgrade(&shared), flush, queries)));
        (MetricsCollector { shared }, handle)
    }

    pub fn enabled(&self) -> bool {
        self.shared.cfg.enabled
    }

    /// Enabled at start-up and not paused now: recording, and finishing every second.
    pub fn active(&self) -> bool {
        self.shared.cfg.enabled && !self.shared.paused.load(Ordering::Relaxed)
    }

    /// Pauses or resumes recording. A paused collector drops samples at the door and skips its
    /// per-second work, so a paused app costs what an unmonitored one does (one flag read per
    /// request): the monitoring-overhead scenario compares the two states inside one process.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    pub fn instance(&self) -> &str {
        &self.shared.cfg.instance
    }

    /// Hands a sample to the collector without waiting: when the buffer is full the sample is
    /// dropped and counted, so the request never pays for monitoring back-pressure.
    pub fn record(&self, sample: Sample) {
        self.push(
            &sample.method,
            sample.route.as_ref(),
            sample.status,
            sample.duration_us,
        );
    }

    /// [`MetricsCollector::record`] without building a [`Sample`] (the request path).
    #[inline]
    pub fn push(&self, method: &Method, route: Option<&MatchedPath>, status: u16, us: u64) {
        if self.active() {
            self.shared.inbox.push(method, route, status, us);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.shared.inbox.dropped()
    }

    /// The latest realtime snapshot (rebuilt every second).
    pub fn realtime(&self) -> Arc<Realtime> {
        self.shared
            .realtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// App-traffic figures over the last `secs` seconds including the current partial second
    /// (fresh data for the alert engine). `secs` must be one of the configured windows, else the
    /// nearest larger one is used.
    pub fn window(&self, secs: u64) -> WindowStats {
        let mut live = lock(&self.shared.live);
        drain(&self.shared, &mut live);
        let w = live
            .windows
            .iter()
            .find(|w| w.secs >= secs)
            .or(live.windows.last());
        let mut overall = w.map_or_else(histogram::new_hist, |w| w.acc.overall.clone());
        histogram::merge(&mut overall, &live.current.overall);
        let errors = w.map_or(0, |w| w.acc.errors) + live.current.errors;
        let mut db = histogram::new_hist();
        if let Some(w) = w {
            for h in w.acc.db.values() {
                histogram::merge(&mut db, h);
            }
        }
        drop(live);
        window_stats(&overall, errors, &db)
    }

    /// Finished seconds held in memory, newest last (local fallback when Redis is away).
    pub fn ring(&self) -> Vec<Arc<Bucket>> {
        lock(&self.shared.live).ring.iter().cloned().collect()
    }

    /// Request-duration histograms per (method, route, status) since start, in the buckets of
    /// `/metrics`, including the samples buffered until now.
    pub fn http_histograms(&self) -> Vec<HttpSeries> {
        let mut live = lock(&self.shared.live);
        drain(&self.shared, &mut live);
        live.http.clone()
    }

    pub fn baseline(&self) -> Option<Baseline> {
        self.shared.baseline.get()
    }

    /// The baseline's slot, for the Redis writer that shares it across instances.
    pub fn baseline_slot(&self) -> BaselineSlot {
        self.shared.baseline.clone()
    }

    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }
}

fn window_stats(overall: &Hist, errors: u64, db: &Hist) -> WindowStats {
    let requests = overall.len();
    WindowStats {
        requests,
        errors,
        error_rate_percent: pct(errors, requests),
        latency: Latency::of(overall),
        db_p95_ms: (!db.is_empty()).then(|| histogram::us_to_ms(db.value_at_quantile(0.95))),
        db_max_ms: (!db.is_empty()).then(|| histogram::us_to_ms(db.max())),
        db_queries: db.len(),
    }
}

/// `part` as a percentage of `whole`, rounded to 2 decimals (0 when `whole` is 0).
pub(super) fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

fn empty_realtime(cfg: &CollectorConfig, now: u64) -> Realtime {
    Realtime {
        monitoring_enabled: cfg.enabled,
        scope: "instance",
        instance: cfg.instance.clone(),
        timestamp: now,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        rps: 0.0,
        error_rate_percent: 0.0,
        last_second: Stats {
            window_seconds: 1,
            ..Stats::default()
        },
        last_10s: Stats {
            window_seconds: 10,
            ..Stats::default()
        },
        last_60s: Stats {
            window_seconds: 60,
            ..Stats::default()
        },
        routes: Vec::new(),
        query_kinds: Vec::new(),
        series: Vec::new(),
        baseline: None,
        regression: None,
        collector: CollectorStatus {
            received: 0,
            dropped: 0,
            channel_capacity: if cfg.enabled { cfg.channel_capacity } else { 0 },
            store: StoreStatus::default(),
        },
    }
}

async fn run(
    shared: Weak<Shared>,
    flush: Option<mpsc::Sender<FlushItem>>,
    queries: Option<Arc<dyn QueryTimeSource>>,
) {
    // Tick on wall-clock second boundaries so every instance's buckets line up. This is the
    // task's only wake-up: samples wait in the inbox until the boundary (or until a reader such
    // as the alert engine drains them), so an idle or busy app pays one wake-up a second.
    let mut tick = second_aligned_interval(
        Duration::from_secs(1),
        tokio::time::MissedTickBehavior::Skip,
    );
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            break;
        };
        if shared.paused.load(Ordering::Relaxed) {
            continue;
        }
        finish_second(&shared, flush.as_ref(), queries.as_deref());
    }
}

/// Moves everything buffered in the inbox into the current bucket (caller holds the live lock).
fn drain(shared: &Shared, live: &mut Live) {
    let mut n = 0u64;
    // Threads that pushed for the first time since the last drain brought new shards.
    let shards = shared.inbox.shards();
    if live.labels.len() < shards {
        live.labels.resize_with(shards, Vec::new);
    }
    for i in 0..shards {
        let known = live.labels[i].len();
        let Some(d) = shared.inbox.drain(i, known) else {
            break;
        };
        let Live {
            current,
            labels,
            http,
            ..
        } = &mut *live;
        let table = &mut labels[i];
        for (method, route) in d.new_routes {
            let route = route.as_ref().map(MatchedPath::as_str);
            let label = format!("{method} {}", route.unwrap_or(crate::middleware::UNMATCHED));
            let app = !is_monitoring_route(&label);
            let series = match http
                .iter()
                .position(|h| h.method == method.as_str() && h.route.as_deref() == route)
            {
                Some(k) => k,
                None => {
                    http.push(HttpSeries {
                        method: method.to_string(),
                        route: route.map(str::to_owned),
                        statuses: Vec::new(),
                    });
                    http.len() - 1
                }
            };
            table.push(Interned { label, app, series });
        }
        n += d.samples.len() as u64;
        // Route by route: one lookup of the route's histogram per drain, not one per sample
        // (a shard sees a handful of routes; a pass over its batch per route is cheaper than
        // a map lookup by label per sample).
        let mut seen = vec![false; table.len()];
        for s in &d.samples {
            if let Some(x) = seen.get_mut(usize::from(s.route)) {
                *x = true;
            }
        }
        for (k, r) in table.iter().enumerate().filter(|(k, _)| seen[*k]) {
            let (route, overall) = current.route_and_overall(&r.label);
            let series = &mut http[r.series];
            let mut errors = 0;
            for s in d.samples.iter().filter(|s| usize::from(s.route) == k) {
                let us = u64::from(s.us);
                histogram::record(&mut route.hist, us);
                if r.app {
                    histogram::record(overall, us);
                }
                errors += u64::from(s.status >= 400);
                series.record(s.status, us);
            }
            route.errors += errors;
            if r.app {
                current.errors += errors;
            }
        }
    }
    shared.received.fetch_add(n, Ordering::Relaxed);
}

fn finish_second(
    shared: &Shared,
    flush: Option<&mpsc::Sender<FlushItem>>,
    queries: Option<&dyn QueryTimeSource>,
) {
    let now = unix_now();
    let cfg = &shared.cfg;
    // Query times of this second, taken before the live lock (the pool has its own locks).
    let db_now = queries.map(QueryTimeSource::take_query_times);
    let mut live = lock(&shared.live);
    drain(shared, &mut live);
    for (kind, h) in db_now.into_iter().flatten() {
        live.current.db.insert(kind.to_owned(), h);
    }
    let start = now.saturating_sub(1);
    let mut cur = std::mem::replace(&mut live.current, LiveBucket::new(now, 1));
    cur.start = start;
    let fin = Arc::new(cur.finish());
    for w in &mut live.windows {
        w.push(&cur, fin.clone());
    }
    live.ring.push_back(fin.clone());
    while live.ring.len() > cfg.ring_secs {
        live.ring.pop_front();
    }
    live.series.push_back(Point {
        t: start,
        rps: fin.count,
        errors: fin.errors,
        p50: fin.latency.p50_ms,
        p95: fin.latency.p95_ms,
        p99: fin.latency.p99_ms,
    });
    while live.series.len() > SERIES_POINTS {
        live.series.pop_front();
    }
    // Minute roll-up: written once the minute is over.
    let minute_start = start - start % 60;
    let mut minute_done = None;
    if live.minute.start != minute_start {
        let m = std::mem::replace(&mut live.minute, LiveBucket::new(minute_start, 60));
        if !m.overall.is_empty() || !m.routes.is_empty() {
            minute_done = Some(Arc::new(m.finish()));
        }
    }
    live.minute.absorb_live(&cur);
    // Baseline: the first `baseline_secs` after the first app request.
    let mut new_baseline = None;
    if (fin.count > 0 || live.baseline_acc.is_some()) && !shared.baseline.is_set() {
        let acc = live
            .baseline_acc
            .get_or_insert_with(|| (start, LiveBucket::new(start, 0)));
        acc.1.absorb_live(&cur);
        if start + 1 >= acc.0 + cfg.baseline_secs && !acc.1.overall.is_empty() {
            let l = Latency::of(&acc.1.overall);
            new_baseline = Some(Baseline {
                p95_ms: l.p95_ms,
                p50_ms: l.p50_ms,
                requests: l.count,
                established_at: now,
                source: "local",
            });
            live.baseline_acc = None;
        }
    }
    let snapshot = build_realtime(shared, &live, &fin, now);
    drop(live);
    if let Some(b) = new_baseline {
        shared.baseline.set_if_absent(b);
    }
    *shared.realtime.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    if let Some(tx) = flush {
        // The writer keeps its own backlog; if even its inbox is full the bucket stays in the
        // in-memory ring and the loss is counted by the writer's status.
        let _ = tx.try_send(FlushItem::Second(fin));
        if let Some(m) = minute_done {
            let _ = tx.try_send(FlushItem::Minute(m));
        }
    }
}

fn stats_of(secs: u64, covered: usize, overall: &Hist, errors: u64) -> Stats {
    let requests = overall.len();
    let span = covered.clamp(1, secs as usize) as f64;
    Stats {
        window_seconds: secs,
        requests,
        errors,
        error_rate_percent: pct(errors, requests),
        rps: (requests as f64 / span * 100.0).round() / 100.0,
        latency_ms: Latency::of(overall),
    }
}

fn build_realtime(shared: &Shared, live: &Live, last: &Bucket, now: u64) -> Realtime {
    let cfg = &shared.cfg;
    let find = |s: u64| live.windows.iter().find(|w| w.secs == s);
    let w10 = find(10);
    let w60 = find(ROUTES_WINDOW_SECS);
    let last_second = Stats {
        window_seconds: 1,
        requests: last.count,
        errors: last.errors,
        error_rate_percent: pct(last.errors, last.count),
        rps: last.count as f64,
        latency_ms: last.latency,
    };
    let empty = histogram::new_hist();
    let last_10s = w10.map_or_else(
        || stats_of(10, 1, &empty, 0),
        |w| stats_of(10, w.covered(), &w.acc.overall, w.acc.errors),
    );
    let last_60s = w60.map_or_else(
        || stats_of(60, 1, &empty, 0),
        |w| stats_of(60, w.covered(), &w.acc.overall, w.acc.errors),
    );
    let covered60 = w60.map_or(1, |w| w.covered().max(1)) as f64;
    let routes = w60
        .map(|w| RouteStats::all_of(&w.acc, covered60))
        .unwrap_or_default();
    let query_kinds = w60.map(|w| KindStats::all_of(&w.acc)).unwrap_or_default();
    let baseline = shared.baseline.get();
    let regression = baseline.as_ref().and_then(|b| {
        (last_60s.requests >= 20 && b.p95_ms > 0.0).then(|| {
            let ratio = (last_60s.latency_ms.p95_ms / b.p95_ms * 100.0).round() / 100.0;
            Regression {
                detected: ratio >= cfg.regression_ratio,
                current_p95_ms: last_60s.latency_ms.p95_ms,
                baseline_p95_ms: b.p95_ms,
                ratio,
                threshold_ratio: cfg.regression_ratio,
            }
        })
    });
    Realtime {
        monitoring_enabled: cfg.enabled,
        scope: "instance",
        instance: cfg.instance.clone(),
        timestamp: now,
        p50_ms: last_10s.latency_ms.p50_ms,
        p95_ms: last_10s.latency_ms.p95_ms,
        p99_ms: last_10s.latency_ms.p99_ms,
        rps: last_10s.rps,
        error_rate_percent: last_10s.error_rate_percent,
        last_second,
        last_10s,
        last_60s,
        routes,
        query_kinds,
        series: live.series.iter().rev().take(120).rev().copied().collect(),
        baseline,
        regression,
        collector: CollectorStatus {
            received: shared.received.load(Ordering::Relaxed),
            dropped: shared.inbox.dropped(),
            channel_capacity: cfg.channel_capacity,
            store: shared
                .store_status
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_reach_the_window_and_full_buffers_drop_without_blocking() {
        let mut cfg = CollectorConfig::new("t".into());
        cfg.channel_capacity = 8;
        let (c, task) = MetricsCollector::start(cfg, None, Arc::default(), None);
        // Flood far beyond capacity synchronously: none of these calls may block.
        for i in 0..10_000u64 {
            c.record(Sample {
                method: Method::GET,
                route: None,
                status: if i % 10 == 0 { 500 } else { 200 },
                duration_us: 1000 + i,
            });
        }
        assert!(c.dropped() > 0, "a full buffer must drop");
        // A reader drains the inbox itself: the window is fresh without waiting for the tick.
        let w = c.window(60);
        assert_eq!(w.requests + c.dropped(), 10_000);
        assert!(w.requests >= 1);
        assert_eq!(w.errors, 1, "the first sample (a 500) is kept");
        assert_eq!(c.received(), w.requests);
        // Room again after the drain.
        let before = c.dropped();
        c.record(Sample {
            method: Method::POST,
            route: None,
            status: 200,
            duration_us: 5,
        });
        assert_eq!(c.dropped(), before);
        assert_eq!(c.window(60).requests, w.requests + 1);
        task.expect("enabled collector has a task").abort();
    }

    #[tokio::test]
    async fn disabled_collector_has_no_task_and_records_nothing() {
        let mut cfg = CollectorConfig::new("t".into());
        cfg.enabled = false;
        let (c, task) = MetricsCollector::start(cfg, None, Arc::default(), None);
        assert!(task.is_none());
        c.record(Sample {
            method: Method::GET,
            route: None,
            status: 200,
            duration_us: 5,
        });
        assert_eq!(c.window(60).requests, 0);
        assert_eq!((c.received(), c.dropped()), (0, 0));
        assert!(!c.realtime().monitoring_enabled);
    }

    #[test]
    fn monitoring_routes_are_recognised() {
        assert!(is_monitoring_route("GET /api/performance/metrics/realtime"));
        assert!(is_monitoring_route("GET /metrics"));
        assert!(!is_monitoring_route("GET /api/users/{id}"));
    }
}

//! The health monitor: a background task that checks the database (round trip), Redis (PING),
//! the pool, the notifiers and performance once a second, scores them, and publishes the result;
//! the HTTP handlers only read the cached report, so they stay fast whatever the checks cost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::score::{self, PoolFacts};
use crate::alerts::rules::Metric;
use crate::alerts::Alerts;
use crate::clock::{second_aligned_interval, unix_ms};
use crate::metrics::collector::MetricsCollector;
use crate::redis_link::RedisLink;

/// A boxed future (probes are object-safe without extra crates).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Database round trip, in milliseconds.
pub trait DbProbe: Send + Sync + 'static {
    fn round_trip(&self) -> BoxFut<'_, Result<f64, String>>;
}

/// Pool facts (size, in use, waiting, timeouts, fallback mode).
pub trait PoolProbe: Send + Sync + 'static {
    fn facts(&self) -> PoolFacts;
}

impl DbProbe for sqlx::PgPool {
    fn round_trip(&self) -> BoxFut<'_, Result<f64, String>> {
        Box::pin(async move {
            let t = Instant::now();
            sqlx::Executor::execute(self, "SELECT 1")
                .await
                .map_err(|e| db_error(&e))?;
            Ok(t.elapsed().as_secs_f64() * 1000.0)
        })
    }
}

/// A database error without connection details.
pub fn db_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => "pool acquire timed out".into(),
        sqlx::Error::Io(_) => "connection failed".into(),
        sqlx::Error::Database(d) => format!("database error {}", d.code().unwrap_or_default()),
        _ => "database unavailable".into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DbHealth {
    pub healthy: bool,
    pub score: u8,
    pub response_time_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisHealth {
    pub configured: bool,
    pub healthy: bool,
    pub score: u8,
    pub response_time_ms: Option<f64>,
    pub error: Option<String>,
    pub metrics_backlog: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolHealth {
    pub healthy: bool,
    pub score: u8,
    pub utilization: f64,
    #[serde(flatten)]
    pub facts: PoolFacts,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerfHealth {
    pub healthy: bool,
    pub score: u8,
    pub p95_latency: f64,
    pub error_rate_percent: f64,
    pub requests_last_60s: u64,
    pub p95_warning_ms: f64,
    pub p95_critical_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotifierHealth {
    pub healthy: bool,
    pub score: u8,
    pub configured: usize,
    pub failures_last_5m: u64,
    pub latest_failed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Services {
    pub database: DbHealth,
    pub redis: RedisHealth,
    pub connection_pool: PoolHealth,
    pub performance: PerfHealth,
    pub notifiers: NotifierHealth,
}

/// `/api/performance/health/status`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub overall_healthy: bool,
    pub composite_score: u8,
    pub services: Services,
    pub weights: serde_json::Value,
    pub insights: Vec<String>,
    pub checked_at_ms: u64,
    pub check_duration_ms: f64,
}

/// Readiness verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    Pass,
    Warn,
    Fail,
}

impl HealthReport {
    /// fail: the database is unreachable; warn: another service unhealthy or the composite
    /// below 70; pass otherwise.
    pub fn readiness(&self) -> Readiness {
        let s = &self.services;
        if !s.database.healthy && s.database.response_time_ms.is_none() {
            Readiness::Fail
        } else if !self.overall_healthy
            || !s.redis.healthy
            || !s.connection_pool.healthy
            || !s.performance.healthy
            || !s.notifiers.healthy
        {
            Readiness::Warn
        } else {
            Readiness::Pass
        }
    }
}

/// What the monitor checks.
pub struct HealthInputs {
    pub db: Option<Arc<dyn DbProbe>>,
    pub pool: Option<Arc<dyn PoolProbe>>,
    pub redis: Option<Arc<RedisLink>>,
    pub collector: MetricsCollector,
    pub alerts: Option<Alerts>,
    pub db_timeout: Duration,
}

/// Handle to the cached report.
#[derive(Clone)]
pub struct HealthMonitor {
    rx: watch::Receiver<Option<Arc<HealthReport>>>,
}

impl HealthMonitor {
    pub fn start(inputs: HealthInputs, interval: Duration) -> (HealthMonitor, JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let h = tokio::spawn(async move {
            // The first check at once (a report from start-up on), the next ones on the second
            // boundaries with the app's other periodic work.
            let mut tick = second_aligned_interval(interval, MissedTickBehavior::Delay);
            let mut last_timeouts: Option<u64> = None;
            loop {
                let report = check(&inputs, &mut last_timeouts).await;
                if tx.send(Some(Arc::new(report))).is_err() {
                    break;
                }
                tick.tick().await;
            }
        });
        (HealthMonitor { rx }, h)
    }

    /// The latest report (None until the first check finished).
    pub fn latest(&self) -> Option<Arc<HealthReport>> {
        self.rx.borrow().clone()
    }

    /// The latest report, waiting at most `limit` for the first one (right after start-up).
    pub async fn wait_first(&self, limit: Duration) -> Option<Arc<HealthReport>> {
        if let Some(r) = self.latest() {
            return Some(r);
        }
        let mut rx = self.rx.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|r| r.is_some())).await;
        self.latest()
    }
}

fn limits(alerts: Option<&Alerts>, metric: Metric, dw: f64, dc: f64) -> (f64, f64) {
    let Some(a) = alerts else { return (dw, dc) };
    let t = a.thresholds(metric);
    let min = |sev: &str| {
        t.iter()
            .filter(|(s, _)| s == sev)
            .map(|(_, v)| *v)
            .fold(f64::INFINITY, f64::min)
    };
    let (w, c) = (min("warning"), min("critical"));
    match (w.is_finite(), c.is_finite()) {
        (true, true) => (w, c.max(w)),
        (true, false) => (w, w * 2.0),
        (false, true) => (c / 2.0, c),
        (false, false) => (dw, dc),
    }
}

async fn check(inp: &HealthInputs, last_timeouts: &mut Option<u64>) -> HealthReport {
    let started = Instant::now();
    let db_fut = async {
        match &inp.db {
            Some(db) => match tokio::time::timeout(inp.db_timeout, db.round_trip()).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer within {} ms",
                    inp.db_timeout.as_millis()
                )),
            },
            None => Err("not configured".into()),
        }
    };
    let redis_fut = async {
        match &inp.redis {
            // As for the database: the kind of failure in the output, the text in the log.
            Some(r) => r.ping().await.map_err(|e| {
                tracing::warn!(error = %e, "health check: redis ping failed");
                e.reason().to_owned()
            }),
            None => Err("not configured".into()),
        }
    };
    let (db, redis) = tokio::join!(db_fut, redis_fut);

    let db_score = score::round_trip_score(db.as_ref().ok().copied());
    let database = DbHealth {
        healthy: db_score >= score::HEALTHY_SCORE,
        score: db_score,
        response_time_ms: db.as_ref().ok().map(|v| (v * 100.0).round() / 100.0),
        error: db.err(),
    };
    let rt = inp.collector.realtime();
    // Without REDIS_URL there is no Redis to judge: full marks, left out of the composite.
    let redis_configured = inp.redis.is_some();
    let r_score = if redis_configured {
        score::round_trip_score(redis.as_ref().ok().copied())
    } else {
        100
    };
    let redis = RedisHealth {
        configured: redis_configured,
        healthy: r_score >= score::HEALTHY_SCORE,
        score: r_score,
        response_time_ms: redis.as_ref().ok().map(|v| (v * 100.0).round() / 100.0),
        error: redis.err().filter(|_| redis_configured),
        metrics_backlog: rt.collector.store.backlog,
    };
    let facts = inp.pool.as_ref().map(|p| p.facts()).unwrap_or_default();
    let new_timeouts = last_timeouts.map_or(0, |l| facts.acquire_timeouts_total.saturating_sub(l));
    *last_timeouts = Some(facts.acquire_timeouts_total);
    let p_score = if inp.pool.is_some() {
        score::pool_score(&facts, new_timeouts)
    } else {
        db_score
    };
    let connection_pool = PoolHealth {
        healthy: p_score >= score::HEALTHY_SCORE,
        score: p_score,
        utilization: facts.utilization_percent(),
        facts,
    };
    let w = inp.collector.window(60);
    let (pw, pc) = limits(inp.alerts.as_ref(), Metric::RequestP95, 1000.0, 2000.0);
    let (ew, ec) = limits(inp.alerts.as_ref(), Metric::ErrorRate, 5.0, 10.0);
    let perf_score = if w.requests == 0 {
        100
    } else {
        score::threshold_score(w.latency.p95_ms, pw, pc).min(score::threshold_score(
            w.error_rate_percent,
            ew,
            ec,
        ))
    };
    let performance = PerfHealth {
        healthy: perf_score >= score::HEALTHY_SCORE,
        score: perf_score,
        p95_latency: w.latency.p95_ms,
        error_rate_percent: w.error_rate_percent,
        requests_last_60s: w.requests,
        p95_warning_ms: pw,
        p95_critical_ms: pc,
    };
    let now = unix_ms();
    let ds = inp.alerts.as_ref().map(|a| a.dispatch_status());
    let (configured, failures, latest_failed) = ds.as_ref().map_or((0, 0, false), |d| {
        let recent: Vec<_> = d
            .recent
            .iter()
            .filter(|x| now.saturating_sub(x.at_ms) <= 300_000)
            .collect();
        let failures = recent.iter().filter(|x| !x.ok).count() as u64;
        let latest_failed = d.recent.last().is_some_and(|x| !x.ok);
        (d.channels.len(), failures, latest_failed)
    });
    let n_score = score::notifier_score(failures > 0, latest_failed);
    let notifiers = NotifierHealth {
        healthy: n_score >= score::HEALTHY_SCORE,
        score: n_score,
        configured,
        failures_last_5m: failures,
        latest_failed,
    };
    let mut scores = vec![
        ("database", database.score),
        ("performance", performance.score),
        ("connection_pool", connection_pool.score),
        ("notifiers", notifiers.score),
    ];
    if redis_configured {
        scores.push(("redis", redis.score));
    }
    let composite = score::composite(&scores);
    let services = Services {
        database,
        redis,
        connection_pool,
        performance,
        notifiers,
    };
    let insights = insights(&services, composite, &rt);
    HealthReport {
        overall_healthy: services.database.healthy && composite >= score::OVERALL_HEALTHY_SCORE,
        composite_score: composite,
        weights: serde_json::Value::Object(
            score::WEIGHTS
                .iter()
                .map(|(n, w)| (n.to_string(), serde_json::json!(w)))
                .collect(),
        ),
        services,
        insights,
        checked_at_ms: now,
        check_duration_ms: (started.elapsed().as_secs_f64() * 1e5).round() / 100.0,
    }
}

/// Recommendations derived from the figures.
fn insights(s: &Services, composite: u8, rt: &crate::metrics::collector::Realtime) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(e) = &s.database.error {
        v.push(format!("Database unreachable ({e}): requests needing the database fail; check the server and DATABASE_URL."));
    } else if let Some(t) = s.database.response_time_ms {
        if t > 50.0 {
            v.push(format!("Database round trip is {t:.1} ms (over 50 ms): look for slow queries, locks or an overloaded server."));
        }
    }
    if s.redis.error.is_some() {
        v.push(format!(
            "Redis unreachable: the cache is bypassed and metrics wait in memory ({} buckets queued); they are written when Redis returns.",
            s.redis.metrics_backlog
        ));
    }
    let p = &s.connection_pool;
    if p.facts.fallback_mode {
        v.push("The pool is in fallback mode (direct connections): expect higher latency until the pool recovers.".into());
    }
    if p.utilization >= 80.0 {
        v.push(format!(
            "Pool utilization is {:.0} % of {} connections: consider raising DATABASE_POOL_SIZE or shortening transactions.",
            p.utilization, p.facts.max
        ));
    } else if p.facts.max > 0
        && p.utilization < 10.0
        && p.facts.size > p.facts.max / 2
        && rt.last_60s.requests > 0
    {
        v.push(format!(
            "Pool utilization is only {:.0} % with {} open connections: DATABASE_POOL_MIN could be lowered.",
            p.utilization, p.facts.size
        ));
    }
    if p.facts.waiting > 0 {
        v.push(format!(
            "{} requests are waiting for a connection: the pool is saturated.",
            p.facts.waiting
        ));
    }
    let perf = &s.performance;
    if perf.requests_last_60s > 0 && perf.p95_latency >= perf.p95_warning_ms {
        v.push(format!(
            "P95 latency {:.0} ms is over the {:.0} ms warning threshold: see the slowest routes in /api/performance/metrics/realtime.",
            perf.p95_latency, perf.p95_warning_ms
        ));
    }
    if perf.error_rate_percent >= 1.0 {
        v.push(format!(
            "Error rate is {:.1} % over the last minute.",
            perf.error_rate_percent
        ));
    }
    if let Some(r) = &rt.regression {
        if r.detected {
            v.push(format!(
                "P95 regression: {:.1} ms now vs a {:.1} ms baseline (×{:.2}).",
                r.current_p95_ms, r.baseline_p95_ms, r.ratio
            ));
        }
    }
    if rt.collector.dropped > 0 {
        v.push(format!(
            "{} request samples were dropped by the metrics buffer (collector overloaded).",
            rt.collector.dropped
        ));
    }
    if s.notifiers.latest_failed {
        v.push(
            "The latest alert notification failed: check the Slack webhook and the Resend key."
                .into(),
        );
    }
    if v.is_empty() {
        v.push(format!(
            "All systems nominal (composite score {composite})."
        ));
    }
    v
}

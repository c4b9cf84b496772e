//! The database layer: a sqlx `PgPool` (or a connection per acquisition when pooling is off) with the
//! statistics of SPEC §3 and graceful degradation to direct connections when the pool fails.
//!
//! Modes ([`PoolMode`]): `pooled` normally; `unpooled` when `ENABLE_CONNECTION_POOLING=false`;
//! `fallback` after the pool could not be built or `DATABASE_FALLBACK_AFTER_ERRORS` consecutive
//! acquisitions/queries failed at the connection level. In fallback each acquisition opens a direct
//! connection (retries with exponential backoff and growing timeouts, see [`direct`]), at most
//! `DATABASE_FALLBACK_MAX_CONNECTIONS` at once, while a probe task builds a fresh pool and switches
//! back once it answers.
//!
//! Overload is not a failure: an acquisition that times out while every connection of a full pool
//! is in use is [`DbError::Exhausted`] (503 `pool exhausted`) and leaves the mode alone. Counting
//! it toward fallback turned a saturated pool into a storm of uncapped direct connections.

mod conn;
mod direct;
mod otel;
mod probe;
mod statement;
mod stats;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;

pub use conn::DbConn;
pub use otel::PoolMetrics;
pub use statement::{Param, Statement};
pub use stats::{
    health_score, ClosedByReason, HealthInputs, LatencySummary, PoolMode, PoolStats,
    PoolStatsSnapshot, QueryKind, QueryTimes,
};

use crate::config::Config;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had at the connection level (connect failure, timeout opening one).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Every connection the layer may open was in use for the whole acquire timeout: overload.
    #[error("pool exhausted: every connection stayed in use for the acquire timeout")]
    Exhausted,
    /// A statement failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

impl DbError {
    /// What went wrong, without the driver's text (which can name users, hosts and databases):
    /// safe for unauthenticated endpoints such as `/readyz`.
    pub fn reason(&self) -> &'static str {
        match self {
            DbError::Unavailable(_) => "database unreachable",
            DbError::Exhausted => "pool exhausted",
            DbError::Query(_) => "query failed",
        }
    }
}

/// Settings of the pool layer, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub pooling: bool,
    pub max: u32,
    pub min: u32,
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    pub fallback_after_errors: u32,
    /// Direct connections open at once in fallback mode (`DATABASE_FALLBACK_MAX_CONNECTIONS`).
    pub fallback_max: u32,
    pub idle_ping_after: Duration,
    /// `DATABASE_PREPARED_STATEMENTS`: see [`Statement`].
    pub prepared_statements: bool,
}

impl DbSettings {
    pub fn from_config(c: &Config) -> Self {
        Self {
            pooling: c.pooling,
            max: c.pool_size,
            min: c.pool_min,
            acquire_timeout: c.acquire_timeout,
            connect_timeout: c.connect_timeout,
            fallback_after_errors: c.fallback_after_errors,
            fallback_max: c.fallback_max_connections,
            idle_ping_after: c.idle_ping_after,
            prepared_statements: c.prepared_statements,
        }
    }
}

/// Handle to the database layer; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("mode", &self.mode()).finish()
    }
}

pub(crate) struct DbInner {
    pub(crate) settings: DbSettings,
    pub(crate) connect_options: PgConnectOptions,
    pool: RwLock<Option<PgPool>>,
    mode: AtomicU8,
    pub(crate) stats: Arc<PoolStats>,
    probe_running: AtomicBool,
    /// Woken by a direct connection that succeeded in fallback mode: the database answers
    /// again, so the probe tries the pool now instead of at the end of its backoff (up to 5 s).
    pub(crate) probe_wake: tokio::sync::Notify,
    /// Caps fallback's direct connections, so that fallback never opens more than the pool would.
    pub(crate) fallback_permits: Arc<tokio::sync::Semaphore>,
}

impl Db {
    /// Builds the layer. Never fails on an unreachable database: pooled mode then starts in fallback.
    pub async fn new(database_url: &str, settings: DbSettings) -> Result<Self, DbError> {
        let connect_options = PgConnectOptions::from_str(database_url)
            .map_err(|e| {
                DbError::Unavailable(format!(
                    "bad database URL: {}",
                    crate::config::redact_url(&e.to_string())
                ))
            })?
            .application_name("pooled-app")
            .disable_statement_logging();
        // Without prepared statements nothing may be cached under a name either.
        let connect_options = if settings.prepared_statements {
            connect_options
        } else {
            connect_options.statement_cache_capacity(0)
        };
        let settings_fallback_max = settings.fallback_max;
        let initial = if settings.pooling {
            PoolMode::Pooled
        } else {
            PoolMode::Unpooled
        };
        let db = Db {
            inner: Arc::new(DbInner {
                settings,
                connect_options,
                pool: RwLock::new(None),
                mode: AtomicU8::new(initial.as_u8()),
                stats: Arc::new(PoolStats::default()),
                probe_running: AtomicBool::new(false),
                probe_wake: tokio::sync::Notify::new(),
                fallback_permits: Arc::new(tokio::sync::Semaphore::new(
                    settings_fallback_max as usize,
                )),
            }),
        };
        if db.inner.settings.pooling {
            match db.inner.build_pool().await {
                Ok(pool) => {
                    db.inner.set_pool(pool);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "connection pool could not be built; starting in fallback mode");
                    db.inner.enter_fallback();
                }
            }
        }
        db.ensure_probe();
        Ok(db)
    }

    pub fn mode(&self) -> PoolMode {
        self.inner.mode()
    }

    /// `DATABASE_CONNECT_TIMEOUT_MS`.
    pub fn connect_timeout(&self) -> Duration {
        self.inner.settings.connect_timeout
    }

    /// The live counters (histograms can be cloned from there).
    pub fn stats_handle(&self) -> Arc<PoolStats> {
        self.inner.stats.clone()
    }

    /// The pool's OpenTelemetry `db.client.*` metrics for `/metrics`.
    pub fn metrics(&self) -> PoolMetrics {
        PoolMetrics::new(self.clone())
    }

    /// Everything `/api/performance/pool` shows.
    pub fn stats(&self) -> PoolStatsSnapshot {
        self.inner.stats.snapshot(self.gauges())
    }

    /// The pool's current shape, without the latency summaries of [`Db::stats`] (the health
    /// monitor reads this every second; summarizing six large histograms is not free).
    pub(crate) fn gauges(&self) -> stats::Gauges {
        let s = &self.inner.settings;
        let pool = self.inner.pool();
        let pool_size_actual = pool.as_ref().map_or(0, PgPool::size);
        let (size, idle) = match pool {
            Some(p) if self.mode() == PoolMode::Pooled => {
                (p.size(), u32::try_from(p.num_idle()).unwrap_or(u32::MAX))
            }
            _ => (0, 0),
        };
        let (max, min) = if s.pooling { (s.max, s.min) } else { (0, 0) };
        stats::Gauges {
            mode: self.mode(),
            pooling_enabled: s.pooling,
            size,
            idle,
            max,
            min,
            pool_size_actual,
        }
    }

    /// A connection for one unit of work: pooled, or a new direct connection (unpooled and fallback).
    pub async fn acquire(&self) -> Result<DbConn, DbError> {
        match self.mode() {
            PoolMode::Pooled => match self.inner.pool() {
                Some(pool) => self.acquire_pooled(pool).await,
                None => {
                    self.inner.enter_fallback_arc();
                    direct::acquire_with_backoff(&self.inner).await
                }
            },
            PoolMode::Unpooled => direct::acquire_once(&self.inner).await,
            PoolMode::Fallback => direct::acquire_with_backoff(&self.inner).await,
        }
    }

    async fn acquire_pooled(&self, pool: PgPool) -> Result<DbConn, DbError> {
        let stats = &self.inner.stats;
        let waiting = Waiting::enter(&stats.waiting);
        let start = Instant::now();
        let acquire = tokio::time::timeout(self.inner.settings.acquire_timeout, pool.acquire());
        let result = match acquire.await {
            Ok(r) => r,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        };
        let waited = start.elapsed();
        drop(waiting);
        match result {
            Ok(c) => {
                stats.acquisitions.fetch_add(1, Ordering::Relaxed);
                stats.record_acquire_wait(waited);
                self.inner.on_success();
                Ok(DbConn::pooled(c, self.inner.clone()))
            }
            Err(sqlx::Error::PoolTimedOut) => {
                stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
                if self.timeout_was_overload(&pool).await {
                    stats.exhausted.fetch_add(1, Ordering::Relaxed);
                    Err(DbError::Exhausted)
                } else {
                    self.inner.on_failure();
                    Err(DbError::Unavailable(
                        "pool acquire timed out and Postgres does not accept connections".into(),
                    ))
                }
            }
            Err(e) => {
                stats.acquire_errors.fetch_add(1, Ordering::Relaxed);
                self.inner.on_failure();
                Err(DbError::Unavailable(e.to_string()))
            }
        }
    }

    /// Whether an acquire timeout was overload (answered `pool exhausted`, never a step toward
    /// fallback) rather than a database that cannot be reached: overload when every connection
    /// of a full pool was in use, or when the pool had room to open one and a direct connect
    /// gets through. sqlx retries a refused connect until the acquire timeout, so a timeout
    /// alone cannot tell a dead database from a busy pool, and a pool below its size also
    /// happens under load, while it opens or replaces connections. The check connect holds a
    /// fallback permit, so it never takes Postgres past the pool size plus the cap.
    async fn timeout_was_overload(&self, pool: &PgPool) -> bool {
        let inner = &self.inner;
        if pool.size() >= inner.settings.max {
            return true;
        }
        direct::reachable(inner).await
    }
    /// Round trip `SELECT 1` through the normal acquire path; returns its duration.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let start = Instant::now();
        let mut conn = self.acquire().await?;
        let t = Instant::now();
        // A simple query: one round trip, and nothing prepared (a transaction-pooling PgBouncer
        // may be in between).
        let r = sqlx::Executor::execute(conn.as_mut(), "SELECT 1").await;
        conn.finish(QueryKind::Select, t, r)?;
        Ok(start.elapsed())
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(&self) {
        if let Some(pool) = self.inner.pool() {
            pool.close().await;
        }
    }
}

/// One task counted in the `waiting` gauge for as long as it lives. A guard rather than a
/// decrement after the `await`: an acquisition can be cancelled there (a client that went away,
/// the health check's timeout), and a cancelled one used to stay counted forever, lowering the
/// pool's health score after every database fault.
struct Waiting<'a>(&'a AtomicI64);

impl<'a> Waiting<'a> {
    fn enter(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DbInner {
    fn mode(&self) -> PoolMode {
        PoolMode::from_u8(self.mode.load(Ordering::Acquire))
    }

    fn pool(&self) -> Option<PgPool> {
        self.pool.read().ok().and_then(|g| g.clone())
    }

    /// Installs `pool` and returns the one it replaced.
    fn set_pool(&self, pool: PgPool) -> Option<PgPool> {
        match self.pool.write() {
            Ok(mut g) => g.replace(pool),
            Err(poisoned) => poisoned.into_inner().replace(pool),
        }
    }

    pub(crate) async fn build_pool(self: &Arc<Self>) -> Result<PgPool, sqlx::Error> {
        let s = &self.settings;
        let stats_connect = self.stats.clone();
        // Weak: the pool lives inside the layer, which must not keep itself alive.
        let layer = Arc::downgrade(self);
        let idle_ping_after = s.idle_ping_after;
        let options = PgPoolOptions::new()
            .max_connections(s.max)
            .min_connections(s.min)
            .acquire_timeout(s.connect_timeout.max(s.acquire_timeout))
            // A ping on every acquire costs a round trip; like HikariCP, only connections idle for a
            // while are checked (before_acquire below).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let layer = layer.clone();
                Box::pin(async move {
                    if meta.idle_for >= idle_ping_after {
                        if let Err(e) = sqlx::Connection::ping(conn).await {
                            // A connection-level failure like a broken query: it counts toward
                            // fallback (sqlx then opens a new connection, whose refusal would
                            // only show as a timeout).
                            if let Some(layer) = layer.upgrade() {
                                layer.stats.closed_broken.fetch_add(1, Ordering::Relaxed);
                                layer.on_failure();
                            }
                            return Err(e);
                        }
                    }
                    Ok(true)
                })
            })
            .after_connect(move |_conn, _meta| {
                stats_connect.pool_opened.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(()) })
            });
        // sqlx's own acquire timeout also bounds the connects an acquisition makes, including
        // the pool's first fill, and cancels them when it expires: with a strict acquire timeout
        // of a few ms (a tight latency budget, an overload test) and connects slower than that,
        // the pool never got a connection and the app stayed in fallback. So the pool gets the
        // connect timeout as its own, fills to its minimum within it here, and `acquire_pooled`
        // applies the configured acquire timeout around each acquisition.
        let connect = options.connect_with(self.connect_options.clone());
        match tokio::time::timeout(s.connect_timeout.max(s.acquire_timeout), connect).await {
            Ok(r) => r,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    pub(crate) fn on_success(&self) {
        if self.stats.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.stats.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a connection-level failure; enough in a row switch pooled mode to fallback.
    pub(crate) fn on_failure(self: &Arc<Self>) {
        self.stats.mark_failure_time();
        let n = self
            .stats
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if self.mode() == PoolMode::Pooled && n >= self.settings.fallback_after_errors {
            tracing::warn!(
                consecutive_failures = n,
                "pool acquisitions keep failing; switching to fallback mode"
            );
            self.enter_fallback_arc();
        }
    }

    fn enter_fallback(&self) {
        // Only called where no Arc is at hand yet (start-up); the probe is started by `Db` right after.
        if self.mode.swap(PoolMode::Fallback.as_u8(), Ordering::AcqRel)
            != PoolMode::Fallback.as_u8()
        {
            self.stats
                .fallback_activations
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enter_fallback_arc(self: &Arc<Self>) {
        if self.settings.pooling
            && self
                .mode
                .compare_exchange(
                    PoolMode::Pooled.as_u8(),
                    PoolMode::Fallback.as_u8(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            self.stats
                .fallback_activations
                .fetch_add(1, Ordering::Relaxed);
        }
        self.start_probe();
    }

    /// Starts the background probe unless one runs already.
    pub(crate) fn start_probe(self: &Arc<Self>) {
        if self.probe_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            probe::run(&inner).await;
            inner.probe_running.store(false, Ordering::Release);
        });
    }

    /// Called by the probe with a fresh, answering pool: install it and return to pooled mode.
    pub(crate) fn recover(&self, pool: PgPool) {
        if let Some(old) = self.set_pool(pool) {
            self.stats
                .closed_pool_replaced
                .fetch_add(u64::from(old.size()), Ordering::Relaxed);
            tokio::spawn(async move { old.close().await });
        }
        self.stats.consecutive_failures.store(0, Ordering::Relaxed);
        self.stats.recoveries.fetch_add(1, Ordering::Relaxed);
        self.mode.store(PoolMode::Pooled.as_u8(), Ordering::Release);
        tracing::info!("connection pool healthy again; back to pooled mode");
    }
}

impl Db {
    /// Starts the fallback probe if the layer came up in fallback mode (needs a runtime, hence not in `new`'s
    /// error path).
    pub(crate) fn ensure_probe(&self) {
        if self.mode() == PoolMode::Fallback {
            self.inner.start_probe();
        }
    }
}

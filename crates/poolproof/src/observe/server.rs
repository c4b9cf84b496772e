//! Server-side samples: what the run's sampler reads from the app's monitoring endpoints
//! once a second per instance.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pool statistics as `/api/performance/pool` reports them (field meanings follow the app's
/// `PoolStatsSnapshot`; percentages are 0–100, durations in ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    /// Pool mode as the app names it (e.g. `pooled`, `fallback`, `unpooled`).
    pub mode: String,
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    pub waiting: u32,
    pub max: u32,
    /// in use / max, percent (app field `utilization_percent`).
    pub utilization_percent: f64,
    /// 1 − connections opened / acquisitions since app start, percent
    /// (app field `pool_efficiency_percent`).
    pub efficiency_percent: f64,
    /// Cumulative successful acquisitions: with `connections_opened` this gives the efficiency
    /// of any phase from the difference between two samples.
    pub acquisitions: u64,
    /// Cumulative physical connections opened.
    pub connections_opened: u64,
    pub acquire_timeouts: u64,
    /// Cumulative switches to fallback mode (app field `fallback_activations`).
    #[serde(default)]
    pub fallback_activations: u64,
    /// p95 of the wait inside `acquire` since app start, ms (app field `acquire_wait.p95_us` / 1000).
    pub acquire_wait_p95_ms: f64,
    /// Mean wait inside `acquire` (pooled) or connect time (unpooled) since app start, ms
    /// (app field `acquire_wait.mean_us` / 1000). With `acquisitions` it gives the total
    /// time spent getting connections, hence the connection overhead of any phase.
    #[serde(default)]
    pub acquire_wait_mean_ms: f64,
    /// The pool's own 0–100 health score.
    pub health_score: f64,
}

/// One sample of one app instance, taken at `t` seconds from the start of measured load.
/// A field is `None` when its endpoint did not answer in time (e.g. during a fault).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    pub t: f64,
    /// Index of the app instance (0-based).
    pub instance: usize,
    pub pool: Option<PoolStats>,
    /// Composite 0–100 score from `/api/performance/health/status` (`composite_score`).
    pub health_score: Option<f64>,
    /// Server-side request p95 in ms from `/api/performance/metrics/realtime`.
    pub server_p95_ms: Option<f64>,
    /// Server-side p95 in ms per route from the same endpoint (`routes[].latency_ms.p95_ms`),
    /// keyed by the app's route template (e.g. `/api/users/{id}`).
    #[serde(default)]
    pub route_p95_ms: BTreeMap<String, f64>,
    /// Server-side requests per second from the same endpoint, when it reports them.
    pub server_rps: Option<f64>,
    /// The app's degradation mode as reported (`pooled`, `fallback`, ...).
    pub mode: Option<String>,
    /// Endpoints that failed for this sample, one short line each (no secrets).
    pub errors: Vec<String>,
}

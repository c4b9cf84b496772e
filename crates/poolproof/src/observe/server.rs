//! Server-side samples: what the run's sampler reads once a second from each app instance
//! (pooled-app's JSON API, the app's Prometheus `/metrics`) and from the database.

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
    /// The OpenTelemetry pool metrics of the app's `/metrics` (`prometheus` source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel: Option<OtelPool>,
    /// `http_server_request_duration_seconds` by route (`METHOD /route`), cumulative since
    /// the app started (`prometheus` source).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http: BTreeMap<String, PromHistogram>,
}

/// The OpenTelemetry connection-pool metrics of one scrape, summed over the instance's pools;
/// `None` where the app does not expose the name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OtelPool {
    /// `db_client_connection_count{db_client_connection_state="used"}`
    pub used: Option<f64>,
    /// `db_client_connection_count{db_client_connection_state="idle"}`
    pub idle: Option<f64>,
    /// `db_client_connection_max`
    pub max: Option<f64>,
    /// `db_client_connection_pending_requests`
    pub pending: Option<f64>,
    /// `db_client_connection_timeouts_total` (cumulative)
    pub timeouts: Option<f64>,
    /// `db_client_connection_wait_time` histogram, seconds (cumulative)
    pub wait: Option<PromHistogram>,
}

/// A Prometheus histogram: cumulative bucket counts by upper bound (`le`, ascending, the last
/// `+Inf`), with its `_count` and `_sum`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromHistogram {
    /// (upper bound, cumulative count), ascending.
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl PromHistogram {
    /// What was observed between `earlier` and `self` (both cumulative, from one process):
    /// bucket by bucket, never below zero (a restarted app resets its counters).
    pub fn since(&self, earlier: &PromHistogram) -> PromHistogram {
        let before = |le: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c)
        };
        PromHistogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, (c - before(*le)).max(0.0)))
                .collect(),
            count: (self.count - earlier.count).max(0.0),
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// Adds another histogram's counts (same bucket bounds; a bound only one side has is
    /// kept as it is).
    pub fn add(&mut self, other: &PromHistogram) {
        for (le, c) in &other.buckets {
            match self.buckets.iter_mut().find(|(b, _)| b == le) {
                Some(slot) => slot.1 += c,
                None => self.buckets.push((*le, *c)),
            }
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Observations counted (the `+Inf` bucket, else `_count`).
    pub fn total(&self) -> f64 {
        self.buckets.last().map_or(self.count, |(_, c)| *c)
    }

    /// The q-quantile as Prometheus' `histogram_quantile` estimates it: linear within the
    /// bucket that holds rank q × total, from its lower bound (0 for the first); a rank in
    /// the `+Inf` bucket gives the highest finite bound. `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 || !q.is_finite() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower = 0.0;
        let mut below = 0.0;
        for (le, c) in &self.buckets {
            if *c >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let in_bucket = c - below;
                let frac = if in_bucket > 0.0 {
                    (rank - below) / in_bucket
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * frac);
            }
            lower = if le.is_finite() { *le } else { lower };
            below = *c;
        }
        Some(lower)
    }
}

/// One sample of the database (`postgres` source), at `t` seconds from the start of measured
/// load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DbSample {
    pub t: f64,
    /// `pg_stat_database.sessions` of the app's database (cumulative), less the sessions the
    /// sampler itself opened after its first.
    pub sessions: Option<u64>,
    /// Client connections to the database in `pg_stat_activity`, the sampler's own excepted.
    pub connections: Option<u64>,
    /// Why this sample has no figures (one short line, no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One sample of PgBouncer's admin console (`pgbouncer` source), at `t` seconds from the start
/// of measured load: `SHOW POOLS` summed over the pools of the app's database, `SHOW STATS`
/// of that database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PgbouncerSample {
    pub t: f64,
    /// Clients that hold or are running on a server connection (`cl_active`).
    pub clients_active: Option<u64>,
    /// Clients waiting for a server connection (`cl_waiting`).
    pub clients_waiting: Option<u64>,
    /// Server connections open to Postgres: `sv_active + sv_idle + sv_used + sv_tested +
    /// sv_login`.
    pub server_connections: Option<u64>,
    /// Server connections linked to a client now (`sv_active`).
    pub server_active: Option<u64>,
    /// How long the oldest waiting client has waited, ms (`maxwait` + `maxwait_us`).
    pub max_wait_ms: Option<f64>,
    /// Transactions pooled so far (`total_xact_count`, cumulative).
    pub xact_count: Option<u64>,
    /// Time clients spent waiting for a server so far, µs (`total_wait_time`, cumulative).
    pub wait_time_us: Option<u64>,
    /// PgBouncer's own per-second average wait over its last stats period, µs
    /// (`avg_wait_time`).
    pub avg_wait_us: Option<u64>,
    /// Why this sample has no figures (one short line, no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::PromHistogram;

    fn h(buckets: &[(f64, f64)]) -> PromHistogram {
        PromHistogram {
            buckets: buckets.to_vec(),
            count: buckets.last().map_or(0.0, |b| b.1),
            sum: 0.0,
        }
    }

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        let x = h(&[(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)]);
        assert_eq!(x.quantile(0.5), Some(0.1));
        assert!((x.quantile(0.75).unwrap() - 0.15).abs() < 1e-12);
        // Ranks in the +Inf bucket give the highest finite bound.
        let tail = h(&[(0.1, 10.0), (f64::INFINITY, 100.0)]);
        assert_eq!(tail.quantile(0.95), Some(0.1));
        assert_eq!(h(&[]).quantile(0.95), None);
    }

    #[test]
    fn differences_and_sums_of_cumulative_histograms() {
        let a = h(&[(0.1, 5.0), (f64::INFINITY, 6.0)]);
        let b = h(&[(0.1, 15.0), (f64::INFINITY, 26.0)]);
        let d = b.since(&a);
        assert_eq!(d.buckets, vec![(0.1, 10.0), (f64::INFINITY, 20.0)]);
        let mut total = d.clone();
        total.add(&d);
        assert_eq!(total.buckets, vec![(0.1, 20.0), (f64::INFINITY, 40.0)]);
        assert_eq!(total.total(), 40.0);
        // A restarted app's counters go back: never a negative count.
        assert_eq!(a.since(&b).total(), 0.0);
    }
}

//! Dashboard API: `/api/performance/{metrics/realtime, metrics/summary, health/status,
//! alerts/active, alerts/silences, dashboard}`, Prometheus `/metrics`, `/healthz`, `/readyz` and the dashboard
//! page, sharing one [`Monitoring`] state. Behind a bearer token when one is configured.

pub mod auth;
pub mod handlers;
pub mod page;
pub mod prometheus;
pub mod silences;

use std::sync::Arc;

use axum::routing::{delete, get};
use axum::Router;

use crate::alerts::Alerts;
use crate::health::{HealthMonitor, PoolProbe};
use crate::metrics::MetricsCollector;
use crate::redis_link::RedisLink;

/// Everything the monitoring endpoints read.
#[derive(Clone)]
pub struct Monitoring {
    pub enabled: bool,
    pub collector: MetricsCollector,
    pub alerts: Option<Alerts>,
    pub health: HealthMonitor,
    pub redis: Option<Arc<RedisLink>>,
    pub pool: Option<Arc<dyn PoolProbe>>,
    /// The pool's query times as the collector takes them (paused with it).
    pub queries: Option<Arc<dyn crate::metrics::QueryTimeSource>>,
    /// The pool's own `/pool` answer (app-data), embedded in `/dashboard`.
    pub pool_json: Option<Arc<dyn Fn() -> serde_json::Value + Send + Sync>>,
    /// The pool's `db_client_*` families for `/metrics`.
    pub pool_metrics: Option<Arc<dyn prometheus_client::collector::Collector>>,
    pub token: Option<Arc<str>>,
    pub retention_hours: f64,
    pub summary_cache: Arc<handlers::SummaryCache>,
    /// An extra readiness condition from the app (e.g. migrations applied): `Some(reason)` fails.
    pub ready_check: Option<Arc<dyn Fn() -> Option<String> + Send + Sync>>,
}

impl Monitoring {
    /// Monitoring runs now: enabled at start-up and not paused. A paused app answers its
    /// monitoring endpoints as an unmonitored one does.
    pub fn active(&self) -> bool {
        self.enabled && self.collector.active()
    }

    /// Pauses or resumes the collector (and with it the alert evaluation, which reads it) and
    /// the pool's per-second query times. Health checks go on: an unmonitored app runs them too.
    pub fn set_paused(&self, paused: bool) {
        self.collector.set_paused(paused);
        if let Some(q) = &self.queries {
            q.pause_query_times(paused);
        }
    }
}

/// The monitoring routes, ready to merge into the app's router.
pub fn router<S: Clone + Send + Sync + 'static>(m: Monitoring) -> Router<S> {
    let token = m.token.clone();
    let guarded = Router::new()
        .route("/api/performance/metrics/realtime", get(handlers::realtime))
        .route("/api/performance/metrics/summary", get(handlers::summary))
        .route(
            "/api/performance/health/status",
            get(handlers::health_status),
        )
        .route(
            "/api/performance/alerts/active",
            get(handlers::alerts_active),
        )
        .route(
            "/api/performance/alerts/silences",
            get(silences::list).post(silences::create),
        )
        .route(
            "/api/performance/alerts/silences/{id}",
            delete(silences::remove),
        )
        .route("/api/performance/dashboard", get(handlers::dashboard))
        .route(
            "/api/performance/monitoring",
            get(handlers::monitoring_state).put(handlers::set_monitoring),
        )
        .route("/metrics", get(handlers::prometheus))
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    let open = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/dashboard", get(page::page))
        .route("/dashboard/app.js", get(page::script))
        .route("/dashboard/app.css", get(page::style));
    guarded.merge(open).with_state(m)
}

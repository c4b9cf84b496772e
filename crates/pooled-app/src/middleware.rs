//! Request instrumentation: one [`RequestRecord`] per request, handed to the attached observers,
//! one JSON log line, and 4xx/5xx totals.
//!
//! The route label comes from axum's [`MatchedPath`] (the route template, never the raw path), and
//! requests that matched no route share the label [`UNMATCHED`], so the label set stays bounded.
//! Per-request DB and cache counts come from [`crate::request_scope`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::request_scope;

/// Route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// What one request did, measured by the middleware.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: Method,
    /// The matched route template (e.g. `/api/users/{id}`); `None` when no route matched.
    pub route: Option<MatchedPath>,
    pub status: u16,
    /// Wall time from the middleware's entry to the response head.
    pub duration: Duration,
    /// Queries run through the pool layer during the request.
    pub db_queries: u32,
    /// Sum of those queries' durations, µs.
    pub db_time_us: u64,
    /// The slowest of those queries, µs.
    pub db_max_us: u64,
    pub cache_hits: u32,
    pub cache_misses: u32,
    /// Body length when known up front (all JSON responses); `None` for streamed bodies.
    pub response_bytes: Option<u64>,
}

impl RequestRecord {
    /// The bounded route label: the template, or [`UNMATCHED`].
    pub fn route_label(&self) -> &str {
        self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
    #[inline]
    pub fn duration_us(&self) -> u64 {
        u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX)
    }
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }
    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
    /// Cache hits as a percentage of lookups; `None` when the request made none.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        let total = self.cache_hits + self.cache_misses;
        (total > 0).then(|| f64::from(self.cache_hits) * 100.0 / f64::from(total))
    }
}

/// A consumer of request records (the metrics collector). Called on the request path after the
/// response is produced, so it must be cheap: record into a histogram, never block or await.
pub trait RequestObserver: Send + Sync + 'static {
    fn observe(&self, record: &RequestRecord);
}

/// Totals since start-up.
#[derive(Debug, Default)]
pub struct RequestTotals {
    pub requests: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
}

/// A copy of [`RequestTotals`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RequestTotalsSnapshot {
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
}

impl RequestTotals {
    pub fn snapshot(&self) -> RequestTotalsSnapshot {
        RequestTotalsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            client_errors: self.client_errors.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
        }
    }
}

/// What the middleware needs, shared by every request.
#[derive(Clone, Default)]
pub struct Instrumentation {
    /// Behind an `Arc` so the per-request clone of the middleware state is one atomic increment.
    pub observers: Arc<Vec<Arc<dyn RequestObserver>>>,
    pub totals: Arc<RequestTotals>,
    /// Emit the JSON log line (`LOG_REQUESTS`).
    pub log_requests: bool,
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation")
            .field("observers", &self.observers.len())
            .field("log_requests", &self.log_requests)
            .finish()
    }
}

/// The axum middleware; install with
/// `axum::middleware::from_fn_with_state(instrumentation, middleware::instrument)` as the outermost
/// `Router::layer` so it sees the matched route and the unmatched fallback.
pub async fn instrument(State(inst): State<Instrumentation>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let (response, counters) = request_scope::scope(next.run(req)).await;
    let record = RequestRecord {
        method,
        route,
        status: response.status().as_u16(),
        duration: start.elapsed(),
        db_queries: counters.db_queries,
        db_time_us: counters.db_time_us,
        db_max_us: counters.db_max_us,
        cache_hits: counters.cache_hits,
        cache_misses: counters.cache_misses,
        response_bytes: body_len(response.body()),
    };
    inst.totals.requests.fetch_add(1, Ordering::Relaxed);
    if record.is_client_error() {
        inst.totals.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if record.is_server_error() {
        inst.totals.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    for observer in inst.observers.iter() {
        observer.observe(&record);
    }
    if inst.log_requests {
        log(&record);
    }
    response
}

fn body_len(body: &Body) -> Option<u64> {
    body.size_hint().exact()
}

fn log(r: &RequestRecord) {
    // Milliseconds with µs precision, like the report's `duration_ms: 145.23`.
    let duration_ms = r.duration_us() as f64 / 1000.0;
    let hit_rate = r.cache_hit_rate().map(|p| (p * 100.0).round() / 100.0);
    tracing::info!(
        target: "pooled_app::request",
        method = %r.method,
        path = r.route_label(),
        duration_ms,
        status_code = r.status,
        database_queries = r.db_queries,
        cache_hits = r.cache_hits,
        cache_misses = r.cache_misses,
        cache_hit_rate = hit_rate,
        response_bytes = r.response_bytes,
        "request"
    );
}

//! Per-request counters (DB queries, DB time, cache hits and misses) kept in a task-local.
//!
//! The middleware opens a scope around each request; the pool layer and the cache add to it from
//! anywhere inside the request's task without passing a handle around. Outside a scope (background
//! tasks, benchmarks) the calls are no-ops.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

/// The counters of one request; `Cell`s because only the request's own task touches them.
#[derive(Debug, Default)]
pub struct RequestCounters {
    db_queries: Cell<u32>,
    db_time_us: Cell<u64>,
    db_max_us: Cell<u64>,
    cache_hits: Cell<u32>,
    cache_misses: Cell<u32>,
}

/// A copy of the counters at the end of a request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub db_queries: u32,
    pub db_time_us: u64,
    pub db_max_us: u64,
    pub cache_hits: u32,
    pub cache_misses: u32,
}

tokio::task_local! {
    static COUNTERS: RequestCounters;
}

/// Runs `fut` inside a fresh scope and returns its output with the counters it accumulated.
pub async fn scope<F: Future>(fut: F) -> (F::Output, CountersSnapshot) {
    COUNTERS
        .scope(RequestCounters::default(), async move {
            let out = fut.await;
            let snap = COUNTERS.with(|c| CountersSnapshot {
                db_queries: c.db_queries.get(),
                db_time_us: c.db_time_us.get(),
                db_max_us: c.db_max_us.get(),
                cache_hits: c.cache_hits.get(),
                cache_misses: c.cache_misses.get(),
            });
            (out, snap)
        })
        .await
}

/// Counts one database query and its duration.
pub fn record_query(took: Duration) {
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let _ = COUNTERS.try_with(|c| {
        c.db_queries.set(c.db_queries.get() + 1);
        c.db_time_us.set(c.db_time_us.get().saturating_add(us));
        c.db_max_us.set(c.db_max_us.get().max(us));
    });
}

/// Counts one cache hit.
pub fn record_cache_hit() {
    let _ = COUNTERS.try_with(|c| c.cache_hits.set(c.cache_hits.get() + 1));
}

/// Counts one cache miss (including a lookup that failed or timed out).
pub fn record_cache_miss() {
    let _ = COUNTERS.try_with(|c| c.cache_misses.set(c.cache_misses.get() + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_inside_the_scope_only() {
        record_cache_hit(); // outside: ignored
        let ((), snap) = scope(async {
            record_query(Duration::from_micros(300));
            record_query(Duration::from_micros(100));
            record_cache_hit();
            record_cache_miss();
            record_cache_miss();
        })
        .await;
        assert_eq!(
            snap,
            CountersSnapshot {
                db_queries: 2,
                db_time_us: 400,
                db_max_us: 300,
                cache_hits: 1,
                cache_misses: 2
            }
        );
    }
}

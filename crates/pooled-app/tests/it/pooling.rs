//! Pooled vs unpooled against a real Postgres and Redis: 1,000 `POST /api/buddy/respond` with no error
//! in both modes; pool efficiency ≥ 99 % pooled and 0 % unpooled, read from `/api/performance/pool`.

use crate::support::app::{vars, TestApp};
use crate::support::services;

const REQUESTS: i64 = 1000;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pooled_and_unpooled_serve_1000_responds_with_expected_efficiency() {
    let (pg_svc, redis_svc) = services::both().await;
    let (pg, redis) = (pg_svc.url(), redis_svc.url());

    // Pooled.
    let app = TestApp::start(vars(
        &pg,
        Some(&redis),
        &[("ENABLE_CONNECTION_POOLING", "true")],
    ))
    .await;
    let statuses = app.respond_load(REQUESTS, CONCURRENCY).await;
    assert_eq!(statuses.len(), REQUESTS as usize);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "non-200 in pooled mode: {:?}",
        count_non_200(&statuses)
    );
    let after_posts = app.pool().await;
    eprintln!("pooled, after {REQUESTS} responds: {after_posts}");
    // Efficiency counts the pool's warm-up connections too, so it converges with repetition: another
    // 2,000 requests (buddy lists) on top.
    let lists = app.buddies_load(2 * REQUESTS, CONCURRENCY).await;
    assert!(
        lists.iter().all(|s| *s == 200),
        "non-200 buddy lists: {:?}",
        count_non_200(&lists)
    );
    let pool = app.pool().await;
    eprintln!("pooled, after 2x{REQUESTS} more buddy lists: {pool}");
    assert_eq!(pool["mode"], "pooled");
    let efficiency = pool["pool_efficiency_percent"].as_f64().unwrap_or(-1.0);
    assert!(
        efficiency >= 99.0,
        "pooled efficiency {efficiency} % < 99 %: {pool}"
    );
    assert!(
        pool["connections_opened"].as_u64().unwrap_or(u64::MAX) <= 20,
        "{pool}"
    );
    assert!(
        pool["acquisitions"].as_u64().unwrap_or(0) >= REQUESTS as u64,
        "{pool}"
    );
    assert_eq!(pool["acquire_timeouts"], 0);
    assert_eq!(pool["query_errors"], 0);
    // The middleware saw every respond with its one statement (plus one query when a profile
    // missed the cache).
    let records = app.records.take();
    let responds: Vec<_> = records
        .iter()
        .filter(|r| r.route_label() == "/api/buddy/respond")
        .collect();
    assert_eq!(responds.len(), REQUESTS as usize);
    for r in &responds {
        assert_eq!(r.status, 200);
        let expected = if r.cache_misses > 0 { 2 } else { 1 };
        assert_eq!(r.db_queries, expected, "{r:?}");
        assert_eq!(r.cache_hits + r.cache_misses, 2, "{r:?}");
        assert!(r.response_bytes.unwrap_or(0) > 0, "{r:?}");
    }
    assert!(
        responds.iter().any(|r| r.cache_hits > 0),
        "no cache hit at all over {REQUESTS} responds"
    );
    let totals = app.state.instrumentation.totals.snapshot();
    assert_eq!(
        (totals.client_errors, totals.server_errors),
        (0, 0),
        "{totals:?}"
    );
    assert!(totals.requests >= 3 * REQUESTS as u64, "{totals:?}");
    app.stop().await;

    // Unpooled: a new connection per request, so no acquisition reuses one.
    let app = TestApp::start(vars(
        &pg,
        Some(&redis),
        // A connect per request: on a host saturated by the rest of the suite a connect can
        // take longer than the default 2 s, which is host load, not what this test measures.
        &[
            ("ENABLE_CONNECTION_POOLING", "false"),
            ("DATABASE_CONNECT_TIMEOUT_MS", "10000"),
        ],
    ))
    .await;
    let statuses = app.respond_load(REQUESTS, CONCURRENCY).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "non-200 in unpooled mode: {:?}",
        count_non_200(&statuses)
    );
    let lists = app.buddies_load(REQUESTS, CONCURRENCY).await;
    assert!(
        lists.iter().all(|s| *s == 200),
        "non-200 buddy lists: {:?}",
        count_non_200(&lists)
    );
    let pool = app.pool().await;
    eprintln!("unpooled: {pool}");
    assert_eq!(pool["mode"], "unpooled");
    assert_eq!(
        pool["pool_efficiency_percent"].as_f64(),
        Some(0.0),
        "{pool}"
    );
    assert_eq!(pool["connections_opened"], pool["acquisitions"], "{pool}");
    assert!(
        pool["acquisitions"].as_u64().unwrap_or(0) >= 2 * REQUESTS as u64,
        "{pool}"
    );
    assert_eq!(
        pool["connections_closed"]["request_end"], pool["connections_opened"],
        "{pool}"
    );
    app.stop().await;
}

fn count_non_200(statuses: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in statuses.iter().filter(|s| **s != 200) {
        *m.entry(*s).or_default() += 1;
    }
    m
}

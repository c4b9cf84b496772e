//! Redis is optional and never blocks a request: with Redis stopped (also at start-up) requests are still
//! served from Postgres and every lookup counts as a miss; when Redis is back, hits return.

use std::time::Duration;

use crate::support::app::{vars, TestApp};
use crate::support::services;

/// GETs `/api/users/{id}` and returns the middleware's (hits, misses) for that request.
async fn user(app: &TestApp, id: i64) -> (u32, u32) {
    let path = format!("/api/users/{id}");
    let call = tokio::time::timeout(Duration::from_secs(5), app.get(&path));
    let (status, body) = call.await.expect("request hung on Redis");
    assert_eq!(status, 200, "user {id}: {body}");
    assert_eq!(body["id"], id);
    let records = app.records.take();
    let r = records.last().expect("a request record");
    assert_eq!(r.route_label(), "/api/users/{id}");
    (r.cache_hits, r.cache_misses)
}

/// Repeats a lookup of a fresh id until the second read is a hit (Redis reachable again).
async fn wait_for_hits(app: &TestApp, first_id: i64) -> i64 {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut id = first_id;
    loop {
        user(app, id).await;
        if user(app, id).await == (1, 0) {
            return id;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "cache hits never came back"
        );
        id += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_serves_with_misses_and_recovers() {
    let (pg, redis) = services::both().await;

    // Redis down at start-up: the app starts and serves anyway.
    services::ok("stop Redis", redis.stop().await);
    let app = TestApp::start(vars(&pg.url(), Some(&redis.url()), &[])).await;
    assert_eq!(user(&app, 11).await, (0, 1));
    assert_eq!(user(&app, 11).await, (0, 1), "a hit without Redis");

    services::ok("start Redis", redis.start().await);
    let id = wait_for_hits(&app, 100).await;
    assert_eq!(user(&app, id).await, (1, 0));

    // Redis stopped while connected: misses, errors counted, no failed request.
    services::ok("stop Redis", redis.stop().await);
    let errors_before = app.state.cache.stats().errors;
    for i in 0..20 {
        assert_eq!(
            user(&app, id + i % 2).await,
            (0, 1),
            "a hit with Redis stopped"
        );
    }
    let stats = app.state.cache.stats();
    assert!(
        stats.errors > errors_before || stats.skipped > 0,
        "{stats:?}"
    );
    // respond also keeps working, its profile lookups missing.
    let (status, body) = app.respond(5, true).await;
    assert_eq!(status, 200, "{body}");
    let r = app.records.take().pop().expect("record");
    assert_eq!(
        (r.cache_hits, r.cache_misses, r.db_queries),
        // Its one statement, then one query for both missed profiles.
        (0, 2, 2),
        "{r:?}"
    );

    // Back again: the connection manager reconnects and hits return.
    services::ok("start Redis", redis.start().await);
    let id = wait_for_hits(&app, 1000).await;

    // Redis paused (accepts, never answers): each lookup is cut off at CACHE_TIMEOUT_MS and counted as a
    // miss, then the circuit breaker skips Redis; requests keep being served (`user` fails on a hang).
    services::ok("pause Redis", redis.pause().await);
    for _ in 0..10 {
        assert_eq!(user(&app, id).await, (0, 1), "a hit from a paused Redis");
    }
    let paused = app.state.cache.stats();
    assert!(paused.errors >= 1 && paused.skipped >= 1, "{paused:?}");
    services::ok("unpause Redis", redis.unpause().await);
    wait_for_hits(&app, 2000).await;
    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
    services::ok("shutdown Redis", redis.shutdown().await);
}

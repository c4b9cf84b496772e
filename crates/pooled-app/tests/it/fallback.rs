//! Graceful degradation against a real Postgres: when Postgres goes away the pool layer switches to
//! fallback mode (direct connections with backoff) and answers 503 quickly instead of hanging; when
//! Postgres comes back it returns to pooled mode and serves again. A Postgres restart under an idle
//! pool is absorbed: dead connections are detected and replaced.

use std::time::Duration;

use crate::support::app::{vars, TestApp};
use crate::support::services;

const FAST: &[(&str, &str)] = &[
    ("DATABASE_ACQUIRE_TIMEOUT_MS", "300"),
    ("DATABASE_CONNECT_TIMEOUT_MS", "500"),
    ("DATABASE_FALLBACK_AFTER_ERRORS", "3"),
    ("DATABASE_IDLE_PING_MS", "200"),
];

async fn all_ok(app: &TestApp, n: i64) {
    for id in 1..=n {
        let (status, body) = app.respond(id, true).await;
        assert_eq!(status, 200, "respond {id}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_failure_falls_back_and_recovers() {
    let pg = services::postgres().await;
    let app = TestApp::start(vars(&pg.url(), None, FAST)).await;
    all_ok(&app, 20).await;
    assert_eq!(app.pool().await["mode"], "pooled");

    services::ok("stop Postgres", pg.stop().await);
    // Requests fail fast with 503 (never hang) and the failures switch the layer to fallback.
    let mut statuses = Vec::new();
    for i in 0..10 {
        let path = format!("/api/buddies?user_id={}", i + 1);
        let call = tokio::time::timeout(Duration::from_secs(10), app.get(&path));
        let (status, _) = call.await.expect("a request hung while Postgres was down");
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| *s == 503),
        "while Postgres is down: {statuses:?}"
    );
    let down = app.pool().await;
    eprintln!("down: {down}");
    assert_eq!(down["mode"], "fallback", "{down}");
    assert_eq!(down["fallback_activations"], 1, "{down}");
    assert!(down["health_score"].as_u64().unwrap_or(100) <= 40, "{down}");
    assert!(
        down["acquire_timeouts"].as_u64().unwrap_or(0)
            + down["acquire_errors"].as_u64().unwrap_or(0)
            >= 3,
        "{down}"
    );
    let (ready, body) = app.get("/readyz").await;
    assert_eq!(ready, 503, "{body}");
    let totals = app.state.instrumentation.totals.snapshot();
    assert!(totals.server_errors >= 10, "5xx not counted: {totals:?}");

    services::ok("start Postgres", pg.start().await);
    let back = app
        .wait_pool(
            Duration::from_secs(30),
            "pooled mode after Postgres started",
            |p| p["mode"] == "pooled",
        )
        .await;
    eprintln!("back: {back}");
    assert_eq!(back["recoveries"], 1, "{back}");
    assert_eq!(back["consecutive_failures"], 0, "{back}");
    all_ok(&app, 50).await;
    let after = app.pool().await;
    assert_eq!(after["mode"], "pooled", "{after}");
    assert_eq!(
        after["health_score"].as_u64().map(|s| s >= 90),
        Some(true),
        "{after}"
    );
    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_is_absorbed() {
    let pg = services::postgres().await;
    let app = TestApp::start(vars(&pg.url(), None, FAST)).await;
    all_ok(&app, 20).await;
    let before = app.pool().await;

    services::ok("restart Postgres", pg.restart().await);
    // Let the pool's connections sit idle past DATABASE_IDLE_PING_MS: the next acquisitions ping them,
    // find them dead and open fresh ones, so requests after a restart succeed without a failed request.
    tokio::time::sleep(Duration::from_millis(400)).await;
    all_ok(&app, 50).await;
    let after = app.pool().await;
    eprintln!("after restart: {after}");
    assert_eq!(after["mode"], "pooled", "{after}");
    assert!(
        after["connections_closed"]["broken"].as_u64().unwrap_or(0) >= 1,
        "dead connections were not detected: {after}"
    );
    assert!(
        after["connections_opened"].as_u64().unwrap_or(0)
            > before["connections_opened"].as_u64().unwrap_or(0),
        "no fresh connection after the restart: {after}"
    );
    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

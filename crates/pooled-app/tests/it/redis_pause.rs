//! Redis frozen for 10 s under load: no request fails, the health score drops and recovers, the
//! metrics collection resumes and the Redis view ends up complete (every request counted once).

use std::time::{Duration, Instant};

use crate::support::app::{TestApp, API_TOKEN};
use crate::support::load::Load;
use crate::support::services::both as services;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_paused_ten_seconds_under_load() {
    let (pg, redis) = services().await;
    let app = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[("PERFORMANCE_API_TOKEN", API_TOKEN.into())],
    )
    .await;
    let load = Load::start(std::slice::from_ref(&app.base), 6);

    let score = |v: &serde_json::Value| v["composite_score"].as_u64().unwrap_or(0);
    let mut before = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        before.push(score(&app.get("/api/performance/health/status").await.1));
    }
    let baseline = *before.iter().min().unwrap();

    redis.pause().await.expect("pause redis");
    let paused_at = Instant::now();
    let mut during = Vec::new();
    let mut summary_during = None;
    while paused_at.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, h) = app.get("/api/performance/health/status").await;
        during.push(score(&h));
        if summary_during.is_none() && paused_at.elapsed() > Duration::from_secs(3) {
            let t = Instant::now();
            let (code, s) = app.get("/api/performance/metrics/summary?hours=1").await;
            summary_during = Some((code, s, t.elapsed()));
        }
    }
    let (_, rt_during) = app.get("/api/performance/metrics/realtime").await;
    redis.unpause().await.expect("unpause redis");

    let mut after = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after.push(score(&app.get("/api/performance/health/status").await.1));
    }
    let (ok, failed) = load.stop().await;
    println!("health before {before:?} during {during:?} after {after:?}; requests ok={ok} failed={failed}");

    assert_eq!(failed, 0, "requests failed while Redis was paused");
    assert!(ok > 500, "too little load: {ok}");
    let low = *during.iter().min().unwrap();
    assert!(
        low + 10 <= baseline,
        "health did not drop: before {before:?} during {during:?}"
    );
    assert!(
        *after.last().unwrap() + 5 >= baseline,
        "health did not recover: {after:?} vs {baseline}"
    );
    assert!(
        rt_during["collector"]["store"]["redis_available"] == false,
        "{rt_during}"
    );
    assert!(rt_during["collector"]["store"]["backlog"].as_u64().unwrap() > 0);
    let (code, s, took) = summary_during.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        s["source"], "local",
        "summary during the pause answers from memory: {s}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Collection resumed: the backlog drains, the gap is reported, and Redis holds every request.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, rt) = app.get("/api/performance/metrics/realtime").await;
    let st = &rt["collector"]["store"];
    assert_eq!(st["backlog"], 0, "{st}");
    assert_eq!(st["redis_available"], true);
    assert!(st["gaps"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["gap_seconds"].as_u64().unwrap() >= 5, "{st}");
    assert_eq!(rt["collector"]["dropped"], 0);
    let (_, s) = app.get("/api/performance/metrics/summary?hours=1").await;
    assert_eq!(s["source"], "redis");
    assert_eq!(
        s["total_requests"].as_u64().unwrap(),
        ok,
        "every request counted exactly once: {s}"
    );
    app.stop().await;
}

//! The load generator against a real local axum server with known behaviour: measured
//! latency, counts, rate limit, weights, error classification and instance spreading.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use poolproof::load::{Attack, HttpMethod, LoadPlan, Template, TransactionPlan};
use poolproof::observe::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Counters {
    delayed: AtomicU64,
    failed: AtomicU64,
    posted: AtomicU64,
    bad_ids: AtomicU64,
}

/// Serves `/delay/{id}` (sleeps DELAY, 200), `/fail` (500) and `POST /echo` (JSON body, 201)
/// on 127.0.0.1:0; the server stops when the test's runtime ends.
async fn server(delay: Duration) -> (String, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route(
            "/delay/{id}",
            get(
                move |State(c): State<Arc<Counters>>, Path(id): Path<u64>| async move {
                    tokio::time::sleep(delay).await;
                    if !(1..=50).contains(&id) {
                        c.bad_ids.fetch_add(1, Ordering::SeqCst);
                    }
                    c.delayed.fetch_add(1, Ordering::SeqCst);
                    "ok"
                },
            ),
        )
        .route(
            "/fail",
            get(|State(c): State<Arc<Counters>>| async move {
                c.failed.fetch_add(1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route(
            "/echo",
            post(|State(c): State<Arc<Counters>>, body: String| async move {
                let ok = serde_json::from_str::<serde_json::Value>(&body)
                    .map(|v| v["n"].as_i64().is_some_and(|n| (5..=6).contains(&n)))
                    .unwrap_or(false);
                c.posted.fetch_add(1, Ordering::SeqCst);
                if ok {
                    StatusCode::CREATED
                } else {
                    StatusCode::BAD_REQUEST
                }
            }),
        )
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), counters)
}

fn tx(
    name: &str,
    weight: usize,
    method: HttpMethod,
    path: &str,
    body: Option<&str>,
    expect: u16,
) -> TransactionPlan {
    TransactionPlan {
        name: name.into(),
        weight,
        method,
        path: Template::parse(path).unwrap(),
        body: body.map(|b| Template::parse(b).unwrap()),
        expect_status: expect,
    }
}

fn plan(targets: Vec<String>, users: usize, transactions: Vec<TransactionPlan>) -> LoadPlan {
    LoadPlan {
        targets,
        users,
        ramp: Duration::from_millis(200),
        warmup: Duration::from_millis(800),
        duration: Duration::from_secs(3),
        rate_limit: None,
        shard: None,
        open: None,
        transactions,
        request_timeout: Duration::from_secs(5),
        bearer_token: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_latency_matches_a_known_server_delay_and_counts_match_the_server() {
    let delay = Duration::from_millis(20);
    let (url, counters) = server(delay).await;
    let attack = Attack::new(plan(
        vec![url],
        8,
        vec![tx(
            "delay",
            1,
            HttpMethod::Get,
            "/delay/{{rand:1..50}}",
            None,
            200,
        )],
    ))
    .unwrap();
    let handle = attack.handle();
    let started = std::time::Instant::now();
    let out = attack.run().await.unwrap();
    let wall = started.elapsed();

    let w = out.client.window(&[out.load], None);
    let p50 = w.latency.quantile_ms(0.5).unwrap();
    let p95 = w.latency.quantile_ms(0.95).unwrap();
    // The server sleeps 20 ms, which tokio's millisecond timer rounds up (20-21 ms); loopback
    // and framing add well under 1 ms at this load, and a busy host's scheduling up to ~1 ms
    // more (one run beside a parallel build read 22.015 ms).
    assert!((20.0..23.0).contains(&p50), "p50 {p50} ms");
    assert!((20.0..25.0).contains(&p95), "p95 {p95} ms");
    assert_eq!(w.error_count(), 0);
    // 8 users × 1/20 ms × 3 s ≈ 1200 requests in the measured window.
    assert!(
        (900..=1250).contains(&w.requests),
        "measured {}",
        w.requests
    );
    assert_eq!(out.load.end, 3.0);
    assert!(!out.interrupted);
    // Every request the server answered was recorded by the client, except at most one
    // in-flight request per user dropped at shutdown.
    let served = counters.delayed.load(Ordering::SeqCst);
    assert!(
        out.completed_requests <= served,
        "{} > {served}",
        out.completed_requests
    );
    assert!(
        served - out.completed_requests <= 8,
        "served {served}, client {}",
        out.completed_requests
    );
    assert_eq!(
        counters.bad_ids.load(Ordering::SeqCst),
        0,
        "{{rand:1..50}} stays in range"
    );
    // Warm-up is recorded at negative offsets and not in the load window.
    let warm = out.client.window(&[out.warmup], None);
    assert!(warm.requests > 0);
    // Wall time: ramp + warm-up + load plus a little shutdown, not goose's backstop run time.
    assert!(wall < Duration::from_millis(4000 + 1500), "wall {wall:?}");
    assert_eq!(handle.progress().phase, poolproof::load::LoadPhase::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_weights_errors_bodies_and_instances() {
    let (a, ca) = server(Duration::from_millis(2)).await;
    let (b, cb) = server(Duration::from_millis(2)).await;
    let mut p = plan(
        vec![a, b],
        4,
        vec![
            tx("ok", 2, HttpMethod::Get, "/delay/{{rand:1..50}}", None, 200),
            tx("fail", 1, HttpMethod::Get, "/fail", None, 200),
            tx(
                "post",
                1,
                HttpMethod::Post,
                "/echo",
                Some(r#"{"n": {{rand:5..6}}}"#),
                201,
            ),
        ],
    );
    p.rate_limit = Some(100.0);
    let out = Attack::new(p).unwrap().run().await.unwrap();
    let w = out.client.window(&[out.load], None);
    let rps = w.request_rps().unwrap();
    assert!((96.0..=104.0).contains(&rps), "rate-limited rps {rps}");
    let fail = out.client.window(&[out.load], Some("fail"));
    let ok = out.client.window(&[out.load], Some("ok"));
    let post = out.client.window(&[out.load], Some("post"));
    // Weights 2:1:1.
    let share = ok.requests as f64 / w.requests as f64;
    assert!((0.45..0.55).contains(&share), "ok share {share}");
    assert_eq!(
        fail.errors.get(&ErrorKind::Status(500)).copied(),
        Some(fail.requests)
    );
    assert_eq!(ok.error_count(), 0);
    assert_eq!(
        post.error_count(),
        0,
        "bodies expand to valid JSON with n in 5..=6"
    );
    assert!(post.requests > 0);
    // Both instances got load.
    for c in [&ca, &cb] {
        assert!(c.delayed.load(Ordering::SeqCst) > 10);
        assert!(c.posted.load(Ordering::SeqCst) > 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_transport_errors_without_latency() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut p = plan(
        vec![format!("http://127.0.0.1:{port}")],
        2,
        vec![tx("gone", 1, HttpMethod::Get, "/", None, 200)],
    );
    p.duration = Duration::from_secs(1);
    p.rate_limit = Some(50.0);
    let out = Attack::new(p).unwrap().run().await.unwrap();
    let w = out.client.window(&[out.load], None);
    assert!(w.requests > 10);
    assert_eq!(
        w.errors.get(&ErrorKind::Transport).copied(),
        Some(w.requests)
    );
    assert!(w.latency.is_empty());
    assert_eq!(w.error_rate(), Some(1.0));
}

//! Cost of the request middleware per request, in-process: the same router driven with tower `oneshot`
//! bare, with the middleware (log line off), with a histogram-recording observer attached, and with the
//! JSON log line written (to a sink), and with the real metrics collector as the observer (its
//! inbox; the collector records histograms off the request path). The difference to `bare` is
//! the middleware's cost. The `record` group prices one record into the `/metrics` buckets
//! (atomic, as the pool's paths do; plain, as the collector's drain does) against the pool's
//! existing mutex-guarded HDR record. The `scrape` group renders `/metrics` (the monitoring
//! stack without a pool or Redis, 12 routes × 2 statuses recorded) in both formats.
//!
//! Run: `cargo bench -p pooled-app --bench middleware`

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::Method;
use axum::http::Request;
use axum::routing::get;
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use pooled_app::exposition::buckets::{AtomicCounts, Counts};
use pooled_app::metrics::{CollectorConfig, MetricsCollector};
use pooled_app::middleware::{instrument, Instrumentation, RequestObserver, RequestRecord};
use pooled_app::monitoring::{MonitorSettings, MonitoringStack, PoolHooks};
use tower::ServiceExt;

struct HdrObserver(Mutex<Histogram<u64>>);

impl RequestObserver for HdrObserver {
    fn observe(&self, record: &RequestRecord) {
        if let Ok(mut h) = self.0.lock() {
            h.saturating_record(record.duration_us().max(1));
        }
    }
}

fn base() -> Router {
    Router::new().route(
        "/api/users/{id}",
        get(|| async { Json(serde_json::json!({"id": 7, "name": "User 7", "city": "Oslo"})) }),
    )
}

fn with(inst: Instrumentation) -> Router {
    base().layer(axum::middleware::from_fn_with_state(inst, instrument))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let observer: Arc<dyn RequestObserver> = Arc::new(HdrObserver(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    )));
    let (collector, task) = {
        let _g = rt.enter();
        MetricsCollector::start(
            CollectorConfig::new("bench".into()),
            None,
            Arc::default(),
            None,
        )
    };
    let collector: Arc<dyn RequestObserver> = Arc::new(collector);
    let variants: [(&str, Router); 5] = [
        ("bare", base()),
        (
            "middleware_nolog",
            with(Instrumentation {
                log_requests: false,
                ..Default::default()
            }),
        ),
        (
            "middleware_observer_nolog",
            with(Instrumentation {
                log_requests: false,
                observers: Arc::new(vec![observer.clone()]),
                ..Default::default()
            }),
        ),
        (
            "middleware_collector_nolog",
            with(Instrumentation {
                log_requests: false,
                observers: Arc::new(vec![collector]),
                ..Default::default()
            }),
        ),
        (
            "middleware_observer_jsonlog",
            with(Instrumentation {
                log_requests: true,
                observers: Arc::new(vec![observer]),
                ..Default::default()
            }),
        ),
    ];

    // The log variant writes real JSON lines (to a sink) through the same formatter as the binary.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut group = c.benchmark_group("middleware");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, router) in variants {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let req = Request::get("/api/users/7")
                    .body(Body::empty())
                    .expect("request");
                let router = router.clone();
                async move { router.oneshot(req).await.expect("infallible") }
            })
        });
    }
    group.finish();
    drop(task);

    let mut group = c.benchmark_group("record");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let atomic = AtomicCounts::default();
    let mut plain = Counts::default();
    let hdr = Mutex::new(Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"));
    let mut x = 1u64;
    // Durations spread over the whole range, so the bucket search is not always the same.
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        100 + (x >> 40) % 50_000
    };
    group.bench_function("atomic_counts", |b| {
        b.iter(|| atomic.record(Duration::from_micros(std::hint::black_box(next()))))
    });
    group.bench_function("counts", |b| {
        b.iter(|| plain.record_us(std::hint::black_box(next())))
    });
    group.bench_function("hdr_mutex", |b| {
        b.iter(|| {
            if let Ok(mut h) = hdr.lock() {
                h.saturating_record(std::hint::black_box(next()));
            }
        })
    });
    group.finish();

    // A scrape: 24 request series (12 routes × 200/500), each with 32 buckets.
    let stack = {
        let _g = rt.enter();
        MonitoringStack::start(MonitorSettings::new("bench".into()), PoolHooks::default())
            .expect("stack")
    };
    let m = stack.monitoring.clone();
    let routes: Vec<String> = (0..12).map(|i| format!("/api/r{i}/{{id}}")).collect();
    // MatchedPath is axum's: take them from a request that matched each route.
    let paths: Vec<MatchedPath> = rt.block_on(async {
        let mut v = Vec::new();
        for r in &routes {
            let app = Router::new().route(r, get(|| async { "ok" }));
            let captured = std::sync::Arc::new(Mutex::new(None));
            let c2 = captured.clone();
            let app = app.layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let c2 = c2.clone();
                    async move {
                        *c2.lock().expect("lock") = req.extensions().get::<MatchedPath>().cloned();
                        next.run(req).await
                    }
                },
            ));
            let uri = r.replace("{id}", "7");
            let _ = app
                .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                .await;
            let p = captured.lock().expect("lock").take().expect("matched");
            v.push(p);
        }
        v
    });
    for (i, p) in paths.iter().enumerate() {
        for k in 0..2_000u64 {
            let status = if k % 50 == 0 { 500 } else { 200 };
            m.collector.push(
                &Method::GET,
                Some(p),
                status,
                100 + (k * 37 + i as u64) % 20_000,
            );
        }
    }
    let text = pooled_app::api::prometheus::render(&m, false);
    println!(
        "scrape: {} bytes, {} lines (text 0.0.4)",
        text.len(),
        text.lines().count()
    );
    let mut group = c.benchmark_group("scrape");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("render_text004", |b| {
        b.iter(|| pooled_app::api::prometheus::render(&m, false))
    });
    group.bench_function("render_openmetrics", |b| {
        b.iter(|| pooled_app::api::prometheus::render(&m, true))
    });
    group.finish();
    drop(stack);
}

criterion_group!(benches, bench);
criterion_main!(benches);

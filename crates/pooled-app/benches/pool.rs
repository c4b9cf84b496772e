//! Connection acquire-and-release against a real Postgres (started by `poolproof-services`):
//! the raw sqlx pool, the app's pool layer (stats, histograms, fallback bookkeeping) in pooled mode,
//! and unpooled mode (a new connection per acquisition: the connect cost). Also the same with one
//! `SELECT 1` round trip, i.e. the smallest unit of request work. After the runs the layer's own HDR
//! histogram of acquire waits is printed (per-acquisition p50/p99, not criterion's per-sample means).
//!
//! Run: `cargo bench -p pooled-app --bench pool`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pooled_app::pool::{Db, DbSettings, QueryKind};
use poolproof_services::Options;
use sqlx::postgres::PgPoolOptions;

fn settings(pooling: bool) -> DbSettings {
    DbSettings {
        pooling,
        max: 20,
        min: 5,
        acquire_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        fallback_after_errors: 3,
        fallback_max: 20,
        idle_ping_after: Duration::from_secs(1),
        prepared_statements: true,
    }
}

async fn select1(db: &Db) {
    let mut conn = db.acquire().await.expect("acquire");
    let t = std::time::Instant::now();
    let r = sqlx::query("SELECT 1").execute(conn.as_mut()).await;
    conn.finish(QueryKind::Select, t, r).expect("SELECT 1");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pg = rt
        .block_on(poolproof_services::start_postgres(&Options::default()))
        .expect("start Postgres");
    let url = pg.url();
    let (raw, pooled, unpooled) = rt.block_on(async {
        let raw = PgPoolOptions::new()
            .max_connections(20)
            .min_connections(5)
            .test_before_acquire(false)
            .connect(&url)
            .await
            .expect("raw sqlx pool");
        let pooled = Db::new(&url, settings(true)).await.expect("pooled layer");
        let unpooled = Db::new(&url, settings(false))
            .await
            .expect("unpooled layer");
        (raw, pooled, unpooled)
    });

    let mut g = c.benchmark_group("pool_acquire_release");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("sqlx_pool", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(raw.acquire().await.expect("acquire")) })
    });
    g.bench_function("layer_pooled", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(pooled.acquire().await.expect("acquire")) })
    });
    g.sample_size(20);
    g.bench_function("layer_unpooled", |b| {
        b.to_async(&rt)
            .iter(|| async { drop(unpooled.acquire().await.expect("acquire")) })
    });
    g.finish();

    let mut g = c.benchmark_group("pool_acquire_select1_release");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("layer_pooled", |b| {
        b.to_async(&rt).iter(|| select1(&pooled))
    });
    g.sample_size(20);
    g.bench_function("layer_unpooled", |b| {
        b.to_async(&rt).iter(|| select1(&unpooled))
    });
    g.finish();

    for (name, db) in [("pooled", &pooled), ("unpooled", &unpooled)] {
        let s = db.stats();
        eprintln!(
            "{name}: acquisitions {} opened {} efficiency {:.3} % | acquire wait µs p50 {} p95 {} p99 {} max {}",
            s.acquisitions,
            s.connections_opened,
            s.pool_efficiency_percent,
            s.acquire_wait.p50_us,
            s.acquire_wait.p95_us,
            s.acquire_wait.p99_us,
            s.acquire_wait.max_us
        );
    }
    rt.block_on(async {
        raw.close().await;
        pooled.close().await;
        // Direct connections close in spawned tasks; give them a moment before Postgres goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = pg.shutdown().await;
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

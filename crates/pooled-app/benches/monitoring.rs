//! Monitoring cost and dashboard latency against real Postgres and Redis (`poolproof-services`),
//! with two `pooled-app` processes (the real binary) on 127.0.0.1: one with monitoring on, one with
//! `ENABLE_PERFORMANCE_MONITORING=false`.
//!
//! - `monitoring_saturation/{on,off}`: a batch of requests driven by 32 closed-loop clients.
//! - A paired run alternating the two (12 pairs of 8,000 requests) prints, per pair, the wall-clock
//!   throughput and each app process's CPU time per request (sum of its threads' schedstat run
//!   time), then the throughput loss and the CPU-capacity loss (1 − cpu_off / cpu_on) with 95 %
//!   intervals. On a shared machine the CPU figure is the robust one: other load changes the
//!   wall clock far more than the CPU a request costs.
//! - `dashboard_under_load/*`: each dashboard endpoint while 8 clients load the monitored app;
//!   every request is timed into an HDR histogram and p50/p95/p99 are printed at the end.
//!
//! Run: `cargo bench -p pooled-app --bench monitoring`

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Load, API_TOKEN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hdrhistogram::Histogram;

const CLIENTS: usize = 32;

/// A `pooled-app` process, killed on drop.
struct Proc {
    base: String,
    child: std::process::Child,
}

impl Proc {
    async fn start(pg: &str, redis: &str, monitoring: bool) -> Proc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_pooled-app"))
            .env_clear()
            .env("DATABASE_URL", pg)
            .env("REDIS_URL", redis)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("LOG_REQUESTS", "false")
            .env("RUST_LOG", "warn")
            .env("SEED_USERS", "200")
            .env("SEED_BUDDY_REQUESTS", "400")
            .env("PERFORMANCE_API_TOKEN", API_TOKEN)
            .env("ENABLE_PERFORMANCE_MONITORING", monitoring.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn pooled-app");
        let p = Proc {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let c = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = c.get(format!("{}/readyz", p.base)).send().await {
                if r.status() == 200 {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pooled-app not ready");
    }

    /// CPU time of all the process's threads (ns), from /proc/<pid>/task/*/schedstat.
    fn cpu_ns(&self) -> u64 {
        let dir = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                    .filter_map(|s| {
                        s.split_whitespace()
                            .next()
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
const BATCH: u64 = 2000;

fn paths() -> Vec<String> {
    (0..512u64)
        .map(|i| {
            let n = i.wrapping_mul(2654435761) % 200 + 1;
            if i % 4 == 0 {
                format!("/api/buddies?user_id={n}")
            } else {
                format!("/api/users/{n}")
            }
        })
        .collect()
}

/// `n` requests by `CLIENTS` closed-loop clients; returns the elapsed time.
async fn drive(client: &reqwest::Client, base: &str, paths: &Arc<Vec<String>>, n: u64) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let (client, base, paths, next) =
            (client.clone(), base.to_owned(), paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let p = &paths[(i as usize) % paths.len()];
                let r = client
                    .get(format!("{base}{p}"))
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success(), "{p}: {}", r.status());
                let _ = r.bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let (pg, redis) = rt.block_on(common::services());
    let on = rt.block_on(Proc::start(&pg.url(), &redis.url(), true));
    let off = rt.block_on(Proc::start(&pg.url(), &redis.url(), false));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let paths = Arc::new(paths());
    // Warm both (connections, caches).
    rt.block_on(async {
        drive(&client, &on.base, &paths, 4000).await;
        drive(&client, &off.base, &paths, 4000).await;
    });

    let mut g = c.benchmark_group("monitoring_saturation");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for (name, app) in [("on", &on), ("off", &off)] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (client, base, paths) = (client.clone(), app.base.clone(), paths.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += drive(&client, &base, &paths, BATCH).await;
                    }
                    total
                }
            })
        });
    }
    g.finish();

    // Paired, interleaved rounds: throughput and app CPU per request, per pair.
    let pairs: Vec<(f64, f64)> = rt.block_on(async {
        let mut v = Vec::new();
        for round in 0..12 {
            let mut rps = [0.0f64; 2];
            let mut cpu = [0.0f64; 2];
            // Alternate which goes first so drift does not favour one side.
            let order = if round % 2 == 0 { [0usize, 1] } else { [1, 0] };
            for k in order {
                let app = if k == 0 { &on } else { &off };
                let n = 8000;
                let c0 = app.cpu_ns();
                let t = drive(&client, &app.base, &paths, n).await;
                let c1 = app.cpu_ns();
                rps[k] = n as f64 / t.as_secs_f64();
                cpu[k] = (c1 - c0) as f64 / n as f64 / 1000.0;
            }
            println!(
                "pair {round:2}: on {:6.0} req/s {:6.1} µs CPU/req | off {:6.0} req/s {:6.1} µs CPU/req",
                rps[0], cpu[0], rps[1], cpu[1]
            );
            v.push((1.0 - rps[0] / rps[1], 1.0 - cpu[1] / cpu[0]));
        }
        v
    });
    let ci = |xs: Vec<f64>| {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let half = 2.201 * sd / n.sqrt(); // t(0.975, 11)
        format!(
            "mean {:+.2} %, 95 % CI [{:+.2} %, {:+.2} %]",
            mean * 100.0,
            (mean - half) * 100.0,
            (mean + half) * 100.0
        )
    };
    println!(
        "monitoring throughput loss (wall clock, {} pairs): {}",
        pairs.len(),
        ci(pairs.iter().map(|p| p.0).collect())
    );
    println!(
        "monitoring capacity loss (app CPU per request, {} pairs): {}",
        pairs.len(),
        ci(pairs.iter().map(|p| p.1).collect())
    );

    // Dashboard endpoints under load.
    let load = {
        let _g = rt.enter();
        Load::start(std::slice::from_ref(&on.base), 8)
    };
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    let endpoints = [
        ("realtime", "/api/performance/metrics/realtime"),
        ("summary", "/api/performance/metrics/summary?hours=1"),
        ("health", "/api/performance/health/status"),
        ("alerts", "/api/performance/alerts/active"),
        ("dashboard", "/api/performance/dashboard"),
    ];
    let mut g = c.benchmark_group("dashboard_under_load");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut report = Vec::new();
    for (name, path) in endpoints {
        let hist = Arc::new(std::sync::Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
        ));
        let url = format!("{}{path}", on.base);
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (client, url, hist) = (client.clone(), url.clone(), hist.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let r = client
                            .get(&url)
                            .bearer_auth(API_TOKEN)
                            .send()
                            .await
                            .expect("request");
                        assert!(r.status().is_success());
                        let _ = r.bytes().await;
                        let e = t.elapsed();
                        total += e;
                        hist.lock().unwrap().saturating_record(e.as_micros() as u64);
                    }
                    total
                }
            })
        });
        let h = hist.lock().unwrap();
        report.push(format!(
            "{name:9} n={:6} p50 {:7.3} ms  p95 {:7.3} ms  p99 {:7.3} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.95) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0
        ));
    }
    g.finish();
    let (ok, failed) = rt.block_on(load.stop());
    println!("dashboard endpoints under load ({ok} load requests, {failed} failed):");
    for l in report {
        println!("  {l}");
    }
    drop((on, off));
    rt.block_on(async move {
        drop((pg, redis));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Monitoring cost and dashboard latency against real Postgres and Redis (`poolproof-services`),
//! with `pooled-app` processes (the real binary) on 127.0.0.1, monitoring on and
//! `ENABLE_PERFORMANCE_MONITORING=false`, measured in one run.
//!
//! - Concurrent, in generations (the design that decides): `MON_BENCH_GENERATIONS` (default 12)
//!   times, fresh `on`, `off` and control processes (the control also without monitoring; spawn
//!   order rotating through all six orders) are saturated at the same time by 10 clients each
//!   for `MON_BENCH_ROUNDS` (default 20) rounds of `MON_BENCH_BATCH_MS` (default 500 ms), so
//!   whatever else runs on the machine hits every arm alike. Per generation: throughput and the
//!   app's CPU time per request from /proc (the threads' schedstat run time, and utime+stime),
//!   each process's totals over its rounds; `on` against both unmonitored processes together,
//!   and control against off (the A/A). Why generations: two
//!   identical processes differ by 1-3 % for the life of the processes (placement, memory
//!   layout), so one set of processes cannot resolve 0.5 %; the figure is the mean over
//!   generations with a 95 % t-interval, and control vs off (A/A) shows what the method reports
//!   when nothing differs. Throughput loss = 1 − on/unmonitored (rps); CPU cost =
//!   CPU per request on / unmonitored − 1.
//! - Interleaved (optional, `MON_BENCH_PAIRS` > 0): pairs of short saturation batches, on and
//!   off alternating, the order flipping every pair; mean of the per-pair ratios with a 95 %
//!   bootstrap interval. On a shared host its per-pair spread is too large to decide.
//! - `dashboard_under_load/*`: each dashboard endpoint and `/metrics` while 8 clients load the monitored app;
//!   every request is timed into an HDR histogram and p50/p95/p99 are printed at the end.
//!
//! Run: `cargo bench -p pooled-app --bench monitoring` (about 4 minutes).

#[allow(dead_code)] // the bench uses start and stop only
#[path = "../tests/it/support/load.rs"]
mod load;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use load::Load;

const CLIENTS: usize = 32;
/// The dashboard token the bench's apps are started with.
const API_TOKEN: &str = "tok-SECRET-dashboard-31337";

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

    /// utime + stime of the process (clock ticks), from /proc/<pid>/stat.
    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may contain spaces) start at field 3 (state);
        // utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        f.iter().sum()
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            ns: self.cpu_ns(),
            ticks: self.cpu_ticks(),
        }
    }
}

#[derive(Clone, Copy)]
struct Cpu {
    ns: u64,
    ticks: u64,
}

/// (treatment, baseline) batches of one round.
type Pair = (Batch, Batch);

/// One arm's batch: requests completed, wall time, CPU consumed.
#[derive(Clone, Copy)]
struct Batch {
    n: u64,
    secs: f64,
    cpu_ns: u64,
    cpu_ticks: u64,
}

impl Batch {
    fn between(a: Cpu, b: Cpu, n: u64, secs: f64) -> Batch {
        Batch {
            n,
            secs,
            cpu_ns: b.ns.saturating_sub(a.ns),
            cpu_ticks: b.ticks.saturating_sub(a.ticks),
        }
    }
    fn rps(&self) -> f64 {
        self.n as f64 / self.secs
    }
    /// µs of schedstat CPU per request.
    fn cpu_us(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.n.max(1) as f64
    }
    /// µs of utime+stime per request.
    fn ticks_us(&self, hz: f64) -> f64 {
        self.cpu_ticks as f64 * 1e6 / hz / self.n.max(1) as f64
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// `clients` closed-loop clients for `dur`; returns the requests completed (every one started
/// before the deadline is awaited, so CPU read afterwards covers exactly these requests).
async fn drive_for(
    client: &reqwest::Client,
    base: &str,
    paths: &Arc<Vec<String>>,
    clients: usize,
    dur: Duration,
) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (client, base, paths, next) =
            (client.clone(), base.to_owned(), paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = c;
            while Instant::now() < deadline {
                let p = &paths[i % paths.len()];
                i = i.wrapping_add(CLIENTS + 7);
                let r = client
                    .get(format!("{base}{p}"))
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success(), "{p}: {}", r.status());
                let _ = r.bytes().await;
                done += 1;
            }
            next.fetch_add(done, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    next.load(Ordering::Relaxed)
}

/// One arm alone at saturation for `dur`.
async fn batch(
    client: &reqwest::Client,
    app: &Proc,
    paths: &Arc<Vec<String>>,
    dur: Duration,
) -> Batch {
    let c0 = app.cpu();
    let t = Instant::now();
    let n = drive_for(client, &app.base, paths, CLIENTS, dur).await;
    let secs = t.elapsed().as_secs_f64();
    Batch::between(c0, app.cpu(), n, secs)
}

/// Every app at saturation at the same time, `CLIENTS / 3` clients each; the start order rotates
/// with `round`. Returns the batches in the order of `apps`.
async fn together(
    client: &reqwest::Client,
    apps: [&Proc; 3],
    paths: &Arc<Vec<String>>,
    dur: Duration,
    round: usize,
) -> [Batch; 3] {
    let cpu0 = apps.map(Proc::cpu);
    let t = Instant::now();
    let mut handles: Vec<(usize, tokio::task::JoinHandle<u64>)> = Vec::with_capacity(3);
    for k in 0..3 {
        let i = (k + round) % 3;
        let (client, base, paths) = (client.clone(), apps[i].base.clone(), paths.clone());
        handles.push((
            i,
            tokio::spawn(async move { drive_for(&client, &base, &paths, CLIENTS / 3, dur).await }),
        ));
    }
    let mut n = [0u64; 3];
    for (i, h) in handles {
        n[i] = h.await.expect("client group");
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu1 = apps.map(Proc::cpu);
    [0, 1, 2].map(|i| Batch::between(cpu0[i], cpu1[i], n[i], secs))
}

/// Mean of `xs` and its 95 % percentile bootstrap interval (resampling the pairs).
fn bootstrap(xs: &[f64]) -> (f64, f64, f64) {
    use rand::{Rng, SeedableRng};
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d6f_6e69);
    let mut means: Vec<f64> = (0..10_000)
        .map(|_| (0..n).map(|_| xs[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    (mean, means[250], means[9_749])
}

fn show(what: &str, xs: &[f64]) -> String {
    let (m, lo, hi) = bootstrap(xs);
    format!(
        "{what}: mean {:+.2} %, 95 % CI [{:+.2} %, {:+.2} %] ({} pairs)",
        m * 100.0,
        lo * 100.0,
        hi * 100.0,
        xs.len()
    )
}

/// Spawn orders of (on, off, control), one per generation in turn.
const SPAWN_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [1, 0, 2],
    [2, 0, 1],
    [0, 2, 1],
    [1, 2, 0],
    [2, 1, 0],
];

/// One generation's figures: ratios of its totals (all rounds), on and control each against off.
struct Generation {
    loss_on: f64,
    cpu_on: f64,
    ticks_on: f64,
    loss_ctl: f64,
    cpu_ctl: f64,
    rps: f64,
}

impl Generation {
    fn of(batches: &[[Batch; 3]], hz: f64) -> Generation {
        let total = |i: usize| {
            batches.iter().fold(
                Batch {
                    n: 0,
                    secs: 0.0,
                    cpu_ns: 0,
                    cpu_ticks: 0,
                },
                |acc, b| Batch {
                    n: acc.n + b[i].n,
                    secs: acc.secs + b[i].secs,
                    cpu_ns: acc.cpu_ns + b[i].cpu_ns,
                    cpu_ticks: acc.cpu_ticks + b[i].cpu_ticks,
                },
            )
        };
        let [on, off, ctl] = [total(0), total(1), total(2)];
        // `on` is compared with both unmonitored processes together, halving the weight of
        // either one's own bias; control vs off alone is the A/A.
        let unmonitored = Batch {
            n: off.n + ctl.n,
            secs: off.secs + ctl.secs,
            cpu_ns: off.cpu_ns + ctl.cpu_ns,
            cpu_ticks: off.cpu_ticks + ctl.cpu_ticks,
        };
        Generation {
            loss_on: 1.0 - on.rps() / unmonitored.rps(),
            cpu_on: on.cpu_us() / unmonitored.cpu_us() - 1.0,
            ticks_on: on.ticks_us(hz) / unmonitored.ticks_us(hz) - 1.0,
            loss_ctl: 1.0 - ctl.rps() / off.rps(),
            cpu_ctl: ctl.cpu_us() / off.cpu_us() - 1.0,
            rps: (on.rps() + off.rps() + ctl.rps()) / 3.0,
        }
    }
}

/// Two-sided 95 % Student t quantile for `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    T.get(df.saturating_sub(1)).copied().unwrap_or(1.96)
}

/// Mean of `xs` with its 95 % t-interval (few, independent units: generations).
fn show_t(what: &str, xs: &[f64]) -> String {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = t95(xs.len() - 1) * sd / n.sqrt();
    format!(
        "{what}: mean {:+.2} %, 95 % CI [{:+.2} %, {:+.2} %] (sd {:.2} %, {} generations)",
        mean * 100.0,
        (mean - half) * 100.0,
        (mean + half) * 100.0,
        sd * 100.0,
        xs.len()
    )
}

/// Prints the per-pair figures of an interleaved run.
fn print_pairs(name: &str, v: &[Pair], dur: Duration, hz: f64) {
    let mean = |f: &dyn Fn(&Batch) -> f64| -> (f64, f64) {
        let n = v.len() as f64;
        (
            v.iter().map(|p| f(&p.0)).sum::<f64>() / n,
            v.iter().map(|p| f(&p.1)).sum::<f64>() / n,
        )
    };
    let (r_on, r_off) = mean(&|b| b.rps());
    let (c_on, c_off) = mean(&|b| b.cpu_us());
    println!(
        "{name}: {} pairs of {} ms | on {r_on:.0} req/s, {c_on:.2} µs CPU/req | off {r_off:.0} req/s, {c_off:.2} µs",
        v.len(),
        dur.as_millis()
    );
    let ratios = |f: &dyn Fn(&Pair) -> f64| v.iter().map(f).collect::<Vec<_>>();
    println!(
        "  {}",
        show(
            "throughput loss (1 - on/off)",
            &ratios(&|p| 1.0 - p.0.rps() / p.1.rps())
        )
    );
    println!(
        "  {}",
        show(
            "CPU per request, schedstat (on/off - 1)",
            &ratios(&|p| p.0.cpu_us() / p.1.cpu_us() - 1.0)
        )
    );
    println!(
        "  {}",
        show(
            "CPU per request, utime+stime (on/off - 1)",
            // A batch can see zero ticks (10 ms resolution) on a busy host: left out.
            &v.iter()
                .filter(|p| p.0.cpu_ticks > 0 && p.1.cpu_ticks > 0)
                .map(|p| p.0.ticks_us(hz) / p.1.ticks_us(hz) - 1.0)
                .collect::<Vec<_>>()
        )
    );
}

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pairs = env_num("MON_BENCH_PAIRS", 0) as usize;
    let generations = env_num("MON_BENCH_GENERATIONS", 12).max(2) as usize;
    let rounds = env_num("MON_BENCH_ROUNDS", 20) as usize;
    let dur = Duration::from_millis(env_num("MON_BENCH_BATCH_MS", 500));
    let hz = clock_ticks_per_sec();

    let (pg, redis) = rt.block_on(async {
        poolproof_services::start_both(&poolproof_services::Options::default())
            .await
            .expect("start Postgres and Redis")
    });
    let (pg_url, redis_url) = (pg.url(), redis.url());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let paths = Arc::new(paths());

    if pairs > 0 {
        // Interleaved: short batches, on/off alternating, the order flipping every pair.
        let inter: Vec<Pair> = rt.block_on(async {
            let on = Proc::start(&pg_url, &redis_url, true).await;
            let off = Proc::start(&pg_url, &redis_url, false).await;
            for _ in 0..3 {
                batch(&client, &on, &paths, dur).await;
                batch(&client, &off, &paths, dur).await;
            }
            let mut v = Vec::with_capacity(pairs);
            for i in 0..pairs {
                let (a, b) = if i % 2 == 0 {
                    let a = batch(&client, &on, &paths, dur).await;
                    (a, batch(&client, &off, &paths, dur).await)
                } else {
                    let b = batch(&client, &off, &paths, dur).await;
                    (batch(&client, &on, &paths, dur).await, b)
                };
                v.push((a, b));
            }
            v
        });
        print_pairs("interleaved", &inter, dur, hz);
    }

    // Concurrent, in generations: each generation starts fresh on, off and control processes
    // (spawn order rotating through all six orders) and loads them together for `rounds`
    // rounds. A process carries a bias of its own (1-3 % between two identical processes:
    // placement, memory layout), so one set of processes decides nothing at the 0.5 % level;
    // the generation is the unit, and the interval comes from the spread between generations.
    let mut gens: Vec<Generation> = Vec::with_capacity(generations);
    for g in 0..generations {
        let result = rt.block_on(async {
            let order = SPAWN_ORDERS[g % SPAWN_ORDERS.len()];
            let mut slots: [Option<Proc>; 3] = [None, None, None];
            for &arm in &order {
                // Arm 0 is `on`; 1 (`off`) and 2 (control) run without monitoring.
                slots[arm] = Some(Proc::start(&pg_url, &redis_url, arm == 0).await);
            }
            let [Some(on), Some(off), Some(ctl)] = slots else {
                unreachable!("every arm is started")
            };
            // Warm-up: connections, caches, the pool at its working size.
            for round in 0..4 {
                together(&client, [&on, &off, &ctl], &paths, dur, round).await;
            }
            let mut batches = Vec::with_capacity(rounds);
            for round in 0..rounds {
                batches.push(together(&client, [&on, &off, &ctl], &paths, dur, round).await);
            }
            Generation::of(&batches, hz)
        });
        println!(
            "generation {:2}: on vs unmonitored: throughput loss {:+.2} %, CPU/request {:+.2} % (schedstat) | control vs off: {:+.2} %, {:+.2} % | {:.0} req/s per process",
            g + 1,
            result.loss_on * 100.0,
            result.cpu_on * 100.0,
            result.loss_ctl * 100.0,
            result.cpu_ctl * 100.0,
            result.rps
        );
        gens.push(result);
    }
    let col = |f: fn(&Generation) -> f64| gens.iter().map(f).collect::<Vec<f64>>();
    println!(
        "concurrent: {generations} generations x {rounds} rounds of {} ms (fresh processes per generation; mean and 95 % t-interval over generations)",
        dur.as_millis()
    );
    println!("  on vs unmonitored (off and control together: the monitoring cost):");
    for (what, f) in [
        (
            "throughput loss (1 - on/unmonitored)",
            (|g| g.loss_on) as fn(&Generation) -> f64,
        ),
        ("CPU per request, schedstat (on/unmonitored - 1)", |g| {
            g.cpu_on
        }),
        ("CPU per request, utime+stime (on/unmonitored - 1)", |g| {
            g.ticks_on
        }),
    ] {
        println!("    {}", show_t(what, &col(f)));
    }
    println!("  control vs off (A/A: what the method reports when nothing differs):");
    println!(
        "    {}",
        show_t("throughput loss (1 - ctl/off)", &col(|g| g.loss_ctl))
    );
    println!(
        "    {}",
        show_t(
            "CPU per request, schedstat (ctl/off - 1)",
            &col(|g| g.cpu_ctl)
        )
    );

    // Dashboard endpoints under load.
    let on = rt.block_on(Proc::start(&pg_url, &redis_url, true));
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
        // A Prometheus scrape (text 0.0.4; OpenMetrics is the same work plus no conversion).
        ("metrics", "/metrics"),
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
    drop(on);
    rt.block_on(async move {
        drop((pg, redis));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Recovery after database faults under load, against a real Postgres: added latency (through
//! poolproof's userspace TCP proxy, the harness' own fault injector), a Postgres restart, and
//! terminated sessions. During the fault the app degrades (errors or slow answers, never a hang);
//! after it, requests succeed again within a bounded time and the pool layer is back in pooled
//! mode with nothing left counted as waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::app::{vars, TestApp};
use crate::support::services;
use poolproof_services::proxy::{Direction, TcpProxy};
use serde_json::Value;
use tokio::time::Instant;

/// The load tests measure recovery times: one at a time, so they do not slow each other down.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Longest a request may take at any time: anything beyond is a hang.
const NO_HANG: Duration = Duration::from_secs(10);
/// After a fault ends, requests must succeed again within this long.
const RECOVERY: Duration = Duration::from_secs(5);

/// One request of the load: when it started (since the load began), how long it took, its status
/// (0: no answer within the client's timeout).
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Duration,
    took: Duration,
    status: u16,
}

/// Closed-loop load like the alert-latency scenario's: `users` clients, each sending at most one
/// request per `period`, 3 profiles to 1 buddy list.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    t0: Instant,
}

impl Load {
    fn start(app: &TestApp, users: u32, period: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let http = reqwest::Client::builder()
            .timeout(NO_HANG * 2)
            .build()
            .expect("http client");
        let tasks = (0..users)
            .map(|u| {
                let (stop, samples, http) = (stop.clone(), samples.clone(), http.clone());
                let base = app.url("");
                tokio::spawn(async move {
                    // Spread the clients over one period so the load is smooth.
                    tokio::time::sleep(period * u / users).await;
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut n = u64::from(u);
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        n += 7919;
                        let id = n % 2000 + 1;
                        let path = if n % 4 == 0 {
                            format!("/api/buddies?user_id={id}")
                        } else {
                            format!("/api/users/{id}")
                        };
                        let start = Instant::now();
                        let status = match http.get(format!("{base}{path}")).send().await {
                            Ok(r) => r.status().as_u16(),
                            Err(_) => 0,
                        };
                        let s = Sample {
                            start: start - t0,
                            took: start.elapsed(),
                            status,
                        };
                        if let Ok(mut v) = samples.lock() {
                            v.push(s);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            samples,
            tasks,
            t0,
        }
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Sleeps until `at` after the load began.
    async fn until(&self, at: Duration) {
        tokio::time::sleep_until(self.t0 + at).await;
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let v = self.samples.lock().expect("samples").clone();
        v
    }
}

/// Requests started in `[from, to)`.
fn window(samples: &[Sample], from: Duration, to: Duration) -> Vec<Sample> {
    samples
        .iter()
        .filter(|s| s.start >= from && s.start < to)
        .copied()
        .collect()
}

fn failed(w: &[Sample]) -> usize {
    w.iter().filter(|s| s.status != 200).count()
}

/// Per second: requests, failures, slowest; printed with the test output.
fn print_seconds(samples: &[Sample], end: Duration) {
    let mut t = Duration::ZERO;
    while t < end {
        let w = window(samples, t, t + Duration::from_secs(1));
        let slowest = w.iter().map(|s| s.took).max().unwrap_or_default();
        eprintln!(
            "t={:>2}s requests={:>3} failed={:>3} slowest={:>5} ms",
            t.as_secs(),
            w.len(),
            failed(&w),
            slowest.as_millis()
        );
        t += Duration::from_secs(1);
    }
}

/// How long after `fault_end` requests succeeded again: the start of the first 3 s window
/// (stepping 250 ms) whose requests all succeeded (at most 1 % failed, at least 20 requests).
fn recovered_after(samples: &[Sample], fault_end: Duration, end: Duration) -> Option<Duration> {
    let step = Duration::from_millis(250);
    let span = Duration::from_secs(3);
    let mut t = fault_end;
    while t + span <= end {
        let w = window(samples, t, t + span);
        if w.len() >= 20 && failed(&w) * 100 <= w.len() {
            return Some(t - fault_end);
        }
        t += step;
    }
    None
}

/// The assertions shared by every fault: no hang anywhere, recovery within [`RECOVERY`], no
/// failures from then on, and the pool layer back to normal.
async fn assert_recovered(app: &TestApp, samples: &[Sample], fault_end: Duration, end: Duration) {
    let hung: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status == 0 || s.took >= NO_HANG)
        .collect();
    assert!(hung.is_empty(), "requests hung: {hung:?}");
    let rec = recovered_after(samples, fault_end, end);
    eprintln!("recovered {rec:?} after the fault ended");
    assert!(
        rec.is_some_and(|r| r <= RECOVERY),
        "no recovery within {RECOVERY:?} after the fault ended (recovered after {rec:?})"
    );
    let late = window(samples, fault_end + RECOVERY, end);
    assert!(
        late.len() >= 100 && failed(&late) * 100 <= late.len(),
        "{} of {} requests failed from {RECOVERY:?} after the fault on",
        failed(&late),
        late.len()
    );
    let pool = app
        .wait_pool(RECOVERY, "the pool back to pooled and idle", |p| {
            p["mode"] == "pooled" && p["waiting"] == 0 && p["consecutive_failures"] == 0
        })
        .await;
    eprintln!("pool after: {pool}");
    assert!(pool["health_score"].as_u64().unwrap_or(0) >= 90, "{pool}");
}

fn stat(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovers_after_database_latency_ends() {
    let _serial = SERIAL.lock().await;
    let pg = services::postgres().await;
    let proxy = TcpProxy::start(([127, 0, 0, 1], pg.port()).into())
        .await
        .expect("start proxy");
    let url = pg.url().replace(
        &format!("127.0.0.1:{}", pg.port()),
        &format!("127.0.0.1:{}", proxy.port()),
    );
    // The app's default timeouts (acquire and connect 2 s, fallback after 3 failures), as in the
    // alert-latency scenario, and its latency: 2.5 s on every answer from Postgres.
    let app = TestApp::start(vars(&url, None, &[])).await;
    let load = Load::start(&app, 64, Duration::from_millis(1280));
    let (fault_start, fault_end) = (Duration::from_secs(3), Duration::from_secs(11));
    let end = fault_end + Duration::from_secs(12);

    load.until(fault_start).await;
    proxy.set_latency(Direction::ServerToClient, Duration::from_millis(2500));
    load.until(fault_end - Duration::from_secs(1)).await;
    let during = app.pool().await;
    load.until(fault_end).await;
    proxy.clear_latency();
    let fault_end = load.now();
    let cleared = Instant::now();
    // When the pool is back: a direct connection that gets through wakes the fallback probe,
    // so this is not left to the probe's backoff (up to 5 s).
    let db = app.state.db.clone();
    let pooled_again = tokio::spawn(async move {
        while db.mode() != pooled_app::pool::PoolMode::Pooled {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cleared.elapsed()
    });
    load.until(end).await;
    let samples = load.finish().await;
    let pooled_again = tokio::time::timeout(Duration::from_secs(1), pooled_again)
        .await
        .ok()
        .and_then(Result::ok);

    eprintln!("pool during: {during}");
    eprintln!("back to pooled mode {pooled_again:?} after the latency ended");
    assert_eq!(
        during["mode"], "fallback",
        "the pool never failed: {during}"
    );
    // Worst case with the wake-up: a probe attempt that began just before the latency ended
    // waits out its 2 s connect timeout, then the next one succeeds (measured 1.0 s; without
    // the wake-up 2.1 s here, and up to the 5 s backoff).
    assert!(
        pooled_again.is_some_and(|t| t <= Duration::from_secs(3)),
        "back to pooled mode only {pooled_again:?} after the fault"
    );
    print_seconds(&samples, end);
    // The fault took effect: requests that began and ended within it (the longest takes
    // 3.6 s: three direct connects with backoff) failed or waited out the latency.
    let w = window(
        &samples,
        fault_start + Duration::from_secs(1),
        fault_end - Duration::from_secs(4),
    );
    let degraded = w
        .iter()
        .filter(|s| s.status != 200 || s.took >= Duration::from_millis(2500))
        .count();
    let fine: Vec<&Sample> = w
        .iter()
        .filter(|s| s.status == 200 && s.took < Duration::from_millis(2500))
        .collect();
    eprintln!("answered fast during the fault: {fine:?}");
    assert!(
        !w.is_empty() && degraded * 10 >= w.len() * 9,
        "the latency did not show: {degraded} of {} degraded",
        w.len()
    );
    assert_recovered(&app, &samples, fault_end, end).await;
    assert!(proxy.stats().chunks_delayed > 0, "{:?}", proxy.stats());

    app.stop().await;
    proxy.shutdown().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovers_after_a_postgres_restart_under_load() {
    let _serial = SERIAL.lock().await;
    let pg = services::postgres().await;
    let app = TestApp::start(vars(&pg.url(), None, &[])).await;
    let load = Load::start(&app, 64, Duration::from_millis(1280));
    load.until(Duration::from_secs(3)).await;
    let before = app.pool().await;
    // Stop then start on the same port; returns once Postgres answers again.
    services::ok("restart Postgres", pg.restart().await);
    let fault_end = load.now();
    let end = fault_end + Duration::from_secs(12);
    load.until(end).await;
    let samples = load.finish().await;
    print_seconds(&samples, end);
    eprintln!("restart took until {fault_end:?} (began at 3 s)");
    assert_recovered(&app, &samples, fault_end, end).await;
    let after = app.pool().await;
    assert!(
        stat(&after, "connections_opened") > stat(&before, "connections_opened"),
        "no fresh connection after the restart: {after}"
    );

    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovers_after_its_sessions_are_terminated() {
    let _serial = SERIAL.lock().await;
    let pg = services::postgres().await;
    let app = TestApp::start(vars(&pg.url(), None, &[])).await;
    let load = Load::start(&app, 64, Duration::from_millis(1280));
    load.until(Duration::from_secs(3)).await;
    let before = app.pool().await;
    let admin = sqlx::PgPool::connect(&pg.url()).await.expect("admin pool");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'pooled-app' AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&admin)
    .await
    .expect("pg_terminate_backend");
    admin.close().await;
    let fault_end = load.now();
    let end = fault_end + Duration::from_secs(10);
    load.until(end).await;
    let samples = load.finish().await;
    print_seconds(&samples, end);
    eprintln!("terminated {killed} sessions");
    assert!(
        killed >= stat(&before, "size") as i64 && killed > 0,
        "{killed} sessions terminated; pool before: {before}"
    );
    assert_recovered(&app, &samples, fault_end, end).await;

    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

/// An acquisition cancelled while it waits (a client that went away, the health check's timeout)
/// must not stay counted as waiting: it used to, and lowered the pool's health score for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_acquisition_is_not_left_waiting() {
    let pg = services::postgres().await;
    let app = TestApp::start(vars(
        &pg.url(),
        None,
        &[("DATABASE_POOL_SIZE", "1"), ("DATABASE_POOL_MIN", "1")],
    ))
    .await;
    let db = app.state.db.clone();
    let held = db.acquire().await.expect("the only connection");
    for _ in 0..3 {
        let cancelled = tokio::time::timeout(Duration::from_millis(100), db.acquire()).await;
        assert!(cancelled.is_err(), "the pool of one was not exhausted");
    }
    drop(held);
    // The health monitor's own round trip may be queued behind `held` for a moment; once it
    // has its turn nothing may remain counted.
    let pool = app
        .wait_pool(Duration::from_secs(3), "no acquisition left waiting", |p| {
            p["waiting"] == 0
        })
        .await;
    assert_eq!(pool["mode"], "pooled", "{pool}");

    app.stop().await;
    services::ok("shutdown Postgres", pg.shutdown().await);
}

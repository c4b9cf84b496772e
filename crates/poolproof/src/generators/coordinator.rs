//! The coordinator's side of a sharded run: an HTTP endpoint the shards register with, sync
//! their clocks against, fetch their plan from, send heartbeats and results to; it merges the
//! results exactly (histograms added, counts summed) into one [`LoadOutcome`], and fails the
//! run, naming the shard, when one dies, never reports or stops sending heartbeats.

use super::engine::Launched;
use super::wire::{
    Clock, Heartbeat, HeartbeatAnswer, Hello, ShardPlan, ShardResult, Welcome, KEY_HEADER,
};
use crate::load::recorder::Recorder;
use crate::load::{LoadError, LoadHandle, LoadOutcome, LoadPlan};
use crate::observe::ShardFigures;
use crate::observe::{ClientSeries, GeneratorLag, LatencyHistogram, Window};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A shard whose heartbeats stop for this long is dead (they come once a second).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after the end of measured load the shards have to send their results.
const RESULT_GRACE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct ShardState {
    name: Option<String>,
    last_heartbeat: Option<Instant>,
    heartbeat: Heartbeat,
    result: Option<ShardResult>,
    failed: Option<String>,
}

struct Shared {
    key: String,
    count: u32,
    plan: LoadPlan,
    origin_unix_ns: i128,
    shards: Mutex<Vec<ShardState>>,
    stop: std::sync::atomic::AtomicBool,
}

/// A running coordinator endpoint and the shards' state.
pub struct Coordinator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

fn unix_ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The wall-clock instant `at` stands for, as ns since the Unix epoch (this process's clock).
pub(crate) fn instant_unix_ns(at: Instant) -> i128 {
    let (now, wall) = (Instant::now(), SystemTime::now());
    if at >= now {
        unix_ns(wall) + (at - now).as_nanos() as i128
    } else {
        unix_ns(wall) - (now - at).as_nanos() as i128
    }
}

/// The local instant of wall-clock `unix_ns` (this process's clock).
pub(crate) fn unix_ns_instant(ns: i128) -> Option<Instant> {
    let (now, wall) = (Instant::now(), unix_ns(SystemTime::now()));
    let delta = ns - wall;
    if delta >= 0 {
        now.checked_add(Duration::from_nanos(u64::try_from(delta).ok()?))
    } else {
        now.checked_sub(Duration::from_nanos(u64::try_from(-delta).ok()?))
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), StatusCode> {
    let ok = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == shared.key);
    if ok {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

async fn hello(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(h): Json<Hello>,
) -> Result<Json<Welcome>, (StatusCode, String)> {
    authorized(&s, &headers).map_err(|c| (c, "bad run key".into()))?;
    let mut shards = s
        .shards
        .lock()
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "poisoned".into()))?;
    let free = |i: usize| shards.get(i).is_some_and(|st| st.name.is_none());
    let index = match h.requested {
        Some(r) if free(r as usize) => r as usize,
        Some(r) => {
            return Err((
                StatusCode::CONFLICT,
                format!("shard {r} is taken or out of range"),
            ))
        }
        None => (0..shards.len()).find(|&i| free(i)).ok_or((
            StatusCode::CONFLICT,
            format!("all {} shards are taken", s.count),
        ))?,
    };
    shards[index].name = Some(h.name);
    shards[index].last_heartbeat = Some(Instant::now());
    Ok(Json(Welcome {
        shard: index as u32,
        count: s.count,
        now_unix_ns: unix_ns(SystemTime::now()),
    }))
}

async fn clock(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Clock>, StatusCode> {
    authorized(&s, &headers)?;
    Ok(Json(Clock {
        now_unix_ns: unix_ns(SystemTime::now()),
    }))
}

async fn shard_plan(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(shard): Path<u32>,
) -> Result<Json<ShardPlan>, StatusCode> {
    authorized(&s, &headers)?;
    if shard >= s.count {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(ShardPlan::of(
        &s.plan,
        shard,
        s.count,
        s.origin_unix_ns,
    )))
}

fn with_shard<T>(
    s: &Shared,
    shard: u32,
    f: impl FnOnce(&mut ShardState) -> T,
) -> Result<T, StatusCode> {
    let mut shards = s
        .shards
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    shards
        .get_mut(shard as usize)
        .map(f)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn heartbeat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(shard): Path<u32>,
    Json(hb): Json<Heartbeat>,
) -> Result<Json<HeartbeatAnswer>, StatusCode> {
    authorized(&s, &headers)?;
    with_shard(&s, shard, |st| {
        st.last_heartbeat = Some(Instant::now());
        st.heartbeat = hb;
    })?;
    Ok(Json(HeartbeatAnswer {
        stop: s.stop.load(Ordering::SeqCst),
    }))
}

async fn result(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(shard): Path<u32>,
    Json(r): Json<ShardResult>,
) -> Result<StatusCode, StatusCode> {
    authorized(&s, &headers)?;
    with_shard(&s, shard, |st| st.result = Some(r))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn failed(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(shard): Path<u32>,
    body: String,
) -> Result<StatusCode, StatusCode> {
    authorized(&s, &headers)?;
    let msg: String = body.chars().take(500).collect();
    with_shard(&s, shard, |st| st.failed = Some(msg))?;
    Ok(StatusCode::NO_CONTENT)
}

impl Coordinator {
    /// Serves the shards of `plan` on `bind` (port 0: any free one); their timelines start at
    /// `origin`.
    pub async fn start(
        plan: LoadPlan,
        count: u32,
        origin: Instant,
        bind: SocketAddr,
    ) -> Result<Coordinator, LoadError> {
        let shared = Arc::new(Shared {
            key: uuid::Uuid::new_v4().simple().to_string(),
            count,
            plan,
            origin_unix_ns: instant_unix_ns(origin),
            shards: Mutex::new((0..count).map(|_| ShardState::default()).collect()),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .route("/v1/hello", post(hello))
            .route("/v1/clock", get(clock))
            .route("/v1/plan/{shard}", get(shard_plan))
            .route("/v1/heartbeat/{shard}", post(heartbeat))
            .route("/v1/result/{shard}", post(result))
            .route("/v1/failed/{shard}", post(failed))
            // Results carry every per-second histogram of a long run.
            .layer(axum::extract::DefaultBodyLimit::max(256 << 20))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| LoadError::Shard(format!("coordinator: cannot listen on {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| LoadError::Shard(format!("coordinator: {e}")))?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Coordinator {
            shared,
            addr,
            server,
        })
    }

    /// The port the coordinator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The run key shards must present (never printed).
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// Waits for every shard's result while `launched` runs them, forwarding a stop on
    /// `handle` to the shards, and merges what they measured. `start_deadline`: by when every
    /// shard must have registered.
    pub async fn collect(
        &self,
        handle: &LoadHandle,
        launched: &mut Launched,
        start_deadline: Instant,
    ) -> Result<(LoadOutcome, Vec<ShardFigures>), LoadError> {
        let rec = handle.rec.clone();
        let end = rec
            .measure_start()
            .map(|s| s + rec.duration)
            .unwrap_or_else(Instant::now);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if crate::interrupt::requested() && !rec.stopping.load(Ordering::SeqCst) {
                rec.stop(Instant::now(), "poolproof: interrupted");
            }
            if rec.stopping.load(Ordering::SeqCst) {
                self.shared.stop.store(true, Ordering::SeqCst);
            }
            let now = Instant::now();
            // The engine's view first: a shard whose process or task ended without a result.
            let awaiting_registration = self
                .shared
                .shards
                .lock()
                .map_err(|_| LoadError::Shard("coordinator state poisoned".into()))?
                .iter()
                .any(|st| st.name.is_none());
            let exited = launched.exited(awaiting_registration).await;
            let done = {
                let shards = self
                    .shared
                    .shards
                    .lock()
                    .map_err(|_| LoadError::Shard("coordinator state poisoned".into()))?;
                let registered = |n: &String| shards.iter().any(|st| st.name.as_ref() == Some(n));
                if shards.iter().any(|st| st.name.is_none()) {
                    if let Some((n, why)) = exited.iter().find(|(n, _)| !registered(n)) {
                        return Err(self.fail(format!(
                            "a generator shard ({n}) ended before it registered with the coordinator: {why}"
                        )));
                    }
                }
                for (i, st) in shards.iter().enumerate() {
                    let who = shard_name(i, st);
                    if let Some(msg) = &st.failed {
                        return Err(self.fail(format!("generator {who} failed: {msg}")));
                    }
                    if st.result.is_some() {
                        continue;
                    }
                    if st.name.is_none() {
                        if now > start_deadline {
                            return Err(self.fail(format!(
                                "generator shard {i} of {} never registered with the coordinator (by the start of its timeline); {}",
                                self.shared.count,
                                launched.describe()
                            )));
                        }
                        continue;
                    }
                    if let Some(why) = exited.iter().find(|(n, _)| Some(n) == st.name.as_ref()) {
                        return Err(self.fail(format!(
                            "generator {who} ended without reporting its measurements: {}",
                            why.1
                        )));
                    }
                    if st
                        .last_heartbeat
                        .is_some_and(|t| now.duration_since(t) > HEARTBEAT_TIMEOUT)
                    {
                        return Err(self.fail(format!(
                            "generator {who} stopped sending heartbeats {} s ago (it died or lost the network)",
                            st.last_heartbeat.map_or(0, |t| now.duration_since(t).as_secs())
                        )));
                    }
                    if now > end + RESULT_GRACE {
                        return Err(self.fail(format!(
                            "generator {who} sent no result within {} s after the load ended",
                            RESULT_GRACE.as_secs()
                        )));
                    }
                }
                let completed: u64 = shards.iter().map(|s| s.heartbeat.completed).sum();
                let errors: u64 = shards.iter().map(|s| s.heartbeat.errors).sum();
                rec.completed.store(completed, Ordering::Relaxed);
                rec.errors.store(errors, Ordering::Relaxed);
                shards.iter().all(|s| s.result.is_some())
            };
            if done {
                break;
            }
        }
        rec.finished.store(true, Ordering::SeqCst);
        self.merge(&rec)
    }

    fn fail(&self, message: String) -> LoadError {
        self.shared.stop.store(true, Ordering::SeqCst);
        LoadError::Shard(message)
    }

    fn merge(&self, rec: &Recorder) -> Result<(LoadOutcome, Vec<ShardFigures>), LoadError> {
        let shards = self
            .shared
            .shards
            .lock()
            .map_err(|_| LoadError::Shard("coordinator state poisoned".into()))?;
        let mut client = ClientSeries::new(self.shared.plan.route_names());
        let mut lag = LatencyHistogram::new();
        let (mut late, mut completed, mut interrupted) = (0u64, 0u64, false);
        let mut load_end = rec.duration.as_secs_f64();
        let mut figures = Vec::new();
        for (i, st) in shards.iter().enumerate() {
            let who = shard_name(i, st);
            let Some(r) = &st.result else {
                return Err(LoadError::Shard(format!("generator {who} sent no result")));
            };
            let series = r.series.decode().map_err(|e| {
                LoadError::Shard(format!("generator {who} sent a malformed result: {e}"))
            })?;
            let shard_lag = super::wire::decode_histogram(&r.lag).map_err(|e| {
                LoadError::Shard(format!("generator {who} sent a malformed lag: {e}"))
            })?;
            let window = Window::new(0.0, r.load_end_s);
            let stats = series.window(&[window], None);
            figures.push(ShardFigures {
                shard: i as u32,
                name: r.name.clone(),
                requests: stats.requests,
                rate_rps: stats.request_rps().unwrap_or(0.0),
                scheduled: stats.scheduled,
                late_starts: r.lag_late,
                lag_starts: shard_lag.count(),
                lag_p99_ms: shard_lag.quantile_ms(0.99),
                cpu_seconds: r.cpu_seconds,
                busy_cores: if r.wall_seconds > 0.0 {
                    r.cpu_seconds / r.wall_seconds
                } else {
                    0.0
                },
                clock_offset_ms: r.clock_offset_ms,
                clock_rtt_ms: r.clock_rtt_ms,
            });
            client.merge(&series);
            lag.merge(&shard_lag);
            late += r.lag_late;
            completed += r.completed;
            interrupted |= r.interrupted;
            load_end = load_end.min(r.load_end_s);
        }
        let outcome = LoadOutcome {
            client,
            warmup: rec.warmup_window(),
            load: Window::new(0.0, load_end),
            interrupted,
            by_group: Vec::new(),
            completed_requests: completed,
            generator: GeneratorLag {
                starts: lag.count(),
                late,
                p99_ms: lag.quantile_ms(0.99),
                max_ms: lag.max_ms(),
            },
        };
        Ok((outcome, figures))
    }
}

fn shard_name(i: usize, st: &ShardState) -> String {
    match &st.name {
        Some(n) => format!("shard {i} ({n})"),
        None => format!("shard {i}"),
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

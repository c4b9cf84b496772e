//! The server-side sampler: every second, GET each app instance's monitoring endpoints (pool
//! stats, health status, realtime metrics) and keep the answers as a time series. A failed fetch
//! is recorded as a gap (with the reason), never as an error of the run.

use crate::observe::{PoolStats, ServerSample};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The endpoints sampled, relative to an instance's base URL.
pub const POOL: &str = "/api/performance/pool";
pub const HEALTH: &str = "/api/performance/health/status";
pub const REALTIME: &str = "/api/performance/metrics/realtime";

/// One endpoint's answer, or why there is none.
#[derive(Debug, Clone)]
pub enum Fetched {
    Json(Value),
    Gap(String),
}

impl Fetched {
    pub fn json(&self) -> Option<&Value> {
        match self {
            Fetched::Json(v) => Some(v),
            Fetched::Gap(_) => None,
        }
    }
}

/// One sampling tick for one instance.
#[derive(Debug, Clone)]
pub struct RawSample {
    /// When the sample was taken (converted to an offset from the start of measured load,
    /// which is only known once load runs, by [`RawSample::to_server_sample`]).
    pub at: Instant,
    /// 0-based instance index.
    pub instance: usize,
    pub pool: Fetched,
    pub health: Fetched,
    pub realtime: Fetched,
}

/// A running sampler; [`Sampler::stop`] ends it and returns the series.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<RawSample>>,
}

impl Sampler {
    /// Starts sampling `bases` (instance base URLs) every `interval`.
    pub fn start(
        client: reqwest::Client,
        bases: Vec<String>,
        token: Option<String>,
        interval: Duration,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let at = Instant::now();
                let fetches = bases.iter().enumerate().map(|(instance, base)| {
                    let client = &client;
                    let token = token.as_deref();
                    async move {
                        let (pool, health, realtime) = tokio::join!(
                            fetch(client, base, POOL, token, interval),
                            fetch(client, base, HEALTH, token, interval),
                            fetch(client, base, REALTIME, token, interval),
                        );
                        RawSample {
                            at,
                            instance,
                            pool,
                            health,
                            realtime,
                        }
                    }
                });
                samples.extend(futures::future::join_all(fetches).await);
            }
            samples
        });
        Self { stop, task }
    }

    /// Stops sampling and returns every sample taken, in time order.
    pub async fn stop(self) -> Vec<RawSample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// `now - origin` in seconds, negative when `now` is before `origin`.
pub fn offset_secs(origin: Instant, now: Instant) -> f64 {
    match now.checked_duration_since(origin) {
        Some(d) => d.as_secs_f64(),
        None => -(origin.duration_since(now).as_secs_f64()),
    }
}

impl RawSample {
    /// The sample in the report's terms, its time an offset from `origin` (the start of
    /// measured load). Field names follow pooled-app's JSON (`PoolStatsSnapshot`, the health
    /// status's `composite_score`, the realtime summary).
    pub fn to_server_sample(&self, origin: Instant) -> ServerSample {
        let mut errors = Vec::new();
        for f in [&self.pool, &self.health, &self.realtime] {
            if let Fetched::Gap(reason) = f {
                errors.push(reason.clone());
            }
        }
        let pool = self.pool.json().map(pool_stats);
        let realtime = self.realtime.json();
        ServerSample {
            t: offset_secs(origin, self.at),
            instance: self.instance,
            mode: pool
                .as_ref()
                .map(|p| p.mode.clone())
                .filter(|m| !m.is_empty()),
            pool,
            health_score: self
                .health
                .json()
                .and_then(|v| num(v, &["composite_score"])),
            server_p95_ms: realtime.and_then(|v| {
                first_num(
                    v,
                    &[
                        &["p95_ms"],
                        &["latency", "p95_ms"],
                        &["overall", "p95_ms"],
                        &["overall", "latency", "p95_ms"],
                    ],
                )
            }),
            route_p95_ms: realtime.map(route_p95s).unwrap_or_default(),
            server_rps: realtime.and_then(|v| {
                first_num(
                    v,
                    &[&["rps"], &["overall", "rps"], &["requests_per_second"]],
                )
            }),
            errors,
        }
    }
}

/// `routes[]` of the realtime summary: route template → `latency_ms.p95_ms`.
fn route_p95s(v: &Value) -> std::collections::BTreeMap<String, f64> {
    v.get("routes")
        .and_then(Value::as_array)
        .map(|routes| {
            routes
                .iter()
                .filter_map(|r| {
                    let name = r.get("route")?.as_str()?.to_owned();
                    let p95 = num(r, &["latency_ms", "p95_ms"])?;
                    Some((name, p95))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pool_stats(v: &Value) -> PoolStats {
    let u = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    PoolStats {
        mode: v
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        size: u("size") as u32,
        idle: u("idle") as u32,
        in_use: u("in_use") as u32,
        waiting: u("waiting") as u32,
        max: u("max") as u32,
        utilization_percent: num(v, &["utilization_percent"]).unwrap_or(0.0),
        efficiency_percent: num(v, &["pool_efficiency_percent"]).unwrap_or(0.0),
        acquisitions: u("acquisitions"),
        connections_opened: u("connections_opened"),
        acquire_timeouts: u("acquire_timeouts"),
        fallback_activations: u("fallback_activations"),
        acquire_wait_p95_ms: num(v, &["acquire_wait", "p95_us"])
            .map(|us| us / 1000.0)
            .unwrap_or(0.0),
        acquire_wait_mean_ms: num(v, &["acquire_wait", "mean_us"])
            .map(|us| us / 1000.0)
            .unwrap_or(0.0),
        health_score: num(v, &["health_score"]).unwrap_or(0.0),
    }
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn first_num(v: &Value, paths: &[&[&str]]) -> Option<f64> {
    paths.iter().find_map(|p| num(v, p))
}

async fn fetch(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Fetched {
    let mut req = client.get(format!("{base}{path}")).timeout(timeout);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Fetched::Gap(format!("{path}: timed out")),
        Err(e) if e.is_connect() => return Fetched::Gap(format!("{path}: connection refused")),
        Err(_) => return Fetched::Gap(format!("{path}: request failed")),
    };
    let status = resp.status();
    // The health endpoint answers 503 with a body when unhealthy: that body is a sample too.
    if !(status.is_success() || status.as_u16() == 503) {
        return Fetched::Gap(format!("{path}: HTTP {}", status.as_u16()));
    }
    match resp.json::<Value>().await {
        Ok(v) => Fetched::Json(v),
        Err(_) => Fetched::Gap(format!("{path}: body is not JSON")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::Json;

    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer t0ken")
    }

    /// A real HTTP server standing in for an app instance: pool answers (with the token), health
    /// answers 503 with a body, realtime fails with 500.
    async fn serve() -> (String, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .route(
                POOL,
                get(|h: HeaderMap| async move {
                    if authorized(&h) {
                        Ok(Json(serde_json::json!({"size": 5, "in_use": 1, "acquire_wait": {"p95_us": 1500}})))
                    } else {
                        Err(StatusCode::UNAUTHORIZED)
                    }
                }),
            )
            .route(
                HEALTH,
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(serde_json::json!({"composite_score": 12})),
                    )
                }),
            )
            .route(
                REALTIME,
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (base, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_every_interval_and_records_gaps() {
        let (base, server) = serve().await;
        // Load starts 1 s from now: the first samples are warm-up, with negative times.
        let origin = Instant::now() + Duration::from_secs(1);
        let client = reqwest::Client::new();
        let sampler = Sampler::start(
            client,
            vec![base.clone(), "http://127.0.0.1:9".into()],
            Some("t0ken".into()),
            Duration::from_millis(100),
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        server.abort();
        let _ = server.await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let samples = sampler.stop().await;

        let live: Vec<_> = samples.iter().filter(|s| s.instance == 0).collect();
        assert!(live.len() >= 5, "expected >= 5 ticks, got {}", live.len());
        let first = live[0];
        assert_eq!(
            first.pool.json().and_then(|v| v["in_use"].as_u64()),
            Some(1)
        );
        assert_eq!(
            first
                .health
                .json()
                .and_then(|v| v["composite_score"].as_u64()),
            Some(12)
        );
        assert!(matches!(&first.realtime, Fetched::Gap(r) if r.contains("HTTP 500")));
        // After the server went away, the samples are gaps, not a crash.
        let last = live[live.len() - 1];
        assert!(matches!(&last.pool, Fetched::Gap(_)), "{:?}", last.pool);
        // The unreachable instance is sampled too, as gaps.
        assert!(samples
            .iter()
            .any(|s| s.instance == 1 && matches!(s.pool, Fetched::Gap(_))));
        assert!(samples.windows(2).all(|w| w[0].at <= w[1].at));
        let server = first.to_server_sample(origin);
        assert!(server.t < -0.5, "warm-up sample at {}", server.t);
        assert_eq!(
            server
                .pool
                .as_ref()
                .map(|p| (p.in_use, p.acquire_wait_p95_ms)),
            Some((1, 1.5))
        );
        assert_eq!(server.health_score, Some(12.0));
        assert_eq!(server.server_p95_ms, None);
        assert_eq!(server.errors.len(), 1, "{:?}", server.errors);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_token_the_protected_endpoint_is_a_gap() {
        let (base, server) = serve().await;
        let sampler = Sampler::start(
            reqwest::Client::new(),
            vec![base],
            None,
            Duration::from_millis(100),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let samples = sampler.stop().await;
        server.abort();
        assert!(matches!(&samples[0].pool, Fetched::Gap(r) if r.contains("HTTP 401")));
    }
}

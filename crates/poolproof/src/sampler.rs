//! The server-side sampler: every second, GET each app instance's monitoring endpoints (pool
//! stats, health status, realtime metrics) and keep the answers as a time series. A failed fetch
//! is recorded as a gap (with the reason), never as an error of the run.

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
    /// Time since the sampler's origin (the start of the run's load, warm-up included).
    pub at: Duration,
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
    /// Starts sampling `bases` (instance base URLs) every `interval`, times measured from `origin`.
    pub fn start(
        client: reqwest::Client,
        bases: Vec<String>,
        token: Option<String>,
        origin: Instant,
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
                let at = origin.elapsed();
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
                        Ok(Json(serde_json::json!({"size": 5, "in_use": 1})))
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
        let client = reqwest::Client::new();
        let origin = Instant::now();
        let sampler = Sampler::start(
            client,
            vec![base.clone(), "http://127.0.0.1:9".into()],
            Some("t0ken".into()),
            origin,
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
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_token_the_protected_endpoint_is_a_gap() {
        let (base, server) = serve().await;
        let sampler = Sampler::start(
            reqwest::Client::new(),
            vec![base],
            None,
            Instant::now(),
            Duration::from_millis(100),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let samples = sampler.stop().await;
        server.abort();
        assert!(matches!(&samples[0].pool, Fetched::Gap(r) if r.contains("HTTP 401")));
    }
}

//! `poolproof generate`: one generator shard. It registers with the coordinator, estimates
//! its clock offset, fetches its share of the load, starts it on the coordinator's instant,
//! sends a heartbeat every second (stopping when told) and finally its measurements, every
//! histogram whole.

use super::coordinator::{instant_unix_ns, unix_ns_instant};
use super::wire::{
    encode_histogram, Clock, Heartbeat, HeartbeatAnswer, Hello, ShardPlan, ShardResult, Welcome,
    WireSeries, KEY_HEADER,
};
use crate::load::{Attack, LoadHandle};
use std::time::{Duration, Instant};

/// How long a shard keeps trying to reach the coordinator at start (containers and pods may
/// start before it answers, or it before them).
const REGISTER_FOR: Duration = Duration::from_secs(30);
/// Clock exchanges; the one with the shortest round trip gives the offset (NTP's filter).
const CLOCK_ROUNDS: usize = 8;
/// goose starts this long before the timeline's origin, so its users are up when the first
/// scheduled start is due.
const LEAD: Duration = Duration::from_millis(500);

/// Where the shard finds its coordinator, from its environment.
#[derive(Debug, Clone)]
pub struct ShardEnv {
    pub coordinator: String,
    pub key: String,
    /// The index its engine gave it (Kubernetes' JOB_COMPLETION_INDEX), if any.
    pub requested: Option<u32>,
    pub name: String,
}

/// A shard that could not run (exit 3); the message is also sent to the coordinator.
#[derive(Debug, thiserror::Error)]
#[error("generator shard: {0}")]
pub struct ShardError(pub String);

impl ShardEnv {
    /// Reads `POOLPROOF_COORDINATOR`, `POOLPROOF_RUN_KEY`, and optionally
    /// `POOLPROOF_SHARD`/`JOB_COMPLETION_INDEX` and `POOLPROOF_GENERATOR_NAME`.
    pub fn from_env() -> Result<ShardEnv, ShardError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let coordinator = var("POOLPROOF_COORDINATOR")
            .ok_or_else(|| ShardError("POOLPROOF_COORDINATOR is not set (the coordinator's URL)".into()))?;
        if !coordinator.starts_with("http://") {
            return Err(ShardError(format!(
                "POOLPROOF_COORDINATOR: `{coordinator}` is not an http:// URL"
            )));
        }
        let key = var("POOLPROOF_RUN_KEY")
            .ok_or_else(|| ShardError("POOLPROOF_RUN_KEY is not set".into()))?;
        let requested = match var("POOLPROOF_SHARD").or_else(|| var("JOB_COMPLETION_INDEX")) {
            Some(v) => Some(v.parse().map_err(|_| {
                ShardError(format!("POOLPROOF_SHARD/JOB_COMPLETION_INDEX: `{v}` is not a shard index"))
            })?),
            None => None,
        };
        let name = var("POOLPROOF_GENERATOR_NAME")
            .unwrap_or_else(|| super::engine::local_name(std::process::id()));
        Ok(ShardEnv {
            coordinator: coordinator.trim_end_matches('/').to_string(),
            key,
            requested,
            name,
        })
    }
}

struct Link {
    http: reqwest::Client,
    env: ShardEnv,
}

impl Link {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.env.coordinator)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ShardError> {
        let r = self
            .http
            .get(self.url(path))
            .header(KEY_HEADER, &self.env.key)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| ShardError(format!("GET {path}: {}", brief(e))))?;
        r.json()
            .await
            .map_err(|e| ShardError(format!("GET {path}: {}", brief(e))))
    }

    async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ShardError> {
        let r = self
            .http
            .post(self.url(path))
            .header(KEY_HEADER, &self.env.key)
            .json(body)
            .send()
            .await
            .map_err(|e| ShardError(format!("POST {path}: {}", brief(e))))?;
        let status = r.status();
        if !status.is_success() {
            let text = r.text().await.unwrap_or_default();
            return Err(ShardError(format!("POST {path}: {status} {text}")));
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return serde_json::from_str("null")
                .map_err(|e| ShardError(format!("POST {path}: {e}")));
        }
        r.json()
            .await
            .map_err(|e| ShardError(format!("POST {path}: {}", brief(e))))
    }
}

/// A reqwest error without its URL: short, stable messages.
fn brief(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// Runs one shard to the end; the process exit code follows from the result.
pub async fn run_shard(env: ShardEnv) -> Result<(), ShardError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ShardError(format!("HTTP client: {e}")))?;
    let link = Link { http, env };
    let welcome = register(&link).await?;
    let shard = welcome.shard;
    let outcome = run_registered(&link, shard).await;
    if let Err(e) = &outcome {
        let _ = link
            .http
            .post(link.url(&format!("/v1/failed/{shard}")))
            .header(KEY_HEADER, &link.env.key)
            .body(e.0.clone())
            .send()
            .await;
    }
    outcome
}

async fn register(link: &Link) -> Result<Welcome, ShardError> {
    let hello = Hello {
        requested: link.env.requested,
        name: link.env.name.clone(),
    };
    let until = Instant::now() + REGISTER_FOR;
    loop {
        match link.post::<_, Welcome>("/v1/hello", &hello).await {
            Ok(w) => return Ok(w),
            Err(e) if Instant::now() < until && !e.0.contains(" 409 ") && !e.0.contains(" 401 ") => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The shard's clock minus the coordinator's, and the round trip it was measured over (ms).
async fn clock_offset(link: &Link) -> Result<(f64, f64), ShardError> {
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..CLOCK_ROUNDS {
        let t0 = instant_unix_ns(Instant::now());
        let c: Clock = link.get("/v1/clock").await?;
        let t1 = instant_unix_ns(Instant::now());
        let rtt = (t1 - t0) as f64 / 1e6;
        let offset = ((t0 + t1) / 2 - c.now_unix_ns) as f64 / 1e6;
        if best.is_none_or(|(_, r)| rtt < r) {
            best = Some((offset, rtt));
        }
    }
    best.ok_or_else(|| ShardError("no clock exchange".into()))
}

async fn run_registered(link: &Link, shard: u32) -> Result<(), ShardError> {
    let (offset_ms, rtt_ms) = clock_offset(link).await?;
    let plan: ShardPlan = link.get(&format!("/v1/plan/{shard}")).await?;
    let load = plan
        .load_plan()
        .map_err(|e| ShardError(format!("plan: {e}")))?;
    // The coordinator's instant on this shard's clock.
    let origin_ns = plan.origin_unix_ns + (offset_ms * 1e6) as i128;
    let origin = unix_ns_instant(origin_ns)
        .ok_or_else(|| ShardError("the start instant is out of range".into()))?;
    let late = Instant::now().saturating_duration_since(origin);
    if late > Duration::ZERO {
        return Err(ShardError(format!(
            "registered {} ms after the load's start instant (raise load.generators.start_after)",
            late.as_millis()
        )));
    }
    let attack = Attack::new(load).map_err(|e| ShardError(e.to_string()))?;
    attack.start_at(origin);
    let handle = attack.handle();
    // Heartbeats from now on: the coordinator counts a silent shard as dead.
    let beats = tokio::spawn(heartbeats(
        Link {
            http: link.http.clone(),
            env: link.env.clone(),
        },
        shard,
        handle.clone(),
    ));
    tokio::time::sleep_until(origin.checked_sub(LEAD).unwrap_or(origin).into()).await;
    let cpu = crate::app::meter::CpuMeter::start();
    let outcome = attack.run().await;
    beats.abort();
    let outcome = outcome.map_err(|e| ShardError(e.to_string()))?;
    let cpu = cpu.and_then(|m| m.finish());
    let lag = handle.rec.lag_histogram();
    let result = ShardResult {
        shard,
        name: link.env.name.clone(),
        series: WireSeries::of(&outcome.client),
        lag: encode_histogram(&lag),
        lag_late: outcome.generator.late,
        completed: outcome.completed_requests,
        load_end_s: outcome.load.end,
        interrupted: outcome.interrupted,
        cpu_seconds: cpu.map_or(0.0, |c| c.cpu_seconds),
        wall_seconds: cpu.map_or(0.0, |c| c.wall_seconds),
        clock_offset_ms: offset_ms,
        clock_rtt_ms: rtt_ms,
    };
    link.post::<_, ()>(&format!("/v1/result/{shard}"), &result)
        .await
        .map(|_| ())
}

async fn heartbeats(link: Link, shard: u32, handle: LoadHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let p = handle.progress();
        let beat = Heartbeat {
            completed: p.requests,
            errors: p.errors,
            rps: p.rps,
        };
        if let Ok(HeartbeatAnswer { stop: true }) = link
            .post::<_, HeartbeatAnswer>(&format!("/v1/heartbeat/{shard}"), &beat)
            .await
        {
            handle.stop();
        }
    }
}

//! The `pooled-app` source: pooled-app's JSON monitoring API (pool stats, health status,
//! realtime metrics), read into the report's terms. Field names follow pooled-app's JSON
//! (`PoolStatsSnapshot`, the health status's `composite_score`, the realtime summary).

use super::{Fetched, RawSample};
use crate::observe::PoolStats;
use serde_json::Value;

/// The endpoints sampled, relative to an instance's base URL.
pub const POOL: &str = "/api/performance/pool";
pub const HEALTH: &str = "/api/performance/health/status";
pub const REALTIME: &str = "/api/performance/metrics/realtime";

/// Fills the pooled-app fields of a server sample from its three answers.
pub(super) fn fill(raw: &RawSample, sample: &mut crate::observe::ServerSample) {
    let (Some(pool), Some(health), Some(realtime)) = (&raw.pool, &raw.health, &raw.realtime) else {
        return;
    };
    for f in [pool, health, realtime] {
        if let Fetched::Gap(reason) = f {
            sample.errors.push(reason.clone());
        }
    }
    let pool = pool.json().map(pool_stats);
    let realtime = realtime.json();
    sample.mode = pool
        .as_ref()
        .map(|p| p.mode.clone())
        .filter(|m| !m.is_empty());
    sample.pool = pool;
    sample.health_score = health.json().and_then(|v| num(v, &["composite_score"]));
    sample.server_p95_ms = realtime.and_then(|v| {
        first_num(
            v,
            &[
                &["p95_ms"],
                &["latency", "p95_ms"],
                &["overall", "p95_ms"],
                &["overall", "latency", "p95_ms"],
            ],
        )
    });
    sample.route_p95_ms = realtime.map(route_p95s).unwrap_or_default();
    sample.server_rps = realtime.and_then(|v| {
        first_num(
            v,
            &[&["rps"], &["overall", "rps"], &["requests_per_second"]],
        )
    });
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

/// The three endpoints of one instance, fetched together.
pub(super) async fn fetch_all(endpoint: super::Endpoint<'_>) -> (Fetched, Fetched, Fetched) {
    tokio::join!(
        fetch(endpoint, POOL),
        fetch(endpoint, HEALTH),
        fetch(endpoint, REALTIME),
    )
}

async fn fetch(endpoint: super::Endpoint<'_>, path: &str) -> Fetched {
    // The health endpoint answers 503 with a body when unhealthy: that body is a sample too.
    let body = match endpoint.get(path, &[503]).await {
        Ok(b) => b,
        Err(gap) => return Fetched::Gap(gap),
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => Fetched::Json(v),
        Err(_) => Fetched::Gap(format!("{path}: body is not JSON")),
    }
}

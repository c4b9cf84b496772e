//! `/metrics/realtime?scope=cluster`: the realtime figures of every instance merged. Each
//! instance writes its finished seconds to Redis (`metrics/store.rs`); this reads the last
//! seconds of all instances and merges their HDR histograms, so the percentiles are those of
//! all requests together (never an average of per-instance percentiles). The window covers
//! whole finished seconds `[now − window, now)`; the second that finished last may still be on
//! its way to Redis for a few milliseconds after the boundary.

use serde::Serialize;

use super::bucket::{Bucket, LiveBucket};
use super::collector::{pct, KindStats, RouteStats, Stats};
use super::histogram::Latency;
use super::store::{self, keys};
use crate::clock::unix_now;
use crate::redis_link::{LinkError, RedisLink};

/// Longest headline window (`window`), seconds.
pub const MAX_WINDOW: u64 = 3600;
/// Default headline window, as in instance scope.
pub const DEFAULT_WINDOW: u64 = 10;

/// What cluster scope answers.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRealtime {
    pub monitoring_enabled: bool,
    pub scope: &'static str,
    /// Instances that wrote metrics within the read span.
    pub instances: Vec<String>,
    /// End of the window (exclusive), Unix seconds.
    pub timestamp: u64,
    /// The headline's window, seconds.
    pub window_seconds: u64,
    /// Headline figures: app traffic of all instances over `window_seconds`.
    pub requests: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rps: f64,
    pub error_rate_percent: f64,
    pub window: Stats,
    pub last_10s: Stats,
    pub last_60s: Stats,
    /// Per route over the last 60 s (monitoring routes included, as in instance scope).
    pub routes: Vec<RouteStats>,
    pub query_kinds: Vec<KindStats>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The finished seconds of every instance with `start` in `[from, now)`.
async fn seconds(
    link: &RedisLink,
    from: u64,
    now: u64,
) -> Result<(Vec<String>, Vec<Bucket>), LinkError> {
    let (instances, raw) = store::read_since(link, from, keys::seconds, format!("({now}")).await?;
    let buckets = raw
        .into_iter()
        .flatten()
        .filter_map(|b| Bucket::decode(&b).ok())
        .filter(|b| b.span == 1)
        .collect();
    Ok((instances, buckets))
}

fn merged(buckets: &[Bucket], from: u64) -> LiveBucket {
    let mut acc = LiveBucket::new(from, 0);
    for b in buckets.iter().filter(|b| b.start >= from) {
        // A bucket whose histograms do not decode is left out rather than failing the answer.
        let _ = acc.absorb(b);
    }
    acc
}

fn stats(acc: &LiveBucket, secs: u64) -> Stats {
    let requests = acc.overall.len();
    Stats {
        window_seconds: secs,
        requests,
        errors: acc.errors,
        error_rate_percent: pct(acc.errors, requests),
        rps: round2(requests as f64 / secs as f64),
        latency_ms: Latency::of(&acc.overall),
    }
}

/// Builds the cluster view with a headline over `window` seconds (1..=[`MAX_WINDOW`]).
pub async fn realtime(link: &RedisLink, window: u64) -> Result<ClusterRealtime, LinkError> {
    let now = unix_now();
    let span = window.max(60);
    let (instances, buckets) = seconds(link, now.saturating_sub(span), now).await?;
    let w = stats(&merged(&buckets, now.saturating_sub(window)), window);
    let last_10s = stats(&merged(&buckets, now.saturating_sub(10)), 10);
    let m60 = merged(&buckets, now.saturating_sub(60));
    let last_60s = stats(&m60, 60);
    let routes = RouteStats::all_of(&m60, 60.0);
    let query_kinds = KindStats::all_of(&m60);
    Ok(ClusterRealtime {
        monitoring_enabled: true,
        scope: "cluster",
        instances,
        timestamp: now,
        window_seconds: window,
        requests: w.requests,
        p50_ms: w.latency_ms.p50_ms,
        p95_ms: w.latency_ms.p95_ms,
        p99_ms: w.latency_ms.p99_ms,
        rps: w.rps,
        error_rate_percent: w.error_rate_percent,
        window: w,
        last_10s,
        last_60s,
        routes,
        query_kinds,
    })
}

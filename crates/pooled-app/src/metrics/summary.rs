//! Summaries over hours: merges the stored minute and second buckets of every instance (one
//! aggregated view) into exact percentiles. Completed minutes come from the minute roll-ups, the
//! rest from seconds, so nothing is counted twice. Without Redis it answers from this instance's
//! in-memory hour and says so.

use std::sync::Arc;

use serde::Serialize;

use super::baseline::Baseline;
use super::bucket::{Bucket, LiveBucket};
use super::collector::{pct, MetricsCollector, Regression};
use super::histogram::Latency;
use super::store::{self, keys, StoreStatus};
use crate::clock::unix_now;
use crate::redis_link::{LinkError, RedisLink};

/// `/metrics/summary?hours=N` in the report's shape, plus breakdowns.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub monitoring_enabled: bool,
    pub time_window_hours: f64,
    pub total_requests: u64,
    pub total_errors: u64,
    pub error_rate_percent: f64,
    pub latency_percentiles_ms: Percentiles,
    pub throughput_rps: f64,
    pub routes: Vec<RouteSummary>,
    pub query_kinds: Vec<KindSummary>,
    /// "redis" (all instances) or "local" (this instance's memory, Redis unavailable).
    pub source: &'static str,
    pub instances: Vec<String>,
    pub baseline: Option<Baseline>,
    pub regression: Option<Regression>,
    pub store: StoreStatus,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl From<Latency> for Percentiles {
    fn from(l: Latency) -> Self {
        Percentiles {
            p50: l.p50_ms,
            p95: l.p95_ms,
            p99: l.p99_ms,
            max: l.max_ms,
            mean: l.mean_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteSummary {
    pub route: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate_percent: f64,
    pub latency_percentiles_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub kind: String,
    pub queries: u64,
    pub latency_percentiles_ms: Percentiles,
}

/// Errors building a summary from Redis (the caller falls back to local data).
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// Buckets of all instances covering `[from, now]` from Redis: completed minute roll-ups, plus
/// seconds only where no roll-up covers them (the partial first minute and the recent minutes
/// not rolled up yet), so a 24 h summary reads ~1,440 minutes, not 86,400 seconds.
async fn fetch(
    link: &RedisLink,
    from: u64,
    now: u64,
) -> Result<(Vec<String>, Vec<Bucket>), SummaryError> {
    let (instances, raw) = store::read_since(link, from, keys::minutes, now.to_string()).await?;
    let first_full_minute = from.div_ceil(60) * 60;
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    for (i, mins) in instances.iter().zip(raw) {
        let minutes: Vec<Bucket> = mins.iter().filter_map(|b| Bucket::decode(b).ok()).collect();
        let covered: std::collections::HashSet<u64> = minutes.iter().map(|m| m.start).collect();
        let after = minutes
            .iter()
            .map(|m| m.start + 60)
            .max()
            .unwrap_or(first_full_minute)
            .max(from);
        out.extend(minutes);
        ranges.push((i.clone(), covered, from, first_full_minute.min(after)));
        ranges.push((i.clone(), std::collections::HashSet::new(), after, now));
    }
    let raw = store::ranges(
        link,
        ranges
            .iter()
            .map(|(i, _, lo, hi)| (keys::seconds(i), *lo, format!("({}", hi.max(lo))))
            .collect(),
    )
    .await?;
    for ((_, covered, _, _), secs) in ranges.iter().zip(raw) {
        for s in secs {
            if let Ok(b) = Bucket::decode(&s) {
                if (b.count > 0 || !b.routes.is_empty())
                    && !covered.contains(&(b.start - b.start % 60))
                {
                    out.push(b);
                }
            }
        }
    }
    Ok((instances, out))
}

/// Builds the summary over the last `hours` hours.
pub async fn summary(
    link: Option<&RedisLink>,
    collector: &MetricsCollector,
    store: StoreStatus,
    hours: f64,
) -> Summary {
    let now = unix_now();
    let window = (hours * 3600.0).round().max(1.0) as u64;
    let from = now.saturating_sub(window);
    let (source, instances, buckets) = match link {
        Some(l) => match fetch(l, from, now).await {
            Ok((i, b)) => ("redis", i, b),
            Err(e) => {
                tracing::debug!(error = %e, "summary from local memory");
                local(collector, from)
            }
        },
        None => local(collector, from),
    };
    let mut acc = LiveBucket::new(from, 0);
    let mut earliest = now;
    for b in &buckets {
        if b.count > 0 || !b.routes.is_empty() {
            earliest = earliest.min(b.start);
        }
        let _ = acc.absorb(b);
    }
    let total = acc.overall.len();
    let span = now.saturating_sub(earliest.max(from)).max(1);
    let rt = collector.realtime();
    Summary {
        monitoring_enabled: collector.enabled(),
        time_window_hours: hours,
        total_requests: total,
        total_errors: acc.errors,
        error_rate_percent: pct(acc.errors, total),
        latency_percentiles_ms: Latency::of(&acc.overall).into(),
        throughput_rps: (total as f64 / span as f64 * 100.0).round() / 100.0,
        routes: acc
            .routes
            .iter()
            .map(|(k, r)| RouteSummary {
                route: k.clone(),
                requests: r.hist.len(),
                errors: r.errors,
                error_rate_percent: pct(r.errors, r.hist.len()),
                latency_percentiles_ms: Latency::of(&r.hist).into(),
            })
            .collect(),
        query_kinds: acc
            .db
            .iter()
            .map(|(k, h)| KindSummary {
                kind: k.clone(),
                queries: h.len(),
                latency_percentiles_ms: Latency::of(h).into(),
            })
            .collect(),
        source,
        instances,
        baseline: rt.baseline.clone(),
        regression: rt.regression.clone(),
        store,
    }
}

fn local(collector: &MetricsCollector, from: u64) -> (&'static str, Vec<String>, Vec<Bucket>) {
    let ring: Vec<Arc<Bucket>> = collector.ring();
    let buckets = ring
        .iter()
        .filter(|b| b.start >= from)
        .map(|b| (**b).clone())
        .collect();
    ("local", vec![collector.instance().to_owned()], buckets)
}

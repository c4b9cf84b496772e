//! The Redis writer: persists every finished second and minute bucket per instance in sorted sets
//! (score = Unix second) with `METRICS_RETENTION_HOURS` retention, trimming as it writes. It runs
//! in its own task with its own backlog: while Redis is away buckets wait in memory, the outage is
//! reported as a gap, and the backlog is written once Redis answers again.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::baseline::{Baseline, BaselineSlot};
use super::bucket::Bucket;
use crate::clock::unix_now;
use crate::redis_link::{LinkError, RedisLink};

/// Key names (shared by all instances of one deployment).
pub mod keys {
    pub const INSTANCES: &str = "pp:metrics:instances";
    pub const BASELINE: &str = "pp:metrics:baseline";
    pub fn seconds(instance: &str) -> String {
        format!("pp:metrics:sec:{instance}")
    }
    pub fn minutes(instance: &str) -> String {
        format!("pp:metrics:min:{instance}")
    }
}

/// Instances that wrote metrics at or after `from` (Unix seconds): the readers' list of whose
/// buckets to read.
pub async fn instances_since(link: &RedisLink, from: u64) -> Result<Vec<String>, LinkError> {
    link.run(move |mut c| async move {
        redis::cmd("ZRANGEBYSCORE")
            .arg(keys::INSTANCES)
            .arg(from)
            .arg("+inf")
            .query_async(&mut c)
            .await
    })
    .await
}

/// The instances that wrote at or after `from`, and for each the members of its sorted set
/// `key(instance)` scored from `from` to `max` (as Redis reads a bound: `(123` excludes 123).
pub async fn read_since(
    link: &RedisLink,
    from: u64,
    key: fn(&str) -> String,
    max: String,
) -> Result<(Vec<String>, Vec<Vec<Vec<u8>>>), LinkError> {
    let instances = instances_since(link, from).await?;
    let raw = ranges(
        link,
        instances
            .iter()
            .map(|i| (key(i), from, max.clone()))
            .collect(),
    )
    .await?;
    Ok((instances, raw))
}

/// The members of each `(key, min, max)` score range, read in one pipeline (none: no round trip).
pub async fn ranges(
    link: &RedisLink,
    ranges: Vec<(String, u64, String)>,
) -> Result<Vec<Vec<Vec<u8>>>, LinkError> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (key, min, max) in ranges {
        pipe.cmd("ZRANGEBYSCORE").arg(key).arg(min).arg(max);
    }
    link.run_within(link.timeout() * 4, move |mut c| async move {
        pipe.query_async(&mut c).await
    })
    .await
}

/// A finished bucket handed to the writer.
#[derive(Debug, Clone)]
pub enum FlushItem {
    Second(Arc<Bucket>),
    Minute(Arc<Bucket>),
}

/// The writer's health, shown in the realtime and summary answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStatus {
    pub redis_available: bool,
    pub written_buckets: u64,
    pub backlog: usize,
    /// Buckets dropped because the backlog was full (data lost for the Redis view only).
    pub lost_buckets: u64,
    pub failed_writes: u64,
    /// Completed outages and their total length.
    pub gaps: u64,
    pub gap_seconds: u64,
    /// Start of the outage in progress, if any (Unix seconds).
    pub gap_open_since: Option<u64>,
    pub last_gap: Option<Gap>,
    pub last_write_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Gap {
    pub start: u64,
    pub end: u64,
    pub seconds: u64,
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub instance: String,
    pub retention: Duration,
    pub backlog_cap: usize,
    pub batch: usize,
}

/// Starts the writer on the collector's flush channel; with `baseline`, it also publishes the
/// instance's baseline and adopts the deployment's shared one.
pub fn spawn_writer(
    link: Arc<RedisLink>,
    cfg: StoreConfig,
    status: Arc<RwLock<StoreStatus>>,
    rx: mpsc::Receiver<FlushItem>,
    baseline: Option<BaselineSlot>,
) -> JoinHandle<()> {
    tokio::spawn(writer(link, cfg, status, rx, baseline))
}

fn set<F: FnOnce(&mut StoreStatus)>(s: &RwLock<StoreStatus>, f: F) {
    f(&mut s.write().unwrap_or_else(|p| p.into_inner()));
}

async fn writer(
    link: Arc<RedisLink>,
    cfg: StoreConfig,
    status: Arc<RwLock<StoreStatus>>,
    mut rx: mpsc::Receiver<FlushItem>,
    baseline: Option<BaselineSlot>,
) {
    let mut backlog: VecDeque<FlushItem> = VecDeque::new();
    // The retry timer runs only while buckets wait (Redis away): otherwise the writer wakes once
    // a second, when the collector hands it a bucket (issue 18: wake-ups were most of
    // monitoring's fixed cost).
    let mut retry = tokio::time::interval(RETRY_EVERY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut baseline_published = false;
    let mut last_baseline_check = 0u64;
    let mut last_trim = 0u64;
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(i) => backlog.push_back(i),
                None => break,
            },
            _ = retry.tick(), if !backlog.is_empty() => {}
        }
        while let Ok(i) = rx.try_recv() {
            backlog.push_back(i);
        }
        let mut lost = 0;
        while backlog.len() > cfg.backlog_cap {
            backlog.pop_front();
            lost += 1;
        }
        if lost > 0 {
            set(&status, |s| s.lost_buckets += lost);
        }
        if backlog.is_empty() {
            continue;
        }
        let n = backlog.len().min(cfg.batch);
        let batch: Vec<FlushItem> = backlog.iter().take(n).cloned().collect();
        let now = unix_now();
        // A minute's bucket may create its key: trimmed with it, the key gets its expiry at once.
        let trim = now >= last_trim + TRIM_EVERY_SECS
            || batch.iter().any(|i| matches!(i, FlushItem::Minute(_)));
        let res = write_batch(&link, &cfg, &batch, now, trim).await;
        match res {
            Ok(()) => {
                if trim {
                    last_trim = now;
                }
                backlog.drain(..n);
                set(&status, |s| {
                    s.redis_available = true;
                    s.written_buckets += n as u64;
                    s.backlog = backlog.len();
                    s.last_write_at = Some(now);
                    if let Some(start) = s.gap_open_since.take() {
                        let g = Gap {
                            start,
                            end: now,
                            seconds: now.saturating_sub(start),
                        };
                        s.gaps += 1;
                        s.gap_seconds += g.seconds;
                        s.last_gap = Some(g);
                        tracing::info!(
                            gap_seconds = g.seconds,
                            "metrics store: redis back, backlog flushing"
                        );
                    }
                });
                if let Some(slot) = &baseline {
                    if now >= last_baseline_check + 30 {
                        last_baseline_check = now;
                        baseline_published |= share_baseline(&link, slot, baseline_published).await;
                    }
                }
            }
            Err(e) => {
                // The next attempt a full period from now, not at once for the ticks missed
                // while the timer was idle.
                retry.reset();
                set(&status, |s| {
                    s.redis_available = false;
                    s.failed_writes += 1;
                    s.backlog = backlog.len();
                    if s.gap_open_since.is_none() {
                        s.gap_open_since = Some(now);
                        tracing::warn!(error = %e, "metrics store: redis unavailable, keeping buckets in memory");
                    }
                });
            }
        }
    }
}

/// How often a waiting backlog is retried while Redis is away.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Seconds between two trims of the sorted sets to the retention (and refreshes of their
/// expiry, which is at least 60 s).
const TRIM_EVERY_SECS: u64 = 10;

/// Writes `batch` and this instance's mark in [`keys::INSTANCES`] in one pipeline; with `trim`,
/// also drops what is older than the retention and renews the keys' expiry. Trimming every
/// second was seven of the ten commands a second (issue 18: monitoring's own cost), for sets
/// that keep a day. No MULTI: every command is idempotent (members carry their own
/// timestamp), and a transaction doubled the replies to parse.
async fn write_batch(
    link: &RedisLink,
    cfg: &StoreConfig,
    batch: &[FlushItem],
    now: u64,
    trim: bool,
) -> Result<(), crate::redis_link::LinkError> {
    let ret = cfg.retention.as_secs().max(60);
    let cutoff = now.saturating_sub(ret);
    let sec_key = keys::seconds(&cfg.instance);
    let min_key = keys::minutes(&cfg.instance);
    let mut pipe = redis::pipe();
    for item in batch {
        let (key, b) = match item {
            FlushItem::Second(b) => (&sec_key, b),
            FlushItem::Minute(b) => (&min_key, b),
        };
        pipe.zadd(key, b.encode(), b.start).ignore();
    }
    // Every write: readers list the instances that wrote since the start of what they read.
    pipe.zadd(keys::INSTANCES, &cfg.instance, now).ignore();
    if trim {
        for key in [sec_key.as_str(), min_key.as_str(), keys::INSTANCES] {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .ignore();
            pipe.expire(key, ret as i64).ignore();
        }
    }
    let budget = link.timeout() * 4;
    link.run_within(budget, move |mut c| async move {
        pipe.query_async::<()>(&mut c).await
    })
    .await
}

/// Publishes this instance's baseline if none is stored, then adopts the stored one.
async fn share_baseline(link: &RedisLink, slot: &BaselineSlot, published: bool) -> bool {
    let mine = slot.get();
    let mut done = published;
    if let (Some(b), false) = (&mine, published) {
        if b.source == "local" {
            let json = serde_json::json!({"p95_ms": b.p95_ms, "p50_ms": b.p50_ms, "requests": b.requests, "established_at": b.established_at}).to_string();
            let r: Result<Option<String>, _> = link
                .run(move |mut con| async move {
                    redis::cmd("SET")
                        .arg(keys::BASELINE)
                        .arg(json)
                        .arg("NX")
                        .query_async(&mut con)
                        .await
                })
                .await;
            done = r.is_ok();
        }
    }
    let stored: Result<Option<String>, _> = link
        .run(|mut con| async move {
            redis::cmd("GET")
                .arg(keys::BASELINE)
                .query_async(&mut con)
                .await
        })
        .await;
    if let Ok(Some(s)) = stored {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
            let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
            if let (Some(p95), Some(p50)) = (f("p95_ms"), f("p50_ms")) {
                slot.set_shared(Baseline {
                    p95_ms: p95,
                    p50_ms: p50,
                    requests: f("requests").unwrap_or(0.0) as u64,
                    established_at: f("established_at").unwrap_or(0.0) as u64,
                    source: "redis",
                });
            }
        }
    }
    done
}

//! The Redis cache: bounded-time GET/SET of JSON values with hits and misses counted per request.
//!
//! Redis is optional. The app starts without it (a background task keeps trying to connect), every
//! operation is cut off after `CACHE_TIMEOUT_MS`, and after a few consecutive failures the cache is
//! skipped for a short, growing pause (a circuit breaker), so a slow or dead Redis costs requests
//! nothing but misses. Errors and timeouts count as misses.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::request_scope;

/// Failures in a row that open the circuit.
const TRIP_AFTER: u32 = 3;
const FIRST_PAUSE_MS: u64 = 250;
const MAX_PAUSE_MS: u64 = 5_000;

/// Cache totals since start-up.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CacheStatsSnapshot {
    pub connected: bool,
    pub hits: u64,
    pub misses: u64,
    /// Lookups that failed or timed out (also counted as misses).
    pub errors: u64,
    /// Lookups skipped because the circuit was open (also counted as misses).
    pub skipped: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    consecutive_failures: AtomicU32,
    /// ms since `epoch` until which the cache is skipped.
    open_until_ms: AtomicU64,
}

struct Inner {
    conn: RwLock<Option<ConnectionManager>>,
    timeout: Duration,
    counters: Counters,
    epoch: Instant,
}

/// Handle to the cache; cheap to clone. A cache built with no URL is permanently empty.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    /// Connects in the background; returns at once. `url` of `None` disables the cache.
    pub fn new(url: Option<&str>, timeout: Duration) -> Self {
        let cache = Cache {
            inner: Arc::new(Inner {
                conn: RwLock::new(None),
                timeout,
                counters: Counters::default(),
                epoch: Instant::now(),
            }),
        };
        if let Some(url) = url {
            match redis::Client::open(url) {
                Ok(client) => {
                    let inner = cache.inner.clone();
                    tokio::spawn(async move { connect_loop(inner, client).await });
                }
                Err(e) => tracing::warn!(error = ?e.kind(), "invalid REDIS_URL; cache disabled"),
            }
        }
        cache
    }

    /// A cache that never stores anything (no Redis configured).
    pub fn disabled() -> Self {
        Self::new(None, Duration::from_millis(1))
    }

    pub fn is_connected(&self) -> bool {
        self.inner.conn.read().map(|g| g.is_some()).unwrap_or(false)
    }

    pub fn stats(&self) -> CacheStatsSnapshot {
        let c = &self.inner.counters;
        CacheStatsSnapshot {
            connected: self.is_connected(),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
        }
    }

    /// The connection, unless Redis is absent or the circuit is open.
    fn conn(&self) -> Option<ConnectionManager> {
        let open_until = self.inner.counters.open_until_ms.load(Ordering::Relaxed);
        if open_until != 0 && self.now_ms() < open_until {
            return None;
        }
        self.inner.conn.read().ok().and_then(|g| g.clone())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn ok(&self) {
        let c = &self.inner.counters;
        if c.consecutive_failures.load(Ordering::Relaxed) != 0 {
            c.consecutive_failures.store(0, Ordering::Relaxed);
            c.open_until_ms.store(0, Ordering::Relaxed);
        }
    }

    fn fail(&self) {
        let c = &self.inner.counters;
        c.errors.fetch_add(1, Ordering::Relaxed);
        let n = c.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= TRIP_AFTER {
            let pause = (FIRST_PAUSE_MS << (n - TRIP_AFTER).min(5)).min(MAX_PAUSE_MS);
            c.open_until_ms
                .store(self.now_ms() + pause, Ordering::Relaxed);
        }
    }

    fn miss(&self) {
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        request_scope::record_cache_miss();
    }

    /// Looks `key` up; any failure is a miss.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let Some(mut conn) = self.conn() else {
            if self.is_connected() {
                self.inner.counters.skipped.fetch_add(1, Ordering::Relaxed);
            }
            self.miss();
            return None;
        };
        let cmd = redis::cmd("GET").arg(key).to_owned();
        let reply = tokio::time::timeout(
            self.inner.timeout,
            cmd.query_async::<Option<Vec<u8>>>(&mut conn),
        )
        .await;
        match reply {
            Ok(Ok(Some(bytes))) => {
                self.ok();
                match serde_json::from_slice(&bytes) {
                    Ok(v) => {
                        self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                        request_scope::record_cache_hit();
                        Some(v)
                    }
                    Err(_) => {
                        self.miss();
                        None
                    }
                }
            }
            Ok(Ok(None)) => {
                self.ok();
                self.miss();
                None
            }
            Ok(Err(_)) | Err(_) => {
                self.fail();
                self.miss();
                None
            }
        }
    }

    /// Stores `value` under `key` for `ttl`, best effort; returns whether it was stored.
    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) -> bool {
        let Some(mut conn) = self.conn() else {
            return false;
        };
        let Ok(bytes) = serde_json::to_vec(value) else {
            return false;
        };
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(bytes)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .to_owned();
        match tokio::time::timeout(self.inner.timeout, cmd.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {
                self.ok();
                true
            }
            _ => {
                self.fail();
                false
            }
        }
    }

    /// Removes `key`, best effort.
    pub async fn delete(&self, key: &str) -> bool {
        let Some(mut conn) = self.conn() else {
            return false;
        };
        let cmd = redis::cmd("DEL").arg(key).to_owned();
        matches!(
            tokio::time::timeout(self.inner.timeout, cmd.query_async::<i64>(&mut conn)).await,
            Ok(Ok(_))
        )
    }

    /// `PING` round trip, for readiness and health; ignores the circuit breaker.
    pub async fn ping(&self) -> Result<Duration, String> {
        let Some(mut conn) = self.inner.conn.read().ok().and_then(|g| g.clone()) else {
            return Err("redis not connected".into());
        };
        let start = Instant::now();
        match tokio::time::timeout(
            self.inner.timeout.max(Duration::from_millis(500)),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(start.elapsed()),
            Ok(Err(e)) => Err(format!("redis error: {:?}", e.kind())),
            Err(_) => Err("redis ping timed out".into()),
        }
    }

    /// A clone of the connection for other Redis users (the metrics collector), if connected.
    pub fn connection(&self) -> Option<ConnectionManager> {
        self.inner.conn.read().ok().and_then(|g| g.clone())
    }
}

/// Retries the first connection with growing pauses; afterwards the `ConnectionManager` reconnects by itself.
async fn connect_loop(inner: Arc<Inner>, client: redis::Client) {
    let mut pause = Duration::from_millis(100);
    loop {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(inner.timeout.max(Duration::from_millis(100)))
            .set_number_of_retries(1)
            .set_max_delay(1000);
        match ConnectionManager::new_with_config(client.clone(), config).await {
            Ok(conn) => {
                if let Ok(mut g) = inner.conn.write() {
                    *g = Some(conn);
                }
                tracing::info!("redis connected");
                return;
            }
            Err(e) => {
                tracing::debug!(error = ?e.kind(), "redis not reachable yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

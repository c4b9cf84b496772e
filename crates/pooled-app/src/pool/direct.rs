//! Direct connections: one per acquisition when pooling is off, and the fallback path with
//! exponential backoff and progressive timeouts when the pool has failed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::postgres::PgConnection;
use sqlx::ConnectOptions;
use tokio::sync::OwnedSemaphorePermit;

use super::{DbConn, DbError, DbInner};

/// Attempts per fallback acquisition; attempt `i` waits up to `connect_timeout / 2^(ATTEMPTS-1-i)`.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(25);

async fn connect(inner: &DbInner, timeout: Duration) -> Result<PgConnection, DbError> {
    let start = Instant::now();
    match tokio::time::timeout(timeout, inner.connect_options.connect()).await {
        Ok(Ok(c)) => {
            inner.stats.create_time.record(start.elapsed());
            Ok(c)
        }
        Ok(Err(e)) => Err(DbError::Unavailable(e.to_string())),
        Err(_) => Err(DbError::Unavailable(format!(
            "connect timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

fn opened(
    inner: &Arc<DbInner>,
    c: PgConnection,
    took: Duration,
    permit: Option<OwnedSemaphorePermit>,
) -> DbConn {
    inner.stats.direct_opened.fetch_add(1, Ordering::Relaxed);
    inner.stats.acquisitions.fetch_add(1, Ordering::Relaxed);
    inner.stats.record_acquire_wait(took);
    DbConn::direct(c, inner.clone(), permit)
}

fn failed(inner: &DbInner, e: &DbError) {
    if matches!(e, DbError::Unavailable(m) if m.starts_with("connect timed out")) {
        inner.stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
    } else {
        inner.stats.acquire_errors.fetch_add(1, Ordering::Relaxed);
    }
    inner.stats.mark_failure_time();
}

/// Whether Postgres accepts a connection now (one connect with the configured timeout, closed at
/// once). Without a free fallback permit the cap is taken, hence connections are being made:
/// reachable.
pub(super) async fn reachable(inner: &Arc<DbInner>) -> bool {
    let Ok(_permit) = inner.fallback_permits.clone().try_acquire_owned() else {
        return true;
    };
    match connect(inner, inner.settings.connect_timeout).await {
        Ok(c) => {
            let _ = sqlx::Connection::close(c).await;
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "pool timed out and a direct connect failed too");
            false
        }
    }
}

/// Unpooled mode: one connect, with the configured timeout.
pub(super) async fn acquire_once(inner: &Arc<DbInner>) -> Result<DbConn, DbError> {
    let start = Instant::now();
    match connect(inner, inner.settings.connect_timeout).await {
        Ok(c) => {
            inner.on_success();
            Ok(opened(inner, c, start.elapsed(), None))
        }
        Err(e) => {
            failed(inner, &e);
            inner
                .stats
                .consecutive_failures
                .fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// Fallback mode: one of the `fallback_max` permits (waiting up to the acquire timeout, like a
/// pooled acquisition; none free is [`DbError::Exhausted`]), then up to [`ATTEMPTS`] connects,
/// timeouts doubling up to `connect_timeout`, sleeping an exponentially growing, jittered backoff
/// in between.
pub(super) async fn acquire_with_backoff(inner: &Arc<DbInner>) -> Result<DbConn, DbError> {
    let start = Instant::now();
    let permit = match tokio::time::timeout(
        inner.settings.acquire_timeout,
        inner.fallback_permits.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        // Closed never happens (the semaphore lives as long as the layer); a timeout is overload.
        Ok(Err(_)) | Err(_) => {
            inner.stats.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
            inner.stats.exhausted.fetch_add(1, Ordering::Relaxed);
            return Err(DbError::Exhausted);
        }
    };
    let full = inner.settings.connect_timeout;
    let mut backoff = FIRST_BACKOFF;
    let mut last = DbError::Unavailable("no attempt made".into());
    for attempt in 0..ATTEMPTS {
        let timeout = (full / 2u32.pow(ATTEMPTS - 1 - attempt)).max(Duration::from_millis(10));
        match connect(inner, timeout).await {
            Ok(c) => {
                inner.probe_wake.notify_one();
                return Ok(opened(inner, c, start.elapsed(), Some(permit)));
            }
            Err(e) => {
                failed(inner, &e);
                last = e;
            }
        }
        if attempt + 1 < ATTEMPTS {
            let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
            tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
            backoff *= 2;
        }
    }
    inner
        .stats
        .consecutive_failures
        .fetch_add(1, Ordering::Relaxed);
    inner.start_probe();
    Err(last)
}

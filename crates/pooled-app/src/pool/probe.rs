//! The fallback probe: while in fallback mode, periodically build a fresh pool and check it with a
//! query; on success, hand it to the layer, which returns to pooled mode. The attempts back off
//! from 100 ms to 5 s, and a direct connection that succeeds cuts the wait short.

use std::sync::Arc;
use std::time::Duration;

use super::{DbInner, PoolMode};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

pub(super) async fn run(inner: &Arc<DbInner>) {
    let mut delay = FIRST_DELAY;
    while inner.mode() == PoolMode::Fallback {
        tokio::select! {
            () = tokio::time::sleep(delay) => delay = (delay * 2).min(MAX_DELAY),
            () = inner.probe_wake.notified() => {
                // A direct connection got through: try now, after a short pause so that a
                // flapping database is not met with a pool build per request.
                tokio::time::sleep(FIRST_DELAY).await;
                delay = FIRST_DELAY;
            }
        }
        match inner.build_pool().await {
            Ok(pool) => {
                let check = tokio::time::timeout(
                    inner.settings.connect_timeout,
                    sqlx::Executor::execute(&pool, "SELECT 1"),
                )
                .await;
                if matches!(check, Ok(Ok(_))) {
                    inner.recover(pool);
                    return;
                }
                pool.close().await;
            }
            Err(e) => tracing::debug!(error = %e, "fallback probe: pool still unavailable"),
        }
    }
}

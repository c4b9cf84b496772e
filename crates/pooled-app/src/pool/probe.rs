//! The fallback probe: while in fallback mode, periodically build a fresh pool and check it with a
//! query; on success, hand it to the layer, which returns to pooled mode.

use std::sync::Arc;
use std::time::Duration;

use super::{DbInner, PoolMode};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

pub(super) async fn run(inner: &Arc<DbInner>) {
    let mut delay = FIRST_DELAY;
    while inner.mode() == PoolMode::Fallback {
        tokio::time::sleep(delay).await;
        match inner.build_pool().await {
            Ok(pool) => {
                let check = tokio::time::timeout(
                    inner.settings.connect_timeout,
                    sqlx::query("SELECT 1").execute(&pool),
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
        delay = (delay * 2).min(MAX_DELAY);
    }
}

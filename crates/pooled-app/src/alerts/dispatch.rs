//! The dispatcher: a bounded queue and its own task deliver each notification to the channels its
//! severity is routed to, retrying 429/5xx/timeouts with exponential backoff (honouring `Retry-After`), never other 4xx.
//! Enqueueing never waits; delivery outcomes are kept for the health monitor and the API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::channels::Channel;
use super::message::Notification;
use super::routes::Routes;
use crate::clock::unix_ms;

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `n + 1` (n ≥ 1 attempts done): the server's `Retry-After` if given,
    /// else base × 2^(n-1), capped.
    pub fn delay(&self, attempts_done: u32, retry_after: Option<Duration>) -> Duration {
        retry_after.unwrap_or_else(|| {
            self.base
                .saturating_mul(1 << (attempts_done.saturating_sub(1)).min(16))
                .min(self.max)
        })
    }
}

/// One delivery's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: &'static str,
    pub rule_id: String,
    pub transition: &'static str,
    pub idempotency_key: String,
    pub ok: bool,
    pub attempts: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at_ms: u64,
}

/// Per-channel counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelStats {
    pub channel: &'static str,
    pub delivered: u64,
    pub failed: u64,
    pub retries: u64,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Book {
    channels: Vec<ChannelStats>,
    recent: VecDeque<Delivery>,
    queue_dropped: u64,
    suppressed: Suppressed,
}

/// Notifications held back, by reason.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Suppressed {
    pub cooldown: u64,
    pub inhibited: u64,
    pub silenced: u64,
}

/// Why a notification was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressedBy {
    Cooldown,
    Inhibition,
    Silence,
}

/// Handle to the dispatcher task.
#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Notification>,
    book: Arc<Mutex<Book>>,
    enabled: bool,
    routes: Routes,
}

/// What `/alerts/active` and the health monitor see of the notifiers.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchStatus {
    pub notifications_enabled: bool,
    pub channels: Vec<ChannelStats>,
    pub queue_dropped: u64,
    pub suppressed_by_cooldown: u64,
    /// Held back by inhibition or a silence.
    pub suppressed: Suppressed,
    /// Channels per severity.
    pub routes: Routes,
    pub recent: Vec<Delivery>,
}

const RECENT: usize = 50;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dispatcher {
    /// Starts the dispatcher. With `enabled` false (ENABLE_PERFORMANCE_ALERTS=false) nothing is sent.
    pub fn start(
        channels: Vec<Channel>,
        routes: Routes,
        policy: RetryPolicy,
        queue: usize,
        enabled: bool,
    ) -> (Dispatcher, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let book = Arc::new(Mutex::new(Book {
            channels: channels
                .iter()
                .map(|c| ChannelStats {
                    channel: c.name(),
                    ..ChannelStats::default()
                })
                .collect(),
            ..Book::default()
        }));
        let h = tokio::spawn(worker(rx, Arc::new(channels), routes, policy, book.clone()));
        (
            Dispatcher {
                tx,
                book,
                enabled,
                routes,
            },
            h,
        )
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Queues a notification; a full queue drops it (counted) rather than waiting.
    pub fn enqueue(&self, n: Notification) -> bool {
        if !self.enabled {
            return false;
        }
        match self.tx.try_send(n) {
            Ok(()) => true,
            Err(_) => {
                lock(&self.book).queue_dropped += 1;
                false
            }
        }
    }

    pub fn note_suppressed(&self, by: SuppressedBy) {
        let s = &mut lock(&self.book).suppressed;
        match by {
            SuppressedBy::Cooldown => s.cooldown += 1,
            SuppressedBy::Inhibition => s.inhibited += 1,
            SuppressedBy::Silence => s.silenced += 1,
        }
    }

    pub fn status(&self) -> DispatchStatus {
        let b = lock(&self.book);
        DispatchStatus {
            notifications_enabled: self.enabled,
            channels: b.channels.clone(),
            queue_dropped: b.queue_dropped,
            suppressed_by_cooldown: b.suppressed.cooldown,
            suppressed: b.suppressed,
            routes: self.routes,
            recent: b.recent.iter().cloned().collect(),
        }
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Notification>,
    channels: Arc<Vec<Channel>>,
    routes: Routes,
    policy: RetryPolicy,
    book: Arc<Mutex<Book>>,
) {
    while let Some(n) = rx.recv().await {
        let n = Arc::new(n);
        let route = routes.of(n.severity);
        // Channels are independent: a slow Slack does not delay the email.
        let mut tasks = Vec::new();
        for (i, ch) in channels.iter().enumerate() {
            if !route.allows(ch.kind()) {
                continue;
            }
            let (ch, n, book) = (ch.clone(), n.clone(), book.clone());
            tasks.push(tokio::spawn(async move {
                deliver(i, &ch, &n, policy, &book).await
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn deliver(
    idx: usize,
    ch: &Channel,
    n: &Notification,
    policy: RetryPolicy,
    book: &Mutex<Book>,
) {
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match ch.send(n).await {
            Ok(()) => break Ok(()),
            Err(e) if e.retryable && attempts < policy.max_attempts => {
                let wait = policy.delay(attempts, e.retry_after);
                tracing::warn!(channel = ch.name(), alert = %n.rule_id, attempt = attempts, error = %e.message, wait_ms = wait.as_millis() as u64, "notification failed, retrying");
                lock(book).channels[idx].retries += 1;
                tokio::time::sleep(wait).await;
            }
            Err(e) => break Err(e),
        }
    };
    let now = unix_ms();
    let mut b = lock(book);
    let st = &mut b.channels[idx];
    let d = match outcome {
        Ok(()) => {
            st.delivered += 1;
            st.last_success_ms = Some(now);
            tracing::info!(channel = ch.name(), alert = %n.rule_id, transition = n.transition.name(), attempts, "notification delivered");
            Delivery {
                channel: ch.name(),
                rule_id: n.rule_id.clone(),
                transition: n.transition.name(),
                idempotency_key: n.idempotency_key.clone(),
                ok: true,
                attempts,
                status: Some(200),
                error: None,
                at_ms: now,
            }
        }
        Err(e) => {
            st.failed += 1;
            st.last_failure_ms = Some(now);
            st.last_error = Some(e.message.clone());
            tracing::error!(channel = ch.name(), alert = %n.rule_id, attempts, error = %e.message, "notification failed");
            Delivery {
                channel: ch.name(),
                rule_id: n.rule_id.clone(),
                transition: n.transition.name(),
                idempotency_key: n.idempotency_key.clone(),
                ok: false,
                attempts,
                status: e.status,
                error: Some(e.message),
                at_ms: now,
            }
        }
    };
    b.recent.push_back(d);
    while b.recent.len() > RECENT {
        b.recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_defers_to_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None), Duration::from_millis(250));
        assert_eq!(p.delay(2, None), Duration::from_millis(500));
        assert_eq!(p.delay(3, None), Duration::from_millis(1000));
        assert_eq!(p.delay(20, None), Duration::from_secs(10));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}

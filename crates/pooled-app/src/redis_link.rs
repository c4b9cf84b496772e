//! A Redis handle for the monitoring stack: connects lazily (the app starts and serves while Redis
//! is away), bounds every operation with a timeout, and reconnects by itself, so a slow or paused
//! Redis costs the caller at most the timeout and never a request.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Why a Redis operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("redis timed out after {0:?}")]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Redis(String),
}

impl LinkError {
    /// The kind of failure without the server's text, for unauthenticated health output.
    pub fn reason(&self) -> &'static str {
        match self {
            LinkError::Timeout(_) => "redis timed out",
            LinkError::Redis(_) => "redis unreachable",
        }
    }
}

impl From<redis::RedisError> for LinkError {
    fn from(e: redis::RedisError) -> Self {
        // RedisError's Display never includes the URL or password.
        LinkError::Redis(e.to_string())
    }
}

pub struct RedisLink {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    timeout: Duration,
}

impl RedisLink {
    /// Validates the URL (no connection yet).
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLink, LinkError> {
        let client = redis::Client::open(url)?;
        Ok(RedisLink {
            client,
            conn: tokio::sync::Mutex::new(None),
            timeout,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn connection(&self) -> Result<ConnectionManager, LinkError> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1)
            .set_max_delay(200);
        let c = ConnectionManager::new_with_config(self.client.clone(), cfg).await?;
        *g = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on a connection, the whole thing (connecting included) within the timeout.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, LinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.run_within(self.timeout, f).await
    }

    /// Like [`run`](Self::run) with an explicit budget (bulk writes get more).
    pub async fn run_within<T, F, Fut>(&self, budget: Duration, f: F) -> Result<T, LinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let c = self.connection().await?;
            f(c).await.map_err(LinkError::from)
        };
        match tokio::time::timeout(budget, work).await {
            Ok(r) => r,
            Err(_) => Err(LinkError::Timeout(budget)),
        }
    }

    /// PING round trip in milliseconds.
    pub async fn ping(&self) -> Result<f64, LinkError> {
        let t = std::time::Instant::now();
        let pong: String = self
            .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        if pong != "PONG" {
            return Err(LinkError::Redis(format!("unexpected PING reply {pong:?}")));
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }
}

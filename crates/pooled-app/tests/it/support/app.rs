//! An in-process pooled-app on 127.0.0.1:0 with a recording observer, shut down on drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pooled_app::middleware::{RequestObserver, RequestRecord};
use pooled_app::{AppState, Config};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Keeps every request record the middleware produced.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<RequestRecord>>);

impl RequestObserver for Recorder {
    fn observe(&self, record: &RequestRecord) {
        if let Ok(mut v) = self.0.lock() {
            v.push(record.clone());
        }
    }
}

impl Recorder {
    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.0.lock().expect("recorder lock"))
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub records: Arc<Recorder>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Starts the app with `vars` (DATABASE_URL etc.) on a free loopback port.
    pub async fn start(vars: Vec<(String, String)>) -> TestApp {
        let config = Config::from_vars(vars).expect("test configuration is valid");
        let mut state = AppState::build(config).await.expect("app state");
        let records = Arc::new(Recorder::default());
        state.add_observer(records.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        let task = tokio::spawn(async move {
            let _ = pooled_app::serve_state(serving, listener, async move {
                let _ = rx.await;
            })
            .await;
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        TestApp {
            addr,
            state,
            records,
            http,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn respond(&self, request_id: i64, accept: bool) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/api/buddy/respond"))
            .json(&serde_json::json!({ "request_id": request_id, "accept": accept }))
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /api/performance/pool`.
    pub async fn pool(&self) -> Value {
        let (status, v) = self.get("/api/performance/pool").await;
        assert_eq!(status, 200, "pool stats: {v}");
        v
    }

    /// `n` responds over request ids 1..=n with `concurrency` in flight; returns the statuses.
    pub async fn respond_load(&self, n: i64, concurrency: usize) -> Vec<u16> {
        futures::stream::iter(1..=n)
            .map(|id| async move { self.respond(id, id % 3 != 0).await.0 })
            .buffer_unordered(concurrency)
            .collect()
            .await
    }

    /// `n` buddy lists for users 1..=n with `concurrency` in flight; returns the statuses.
    pub async fn buddies_load(&self, n: i64, concurrency: usize) -> Vec<u16> {
        futures::stream::iter(1..=n)
            .map(|id| async move { self.get(&format!("/api/buddies?user_id={id}")).await.0 })
            .buffer_unordered(concurrency)
            .collect()
            .await
    }

    /// Waits until `f` on the pool stats holds, up to `deadline`; returns the last stats.
    pub async fn wait_pool(
        &self,
        deadline: Duration,
        what: &str,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let v = self.pool().await;
            if f(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for {what}; pool stats: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Base settings for tests: the services' URLs, small seed, quiet logs, short timeouts.
pub fn vars(
    database_url: &str,
    redis_url: Option<&str>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut v = vec![
        ("DATABASE_URL".to_string(), database_url.to_string()),
        ("LOG_REQUESTS".to_string(), "false".to_string()),
        ("SEED_USERS".to_string(), "5000".to_string()),
        ("SEED_BUDDY_REQUESTS".to_string(), "20000".to_string()),
    ];
    if let Some(r) = redis_url {
        v.push(("REDIS_URL".to_string(), r.to_string()));
    }
    for (k, val) in extra {
        v.push((k.to_string(), val.to_string()));
    }
    v
}

//! An in-process pooled-app on 127.0.0.1:0 with a recording observer, shut down on drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pooled_app::middleware::{RequestObserver, RequestRecord};
use pooled_app::{AppState, Config};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The dashboard token the alerting and monitoring tests configure (`PERFORMANCE_API_TOKEN`).
pub const API_TOKEN: &str = "tok-SECRET-dashboard-31337";

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
    /// `http://addr`.
    pub base: String,
    /// The configured `PERFORMANCE_API_TOKEN`, sent as the bearer token by [`TestApp::get`].
    token: Option<String>,
    pub state: AppState,
    pub records: Arc<Recorder>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Starts the app with `vars` (DATABASE_URL etc.) on a free loopback port.
    pub async fn start(vars: Vec<(String, String)>) -> TestApp {
        let token = vars
            .iter()
            .find(|(k, _)| k == "PERFORMANCE_API_TOKEN")
            .map(|(_, v)| v.clone());
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
            base: format!("http://{addr}"),
            token,
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

    /// Starts the app on the given services with a small seed (200 users, 400 requests) and
    /// `extra` settings over it, and waits until `/readyz` answers 200.
    pub async fn start_ready(
        database_url: &str,
        redis_url: &str,
        extra: &[(&str, String)],
    ) -> TestApp {
        let mut settings: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.into()),
            ("REDIS_URL".into(), redis_url.into()),
            ("SEED_USERS".into(), "200".into()),
            ("SEED_BUDDY_REQUESTS".into(), "400".into()),
            ("LOG_REQUESTS".into(), "false".into()),
        ];
        for (k, v) in extra {
            settings.retain(|(x, _)| x != k);
            settings.push(((*k).into(), v.clone()));
        }
        let app = TestApp::start(settings).await;
        app.wait_ready().await;
        app
    }

    pub async fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("app not ready within 30 s");
    }

    /// `GET path` with the configured dashboard token, if any; (status, JSON or the text).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None, self.token.as_deref())
            .await
    }

    /// A request with an optional JSON body and bearer token; (status, JSON or the text).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let r = r.send().await.expect("send");
        let code = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
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

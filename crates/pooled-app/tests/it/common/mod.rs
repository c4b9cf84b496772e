//! Shared test fixtures: real Postgres and Redis (poolproof-services), the app served in-process on
//! 127.0.0.1:0, a real local HTTP receiver standing in for Slack and Resend, and a small load loop.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use pooled_app::{AppState, Config};
use serde_json::Value;
use tokio::task::JoinHandle;

pub const RESEND_KEY: &str = "re_test_SECRET_key_4242";
pub const SLACK_PATH: &str = "/services/T000/B000/SLACKSECRET9999";
pub const API_TOKEN: &str = "tok-SECRET-dashboard-31337";

pub async fn services() -> (poolproof_services::Postgres, poolproof_services::Redis) {
    poolproof_services::start_both(&poolproof_services::Options::default())
        .await
        .expect("start Postgres and Redis")
}

/// One request received by the stand-in receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub channel: &'static str,
    pub at: Instant,
    pub key: String,
    pub body: Value,
    pub raw: String,
    pub answered: u16,
}

impl Delivery {
    /// (rule id, transition) from the idempotency key `rule:transition:episode`.
    pub fn rule_and_transition(&self) -> (String, String) {
        let mut p = self.key.split(':');
        (
            p.next().unwrap_or("").to_owned(),
            p.next().unwrap_or("").to_owned(),
        )
    }
}

/// Scripted answers: consumed in order per channel, then success.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
}

#[derive(Clone, Default)]
struct RecvState {
    log: Arc<Mutex<Vec<Delivery>>>,
    script: Arc<Mutex<HashMap<&'static str, VecDeque<Answer>>>>,
}

/// A local axum server answering like Slack's incoming webhook and Resend's `/emails`.
pub struct Receiver {
    pub addr: SocketAddr,
    state: RecvState,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    st: &RecvState,
    channel: &'static str,
    headers: &HeaderMap,
    body: String,
) -> Response {
    let scripted = st
        .script
        .lock()
        .unwrap()
        .get_mut(channel)
        .and_then(|q| q.pop_front());
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut status = scripted.map_or(200, |a| a.status);
    if channel == "email" {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {RESEND_KEY}") {
            status = 401;
        }
    }
    st.log.lock().unwrap().push(Delivery {
        channel,
        at: Instant::now(),
        key,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        raw: body,
        answered: status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    let mut resp = if status == 200 {
        if channel == "slack" {
            "ok".into_response()
        } else {
            axum::Json(serde_json::json!({"id": uuid::Uuid::new_v4().to_string()})).into_response()
        }
    } else {
        (code, "failure scripted by the test").into_response()
    };
    if let Some(ra) = scripted.and_then(|a| a.retry_after) {
        resp.headers_mut()
            .insert("retry-after", ra.to_string().parse().unwrap());
    }
    resp
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = RecvState::default();
        let app = Router::new()
            .route(
                "/services/{*rest}",
                post(
                    |State(st): State<RecvState>, h: HeaderMap, body: String| async move {
                        answer(&st, "slack", &h, body).await
                    },
                ),
            )
            .route(
                "/emails",
                post(
                    |State(st): State<RecvState>, h: HeaderMap, body: String| async move {
                        answer(&st, "email", &h, body).await
                    },
                ),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state, task }
    }

    pub fn slack_url(&self) -> String {
        format!("http://{}{SLACK_PATH}", self.addr)
    }
    pub fn resend_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, channel: &'static str, answers: &[Answer]) {
        self.state
            .script
            .lock()
            .unwrap()
            .entry(channel)
            .or_default()
            .extend(answers.iter().copied());
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests for one (rule, transition) on one channel.
    pub fn for_(&self, channel: &str, rule: &str, transition: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| {
                d.channel == channel
                    && d.rule_and_transition() == (rule.to_owned(), transition.to_owned())
            })
            .collect()
    }

    /// Waits until `pred` holds over the log, at most `limit`.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&[Delivery]) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if pred(&self.deliveries()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pred(&self.deliveries())
    }

    /// Waits until both channels (Slack and email) got a `transition` ("firing", "resolved"),
    /// at most `limit`.
    pub async fn wait_on_both(&self, transition: &str, limit: Duration) -> bool {
        self.wait_for(limit, |d| {
            ["slack", "email"].iter().all(|c| {
                d.iter()
                    .any(|x| x.channel == *c && x.rule_and_transition().1 == transition)
            })
        })
        .await
    }
}

/// The app served in-process.
pub struct App {
    pub base: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl App {
    pub async fn start(pg: &str, redis: &str, extra: &[(&str, String)]) -> App {
        let mut vars: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), pg.into()),
            ("REDIS_URL".into(), redis.into()),
            ("SEED_USERS".into(), "200".into()),
            ("SEED_BUDDY_REQUESTS".into(), "400".into()),
            ("LOG_REQUESTS".into(), "false".into()),
        ];
        for (k, v) in extra {
            vars.retain(|(x, _)| x != k);
            vars.push(((*k).into(), v.clone()));
        }
        let cfg = Config::from_vars(vars).expect("config");
        let state = AppState::build(cfg).await.expect("app state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let task = tokio::spawn(async move {
            let _ = pooled_app::serve_state(s, listener, async move {
                let _ = rx.await;
            })
            .await;
        });
        let app = App {
            base,
            state,
            stop: Some(tx),
            task: Some(task),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        let c = reqwest::Client::new();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(r) = c.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("app not ready within 30 s");
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request with an optional JSON body and bearer token; (status, JSON or text).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut r = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let r = r.send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Counts of a load run.
#[derive(Debug, Default)]
pub struct LoadCounts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Closed-loop load on the workload routes until stopped.
pub struct Load {
    pub counts: Arc<LoadCounts>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(bases: &[String], concurrency: usize) -> Load {
        let counts = Arc::new(LoadCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..concurrency {
            let (counts, stop, client) = (counts.clone(), stop.clone(), client.clone());
            let base = bases[i % bases.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut n = i as u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let path = if n.is_multiple_of(4) {
                        format!("/api/buddies?user_id={}", 1 + (n >> 33) % 200)
                    } else {
                        format!("/api/users/{}", 1 + (n >> 33) % 200)
                    };
                    match client.get(format!("{base}{path}")).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Load {
            counts,
            stop,
            tasks,
        }
    }

    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.counts.ok.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }
}

/// Writes a rules file into `dir`.
pub fn rules_file(dir: &std::path::Path, yaml: &str) -> String {
    let p = dir.join("rules.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

/// Settings wiring the app to the receiver.
pub fn alert_vars(rx: &Receiver, rules: &str, eval_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("SLACK_WEBHOOK_URL", rx.slack_url()),
        ("RESEND_API_URL", rx.resend_url()),
        ("RESEND_API_KEY", RESEND_KEY.into()),
        ("PERFORMANCE_ALERT_EMAIL", "oncall@example.test".into()),
        ("ALERT_RULES_FILE", rules.into()),
        ("ALERT_EVAL_INTERVAL_MS", eval_ms.to_string()),
        ("PERFORMANCE_API_TOKEN", API_TOKEN.into()),
    ]
}

/// Asserts no secret appears in `text`.
pub fn assert_no_secret(text: &str, pg_password: &str) {
    for s in [RESEND_KEY, "SLACKSECRET9999", API_TOKEN, pg_password]
        .into_iter()
        .filter(|s| s.len() >= 4)
    {
        assert!(
            !text.contains(s),
            "secret {s:?} leaked into: {}",
            &text[..text.len().min(400)]
        );
    }
}

/// The repository's root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `ci/<script>` (an `ensure-*.sh` installer) and returns the path it prints.
pub fn ensure(script: &str) -> std::path::PathBuf {
    let out = std::process::Command::new(workspace_root().join("ci").join(script))
        .output()
        .expect("run ci script");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

//! A real local HTTP server standing in for Slack's incoming webhook and Resend's `/emails`: it
//! logs every delivery and answers as scripted, and the settings that point the app at it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::app::API_TOKEN;

pub const RESEND_KEY: &str = "re_test_SECRET_key_4242";
pub const SLACK_PATH: &str = "/services/T000/B000/SLACKSECRET9999";

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

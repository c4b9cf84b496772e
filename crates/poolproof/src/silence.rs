//! The scenario's alert silences: each is created at its offset from the start of measured load
//! through the app's `POST /api/performance/alerts/silences` (ending `for` after its creation),
//! recorded as it was in force at the app, and deleted once the load is over, so that none
//! outlives the arm that made it (the arms of a run share Redis, where silences live).

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::observe::SilenceEvent;
use crate::sampler::offset_secs;
use crate::scenario::model::SilenceSpec;

/// The app's silences endpoint, relative to an instance's base URL.
pub const PATH: &str = "/api/performance/alerts/silences";

/// Most time one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how silences are created.
pub struct SilenceApi {
    pub client: reqwest::Client,
    /// One instance's base URL (silences are shared by every instance through Redis).
    pub base: String,
    /// `PERFORMANCE_API_TOKEN` of the app; never printed.
    pub token: Option<String>,
}

impl SilenceApi {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(CALL_TIMEOUT);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Creates one silence ending `duration` from now; returns its id.
    async fn create(&self, spec: &SilenceSpec, duration: Duration) -> Result<String, String> {
        let ends_at = chrono::Utc::now()
            + chrono::Duration::from_std(duration).map_err(|e| format!("for: {e}"))?;
        let body = serde_json::json!({
            "alert": spec.alert,
            "ends_at": ends_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "comment": "poolproof scenario silence",
        });
        let resp = self
            .request(reqwest::Method::POST, PATH)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {PATH}: {}", transport(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status != reqwest::StatusCode::CREATED {
            let msg = v
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(format!("POST {PATH}: the app answered {status}: {msg}"));
        }
        v.get("id")
            .and_then(|i| i.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("POST {PATH}: the app's answer has no id"))
    }

    /// Deletes a silence; one already gone is fine.
    async fn delete(&self, id: &str) -> Result<(), String> {
        let path = format!("{PATH}/{id}");
        let resp = self
            .request(reqwest::Method::DELETE, &path)
            .send()
            .await
            .map_err(|e| format!("DELETE {path}: {}", transport(&e)))?;
        match resp.status().as_u16() {
            204 | 404 => Ok(()),
            s => Err(format!("DELETE {path}: the app answered {s}")),
        }
    }
}

/// The kind of transport failure, without the URL.
fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// Creates the silences at their offsets from `origin` (the start of measured load) until
/// `done` fires (the load ended), then deletes those it created. Returns each silence as it
/// was in force; an error means one could not be created (the run did not test what the
/// scenario says) or removed.
pub async fn run(
    plan: Vec<SilenceSpec>,
    api: SilenceApi,
    origin: Instant,
    mut done: oneshot::Receiver<()>,
) -> Result<Vec<SilenceEvent>, String> {
    let mut plan = plan;
    plan.sort_by_key(|s| s.at.get());
    let mut created: Vec<String> = Vec::new();
    let mut events = Vec::new();
    let mut failure = None;
    let mut load_over = false;
    for (i, spec) in plan.iter().enumerate() {
        let due = tokio::time::Instant::from_std(origin + spec.at.get());
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = &mut done => { load_over = true; break; }
        }
        let sent = Instant::now();
        match api.create(spec, spec.duration.get()).await {
            Ok(id) => {
                created.push(id);
                events.push(SilenceEvent {
                    alert: spec.alert.clone(),
                    planned_at: spec.at.as_secs_f64(),
                    start: offset_secs(origin, Instant::now()),
                    // The app's `ends_at` is the send time plus `for`.
                    end: offset_secs(origin, sent) + spec.duration.as_secs_f64(),
                });
            }
            Err(e) => {
                failure = Some(format!("silences[{i}]: {e}"));
                break;
            }
        }
    }
    if !load_over && failure.is_none() {
        let _ = (&mut done).await;
    }
    for id in &created {
        if let Err(e) = api.delete(id).await {
            failure.get_or_insert(e);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(events),
    }
}

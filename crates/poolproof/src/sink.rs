//! The webhook sink: a local stand-in for Slack's incoming webhook and Resend's
//! `POST /emails`, answering with their success and error replies, able to fail on
//! command (a status for a while, or down: listener closed, connections refused),
//! and recording every delivery with its arrival time.
//!
//! What the sink reads from a payload to name the alert and its transition (the app's
//! notifiers send both; see docs/webhook-sink.md):
//! - Slack: `metadata.event_payload.{alert,state}` (Slack's message-metadata shape),
//!   else a top-level `alert`/`state`, else the words FIRING/RESOLVED and a
//!   snake_case rule name in `text`.
//! - Resend: the `tags` `alert` and `state`, else the same search in `subject`.
//!
//! The API key is never stored or logged: only whether a bearer was present.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// Errors of the sink's own lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("webhook sink: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a notification was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Slack,
    Email,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Slack => "slack",
            Channel::Email => "email",
        })
    }
}

/// The alert transition a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
    /// A repeat while the alert stays firing (not a transition).
    Reminder,
}

impl AlertState {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "firing" | "fired" | "triggered" | "alerting" => Some(Self::Firing),
            "resolved" | "ok" | "recovered" => Some(Self::Resolved),
            "still firing" | "still_firing" | "reminder" | "repeat" => Some(Self::Reminder),
            _ => None,
        }
    }
}

/// One request that reached the sink, accepted or not.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: Channel,
    /// Arrival, on the monotonic clock shared with the load and the fault timeline.
    #[serde(skip)]
    pub at: Instant,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub alert: Option<String>,
    pub state: Option<AlertState>,
    pub idempotency_key: Option<String>,
    pub body_bytes: usize,
    /// The status the sink answered with; only 2xx counts as delivered.
    pub status: u16,
    /// Email only: an `Authorization: Bearer …` header was present (the key itself is not kept).
    pub bearer_present: bool,
    /// Email only: a repeat of an idempotency key already answered; Resend would not send it again.
    pub replay: bool,
}

impl Delivery {
    /// Accepted by the (simulated) provider and not an idempotent replay: a notification a human would see.
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status) && !self.replay
    }

    /// As an observation of the run: time as an offset from `load_start`. `None` for
    /// requests that name no alert transition, for reminders (not a transition), and for
    /// idempotent replays (the provider would not send those again, so nobody would see them).
    pub fn observed(&self, load_start: Instant) -> Option<crate::observe::AlertDelivery> {
        if self.replay {
            return None;
        }
        let t = if self.at >= load_start {
            (self.at - load_start).as_secs_f64()
        } else {
            -(load_start - self.at).as_secs_f64()
        };
        Some(crate::observe::AlertDelivery {
            t,
            channel: self.channel.to_string(),
            alert: self.alert.clone()?,
            transition: match self.state? {
                AlertState::Firing => crate::observe::AlertTransition::Firing,
                AlertState::Resolved => crate::observe::AlertTransition::Resolved,
                AlertState::Reminder => return None,
            },
            status: self.status,
        })
    }
}

/// A failure the sink plays: answer `status` (on one channel or both) until `until`.
#[derive(Debug, Clone, Copy)]
struct Failing {
    status: StatusCode,
    channel: Option<Channel>,
    until: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    deliveries: Vec<Delivery>,
    failing: Option<Failing>,
    /// Resend idempotency: key → the id first answered.
    email_ids: HashMap<String, String>,
}

struct Shared {
    inner: Mutex<Inner>,
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that
        // matters (pushes are atomic), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// One channel's listener: its own port, so one channel can be down while the other is up.
struct Slot {
    channel: Channel,
    addr: SocketAddr,
    serving: tokio::sync::Mutex<Option<Serving>>,
}

impl Slot {
    async fn close(&self) {
        if let Some(s) = self.serving.lock().await.take() {
            let _ = s.stop.send(());
            // Graceful shutdown closes idle keep-alive connections; in-flight requests
            // finish. Bound the wait so a stuck client cannot hold the fault open.
            let _ = tokio::time::timeout(Duration::from_secs(5), s.task).await;
        }
    }
}

/// A running sink: one listener for Slack, one for Resend. Dropping it stops both.
pub struct WebhookSink {
    shared: Arc<Shared>,
    slots: [Slot; 2],
    reopen: Mutex<Option<JoinHandle<()>>>,
}

impl WebhookSink {
    /// Starts both listeners on 127.0.0.1 with free ports.
    pub async fn start() -> Result<Arc<Self>, SinkError> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            arrived: Notify::new(),
        });
        let mut slots = Vec::with_capacity(2);
        for channel in [Channel::Slack, Channel::Email] {
            let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = listener.local_addr().map_err(|source| SinkError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
            slots.push(Slot {
                channel,
                addr,
                serving: tokio::sync::Mutex::new(Some(serve(listener, shared.clone()))),
            });
        }
        let [slack, email]: [Slot; 2] = match slots.try_into() {
            Ok(s) => s,
            Err(_) => unreachable!("two slots were pushed"),
        };
        Ok(Arc::new(Self {
            shared,
            slots: [slack, email],
            reopen: Mutex::new(None),
        }))
    }

    fn slot(&self, c: Channel) -> &Slot {
        match c {
            Channel::Slack => &self.slots[0],
            Channel::Email => &self.slots[1],
        }
    }

    fn slots_for(&self, c: Option<Channel>) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(move |s| c.is_none_or(|c| c == s.channel))
    }

    /// The listening address of a channel.
    pub fn addr(&self, c: Channel) -> SocketAddr {
        self.slot(c).addr
    }

    /// For the app's `SLACK_WEBHOOK_URL`.
    pub fn slack_url(&self) -> String {
        format!(
            "http://{}/slack/services/T000/B000/poolproof",
            self.slot(Channel::Slack).addr
        )
    }

    /// For the app's `RESEND_API_URL` (the base; the app posts to `{base}/emails`).
    pub fn resend_url(&self) -> String {
        format!("http://{}", self.slot(Channel::Email).addr)
    }

    /// Answers `status` on `channel` (or both) for `for_` (or until `recover`).
    pub fn fail(&self, status: StatusCode, channel: Option<Channel>, for_: Option<Duration>) {
        self.shared.lock().failing = Some(Failing {
            status,
            channel,
            until: for_.map(|d| Instant::now() + d),
        });
    }

    /// Ends a `fail` early.
    pub fn recover(&self) {
        self.shared.lock().failing = None;
    }

    /// Closes the listener of `channel` (or both): clients get connection refused. With
    /// `for_`, reopens on the same port afterwards. Returns once the port no longer accepts.
    pub async fn down(self: &Arc<Self>, channel: Option<Channel>, for_: Option<Duration>) {
        for s in self.slots_for(channel) {
            s.close().await;
        }
        if let Some(d) = for_ {
            let me = Arc::downgrade(self);
            let h = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if let Some(me) = me.upgrade() {
                    let _ = me.up(channel).await;
                }
            });
            if let Some(old) = self.lock_reopen().replace(h) {
                old.abort();
            }
        }
    }

    /// Reopens the listener of `channel` (or both) on its port (no-op when up).
    pub async fn up(&self, channel: Option<Channel>) -> Result<(), SinkError> {
        for s in self.slots_for(channel) {
            let mut serving = s.serving.lock().await;
            if serving.is_none() {
                let listener = bind(s.addr).await?;
                *serving = Some(serve(listener, self.shared.clone()));
            }
        }
        Ok(())
    }

    pub async fn is_up(&self, channel: Channel) -> bool {
        self.slot(channel).serving.lock().await.is_some()
    }

    fn lock_reopen(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.reopen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// The alert notifications received so far, as observations relative to `load_start`.
    pub fn observed(&self, load_start: Instant) -> Vec<crate::observe::AlertDelivery> {
        self.shared
            .lock()
            .deliveries
            .iter()
            .filter_map(|d| d.observed(load_start))
            .collect()
    }

    /// Waits until a delivery matches `pred` or `timeout` passes; returns the first match.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Delivery) -> bool,
    ) -> Option<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(d) = self.shared.lock().deliveries.iter().find(|d| pred(d)) {
                return Some(d.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Stops both servers and any pending reopen.
    pub async fn shutdown(&self) {
        if let Some(h) = self.lock_reopen().take() {
            h.abort();
        }
        for s in &self.slots {
            s.close().await;
        }
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        if let Some(h) = self.lock_reopen().take() {
            h.abort();
        }
        for s in &self.slots {
            if let Ok(mut g) = s.serving.try_lock() {
                if let Some(s) = g.take() {
                    s.task.abort();
                }
            }
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SinkError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| SinkError::Bind {
            addr: addr.to_string(),
            source,
        })
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Serving {
    let app = Router::new()
        .route("/slack/{*path}", post(slack))
        .route("/emails", post(resend))
        .with_state(shared);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Serving { stop, task }
}

/// The failure in force for `channel`, clearing an expired one.
fn current_failure(inner: &mut Inner, channel: Channel) -> Option<StatusCode> {
    let f = inner.failing?;
    if f.until.is_some_and(|u| Instant::now() >= u) {
        inner.failing = None;
        return None;
    }
    (f.channel.is_none() || f.channel == Some(channel)).then_some(f.status)
}

fn record(shared: &Shared, inner: &mut Inner, d: Delivery) {
    inner.deliveries.push(d);
    shared.arrived.notify_waiters();
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn slack(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let (alert, state) = json.as_ref().map(alert_of_slack).unwrap_or((None, None));
    let mut inner = shared.lock();
    let (status, text) = if let Some(s) = current_failure(&mut inner, Channel::Slack) {
        (s, slack_error_text(s))
    } else {
        match &json {
            None => (StatusCode::BAD_REQUEST, "invalid_payload"),
            Some(v) if !has_slack_content(v) => (StatusCode::BAD_REQUEST, "no_text"),
            Some(_) => (StatusCode::OK, "ok"),
        }
    };
    record(
        &shared,
        &mut inner,
        Delivery {
            channel: Channel::Slack,
            at,
            received_at: chrono::Utc::now(),
            alert,
            state,
            idempotency_key: idempotency_key(&headers),
            body_bytes: body.len(),
            status: status.as_u16(),
            bearer_present: false,
            replay: false,
        },
    );
    drop(inner);
    let mut resp = (status, text).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    resp
}

fn has_slack_content(v: &serde_json::Value) -> bool {
    let text = v
        .get("text")
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.trim().is_empty());
    let blocks = v
        .get("blocks")
        .and_then(|b| b.as_array())
        .is_some_and(|b| !b.is_empty());
    text || blocks
}

/// Slack's error strings for the statuses its incoming webhooks return.
fn slack_error_text(s: StatusCode) -> &'static str {
    match s.as_u16() {
        400 => "invalid_payload",
        403 => "action_prohibited",
        404 => "no_service",
        410 => "channel_is_archived",
        429 => "rate_limited",
        500..=599 => "rollup_error",
        _ => "error",
    }
}

async fn resend(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let bearer_present = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| !k.trim().is_empty());
    let key = idempotency_key(&headers);
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let (alert, state) = json.as_ref().map(alert_of_email).unwrap_or((None, None));

    let mut inner = shared.lock();
    let mut replay = false;
    let (status, reply): (StatusCode, serde_json::Value) =
        if let Some(s) = current_failure(&mut inner, Channel::Email) {
            (s, resend_error(s, None))
        } else if !bearer_present {
            let s = StatusCode::UNAUTHORIZED;
            (s, resend_error(s, None))
        } else if let Some(missing) = missing_email_field(json.as_ref()) {
            let s = StatusCode::UNPROCESSABLE_ENTITY;
            (
                s,
                resend_error(s, Some(&format!("Missing `{missing}` field."))),
            )
        } else if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 256) {
            let s = StatusCode::BAD_REQUEST;
            (
                s,
                resend_error(s, Some("The key must be between 1-256 chars.")),
            )
        } else {
            let id = match key.as_ref().and_then(|k| inner.email_ids.get(k)) {
                Some(id) => {
                    replay = true;
                    id.clone()
                }
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    if let Some(k) = &key {
                        inner.email_ids.insert(k.clone(), id.clone());
                    }
                    id
                }
            };
            (StatusCode::OK, serde_json::json!({ "id": id }))
        };
    record(
        &shared,
        &mut inner,
        Delivery {
            channel: Channel::Email,
            at,
            received_at: chrono::Utc::now(),
            alert,
            state,
            idempotency_key: key,
            body_bytes: body.len(),
            status: status.as_u16(),
            bearer_present,
            replay,
        },
    );
    drop(inner);
    let mut resp = (status, axum::Json(reply)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    resp
}

/// The first required field of `POST /emails` that is missing, if any.
fn missing_email_field(v: Option<&serde_json::Value>) -> Option<&'static str> {
    let Some(v) = v else { return Some("from") };
    let present = |k: &str| {
        v.get(k).is_some_and(|x| match x {
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Null => false,
            _ => true,
        })
    };
    for k in ["from", "to", "subject"] {
        if !present(k) {
            return Some(k);
        }
    }
    (!present("html") && !present("text")).then_some("html")
}

/// An error body in Resend's shape.
fn resend_error(s: StatusCode, message: Option<&str>) -> serde_json::Value {
    let (name, default) = match s.as_u16() {
        400 => (
            "validation_error",
            "We found an error with one or more fields in the request.",
        ),
        401 => (
            "missing_api_key",
            "Missing API key in the authorization header.",
        ),
        403 => ("invalid_api_key", "API key is invalid."),
        404 => ("not_found", "The requested endpoint does not exist."),
        409 => (
            "concurrent_idempotent_requests",
            "Same idempotency key used while original request is still in progress.",
        ),
        422 => (
            "missing_required_field",
            "The request body is missing one or more required fields.",
        ),
        429 => (
            "rate_limit_exceeded",
            "Too many requests. You can only make 5 requests per second.",
        ),
        500..=599 => ("internal_server_error", "An unexpected error occurred."),
        _ => ("application_error", "An unexpected error occurred."),
    };
    serde_json::json!({
        "statusCode": s.as_u16(),
        "message": message.unwrap_or(default),
        "name": name,
    })
}

fn alert_of_slack(v: &serde_json::Value) -> (Option<String>, Option<AlertState>) {
    let payload = v.pointer("/metadata/event_payload");
    let alert = payload
        .and_then(|p| p.get("alert"))
        .or_else(|| v.get("alert"))
        .and_then(|a| a.as_str())
        .map(str::to_owned);
    let state = payload
        .and_then(|p| p.get("state"))
        .or_else(|| v.get("state"))
        .and_then(|s| s.as_str())
        .and_then(AlertState::parse);
    fill_from_fields(alert, state, v, "text")
}

fn alert_of_email(v: &serde_json::Value) -> (Option<String>, Option<AlertState>) {
    let tag = |name: &str| -> Option<String> {
        v.get("tags")?
            .as_array()?
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))?
            .get("value")?
            .as_str()
            .map(str::to_owned)
    };
    let alert = tag("alert");
    let state = tag("state").as_deref().and_then(AlertState::parse);
    fill_from_fields(alert, state, v, "subject")
}

/// Fallbacks for payloads without structured fields, in order: labelled fields anywhere in
/// the body (`Alert: id` / `State: firing` lines, or Slack mrkdwn `*Alert*\nid`), then the
/// headline (`text` or `subject`): FIRING / STILL FIRING / RESOLVED and the first snake_case
/// word with two underscores (rule ids look like that).
fn fill_from_fields(
    alert: Option<String>,
    state: Option<AlertState>,
    v: &serde_json::Value,
    headline_key: &str,
) -> (Option<String>, Option<AlertState>) {
    let mut strings = Vec::new();
    collect_strings(v, &mut strings);
    let field = |label: &str| strings.iter().find_map(|s| labelled(s, label));
    let alert = alert.or_else(|| field("alert"));
    let state = state.or_else(|| field("state").as_deref().and_then(AlertState::parse));
    let headline = v.get(headline_key).and_then(|t| t.as_str()).unwrap_or("");
    fill_from_text(alert, state, headline)
}

fn collect_strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// The value of a labelled field in `text`: `Label: value` on one line, or `*Label*` followed
/// by the value on the next line (Slack mrkdwn fields). Case-insensitive label.
fn labelled(text: &str, label: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let l = line.trim();
        if let Some((k, val)) = l.split_once(':') {
            if k.trim().trim_matches('*').eq_ignore_ascii_case(label) && !val.trim().is_empty() {
                return Some(val.trim().to_owned());
            }
        }
        if l.trim_matches('*').eq_ignore_ascii_case(label) && l.starts_with('*') {
            if let Some(next) = lines.next().map(str::trim).filter(|n| !n.is_empty()) {
                return Some(next.to_owned());
            }
        }
    }
    None
}

/// Fallback for payloads without structured fields: FIRING/RESOLVED words and the
/// first snake_case token with at least two underscores (rule names look like that).
fn fill_from_text(
    alert: Option<String>,
    state: Option<AlertState>,
    text: &str,
) -> (Option<String>, Option<AlertState>) {
    let state = state.or_else(|| {
        let up = text.to_ascii_uppercase();
        if up.contains("RESOLVED") {
            Some(AlertState::Resolved)
        } else if up.contains("STILL FIRING") {
            Some(AlertState::Reminder)
        } else if up.contains("FIRING") {
            Some(AlertState::Firing)
        } else {
            None
        }
    });
    let alert = alert.or_else(|| {
        // Colons stay in words so emoji shortcodes (`:white_check_mark:`) are skipped whole.
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .find(|w| {
                w.matches('_').count() >= 2
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_owned)
    });
    (alert, state)
}

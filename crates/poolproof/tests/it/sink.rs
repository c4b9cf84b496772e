//! The webhook sink answers like Slack and Resend, fails on command and records
//! deliveries; exercised with reqwest over real loopback HTTP.

use std::time::Duration;

use axum::http::StatusCode;
use poolproof::sink::{AlertState, Channel, WebhookSink};
use serde_json::json;

const KEY: &str = "re_secret_key_never_logged_12345";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Posts to the sink's two endpoints as Slack's and Resend's clients would.
struct Sender {
    http: reqwest::Client,
    slack: String,
    emails: String,
}

impl Sender {
    fn new(sink: &WebhookSink) -> Self {
        Sender {
            http: client(),
            slack: sink.slack_url(),
            emails: format!("{}/emails", sink.resend_url()),
        }
    }

    async fn try_slack(&self, body: serde_json::Value) -> reqwest::Result<reqwest::Response> {
        self.http.post(&self.slack).json(&body).send().await
    }

    async fn slack(&self, body: serde_json::Value) -> reqwest::Response {
        self.try_slack(body).await.unwrap()
    }

    /// An email with the API key (when given) and an idempotency key (when given).
    async fn email(
        &self,
        body: &serde_json::Value,
        key: Option<&str>,
        idempotency: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self.http.post(&self.emails).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(idem) = idempotency {
            req = req.header("Idempotency-Key", idem);
        }
        req.send().await.unwrap()
    }
}

async fn email_id(r: reqwest::Response) -> String {
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn email(alert: &str, state: &str) -> serde_json::Value {
    json!({
        "from": "alerts@poolproof.test",
        "to": ["oncall@poolproof.test"],
        "subject": format!("[{}] {alert}", state.to_uppercase()),
        "html": "<p>p95 above threshold</p>",
        "tags": [{"name": "alert", "value": alert}, {"name": "state", "value": state}],
    })
}

#[tokio::test]
async fn slack_accepts_like_an_incoming_webhook_and_records_the_alert() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    let r = send
        .slack(json!({
            "text": "FIRING high_request_latency_p95_critical",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*p95* 2510 ms"}}],
            "metadata": {"event_type": "alert_firing",
                          "event_payload": {"alert": "high_request_latency_p95_critical", "state": "firing"}}
        }))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");

    // Text-only payloads are parsed from the words.
    let r = send
        .slack(json!({"text": ":white_check_mark: RESOLVED high_error_rate_critical (2.1%)"}))
        .await;
    assert_eq!(r.status(), 200);

    let d = sink.deliveries();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].channel, Channel::Slack);
    assert_eq!(
        d[0].alert.as_deref(),
        Some("high_request_latency_p95_critical")
    );
    assert_eq!(d[0].state, Some(AlertState::Firing));
    assert!(d[0].delivered());
    assert!(d[0].body_bytes > 100);
    assert_eq!(d[1].alert.as_deref(), Some("high_error_rate_critical"));
    assert_eq!(d[1].state, Some(AlertState::Resolved));
    assert!(d[1].at >= d[0].at);
}

/// The shapes pooled-app sends (crates/pooled-app/src/alerts/channels.rs): no structured
/// metadata, the rule id and state as labelled fields.
#[tokio::test]
async fn labelled_fields_name_the_alert_in_slack_blocks_and_email_bodies() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    let slack = json!({
        "text": "[STILL FIRING] critical: High request latency (P95 >= 2000 ms) — request_p95 2612.0 ms",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "[STILL FIRING] critical"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Alert*\nrequest_latency_critical"},
                {"type": "mrkdwn", "text": "*State*\nstill firing"}
            ]}
        ]
    });
    assert_eq!(send.slack(slack).await.status(), 200);
    let mail = json!({
        "from": "a@b.test", "to": ["c@d.test"],
        "subject": "[RESOLVED] critical: High request latency (P95 >= 2000 ms) — request_p95 12.0 ms",
        "html": "<h2>x</h2>",
        "text": "[RESOLVED] critical\n\nAlert: request_latency_critical\nState: resolved\nSeverity: critical\n"
    });
    assert_eq!(send.email(&mail, Some(KEY), None).await.status(), 200);
    let d = sink.deliveries();
    assert_eq!(d[0].alert.as_deref(), Some("request_latency_critical"));
    assert_eq!(d[0].state, Some(AlertState::Reminder));
    assert_eq!(d[1].alert.as_deref(), Some("request_latency_critical"));
    assert_eq!(d[1].state, Some(AlertState::Resolved));
    // A reminder is not a transition: only the resolution is an observation.
    let obs = sink.observed(d[0].at);
    assert_eq!(obs.len(), 1);
    assert_eq!(
        obs[0].transition,
        poolproof::observe::AlertTransition::Resolved
    );
}

#[tokio::test]
async fn slack_rejects_bad_payloads_with_its_error_strings() {
    let sink = WebhookSink::start().await.unwrap();
    let r = client()
        .post(sink.slack_url())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "invalid_payload");
    let r = Sender::new(&sink).slack(json!({"text": " "})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "no_text");
    assert!(sink.deliveries().iter().all(|d| !d.delivered()));
}

#[tokio::test]
async fn resend_answers_ids_honours_idempotency_and_never_keeps_the_key() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    let firing = email("high_request_latency_p95_critical", "firing");
    let r1 = send.email(&firing, Some(KEY), Some("alert-1-firing")).await;
    assert_eq!(r1.status(), 200);
    let id1 = email_id(r1).await;
    assert!(uuid::Uuid::parse_str(&id1).is_ok(), "{id1}");
    let r2 = send.email(&firing, Some(KEY), Some("alert-1-firing")).await;
    assert_eq!(
        id1,
        email_id(r2).await,
        "same idempotency key, same email id"
    );
    let r3 = send
        .email(&firing, Some(KEY), Some("alert-1-resolved"))
        .await;
    assert_ne!(id1, email_id(r3).await);

    let d = sink.deliveries();
    assert_eq!(d.len(), 3);
    assert!(d[0].delivered() && !d[1].delivered() && d[1].replay && d[2].delivered());
    assert!(d
        .iter()
        .all(|x| x.bearer_present && x.channel == Channel::Email));
    assert_eq!(d[0].idempotency_key.as_deref(), Some("alert-1-firing"));
    assert_eq!(
        d[0].alert.as_deref(),
        Some("high_request_latency_p95_critical")
    );
    assert_eq!(d[0].state, Some(AlertState::Firing));
    // As observations: the replay is not a notification anybody would receive.
    let obs = sink.observed(d[0].at);
    assert_eq!(obs.len(), 2);
    assert_eq!(obs[0].t, 0.0);
    assert_eq!(obs[0].channel, "email");
    assert_eq!(
        obs[0].transition,
        poolproof::observe::AlertTransition::Firing
    );
    assert!(obs[1].t > 0.0);
    let dump = serde_json::to_string(&d).unwrap() + &format!("{d:?}");
    assert!(!dump.contains(KEY), "the API key leaked into the records");
}

#[tokio::test]
async fn resend_errors_have_resends_shape() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    let r = send.email(&email("a_b_c", "firing"), None, None).await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 401);
    assert_eq!(v["name"], "missing_api_key");
    assert!(v["message"].as_str().unwrap().contains("API key"));

    let mut body = email("a_b_c", "firing");
    body.as_object_mut().unwrap().remove("to");
    let r = send.email(&body, Some(KEY), None).await;
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["name"], "missing_required_field");
    assert_eq!(v["message"], "Missing `to` field.");
    assert!(sink.deliveries().iter().all(|d| !d.delivered()));
    assert!(!sink.deliveries()[0].bearer_present);
}

#[tokio::test]
async fn told_to_fail_it_fails_per_channel_for_the_duration() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    let mail = email("a_b_c", "firing");
    sink.fail(
        StatusCode::TOO_MANY_REQUESTS,
        Some(Channel::Email),
        Some(Duration::from_millis(400)),
    );
    let r = send.email(&mail, Some(KEY), None).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["statusCode"].as_u64(), v["name"].as_str()),
        (Some(429), Some("rate_limit_exceeded"))
    );
    // Slack is not affected by an email-only failure.
    assert_eq!(send.slack(json!({"text": "hi"})).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = send.email(&mail, Some(KEY), None).await;
    assert_eq!(r.status(), 200, "the failure window has passed");

    sink.fail(StatusCode::INTERNAL_SERVER_ERROR, None, None);
    let r = send.slack(json!({"text": "hi"})).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.unwrap(), "rollup_error");
    let r = send.email(&mail, Some(KEY), None).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["name"],
        "internal_server_error"
    );
    sink.recover();
    assert_eq!(send.slack(json!({"text": "hi"})).await.status(), 200);
    let statuses: Vec<u16> = sink.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [429, 200, 200, 500, 500, 200]);
}

#[tokio::test]
async fn down_refuses_connections_then_comes_back_on_the_same_port() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    assert_eq!(send.slack(json!({"text": "before"})).await.status(), 200);

    sink.down(Some(Channel::Slack), Some(Duration::from_millis(600)))
        .await;
    assert!(!sink.is_up(Channel::Slack).await);
    assert!(sink.is_up(Channel::Email).await, "only slack is down");
    let r = send.email(&email("a_b_c", "firing"), Some(KEY), None).await;
    assert_eq!(r.status(), 200);
    let e = send.try_slack(json!({"text": "during"})).await;
    let e = e.expect_err("a down sink must refuse");
    assert!(e.is_connect(), "{e}");

    let back = async {
        loop {
            if sink.is_up(Channel::Slack).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), back)
        .await
        .expect("reopened");
    assert_eq!(send.slack(json!({"text": "after"})).await.status(), 200);
    assert_eq!(
        sink.deliveries().len(),
        3,
        "nothing recorded on slack while down"
    );
    sink.shutdown().await;
    assert!(send.try_slack(json!({"text": "x"})).await.is_err());
}

#[tokio::test]
async fn wait_for_sees_a_later_delivery_and_times_out_otherwise() {
    let sink = WebhookSink::start().await.unwrap();
    let send = Sender::new(&sink);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = send
            .try_slack(json!({"text": "FIRING slow_db_queries_critical"}))
            .await;
    });
    let d = sink
        .wait_for(Duration::from_secs(5), |d| {
            d.alert.as_deref() == Some("slow_db_queries_critical")
        })
        .await
        .expect("delivery arrives");
    assert_eq!(d.state, Some(AlertState::Firing));
    assert!(sink
        .wait_for(Duration::from_millis(100), |d| d.channel == Channel::Email)
        .await
        .is_none());
}

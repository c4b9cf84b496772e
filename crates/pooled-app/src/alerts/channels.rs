//! Delivery channels: a Slack incoming webhook (JSON `text` + `blocks`; success is 200 with body
//! `ok`) and email through Resend's HTTP API (`POST {base}/emails`, bearer key, `Idempotency-Key`;
//! success is 200 with `{"id": ...}`). Each attempt classifies its failure as retryable (429, 5xx,
//! timeouts, connection errors — with the server's `Retry-After`) or final (other 4xx).

use std::time::Duration;

use serde_json::json;

use super::message::Notification;

/// One attempt's failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    pub status: Option<u16>,
    pub message: String,
}

/// Longest `Retry-After` honoured (a larger one is capped, the attempt budget still applies).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let t = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (t.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    channel: &str,
) -> DeliveryError {
    let code = status.as_u16();
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let snippet: String = body.chars().take(120).collect();
    DeliveryError {
        retryable: code == 429 || status.is_server_error(),
        retry_after,
        status: Some(code),
        message: format!("{channel} answered {code}: {snippet}"),
    }
}

fn transport(e: &reqwest::Error, channel: &str) -> DeliveryError {
    // reqwest errors may carry the URL; `without_url` keeps webhook paths (which are secrets) out.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    DeliveryError {
        retryable: true,
        retry_after: None,
        status: None,
        message: format!("{channel} {kind}"),
    }
}

/// A failure no retry will mend: the service answered, but not as it does on success.
fn final_error(status: reqwest::StatusCode, message: &str) -> DeliveryError {
    DeliveryError {
        retryable: false,
        retry_after: None,
        status: Some(status.as_u16()),
        message: message.into(),
    }
}

/// One delivery attempt: POSTs `payload` with the notification's idempotency key; the answer's
/// status, headers and body, or the transport failure.
async fn attempt(
    req: reqwest::RequestBuilder,
    n: &Notification,
    payload: &serde_json::Value,
    channel: &str,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), DeliveryError> {
    let resp = req
        .header("Idempotency-Key", &n.idempotency_key)
        .json(payload)
        .send()
        .await
        .map_err(|e| transport(&e.without_url(), channel))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Ok((status, headers, body))
}

/// Slack incoming webhook.
#[derive(Clone)]
pub struct Slack {
    pub client: reqwest::Client,
    pub url: String,
}

impl Slack {
    pub fn payload(n: &Notification) -> serde_json::Value {
        let fields: Vec<_> = n
            .fields()
            .into_iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
            .collect();
        json!({
            "text": n.subject(),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": n.subject().chars().take(150).collect::<String>()}},
                {"type": "section", "fields": fields.into_iter().take(10).collect::<Vec<_>>()},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("pooled-app alert `{}` · key `{}`", n.rule_id, n.idempotency_key)}]}
            ]
        })
    }

    pub async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let req = self.client.post(&self.url);
        let (status, headers, body) = attempt(req, n, &Self::payload(n), "slack").await?;
        if status.as_u16() == 200 && body.trim() == "ok" {
            Ok(())
        } else if status.as_u16() == 200 {
            Err(final_error(status, "slack answered 200 without `ok`"))
        } else {
            Err(classify(status, &headers, &body, "slack"))
        }
    }
}

/// Resend email API.
#[derive(Clone)]
pub struct Resend {
    pub client: reqwest::Client,
    pub base_url: String,
    pub api_key: String,
    pub from: String,
    pub to: Vec<String>,
}

impl Resend {
    pub fn payload(&self, n: &Notification) -> serde_json::Value {
        json!({
            "from": self.from,
            "to": self.to,
            "subject": n.subject(),
            "html": n.html_body(),
            "text": n.text_body(),
        })
    }

    pub async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let url = format!("{}/emails", self.base_url.trim_end_matches('/'));
        let req = self.client.post(url).bearer_auth(&self.api_key);
        let (status, headers, body) = attempt(req, n, &self.payload(n), "resend").await?;
        if status.is_success() {
            let id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("id").cloned());
            match id {
                Some(_) => Ok(()),
                None => Err(final_error(status, "resend answered without an id")),
            }
        } else {
            Err(classify(status, &headers, &body, "resend"))
        }
    }
}

/// A configured channel.
#[derive(Clone)]
pub enum Channel {
    Slack(Slack),
    Email(Resend),
}

impl Channel {
    pub fn kind(&self) -> super::routes::ChannelKind {
        match self {
            Channel::Slack(_) => super::routes::ChannelKind::Slack,
            Channel::Email(_) => super::routes::ChannelKind::Email,
        }
    }
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
    pub async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        match self {
            Channel::Slack(s) => s.send(n).await,
            Channel::Email(r) => r.send(n).await,
        }
    }
}

/// HTTP client for notifications: bounded per-attempt time.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

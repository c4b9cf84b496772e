//! `/api/performance/alerts/silences`: create (`POST`), list (`GET`) and end (`DELETE
//! /{id}`) silences. Behind the bearer token like the rest of the API; creating or ending one
//! also needs a token to be configured at all, since a silence stops pages. Bad input is 400 with
//! one message naming the field.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Monitoring;
use crate::alerts::silences::{self, Silence, StoreError};
use crate::alerts::Alerts;
use crate::clock::unix_ms;

/// A refused request: status, error kind and the one-line message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1, "message": self.2}))).into_response()
    }
}

fn error(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Response {
    Refusal(status, kind, message.into()).into_response()
}

fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::Full => error(StatusCode::CONFLICT, "too_many_silences", e.to_string()),
        StoreError::Unavailable(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

/// The alert engine, or why the request is refused (it is not running).
fn engine(m: &Monitoring) -> Result<&Alerts, Refusal> {
    m.alerts.as_ref().ok_or_else(|| {
        Refusal(
            StatusCode::CONFLICT,
            "alerts_off",
            "the alert engine is not running (ENABLE_PERFORMANCE_MONITORING=false)".into(),
        )
    })
}

/// The engine, for a request that changes silences: that needs `PERFORMANCE_API_TOKEN` (the
/// guard has already checked the request carries it).
fn writable(m: &Monitoring) -> Result<&Alerts, Refusal> {
    let a = engine(m)?;
    if m.token.is_none() {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "token_required",
            "silences stop notifications: set PERFORMANCE_API_TOKEN to create or delete them"
                .into(),
        ));
    }
    Ok(a)
}

/// `POST`: `{"alert": "<alert id>" (omit for every alert), "ends_at": "<RFC 3339>", "comment": "..."}`
/// → 201 with the silence.
pub async fn create(State(m): State<Monitoring>, body: Bytes) -> Response {
    let a = match writable(&m) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let s: Silence = match silences::parse_new(&body, &a.alert_ids(), unix_ms()) {
        Ok(s) => s,
        Err(msg) => return error(StatusCode::BAD_REQUEST, "bad_request", msg),
    };
    match a.add_silence(s.clone()).await {
        Ok(()) => {
            tracing::info!(silence = %s.id, alert = s.alert.as_deref().unwrap_or("*"), ends_at_ms = s.ends_at_ms, "silence created");
            (StatusCode::CREATED, Json(s.view())).into_response()
        }
        Err(e) => store_error(&e),
    }
}

/// `GET`: the silences in force.
pub async fn list(State(m): State<Monitoring>) -> Response {
    let a = match engine(&m) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    match a.list_silences().await {
        Ok(v) => Json(json!({
            "source": a.silence_source(),
            "silences": v.iter().map(Silence::view).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_error(&e),
    }
}

/// `DELETE /{id}`: ends a silence now; 204, or 404 when none has that id.
pub async fn remove(State(m): State<Monitoring>, Path(id): Path<String>) -> Response {
    let a = match writable(&m) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    if !silences::valid_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "id: expected a silence id (letters, digits and -, at most 64)",
        );
    }
    match a.remove_silence(&id).await {
        Ok(true) => {
            tracing::info!(silence = %id, "silence deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no silence in force has id {id}"),
        ),
        Err(e) => store_error(&e),
    }
}

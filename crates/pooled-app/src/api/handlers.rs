//! Handlers of the monitoring endpoints. They read cached or in-memory state (the realtime
//! snapshot, the health report) or a briefly cached Redis summary, so they stay fast under load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{prometheus, Monitoring};
use crate::exposition::text004;
use crate::health::Readiness;
use crate::metrics::{cluster, summary};

const DISABLED: &str = "performance monitoring is disabled (ENABLE_PERFORMANCE_MONITORING=false)";
const PAUSED: &str = "performance monitoring is paused (PUT /api/performance/monitoring)";

fn disabled(m: &Monitoring) -> Response {
    let message = if m.enabled { PAUSED } else { DISABLED };
    Json(json!({"monitoring_enabled": false, "message": message})).into_response()
}

/// `GET /api/performance/monitoring`: whether monitoring runs now.
pub async fn monitoring_state(State(m): State<Monitoring>) -> Response {
    Json(json!({"monitoring_enabled": m.active(), "paused": m.enabled && !m.active()}))
        .into_response()
}

/// The body of `PUT /api/performance/monitoring`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSwitch {
    pub enabled: bool,
}

/// `PUT /api/performance/monitoring` `{"enabled": false|true}`: pauses or resumes monitoring
/// in this process. Only an app started with monitoring can resume it (409 otherwise): its
/// stack is built at start-up.
pub async fn set_monitoring(
    State(m): State<Monitoring>,
    body: Result<Json<MonitoringSwitch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(switch) = match body {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {}", e.body_text())),
    };
    if !m.enabled {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "monitoring_off", "message": DISABLED})),
        )
            .into_response();
    }
    m.set_paused(!switch.enabled);
    tracing::info!(enabled = switch.enabled, "performance monitoring switched");
    monitoring_state(State(m)).await
}

/// Summaries cached per window for a second (several dashboards polling share one Redis read).
#[derive(Default)]
pub struct SummaryCache {
    entries: Mutex<HashMap<u64, (Instant, Arc<Value>)>>,
}

const SUMMARY_TTL: Duration = Duration::from_secs(1);

pub async fn summary_value(m: &Monitoring, hours: f64) -> Arc<Value> {
    let key = hours.to_bits();
    if let Some((t, v)) = m
        .summary_cache
        .entries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        if t.elapsed() < SUMMARY_TTL {
            return v.clone();
        }
    }
    let store = m.collector.realtime().collector.store.clone();
    let s = summary::summary(m.redis.as_deref(), &m.collector, store, hours).await;
    let v = Arc::new(serde_json::to_value(&s).unwrap_or(Value::Null));
    let mut g = m
        .summary_cache
        .entries
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    g.retain(|_, (t, _)| t.elapsed() < SUMMARY_TTL);
    g.insert(key, (Instant::now(), v.clone()));
    v
}

#[derive(Deserialize)]
pub struct RealtimeParams {
    scope: Option<String>,
    window: Option<String>,
}

/// Where the realtime figures come from (`scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// This instance, from memory (the default).
    Instance,
    /// Every instance, merged from Redis, with a headline over `window` seconds.
    Cluster { window: u64 },
}

/// Parses `scope` (`instance` | `cluster`) and `window` (seconds, cluster scope only).
fn parse_scope(scope: Option<&str>, window: Option<&str>) -> Result<Scope, String> {
    let window = match window {
        None => None,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(w) if (1..=cluster::MAX_WINDOW).contains(&w) => Some(w),
            _ => {
                return Err(format!(
                    "query parameter `window`: expected whole seconds in 1..={}, got {raw:?}",
                    cluster::MAX_WINDOW
                ))
            }
        },
    };
    match scope.map(str::trim) {
        None | Some("instance") if window.is_none() => Ok(Scope::Instance),
        None | Some("instance") => {
            Err("query parameter `window`: only with `scope=cluster` (instance scope has fixed 1 s, 10 s and 60 s windows)".into())
        }
        Some("cluster") => Ok(Scope::Cluster {
            window: window.unwrap_or(cluster::DEFAULT_WINDOW),
        }),
        Some(other) => Err(format!(
            "query parameter `scope`: expected `instance` or `cluster`, got {other:?}"
        )),
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": message})),
    )
        .into_response()
}

/// `/metrics/realtime`: this instance from memory, or with `scope=cluster` every instance
/// merged from Redis (`window` seconds for the headline, default 10).
pub async fn realtime(State(m): State<Monitoring>, Query(p): Query<RealtimeParams>) -> Response {
    if !m.active() {
        return disabled(&m);
    }
    match parse_scope(p.scope.as_deref(), p.window.as_deref()) {
        Err(e) => bad_request(e),
        Ok(Scope::Instance) => Json(m.collector.realtime()).into_response(),
        Ok(Scope::Cluster { window }) => {
            let unavailable = |why: String| {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "unavailable", "scope": "cluster", "message": why})),
                )
                    .into_response()
            };
            let Some(link) = m.redis.as_deref() else {
                return unavailable(
                    "scope=cluster reads every instance's metrics from Redis, and REDIS_URL is not set".into(),
                );
            };
            match cluster::realtime(link, window).await {
                Ok(v) => Json(v).into_response(),
                Err(e) => unavailable(format!("scope=cluster: Redis: {e}")),
            }
        }
    }
}

#[derive(Deserialize)]
pub struct SummaryParams {
    hours: Option<String>,
}

/// Parses `hours`: a positive number up to the retention.
fn parse_hours(raw: Option<&str>, max: f64) -> Result<f64, String> {
    let Some(raw) = raw else { return Ok(1.0) };
    match raw.trim().parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 && h <= max => Ok(h),
        _ => Err(format!("query parameter `hours`: expected a number in (0, {max}] (METRICS_RETENTION_HOURS), got {raw:?}")),
    }
}

pub async fn summary(State(m): State<Monitoring>, Query(p): Query<SummaryParams>) -> Response {
    if !m.active() {
        return disabled(&m);
    }
    match parse_hours(p.hours.as_deref(), m.retention_hours) {
        Ok(h) => Json((*summary_value(&m, h).await).clone()).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "bad_request", "message": e})),
        )
            .into_response(),
    }
}

pub async fn health_status(State(m): State<Monitoring>) -> Response {
    match m.health.wait_first(Duration::from_secs(3)).await {
        Some(h) => Json(h).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"overall_healthy": false, "message": "first health check still running"})),
        )
            .into_response(),
    }
}

pub async fn alerts_active(State(m): State<Monitoring>) -> Response {
    if !m.active() {
        return disabled(&m);
    }
    match &m.alerts {
        Some(a) => Json(a.view_with_fresh_silences().await).into_response(),
        None => Json(
            json!({"alerts_enabled": false, "active": [], "message": "alert engine not running"}),
        )
        .into_response(),
    }
}

/// Everything the dashboard page shows in one answer.
pub async fn dashboard(State(m): State<Monitoring>) -> Response {
    if !m.active() {
        return disabled(&m);
    }
    let summary = summary_value(&m, 1.0).await;
    let alerts = match &m.alerts {
        Some(a) => {
            Some(serde_json::to_value(a.view_with_fresh_silences().await).unwrap_or(Value::Null))
        }
        None => None,
    };
    let pool = m.pool_json.as_ref().map(|f| f());
    Json(json!({
        "monitoring_enabled": true,
        "realtime": m.collector.realtime(),
        "summary_1h": summary,
        "health": m.health.latest(),
        "alerts": alerts,
        "pool": pool,
    }))
    .into_response()
}

/// `/metrics`: OpenMetrics when the scraper asks for it (Prometheus does), else text 0.0.4.
pub async fn prometheus(State(m): State<Monitoring>, headers: HeaderMap) -> Response {
    let om = text004::wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let ct = if om {
        text004::OPENMETRICS
    } else {
        text004::TEXT_004
    };
    ([(header::CONTENT_TYPE, ct)], prometheus::render(&m, om)).into_response()
}

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    Json(json!({"status": "pass"})).into_response()
}

/// Readiness in `application/health+json` (draft-inadarei-api-health-check); 503 on fail.
pub async fn readyz(State(m): State<Monitoring>) -> Response {
    // Right after start-up the first check may still run: wait for it rather than fail.
    let Some(h) = m.health.wait_first(Duration::from_secs(3)).await else {
        let body = json!({"status": "fail", "output": "first health check still running"});
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/health+json")],
            body.to_string(),
        )
            .into_response();
    };
    let gate = m.ready_check.as_ref().and_then(|f| f());
    let r = if gate.is_some() {
        Readiness::Fail
    } else {
        h.readiness()
    };
    let s = &h.services;
    let st = |healthy: bool| if healthy { "pass" } else { "warn" };
    let time = chrono::DateTime::from_timestamp_millis(h.checked_at_ms as i64)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let db_status = if s.database.healthy {
        "pass"
    } else if r == Readiness::Fail {
        "fail"
    } else {
        "warn"
    };
    let pool_mode = match &m.pool {
        Some(p) => {
            let f = p.facts();
            Some(if f.fallback_mode {
                "fallback"
            } else if f.pooling_enabled {
                "pooled"
            } else {
                "unpooled"
            })
        }
        None => None,
    };
    let body = json!({
        "status": r,
        // Plain summary fields next to the health+json checks.
        "database": s.database.healthy,
        "redis": m.redis.as_ref().map(|_| s.redis.response_time_ms.is_some()),
        "migrated": gate.is_none(),
        "pool_mode": pool_mode,
        "description": "pooled-app readiness",
        "output": if r == Readiness::Pass { None } else { gate.clone().or_else(|| h.insights.first().cloned()) },
        "checks": {
            "database:responseTime": [{"componentType": "datastore", "observedValue": s.database.response_time_ms, "observedUnit": "ms", "status": db_status, "time": time, "output": s.database.error}],
            "redis:responseTime": [{"componentType": "datastore", "observedValue": s.redis.response_time_ms, "observedUnit": "ms", "status": st(s.redis.healthy), "time": time, "output": s.redis.error}],
            "connectionPool:utilization": [{"componentType": "component", "observedValue": s.connection_pool.utilization, "observedUnit": "percent", "status": st(s.connection_pool.healthy), "time": time}],
            "performance:p95": [{"componentType": "component", "observedValue": s.performance.p95_latency, "observedUnit": "ms", "status": st(s.performance.healthy), "time": time}],
            "notifiers:failures": [{"componentType": "component", "observedValue": s.notifiers.failures_last_5m, "status": st(s.notifiers.healthy), "time": time}],
            "app:startup": [{"componentType": "component", "status": if gate.is_some() { "fail" } else { "pass" }, "time": time, "output": gate}],
            "composite:score": [{"componentType": "system", "observedValue": h.composite_score, "status": st(h.overall_healthy), "time": time}],
        }
    });
    let code = if r == Readiness::Fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/health+json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_window_parameters() {
        assert_eq!(parse_scope(None, None), Ok(Scope::Instance));
        assert_eq!(parse_scope(Some("instance"), None), Ok(Scope::Instance));
        assert_eq!(
            parse_scope(Some("cluster"), None),
            Ok(Scope::Cluster { window: 10 })
        );
        assert_eq!(
            parse_scope(Some("cluster"), Some("30")),
            Ok(Scope::Cluster { window: 30 })
        );
        assert!(parse_scope(Some("cluster"), Some("0"))
            .unwrap_err()
            .contains("`window`"));
        assert!(parse_scope(Some("cluster"), Some("3601")).is_err());
        assert!(parse_scope(Some("cluster"), Some("1.5")).is_err());
        assert!(parse_scope(None, Some("30"))
            .unwrap_err()
            .contains("scope=cluster"));
        assert!(parse_scope(Some("all"), None)
            .unwrap_err()
            .contains("`scope`"));
    }

    #[test]
    fn hours_parameter() {
        assert_eq!(parse_hours(None, 24.0), Ok(1.0));
        assert_eq!(parse_hours(Some("6"), 24.0), Ok(6.0));
        assert_eq!(parse_hours(Some("0.25"), 24.0), Ok(0.25));
        assert!(parse_hours(Some("0"), 24.0)
            .unwrap_err()
            .contains("`hours`"));
        assert!(parse_hours(Some("48"), 24.0).is_err());
        assert!(parse_hours(Some("x"), 24.0).is_err());
        assert!(parse_hours(Some("NaN"), 24.0).is_err());
    }
}

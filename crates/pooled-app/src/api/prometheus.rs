//! `/metrics`: the monitoring state through prometheus-client, in OpenTelemetry's semantic
//! conventions with Prometheus naming where one exists — `http_server_request_duration_seconds`
//! (histogram by `http_request_method`, `http_route`, `http_response_status_code`) and the
//! pool's `db_client_*` families ([`crate::pool::PoolMetrics`]) — and the app's own figures
//! under `pooled_app_*`: monitoring and store health, fallback mode, health scores, alert
//! states and notifier counters.
//!
//! OpenMetrics 1.0 to scrapers that ask for it (Prometheus does), Prometheus text 0.0.4
//! otherwise ([`crate::exposition::text004`]). Everything is read at scrape time; the request
//! histogram comes from the collector's samples ([`crate::metrics::collector::HttpSeries`]),
//! so serving a scrape drains the collector's buffers first and shows every finished request.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use super::Monitoring;
use crate::exposition::encode::{counter, gauge, histogram};
use crate::exposition::label::{Esc, Labels};
use crate::exposition::text004;

/// A shared collector registered by handle (prometheus-client takes boxed collectors).
#[derive(Debug)]
struct Shared(Arc<dyn Collector>);

impl Collector for Shared {
    fn encode(&self, enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(enc)
    }
}

/// The monitoring stack's own families.
struct App(Monitoring);

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App")
    }
}

fn none() -> Labels<'static> {
    Vec::new()
}

fn flag(b: bool) -> u64 {
    u64::from(b)
}

impl Collector for App {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        gauge(
            &mut enc,
            "pooled_app_monitoring_enabled",
            "1 when performance monitoring is enabled (ENABLE_PERFORMANCE_MONITORING).",
            &[(none(), flag(m.active()))],
        )?;
        if let Some(p) = &m.pool {
            gauge(
                &mut enc,
                "pooled_app_pool_fallback_mode",
                "1 while the app runs on direct connections (pool degraded).",
                &[(none(), flag(p.facts().fallback_mode))],
            )?;
        }
        if !m.active() {
            return Ok(());
        }
        http(&mut enc, m)?;
        collector_health(&mut enc, m)?;
        if let Some(h) = m.health.latest() {
            gauge(
                &mut enc,
                "pooled_app_health_score",
                "Composite health score 0-100.",
                &[(none(), u64::from(h.composite_score))],
            )?;
            let s = &h.services;
            let scores: Vec<(Labels, u64)> = [
                ("database", s.database.score),
                ("redis", s.redis.score),
                ("connection_pool", s.connection_pool.score),
                ("performance", s.performance.score),
                ("notifiers", s.notifiers.score),
            ]
            .into_iter()
            .map(|(name, v)| (vec![("service", Esc(name))], u64::from(v)))
            .collect();
            gauge(
                &mut enc,
                "pooled_app_health_service_score",
                "Health score 0-100 by service.",
                &scores,
            )?;
            for (name, help, ms) in [
                (
                    "pooled_app_health_database_round_trip_seconds",
                    "Last database health-check round trip.",
                    s.database.response_time_ms,
                ),
                (
                    "pooled_app_health_redis_round_trip_seconds",
                    "Last Redis PING round trip.",
                    s.redis.response_time_ms,
                ),
            ] {
                if let Some(t) = ms {
                    gauge(&mut enc, name, help, &[(none(), t / 1000.0)])?;
                }
            }
        }
        if let Some(a) = &m.alerts {
            alerts(&mut enc, &a.view())?;
        }
        Ok(())
    }
}

/// `http_server_request_duration_seconds`: every request since start, monitoring routes
/// included (OpenTelemetry counts all); `http_route` is left out for requests that matched no
/// route, as the convention asks.
fn http(enc: &mut DescriptorEncoder, m: &Monitoring) -> Result<(), std::fmt::Error> {
    let all = m.collector.http_histograms();
    let codes: Vec<Vec<String>> = all
        .iter()
        .map(|h| h.statuses.iter().map(|(s, _)| s.to_string()).collect())
        .collect();
    let mut series = Vec::new();
    for (h, codes) in all.iter().zip(&codes) {
        for ((_, c), code) in h.statuses.iter().zip(codes) {
            let mut l: Labels = vec![("http_request_method", Esc(&h.method))];
            if let Some(r) = &h.route {
                l.push(("http_route", Esc(r)));
            }
            l.push(("http_response_status_code", Esc(code)));
            series.push((l, c));
        }
    }
    histogram(
        enc,
        "http_server_request_duration",
        "Duration of HTTP server requests, from the middleware's entry to the response head.",
        &series,
    )
}

fn collector_health(enc: &mut DescriptorEncoder, m: &Monitoring) -> Result<(), std::fmt::Error> {
    counter(
        enc,
        "pooled_app_metrics_samples_dropped",
        "Request samples dropped because the collector's buffer was full.",
        &[(none(), m.collector.dropped())],
    )?;
    let st = &m.collector.realtime().collector.store;
    gauge(
        enc,
        "pooled_app_metrics_store_up",
        "1 when the last metrics write to Redis succeeded.",
        &[(none(), flag(st.redis_available))],
    )?;
    gauge(
        enc,
        "pooled_app_metrics_store_backlog_buckets",
        "Finished metric buckets waiting to be written to Redis.",
        &[(none(), st.backlog as u64)],
    )?;
    counter(
        enc,
        "pooled_app_metrics_store_gaps",
        "Completed Redis outages seen by the metrics writer.",
        &[(none(), st.gaps)],
    )?;
    counter(
        enc,
        "pooled_app_metrics_store_gap_seconds",
        "Total length of completed Redis outages.",
        &[(none(), st.gap_seconds)],
    )
}

fn alerts(
    enc: &mut DescriptorEncoder,
    v: &crate::alerts::runner::AlertsView,
) -> Result<(), std::fmt::Error> {
    gauge(
        enc,
        "pooled_app_alerts_firing",
        "Alerts currently firing on this instance.",
        &[(none(), v.firing as u64)],
    )?;
    let active: Vec<(Labels, u64)> = v
        .active
        .iter()
        .map(|a| {
            (
                vec![("alert", Esc(&a.id)), ("severity", Esc(&a.severity))],
                if a.state == "firing" { 2 } else { 1 },
            )
        })
        .collect();
    gauge(
        enc,
        "pooled_app_alert_active",
        "Active alerts: 1 pending, 2 firing.",
        &active,
    )?;
    let channels = &v.notifications.channels;
    for (name, help, f) in [
        (
            "pooled_app_notifications_delivered",
            "Alert notifications delivered, by channel.",
            (|c| c.delivered) as fn(&crate::alerts::dispatch::ChannelStats) -> u64,
        ),
        (
            "pooled_app_notifications_failed",
            "Alert notifications given up after retries, by channel.",
            |c| c.failed,
        ),
        (
            "pooled_app_notification_retries",
            "Notification attempts retried, by channel.",
            |c| c.retries,
        ),
    ] {
        let samples: Vec<(Labels, u64)> = channels
            .iter()
            .map(|c| (vec![("channel", Esc(c.channel))], f(c)))
            .collect();
        counter(enc, name, help, &samples)?;
    }
    Ok(())
}

/// Renders the exposition: OpenMetrics when `openmetrics`, else Prometheus text 0.0.4.
pub fn render(m: &Monitoring, openmetrics: bool) -> String {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(App(m.clone())));
    if let Some(p) = &m.pool_metrics {
        reg.register_collector(Box::new(Shared(p.clone())));
    }
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &reg) {
        // Writing into a String fails only if a collector reports an error; say so in the
        // exposition rather than answering a truncated one silently.
        tracing::warn!(error = %e, "encoding /metrics failed");
        out.clear();
        out.push_str("# EOF\n");
    }
    if openmetrics {
        out
    } else {
        text004::from_openmetrics(&out)
    }
}

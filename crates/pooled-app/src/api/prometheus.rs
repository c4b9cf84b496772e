//! `/metrics`: the monitoring state in the Prometheus text exposition format (version 0.0.4):
//! request counters and latency summaries per route, pool gauges, health scores, alert states,
//! notifier counters and the collector's own health.

use std::fmt::Write;

use crate::health::score::PoolFacts;
use crate::health::HealthReport;

use super::Monitoring;

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

fn split(route: &str) -> (&str, &str) {
    route.split_once(' ').unwrap_or(("", route))
}

/// Renders the exposition text.
pub fn render(m: &Monitoring) -> String {
    let mut o = Out(String::with_capacity(8192));
    if !m.enabled {
        o.0.push_str(
            "# performance monitoring is disabled (ENABLE_PERFORMANCE_MONITORING=false)\n",
        );
        o.head(
            "pooled_app_monitoring_enabled",
            "gauge",
            "1 when performance monitoring is enabled.",
        );
        o.sample("pooled_app_monitoring_enabled", &[], 0.0);
        return o.0;
    }
    o.head(
        "pooled_app_monitoring_enabled",
        "gauge",
        "1 when performance monitoring is enabled.",
    );
    o.sample("pooled_app_monitoring_enabled", &[], 1.0);

    let routes = m.collector.cumulative();
    o.head(
        "pooled_app_http_requests_total",
        "counter",
        "Requests served since start, by method and route.",
    );
    for (r, l, _, _) in &routes {
        let (method, route) = split(r);
        o.sample(
            "pooled_app_http_requests_total",
            &[("method", method), ("route", route)],
            l.count as f64,
        );
    }
    o.head(
        "pooled_app_http_request_errors_total",
        "counter",
        "Requests answered 4xx or 5xx since start, by method and route.",
    );
    for (r, _, errors, _) in &routes {
        let (method, route) = split(r);
        o.sample(
            "pooled_app_http_request_errors_total",
            &[("method", method), ("route", route)],
            *errors as f64,
        );
    }
    o.head(
        "pooled_app_http_request_duration_seconds",
        "summary",
        "Request latency since start (HDR histogram), by method and route.",
    );
    for (r, l, _, sum_us) in &routes {
        let (method, route) = split(r);
        for (q, v) in [("0.5", l.p50_ms), ("0.95", l.p95_ms), ("0.99", l.p99_ms)] {
            o.sample(
                "pooled_app_http_request_duration_seconds",
                &[("method", method), ("route", route), ("quantile", q)],
                v / 1000.0,
            );
        }
        o.sample(
            "pooled_app_http_request_duration_seconds_sum",
            &[("method", method), ("route", route)],
            *sum_us as f64 / 1e6,
        );
        o.sample(
            "pooled_app_http_request_duration_seconds_count",
            &[("method", method), ("route", route)],
            l.count as f64,
        );
    }

    let rt = m.collector.realtime();
    o.head(
        "pooled_app_metrics_samples_dropped_total",
        "counter",
        "Request samples dropped because the collector's buffer was full.",
    );
    o.sample(
        "pooled_app_metrics_samples_dropped_total",
        &[],
        m.collector.dropped() as f64,
    );
    let st = &rt.collector.store;
    o.head(
        "pooled_app_metrics_store_up",
        "gauge",
        "1 when the last metrics write to Redis succeeded.",
    );
    o.sample(
        "pooled_app_metrics_store_up",
        &[],
        if st.redis_available { 1.0 } else { 0.0 },
    );
    o.head(
        "pooled_app_metrics_store_backlog_buckets",
        "gauge",
        "Finished metric buckets waiting to be written to Redis.",
    );
    o.sample(
        "pooled_app_metrics_store_backlog_buckets",
        &[],
        st.backlog as f64,
    );
    o.head(
        "pooled_app_metrics_store_gaps_total",
        "counter",
        "Completed Redis outages seen by the metrics writer.",
    );
    o.sample("pooled_app_metrics_store_gaps_total", &[], st.gaps as f64);
    o.head(
        "pooled_app_metrics_store_gap_seconds_total",
        "counter",
        "Total length of completed Redis outages.",
    );
    o.sample(
        "pooled_app_metrics_store_gap_seconds_total",
        &[],
        st.gap_seconds as f64,
    );

    if let Some(p) = &m.pool {
        pool(&mut o, &p.facts());
    }
    if let Some(h) = m.health.latest() {
        health(&mut o, &h);
    }
    if let Some(a) = &m.alerts {
        let v = a.view();
        o.head(
            "pooled_app_alerts_firing",
            "gauge",
            "Alerts currently firing on this instance.",
        );
        o.sample("pooled_app_alerts_firing", &[], v.firing as f64);
        o.head(
            "pooled_app_alert_active",
            "gauge",
            "Active alerts: 1 pending, 2 firing.",
        );
        for al in &v.active {
            let val = if al.state == "firing" { 2.0 } else { 1.0 };
            o.sample(
                "pooled_app_alert_active",
                &[("alert", &al.id), ("severity", &al.severity)],
                val,
            );
        }
        let n = &v.notifications;
        o.head(
            "pooled_app_notifications_delivered_total",
            "counter",
            "Alert notifications delivered, by channel.",
        );
        for c in &n.channels {
            o.sample(
                "pooled_app_notifications_delivered_total",
                &[("channel", c.channel)],
                c.delivered as f64,
            );
        }
        o.head(
            "pooled_app_notifications_failed_total",
            "counter",
            "Alert notifications given up after retries, by channel.",
        );
        for c in &n.channels {
            o.sample(
                "pooled_app_notifications_failed_total",
                &[("channel", c.channel)],
                c.failed as f64,
            );
        }
        o.head(
            "pooled_app_notification_retries_total",
            "counter",
            "Notification attempts retried, by channel.",
        );
        for c in &n.channels {
            o.sample(
                "pooled_app_notification_retries_total",
                &[("channel", c.channel)],
                c.retries as f64,
            );
        }
    }
    o.0
}

fn pool(o: &mut Out, p: &PoolFacts) {
    o.head(
        "pooled_app_pool_connections",
        "gauge",
        "Open pool connections by state.",
    );
    o.sample(
        "pooled_app_pool_connections",
        &[("state", "idle")],
        f64::from(p.idle),
    );
    o.sample(
        "pooled_app_pool_connections",
        &[("state", "in_use")],
        f64::from(p.in_use),
    );
    o.head(
        "pooled_app_pool_max_connections",
        "gauge",
        "Configured maximum pool size.",
    );
    o.sample("pooled_app_pool_max_connections", &[], f64::from(p.max));
    o.head(
        "pooled_app_pool_utilization_ratio",
        "gauge",
        "Connections in use divided by the maximum.",
    );
    o.sample(
        "pooled_app_pool_utilization_ratio",
        &[],
        p.utilization_percent() / 100.0,
    );
    o.head(
        "pooled_app_pool_waiting_requests",
        "gauge",
        "Requests waiting to acquire a connection.",
    );
    o.sample("pooled_app_pool_waiting_requests", &[], p.waiting as f64);
    o.head(
        "pooled_app_pool_acquire_timeouts_total",
        "counter",
        "Connection acquisitions that timed out.",
    );
    o.sample(
        "pooled_app_pool_acquire_timeouts_total",
        &[],
        p.acquire_timeouts_total as f64,
    );
    o.head(
        "pooled_app_pool_fallback_mode",
        "gauge",
        "1 while the app runs on direct connections (pool degraded).",
    );
    o.sample(
        "pooled_app_pool_fallback_mode",
        &[],
        if p.fallback_mode { 1.0 } else { 0.0 },
    );
}

fn health(o: &mut Out, h: &HealthReport) {
    o.head(
        "pooled_app_health_score",
        "gauge",
        "Composite health score 0-100.",
    );
    o.sample("pooled_app_health_score", &[], f64::from(h.composite_score));
    o.head(
        "pooled_app_health_service_score",
        "gauge",
        "Health score 0-100 by service.",
    );
    let s = &h.services;
    for (name, v) in [
        ("database", s.database.score),
        ("redis", s.redis.score),
        ("connection_pool", s.connection_pool.score),
        ("performance", s.performance.score),
        ("notifiers", s.notifiers.score),
    ] {
        o.sample(
            "pooled_app_health_service_score",
            &[("service", name)],
            f64::from(v),
        );
    }
    if let Some(t) = s.database.response_time_ms {
        o.head(
            "pooled_app_health_database_round_trip_seconds",
            "gauge",
            "Last database health-check round trip.",
        );
        o.sample(
            "pooled_app_health_database_round_trip_seconds",
            &[],
            t / 1000.0,
        );
    }
    if let Some(t) = s.redis.response_time_ms {
        o.head(
            "pooled_app_health_redis_round_trip_seconds",
            "gauge",
            "Last Redis PING round trip.",
        );
        o.sample(
            "pooled_app_health_redis_round_trip_seconds",
            &[],
            t / 1000.0,
        );
    }
}

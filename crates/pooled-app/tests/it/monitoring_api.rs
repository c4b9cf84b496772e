//! The monitoring endpoints against a real app: token guard, report shapes, `/readyz`, flags,
//! Prometheus text checked by promtool, the dashboard page rendered by headless Chromium, and the
//! start-up error for a bad rules file.

use std::process::Command;
use std::time::Duration;

use crate::support::app::{TestApp, API_TOKEN};
use crate::support::load::Load;
use crate::support::receiver::*;
use crate::support::services::both as services;
use crate::support::{ensure, workspace_root};

/// What `promtool check metrics` (Prometheus 2.42) says about the OpenTelemetry name.
const OTEL_COUNT_FINDING: &str = "db_client_connection_count non-histogram and non-summary metrics should not have \"_count\" suffix";

/// The families of issue 13 in a 0.0.4 exposition after `ok` app requests, all answered 200.
fn check_metrics_text(text: &str, ok: u64) {
    // The request histogram: OpenTelemetry names and labels, buckets 100 µs .. 10 s.
    let users = "http_request_method=\"GET\",http_route=\"/api/users/{id}\",http_response_status_code=\"200\"";
    let buddies =
        "http_request_method=\"GET\",http_route=\"/api/buddies\",http_response_status_code=\"200\"";
    assert!(
        text.contains("# TYPE http_server_request_duration_seconds histogram\n"),
        "{text}"
    );
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
            .parse()
            .unwrap()
    };
    let count = |labels: &str| {
        value(&format!(
            "http_server_request_duration_seconds_count{{{labels}}}"
        ))
    };
    // Every load request is counted exactly once (the scrape drains the collector first).
    assert_eq!((count(users) + count(buddies)) as u64, ok);
    for labels in [users, buddies] {
        let first = value(&format!(
            "http_server_request_duration_seconds_bucket{{le=\"0.0001\",{labels}}}"
        ));
        let inf = value(&format!(
            "http_server_request_duration_seconds_bucket{{le=\"+Inf\",{labels}}}"
        ));
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_bucket{{le=\"10.0\",{labels}}}"
        )));
        assert_eq!(inf, count(labels));
        assert!(first <= inf);
        assert!(
            value(&format!(
                "http_server_request_duration_seconds_sum{{{labels}}}"
            )) > 0.0
        );
    }
    assert!(!text.contains("quantile="), "histograms, not summaries");
    // The pool in OpenTelemetry's db.client conventions.
    let pool = "db_client_connection_pool_name=\"";
    for family in [
        "db_client_connection_count",
        "db_client_connection_max",
        "db_client_connection_idle_max",
        "db_client_connection_idle_min",
        "db_client_connection_pending_requests",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} gauge\n")),
            "{family}"
        );
    }
    assert!(text.contains("# TYPE db_client_connection_timeouts_total counter\n"));
    let max = text
        .lines()
        .find(|l| l.starts_with("db_client_connection_max{"))
        .unwrap();
    assert!(max.contains(pool) && max.ends_with(" 20"), "{max}");
    assert!(text.contains("db_client_connection_state=\"idle\"}"));
    assert!(text.contains("db_client_connection_state=\"used\"}"));
    for family in ["create_time", "wait_time", "use_time"] {
        let name = format!("db_client_connection_{family}_seconds");
        assert!(
            text.contains(&format!("# TYPE {name} histogram\n")),
            "{name}"
        );
    }
    // Connections were acquired and given back (cache hits need none, so no equality).
    for family in ["wait_time", "use_time"] {
        let n = text
            .lines()
            .find(|l| l.starts_with(&format!("db_client_connection_{family}_seconds_count{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(n >= 1.0, "{family}: {n}");
    }
    assert!(text.contains(
        "db_client_operation_duration_seconds_count{db_system_name=\"postgresql\",db_operation_name=\"SELECT\"}"
    ));
    // The app's own gauges keep their names.
    for name in [
        "pooled_app_health_score ",
        "pooled_app_pool_fallback_mode 0",
        "pooled_app_alerts_firing ",
        "pooled_app_monitoring_enabled 1",
        "pooled_app_metrics_samples_dropped_total 0",
    ] {
        assert!(text.contains(name), "{name} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_shapes_token_and_prometheus_text() {
    let (pg, redis) = services().await;
    let app = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[("PERFORMANCE_API_TOKEN", API_TOKEN.into())],
    )
    .await;
    let load = Load::start(std::slice::from_ref(&app.base), 4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ok, failed) = load.stop().await;
    assert!(ok > 0 && failed == 0);
    tokio::time::sleep(Duration::from_millis(2200)).await;

    // Token: 401 without or with a wrong one, on every guarded endpoint; open ones stay open.
    let c = reqwest::Client::new();
    for p in [
        "/api/performance/metrics/realtime",
        "/api/performance/metrics/summary",
        "/api/performance/health/status",
        "/api/performance/alerts/active",
        "/api/performance/dashboard",
        "/api/performance/pool",
        "/metrics",
    ] {
        let r = c.get(format!("{}{p}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{p}");
        let r = c
            .get(format!("{}{p}", app.base))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{p}");
        let (code, body) = app.get(p).await;
        assert_eq!(code, 200, "{p}: {body}");
        assert_no_secret(&body.to_string(), pg.password());
    }
    assert_eq!(
        c.get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Report shapes.
    let (_, h) = app.get("/api/performance/health/status").await;
    assert_eq!(h["overall_healthy"], true, "{h}");
    let score = h["composite_score"].as_u64().unwrap();
    assert!((1..=100).contains(&score));
    for s in ["database", "redis", "connection_pool", "performance"] {
        assert!(
            h["services"][s]["healthy"].is_boolean() && h["services"][s]["score"].is_u64(),
            "{s}: {h}"
        );
    }
    assert!(
        h["services"]["database"]["response_time_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(h["services"]["connection_pool"]["utilization"].is_number());
    assert!(
        h["services"]["performance"]["p95_latency"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(!h["insights"].as_array().unwrap().is_empty());

    let (_, s) = app.get("/api/performance/metrics/summary?hours=1").await;
    assert_eq!(s["time_window_hours"], 1.0);
    assert_eq!(s["total_requests"].as_u64().unwrap(), ok, "{s}");
    assert!(
        s["latency_percentiles_ms"]["p95"].as_f64().unwrap()
            >= s["latency_percentiles_ms"]["p50"].as_f64().unwrap()
    );
    assert!(s["throughput_rps"].as_f64().unwrap() > 0.0);
    let kinds: Vec<&str> = s["query_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"SELECT"), "{kinds:?}");
    let (code, bad) = app.get("/api/performance/metrics/summary?hours=0").await;
    assert_eq!(code, 400);
    assert!(bad["message"].as_str().unwrap().contains("`hours`"));

    let (_, rt) = app.get("/api/performance/metrics/realtime").await;
    assert!(
        rt["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"] == "GET /api/users/{id}"),
        "{rt}"
    );
    // Cluster scope: every instance from Redis (one here), the window's requests exactly.
    let (code, cl) = app
        .get("/api/performance/metrics/realtime?scope=cluster&window=60")
        .await;
    assert_eq!(code, 200, "{cl}");
    assert_eq!(cl["scope"], "cluster");
    assert_eq!(cl["window_seconds"], 60);
    assert_eq!(cl["requests"].as_u64().unwrap(), ok, "{cl}");
    assert_eq!(cl["instances"].as_array().unwrap().len(), 1);
    assert!(cl["p95_ms"].as_f64().unwrap() > 0.0);
    for bad in ["?scope=all", "?scope=cluster&window=0", "?window=30"] {
        let (code, e) = app
            .get(&format!("/api/performance/metrics/realtime{bad}"))
            .await;
        assert_eq!(code, 400, "{bad}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("query parameter"),
            "{e}"
        );
    }
    let (_, d) = app.get("/api/performance/dashboard").await;
    for k in ["realtime", "summary_1h", "health", "alerts", "pool"] {
        assert!(!d[k].is_null(), "dashboard.{k}");
    }

    // /readyz: health+json, pass.
    let r = c.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/health+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["status"] == "pass" || body["status"] == "warn",
        "{body}"
    );
    assert!(body["checks"]["database:responseTime"][0]["observedValue"]
        .as_f64()
        .is_some());

    // /metrics: Prometheus text 0.0.4 for a plain client, clean under promtool; OpenMetrics for
    // a scraper that asks for it (what Prometheus does).
    let scrape = |accept: &'static str| {
        let req = c
            .get(format!("{}/metrics", app.base))
            .bearer_auth(API_TOKEN)
            .header("accept", accept);
        async move {
            let r = req.send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            (ct, r.text().await.unwrap())
        }
    };
    let (ct, text) = scrape("*/*").await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    check_metrics_text(&text, ok);
    let promtool = ensure("ensure-promtool.sh");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Clean but for one finding, which is the standard's name: OpenTelemetry's
    // `db.client.connection.count` is `db_client_connection_count` in Prometheus naming, and
    // promlint flags any `_count` name that is not a histogram's or a summary's. Anything
    // else fails.
    let findings: Vec<&str> = msg.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        findings,
        [OTEL_COUNT_FINDING],
        "promtool check metrics: {msg}"
    );
    let (ct, om) =
        scrape("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5").await;
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE db_client_connection_timeouts counter\n"));
    assert!(om.contains("# UNIT http_server_request_duration_seconds seconds\n"));

    // Database down: /readyz fails with 503 (after the next health check).
    pg.pause().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = c.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "fail");
    pg.unpause().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn monitoring_and_alerts_flags_off() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        dir.path(),
        "rules:\n  - id: lat_off\n    metric: request_p95\n    threshold: 0.05\n    window: 1s\n    severity: critical\n    cooldown: 1m\n",
    );
    // Alerts off: the rule fires but nothing is sent.
    let mut vars = alert_vars(&rx, &rules, 100);
    vars.push(("ENABLE_PERFORMANCE_ALERTS", "false".into()));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &vars).await;
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.stop().await;
    let (_, a) = app.get("/api/performance/alerts/active").await;
    assert_eq!(a["alerts_enabled"], false);
    let outcomes: Vec<_> = a["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].clone())
        .collect();
    assert!(outcomes.iter().any(|o| o == "disabled"), "{a}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.deliveries().is_empty(), "{:?}", rx.deliveries());
    app.stop().await;

    // Monitoring off: nothing recorded, the endpoints say so.
    let mut vars = alert_vars(&rx, &rules, 100);
    vars.push(("ENABLE_PERFORMANCE_MONITORING", "false".into()));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &vars).await;
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop().await;
    for p in [
        "/api/performance/metrics/realtime",
        "/api/performance/metrics/summary",
        "/api/performance/alerts/active",
        "/api/performance/dashboard",
    ] {
        let (code, v) = app.get(p).await;
        assert_eq!(code, 200);
        assert_eq!(v["monitoring_enabled"], false, "{p}: {v}");
        assert!(v["message"].as_str().unwrap().contains("disabled"));
    }
    assert_eq!(app.state.monitoring.monitoring.collector.received(), 0);
    // What was not built at start-up cannot be resumed.
    let (code, v) = app
        .call(
            reqwest::Method::PUT,
            "/api/performance/monitoring",
            Some(r#"{"enabled": true}"#),
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["error"], "monitoring_off");
    let (_, m) = app.get("/metrics").await;
    assert!(m
        .as_str()
        .unwrap()
        .contains("pooled_app_monitoring_enabled 0"));
    assert!(rx.deliveries().is_empty());
    app.stop().await;
}

/// `PUT /api/performance/monitoring`: paused, the app records nothing and answers as an
/// unmonitored one; resumed, it records every request again. The monitoring-overhead
/// scenario's crossover relies on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn monitoring_pauses_and_resumes_at_run_time() {
    let (pg, redis) = services().await;
    let app = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[("PERFORMANCE_API_TOKEN", API_TOKEN.into())],
    )
    .await;
    let switch = |body: &'static str, token: Option<&'static str>| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PUT,
                "/api/performance/monitoring",
                Some(body),
                token,
            )
            .await
        }
    };
    let (code, _) = switch(r#"{"enabled": false}"#, None).await;
    assert_eq!(
        code, 401,
        "the switch is guarded like every monitoring endpoint"
    );
    let (code, v) = switch(r#"{"enabled": "no"}"#, Some(API_TOKEN)).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("body:"), "{v}");
    let collector = &app.state.monitoring.monitoring.collector;
    // Let the readiness probes' samples drain first.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (code, v) = switch(r#"{"enabled": false}"#, Some(API_TOKEN)).await;
    assert_eq!((code, &v["paused"]), (200, &serde_json::json!(true)), "{v}");
    let before = collector.received();
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (paused_ok, _) = load.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(paused_ok > 50, "{paused_ok}");
    assert_eq!(collector.received(), before, "paused, nothing is recorded");
    let (_, rt) = app.get("/api/performance/metrics/realtime").await;
    assert_eq!(rt["monitoring_enabled"], false, "{rt}");
    assert!(rt["message"].as_str().unwrap().contains("paused"), "{rt}");
    let (_, m) = app.get("/metrics").await;
    assert!(m
        .as_str()
        .unwrap()
        .contains("pooled_app_monitoring_enabled 0"));

    let (code, v) = switch(r#"{"enabled": true}"#, Some(API_TOKEN)).await;
    assert_eq!(
        (code, &v["monitoring_enabled"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    let resumed_at = collector.received();
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ok, _) = load.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The load's requests, plus the resume request itself (recorded once its response is out,
    // after the switch).
    let recorded = collector.received() - resumed_at;
    assert!(
        (ok..=ok + 3).contains(&recorded),
        "resumed: {recorded} recorded for {ok} requests"
    );
    let (_, rt) = app.get("/api/performance/metrics/realtime").await;
    assert_eq!(rt["monitoring_enabled"], true, "{rt}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_page_shows_live_data_in_headless_chromium() {
    let chromium = ensure("ensure-chromium.sh");
    let (pg, redis) = services().await;
    let app = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[("PERFORMANCE_API_TOKEN", API_TOKEN.into())],
    )
    .await;
    let load = Load::start(std::slice::from_ref(&app.base), 4);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (ok, _) = load.stop().await;
    // Let the last seconds reach Redis so the hour summary is stable while the page loads.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, d) = app.get("/api/performance/dashboard").await;
    let total = d["summary_1h"]["total_requests"].as_u64().unwrap();
    assert_eq!(total, ok);
    let p95 = d["summary_1h"]["latency_percentiles_ms"]["p95"]
        .as_f64()
        .unwrap();

    // The page holds no data: its script fetches it with the token from the fragment.
    let page = reqwest::get(format!("{}/dashboard", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
    let url = format!("{}/dashboard#token={API_TOKEN}", app.base);
    let tmp = tempfile::tempdir().unwrap();
    let flags = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=6000",
            "--window-size=1400,1100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(format!("--user-data-dir={}", tmp.path().display()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(url.clone());
        a
    };
    let run = |args: Vec<String>| {
        let chromium = chromium.clone();
        async move {
            tokio::task::spawn_blocking(move || Command::new(chromium).args(args).output().unwrap())
                .await
                .unwrap()
        }
    };
    let dom = run(flags(&["--dump-dom"])).await;
    let html = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        html.contains(&format!("id=\"total-1h\" data-value=\"{total}\"")),
        "total {total} not in DOM: {}",
        &html[..html.len().min(3000)]
    );
    assert!(
        html.contains(&format!("id=\"p95-1h\" data-value=\"{p95}\"")),
        "p95 {p95} not in DOM"
    );
    assert!(html.contains("GET /api/users/{id}"), "routes table");
    assert!(
        !html.contains("id=\"health-score\" data-value=\"\""),
        "health score rendered"
    );
    assert!(!html.contains("error: "), "page reported an error");

    let artifacts = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = run(flags(&[&format!("--screenshot={}", shot.display())])).await;
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    println!("screenshot: {}", shot.display());
    app.stop().await;
}

#[test]
fn bad_rules_file_stops_start_up_with_one_located_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "rules:\n  - id: x\n    metric: request_p95\n    threshold: 5\n    window: 10q\n    severity: critical\n    cooldown: 1m\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pooled-app"))
        .env_clear()
        .env("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db")
        .env("ALERT_RULES_FILE", &p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:5:13: rules[0].window: invalid duration \"10q\"",
            p.display()
        )),
        "{err}"
    );
}

/// The per-second store in Redis: each second's bucket under the instance's key, the instance's
/// mark, the sets trimmed to the retention (a member two days old, planted before the app
/// starts, is gone after its first write) and every key expiring.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_second_buckets_reach_redis_trimmed_and_expiring() {
    let (pg, redis) = services().await;
    let instance = format!("store-{}", std::process::id());
    let sec_key = format!("pp:metrics:sec:{instance}");
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let _: () = redis::cmd("ZADD")
        .arg(&sec_key)
        .arg(now - 2 * 86_400)
        .arg("planted")
        .query_async(&mut c)
        .await
        .unwrap();
    let app = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[("INSTANCE_ID", instance.clone())],
    )
    .await;
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let members: Vec<(Vec<u8>, u64)> = redis::cmd("ZRANGE")
        .arg(&sec_key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        members.iter().all(|(m, _)| m.as_slice() != b"planted"),
        "the two-day-old member outlived the 24 h retention"
    );
    assert!(
        members.len() >= 3 && members.iter().all(|(_, s)| *s >= now - 5),
        "seconds written: {:?}",
        members.iter().map(|(_, s)| s).collect::<Vec<_>>()
    );
    for key in [sec_key.as_str(), "pp:metrics:instances"] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!((1..=86_400).contains(&ttl), "{key}: TTL {ttl}");
    }
    let mark: Option<u64> = redis::cmd("ZSCORE")
        .arg("pp:metrics:instances")
        .arg(&instance)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(mark.is_some_and(|t| t >= now), "instance mark {mark:?}");
    app.stop().await;
}

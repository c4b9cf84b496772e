//! End-to-end alerting against real Postgres and Redis, with a real local HTTP server standing in
//! for Slack and Resend. The latency breach is real traffic against a rule whose threshold every
//! request exceeds (p95 ≥ 0.05 ms): the breach starts with the first request.

use std::time::{Duration, Instant};

use crate::support::app::TestApp;
use crate::support::load::Load;
use crate::support::receiver::*;
use crate::support::services::both as services;

fn rule(id: &str, window: &str, for_: &str, cooldown: &str) -> String {
    format!(
        "rules:\n  - id: {id}\n    summary: Test latency breach\n    metric: request_p95\n    threshold: 0.05\n    window: {window}\n    for: {for_}\n    severity: critical\n    cooldown: {cooldown}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn breach_fires_within_bound_once_per_channel_and_resolves_once() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), &rule("lat_e2e", "2s", "1s", "10m"));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &rules, 200)).await;

    // Idle app: no data, no alert.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(rx.deliveries().is_empty());

    let t0 = Instant::now();
    let load = Load::start(std::slice::from_ref(&app.base), 4);
    let fired = rx.wait_on_both("firing", Duration::from_secs(10)).await;
    assert!(fired, "no firing notification: {:?}", rx.deliveries());
    // Bound: `for` (1 s) + one evaluation interval (0.2 s) + 1 s after the breach started.
    let bound = Duration::from_millis(1000 + 200 + 1000);
    for c in ["slack", "email"] {
        let first = rx.for_(c, "lat_e2e", "firing")[0].at.duration_since(t0);
        println!(
            "{c}: firing delivered {:.0} ms after the breach started (bound {} ms)",
            first.as_secs_f64() * 1e3,
            bound.as_millis()
        );
        assert!(first <= bound, "{c} delivered after {first:?} > {bound:?}");
    }
    // While the breach goes on, nothing more is sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, failed) = load.stop().await;
    assert!(ok > 100 && failed == 0, "load ok={ok} failed={failed}");
    let (_, active) = app.get("/api/performance/alerts/active").await;
    assert_eq!(active["firing"], 1, "{active}");

    let resolved = rx.wait_on_both("resolved", Duration::from_secs(10)).await;
    assert!(resolved, "no resolution: {:?}", rx.deliveries());
    tokio::time::sleep(Duration::from_secs(1)).await;
    for c in ["slack", "email"] {
        assert_eq!(
            rx.for_(c, "lat_e2e", "firing").len(),
            1,
            "{c} firing deliveries"
        );
        assert_eq!(
            rx.for_(c, "lat_e2e", "resolved").len(),
            1,
            "{c} resolved deliveries"
        );
    }
    assert_eq!(rx.deliveries().len(), 4);
    // Same idempotency key on both channels for one transition; Slack's shape; no secrets.
    let f = rx.for_("slack", "lat_e2e", "firing")[0].clone();
    assert_eq!(f.key, rx.for_("email", "lat_e2e", "firing")[0].key);
    assert!(f.body["text"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING] critical: Test latency breach"));
    assert!(f.body["blocks"].as_array().is_some_and(|b| b.len() >= 2));
    let e = rx.for_("email", "lat_e2e", "resolved")[0].clone();
    assert_eq!(e.body["to"][0], "oncall@example.test");
    assert!(e.body["subject"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED]"));
    assert!(e.body["html"].as_str().is_some() && e.body["text"].as_str().is_some());
    for d in rx.deliveries() {
        assert_no_secret(&d.raw, pg.password());
    }
    let (_, active) = app.get("/api/performance/alerts/active").await;
    assert_eq!(active["firing"], 0);
    assert_no_secret(&active.to_string(), pg.password());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_receivers_are_retried_on_5xx_and_429_but_not_on_other_4xx() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    rx.script(
        "slack",
        &[Answer {
            status: 500,
            retry_after: None,
        }],
    );
    rx.script(
        "email",
        &[Answer {
            status: 429,
            retry_after: Some(1),
        }],
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), &rule("lat_retry", "2s", "0s", "10m"));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &rules, 200)).await;

    let load = Load::start(std::slice::from_ref(&app.base), 2);
    let ok = rx
        .wait_for(Duration::from_secs(15), |d| {
            ["slack", "email"]
                .iter()
                .all(|c| d.iter().any(|x| x.channel == *c && x.answered == 200))
        })
        .await;
    assert!(ok, "{:?}", rx.deliveries());
    let slack = rx.for_("slack", "lat_retry", "firing");
    assert_eq!(
        slack.iter().map(|d| d.answered).collect::<Vec<_>>(),
        vec![500, 200]
    );
    let email = rx.for_("email", "lat_retry", "firing");
    assert_eq!(
        email.iter().map(|d| d.answered).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let gap = email[1].at.duration_since(email[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 not honoured ({gap:?})"
    );
    assert_eq!(
        slack[0].key, slack[1].key,
        "retries reuse the idempotency key"
    );

    // The resolution meets a 400 on Slack: no retry.
    rx.script(
        "slack",
        &[Answer {
            status: 400,
            retry_after: None,
        }],
    );
    load.stop().await;
    let done = rx
        .wait_for(Duration::from_secs(10), |d| {
            d.iter()
                .any(|x| x.channel == "email" && x.rule_and_transition().1 == "resolved")
                && d.iter()
                    .any(|x| x.channel == "slack" && x.rule_and_transition().1 == "resolved")
        })
        .await;
    assert!(done);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slack_res = rx.for_("slack", "lat_retry", "resolved");
    assert_eq!(
        slack_res.iter().map(|d| d.answered).collect::<Vec<_>>(),
        vec![400]
    );
    let (_, active) = app.get("/api/performance/alerts/active").await;
    let chans = active["notifications"]["channels"]
        .as_array()
        .unwrap()
        .clone();
    let slack_stats = chans.iter().find(|c| c["channel"] == "slack").unwrap();
    assert_eq!(slack_stats["failed"], 1, "{active}");
    assert_eq!(slack_stats["retries"], 1);
    // The notifier health sees the failure.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, health) = app.get("/api/performance/health/status").await;
    assert!(
        health["services"]["notifiers"]["score"].as_u64().unwrap() < 100,
        "{health}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooldown_suppresses_a_repeat_firing() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), &rule("lat_cool", "1s", "0s", "10m"));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &rules, 100)).await;

    for round in 0..2 {
        let load = Load::start(std::slice::from_ref(&app.base), 2);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        load.stop().await;
        // Wait for the local resolution (window 1 s empties).
        let end = Instant::now() + Duration::from_secs(8);
        loop {
            let (_, a) = app.get("/api/performance/alerts/active").await;
            let resolved = a["recent_transitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["transition"] == "resolved")
                .count();
            if resolved > round {
                break;
            }
            assert!(Instant::now() < end, "no resolution in round {round}: {a}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for c in ["slack", "email"] {
        assert_eq!(
            rx.for_(c, "lat_cool", "firing").len(),
            1,
            "{c}: {:?}",
            rx.deliveries()
        );
        assert_eq!(rx.for_(c, "lat_cool", "resolved").len(), 1, "{c}");
    }
    let (_, a) = app.get("/api/performance/alerts/active").await;
    let outcomes: Vec<String> = a["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["transition"].as_str().unwrap(),
                t["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        outcomes.contains(&"firing=skipped:suppressed".to_string()),
        "{outcomes:?}"
    );
    assert!(
        a["notifications"]["suppressed_by_cooldown"]
            .as_u64()
            .unwrap()
            >= 1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_transition_once() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), &rule("lat_two", "2s", "1s", "10m"));
    // Named instances and a configured sender (INSTANCE_ID, PERFORMANCE_ALERT_EMAIL_FROM).
    let named = |id: &str| {
        let mut v = alert_vars(&rx, &rules, 200);
        v.push(("INSTANCE_ID", id.to_owned()));
        v.push((
            "PERFORMANCE_ALERT_EMAIL_FROM",
            "Ops Alerts <ops-alerts@example.com>".to_owned(),
        ));
        v
    };
    let a = TestApp::start_ready(&pg.url(), &redis.url(), &named("app-a")).await;
    let b = TestApp::start_ready(&pg.url(), &redis.url(), &named("app-b")).await;

    let load = Load::start(&[a.base.clone(), b.base.clone()], 4);
    tokio::time::sleep(Duration::from_secs(4)).await;
    load.stop().await;
    let done = rx.wait_on_both("resolved", Duration::from_secs(12)).await;
    assert!(done, "{:?}", rx.deliveries());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for c in ["slack", "email"] {
        assert_eq!(
            rx.for_(c, "lat_two", "firing").len(),
            1,
            "{c}: {:?}",
            rx.deliveries()
        );
        assert_eq!(rx.for_(c, "lat_two", "resolved").len(), 1, "{c}");
    }
    for d in rx.deliveries().iter().filter(|d| d.channel == "email") {
        assert_eq!(
            d.body["from"], "Ops Alerts <ops-alerts@example.com>",
            "{}",
            d.raw
        );
    }
    // Both instances fired and resolved locally: the deduplication was exercised.
    let mut outcomes = Vec::new();
    for app in [&a, &b] {
        let (_, v) = app.get("/api/performance/alerts/active").await;
        for t in v["recent_transitions"].as_array().unwrap() {
            outcomes.push(format!(
                "{}={}",
                t["transition"].as_str().unwrap(),
                t["outcome"].as_str().unwrap()
            ));
        }
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.starts_with("firing=")).count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "firing=sent").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "resolved=sent").count(),
        1,
        "{outcomes:?}"
    );
    // One aggregated view: the summary counts both instances.
    let (_, s) = a.get("/api/performance/metrics/summary?hours=1").await;
    assert_eq!(s["source"], "redis");
    assert_eq!(s["instances"].as_array().unwrap().len(), 2, "{s}");
    let ids = s["instances"].to_string();
    assert!(
        ids.contains("\"app-a\"") && ids.contains("\"app-b\""),
        "{s}"
    );
    let (_, rt) = b.get("/api/performance/metrics/realtime").await;
    assert_eq!(rt["instance"], "app-b");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn firing_sent_while_redis_is_away_is_resolved_once_after_it_returns() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), &rule("lat_away", "2s", "0s", "10m"));
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &rules, 200)).await;

    // Coordination unreachable: the firing goes out from this instance anyway.
    redis.pause().await.expect("pause redis");
    let load = Load::start(std::slice::from_ref(&app.base), 4);
    let fired = rx.wait_on_both("firing", Duration::from_secs(10)).await;
    let (_, failed) = load.stop().await;
    redis.unpause().await.expect("unpause redis");
    assert!(
        fired,
        "no firing while Redis was paused: {:?}",
        rx.deliveries()
    );
    assert_eq!(failed, 0);

    // Redis is back but holds no episode for this firing: the resolution is still owed and sent,
    // once per channel, under the firing's episode key.
    let resolved = rx.wait_on_both("resolved", Duration::from_secs(10)).await;
    assert!(
        resolved,
        "no resolution after Redis returned: {:?}",
        rx.deliveries()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for c in ["slack", "email"] {
        let f = rx.for_(c, "lat_away", "firing");
        let r = rx.for_(c, "lat_away", "resolved");
        assert_eq!((f.len(), r.len()), (1, 1), "{c}: {:?}", rx.deliveries());
        let episode = |k: &str| k.rsplit(':').next().unwrap_or_default().to_owned();
        assert_eq!(episode(&f[0].key), episode(&r[0].key), "{c}");
    }
    let (_, active) = app.get("/api/performance/alerts/active").await;
    let outcomes: Vec<String> = active["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}={}", t["transition"], t["outcome"]))
        .collect();
    assert!(
        outcomes.contains(&"\"resolved\"=\"sent\"".to_owned()),
        "{outcomes:?}"
    );
    app.stop().await;
}

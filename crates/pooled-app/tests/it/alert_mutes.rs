//! Alerting as Alertmanager users expect it, end to end against real Postgres and Redis with a
//! real local HTTP server standing in for Slack and Resend: inhibition (one instance, and across
//! instances through Redis), routing by severity, silences through the API (shared by two
//! instances), keep_firing_for and no-data alerts. Breaches are real traffic against rules whose
//! thresholds every request exceeds.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::support::app::{TestApp, API_TOKEN};
use crate::support::load::Load;
use crate::support::receiver::*;
use crate::support::services::both as services;

/// A rule in the rules file's YAML (one list item).
fn rule(id: &str, metric: &str, threshold: f64, severity: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    metric: {metric}\n    threshold: {threshold}\n    window: 1s\n    for: 0s\n    severity: {severity}\n    cooldown: 10m\n{extra}"
    )
}

fn rules(items: &[String]) -> String {
    format!("rules:\n{}", items.concat())
}

/// The recent transitions of `/alerts/active` as `id:transition=outcome`.
async fn outcomes(app: &TestApp) -> Vec<String> {
    let (_, a) = app.get("/api/performance/alerts/active").await;
    a["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}={}",
                t["rule_id"].as_str().unwrap(),
                t["transition"].as_str().unwrap(),
                t["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

/// Waits until the app has recorded a transition matching `pat` (`id:transition=outcome`).
async fn wait_outcome(app: &TestApp, pat: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if outcomes(app).await.iter().any(|o| o == pat) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_firing_critical_inhibits_its_warning_and_severities_route_to_their_channels() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Every request breaches both request_p95 rules and the p99 warning, which has no critical
    // on its metric (a db_query rule would not do: the health check's query every second keeps
    // db metrics from ever resolving).
    let file = rules_file(
        dir.path(),
        &rules(&[
            rule("lat_crit", "request_p95", 0.05, "critical", ""),
            rule("lat_warn", "request_p95", 0.01, "warning", ""),
            rule("p99_warn", "request_p99", 0.01, "warning", ""),
        ]),
    );
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &file, 100)).await;

    let load = Load::start(std::slice::from_ref(&app.base), 4);
    assert!(rx.wait_on_both("firing", Duration::from_secs(10)).await);
    assert!(
        rx.wait_for(Duration::from_secs(10), |d| d.iter().any(|x| x
            .rule_and_transition()
            == ("p99_warn".into(), "firing".into())))
            .await,
        "{:?}",
        rx.deliveries()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, active) = app.get("/api/performance/alerts/active").await;
    let warn = active["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "lat_warn")
        .unwrap_or_else(|| panic!("lat_warn not active: {active}"))
        .clone();
    assert_eq!(warn["state"], "firing", "{warn}");
    assert_eq!(warn["muted_by"], "inhibited by lat_crit", "{warn}");
    assert_eq!(warn["notification_suppressed"], true);
    load.stop().await;
    assert!(wait_outcome(&app, "lat_crit:resolved=sent", Duration::from_secs(10)).await);
    assert!(wait_outcome(&app, "p99_warn:resolved=sent", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The critical went to Slack and email once each, fired and resolved; the inhibited warning
    // reached no channel at all (neither its firing nor its resolution); the other warning went
    // to Slack only (the default warning route).
    for c in ["slack", "email"] {
        assert_eq!(rx.for_(c, "lat_crit", "firing").len(), 1, "{c}");
        assert_eq!(rx.for_(c, "lat_crit", "resolved").len(), 1, "{c}");
        assert!(rx.for_(c, "lat_warn", "firing").is_empty(), "{c}");
        assert!(rx.for_(c, "lat_warn", "resolved").is_empty(), "{c}");
    }
    assert_eq!(rx.for_("slack", "p99_warn", "firing").len(), 1);
    assert_eq!(rx.for_("slack", "p99_warn", "resolved").len(), 1);
    assert!(rx.for_("email", "p99_warn", "firing").is_empty());
    let o = outcomes(&app).await;
    assert!(
        o.contains(&"lat_warn:firing=skipped:inhibited".into()),
        "{o:?}"
    );
    assert!(
        o.contains(&"lat_warn:resolved=skipped:inhibited".into()),
        "{o:?}"
    );
    let (_, active) = app.get("/api/performance/alerts/active").await;
    let n = &active["notifications"];
    assert!(n["suppressed"]["inhibited"].as_u64().unwrap() >= 2, "{n}");
    assert_eq!(n["routes"]["warning"]["email"], false, "{n}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_critical_firing_on_one_instance_inhibits_the_warning_on_another() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // Same rule ids on both; on B the critical cannot breach, so only A's critical can mute B's
    // warning. Critical notifications go to email only here (ALERT_ROUTE_CRITICAL).
    let file_a = rules_file(
        dir_a.path(),
        &rules(&[
            rule("x_crit", "request_p95", 0.05, "critical", ""),
            rule("x_warn", "request_p95", 1e9, "warning", ""),
        ]),
    );
    let file_b = rules_file(
        dir_b.path(),
        &rules(&[
            rule("x_crit", "request_p95", 1e9, "critical", ""),
            rule("x_warn", "request_p95", 0.01, "warning", ""),
        ]),
    );
    let vars = |file: &str, id: &str| {
        let mut v = alert_vars(&rx, file, 100);
        v.push(("INSTANCE_ID", id.to_owned()));
        v.push(("ALERT_ROUTE_CRITICAL", "email".to_owned()));
        v
    };
    let a = TestApp::start_ready(&pg.url(), &redis.url(), &vars(&file_a, "inh-a")).await;
    let b = TestApp::start_ready(&pg.url(), &redis.url(), &vars(&file_b, "inh-b")).await;

    // A fires first; then B's warning breaches while A's critical fires.
    let load_a = Load::start(std::slice::from_ref(&a.base), 2);
    assert!(
        rx.wait_for(Duration::from_secs(10), |d| d.iter().any(|x| x
            .rule_and_transition()
            == ("x_crit".into(), "firing".into())))
            .await
    );
    let load_b = Load::start(std::slice::from_ref(&b.base), 2);
    assert!(
        wait_outcome(
            &b,
            "x_warn:firing=skipped:inhibited",
            Duration::from_secs(10)
        )
        .await
    );
    // A's critical ends while B's warning still fires: B's warning goes out then (late).
    load_a.stop().await;
    let a_stopped = Instant::now();
    assert!(
        rx.wait_for(Duration::from_secs(10), |d| d.iter().any(|x| x
            .rule_and_transition()
            == ("x_warn".into(), "firing".into())))
            .await,
        "{:?}",
        rx.deliveries()
    );
    let resolved_crit = rx.for_("email", "x_crit", "resolved");
    let warn = rx.for_("slack", "x_warn", "firing");
    assert_eq!(resolved_crit.len(), 1, "{:?}", rx.deliveries());
    assert_eq!(warn.len(), 1);
    // Not before A's critical could end (its window empties after A's load stopped).
    assert!(
        warn[0].at > a_stopped,
        "the warning went out while the critical fired"
    );
    load_b.stop().await;
    assert!(wait_outcome(&b, "x_warn:resolved=sent", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Routing: the critical reached email only, the warning Slack only.
    assert!(rx.for_("slack", "x_crit", "firing").is_empty());
    assert!(rx.for_("email", "x_warn", "firing").is_empty());
    let (_, bv) = b.get("/api/performance/alerts/active").await;
    let late = bv["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule_id"] == "x_warn" && t["outcome"] == "sent" && t["transition"] == "firing")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(late["late"], true, "{bv}");
    a.stop().await;
    b.stop().await;
}

fn rfc3339_in(d: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::from_std(d).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silence_made_on_one_instance_mutes_another_until_it_ends() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = rules_file(
        dir.path(),
        &rules(&[rule("s_crit", "request_p95", 0.05, "critical", "")]),
    );
    let vars = |id: &str| {
        let mut v = alert_vars(&rx, &file, 100);
        v.push(("INSTANCE_ID", id.to_owned()));
        v
    };
    let a = TestApp::start_ready(&pg.url(), &redis.url(), &vars("sil-a")).await;
    let b = TestApp::start_ready(&pg.url(), &redis.url(), &vars("sil-b")).await;
    let silences = "/api/performance/alerts/silences";

    // Bad input: one line naming the field; no token: 401.
    for (body, status, starts) in [
        ("{", 400, "body: EOF while parsing"),
        (
            r#"{"alert": "s_crit"}"#,
            400,
            "body: missing field `ends_at`",
        ),
        (
            r#"{"ends_at": "soon"}"#,
            400,
            "ends_at: expected an RFC 3339 instant",
        ),
        (
            r#"{"ends_at": "2001-01-01T00:00:00Z"}"#,
            400,
            "ends_at: 2001-01-01T00:00:00Z is not in the future",
        ),
    ] {
        let (code, v) = a
            .call(Method::POST, silences, Some(body), Some(API_TOKEN))
            .await;
        assert_eq!(code, status, "{body}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(starts), "{body}: {msg}");
    }
    let unknown = format!(
        r#"{{"alert": "nope", "ends_at": "{}"}}"#,
        rfc3339_in(Duration::from_secs(60))
    );
    let (code, v) = a
        .call(Method::POST, silences, Some(&unknown), Some(API_TOKEN))
        .await;
    assert_eq!(code, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("alert: unknown alert \"nope\"; the rules raise s_crit"),
        "{v}"
    );
    let (code, _) = a.call(Method::POST, silences, Some(&unknown), None).await;
    assert_eq!(code, 401);

    // A silence of every alert, listed by the other instance and ended there.
    let all = format!(
        r#"{{"ends_at": "{}"}}"#,
        rfc3339_in(Duration::from_secs(600))
    );
    let (code, s_all) = a
        .call(Method::POST, silences, Some(&all), Some(API_TOKEN))
        .await;
    assert_eq!(code, 201, "{s_all}");
    let (code, list) = b.get(silences).await;
    assert_eq!(code, 200);
    assert_eq!(list["source"], "redis");
    assert_eq!(list["silences"][0]["id"], s_all["id"], "{list}");
    let del = format!("{silences}/{}", s_all["id"].as_str().unwrap());
    assert_eq!(
        b.call(Method::DELETE, &del, None, Some(API_TOKEN)).await.0,
        204
    );
    assert_eq!(
        b.call(Method::DELETE, &del, None, Some(API_TOKEN)).await.0,
        404
    );
    assert_eq!(
        b.call(
            Method::DELETE,
            &format!("{silences}/a:b"),
            None,
            Some(API_TOKEN)
        )
        .await
        .0,
        400
    );

    // Silence s_crit for 4 s on A, then breach on B only.
    let body = format!(
        r#"{{"alert": "s_crit", "ends_at": "{}", "comment": "maintenance"}}"#,
        rfc3339_in(Duration::from_secs(4))
    );
    let (code, s) = a
        .call(Method::POST, silences, Some(&body), Some(API_TOKEN))
        .await;
    assert_eq!(code, 201, "{s}");
    // Nothing fires on B yet, so its evaluation reads no mutes: its view reads the store itself.
    let (_, bv) = b.get("/api/performance/alerts/active").await;
    assert_eq!(bv["silences"][0]["id"], s["id"], "{bv}");
    let ends_at = Instant::now()
        + Duration::from_millis(
            s["ends_at_ms"]
                .as_u64()
                .unwrap()
                .saturating_sub(chrono::Utc::now().timestamp_millis() as u64),
        );
    let load = Load::start(std::slice::from_ref(&b.base), 4);
    assert!(wait_outcome(&b, "s_crit:firing=skipped:silenced", Duration::from_secs(5)).await);
    let (_, bv) = b.get("/api/performance/alerts/active").await;
    let crit = &bv["active"][0];
    assert_eq!(
        crit["muted_by"],
        format!("silenced by {}", s["id"].as_str().unwrap()),
        "{bv}"
    );
    assert!(
        rx.deliveries().is_empty(),
        "sent while silenced: {:?}",
        rx.deliveries()
    );
    // Once the silence ends, the firing goes out, once per channel.
    assert!(rx.wait_on_both("firing", Duration::from_secs(10)).await);
    for c in ["slack", "email"] {
        let f = rx.for_(c, "s_crit", "firing");
        assert_eq!(f.len(), 1, "{c}");
        assert!(
            f[0].at >= ends_at,
            "{c}: delivered before the silence ended"
        );
        println!(
            "{c}: firing delivered {:.0} ms after the silence ended",
            f[0].at.duration_since(ends_at).as_secs_f64() * 1e3
        );
    }
    load.stop().await;
    assert!(rx.wait_on_both("resolved", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.deliveries().len(), 4, "{:?}", rx.deliveries());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silences_cannot_be_changed_without_a_configured_token() {
    let (pg, redis) = services().await;
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &[]).await;
    let body = format!(
        r#"{{"ends_at": "{}"}}"#,
        rfc3339_in(Duration::from_secs(60))
    );
    let (code, v) = app
        .call(
            Method::POST,
            "/api/performance/alerts/silences",
            Some(&body),
            None,
        )
        .await;
    assert_eq!(code, 403, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("PERFORMANCE_API_TOKEN"));
    let (code, v) = app.get("/api/performance/alerts/silences").await;
    assert_eq!(
        (code, v["silences"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_firing_for_rides_out_a_gap_in_the_breach() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = rules_file(
        dir.path(),
        &rules(&[rule(
            "k_crit",
            "request_p95",
            0.05,
            "critical",
            "    keep_firing_for: 5s\n",
        )]),
    );
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &file, 100)).await;

    // Breach, a 2.5 s gap (the 1 s window empties: no data, no breach), breach again.
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    assert!(rx.wait_on_both("firing", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, v) = app.get("/api/performance/alerts/active").await;
    assert_eq!(v["firing"], 1, "resolved during the gap: {v}");
    assert!(v["active"][0]["clear_since_ms"].is_u64(), "{v}");
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.stop().await;
    let stopped = Instant::now();
    assert!(rx.wait_on_both("resolved", Duration::from_secs(15)).await);
    let resolved = rx.for_("slack", "k_crit", "resolved")[0].at;
    // The window empties within about a second of the load stopping (whole-second buckets:
    // possibly a little before `stopped`); the resolution waits 5 s more.
    let after = resolved.duration_since(stopped);
    println!(
        "resolution {:.0} ms after the load stopped",
        after.as_secs_f64() * 1e3
    );
    assert!(after >= Duration::from_secs(4), "{after:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in ["slack", "email"] {
        assert_eq!(rx.for_(c, "k_crit", "firing").len(), 1, "{c}");
        assert_eq!(rx.for_(c, "k_crit", "resolved").len(), 1, "{c}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_metric_without_data_raises_its_no_data_alert() {
    let (pg, redis) = services().await;
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = rules_file(
        dir.path(),
        &rules(&[rule(
            "nd",
            "request_p95",
            1e9,
            "critical",
            "    no_data: 2s\n",
        )]),
    );
    let started = Instant::now();
    let app = TestApp::start_ready(&pg.url(), &redis.url(), &alert_vars(&rx, &file, 100)).await;
    // Idle from start-up: after 2 s without a value, `nd_no_data` fires (the threshold rule
    // itself stays quiet: no data is never a breach).
    assert!(
        rx.wait_on_both("firing", Duration::from_secs(10)).await,
        "{:?}",
        rx.deliveries()
    );
    let f = rx.for_("slack", "nd_no_data", "firing");
    assert_eq!(f.len(), 1, "{:?}", rx.deliveries());
    assert!(f[0].at.duration_since(started) >= Duration::from_secs(2));
    assert!(
        f[0].body["text"]
            .as_str()
            .unwrap()
            .contains("No data: request_p95"),
        "{}",
        f[0].raw
    );
    // Traffic brings a value: resolved.
    let load = Load::start(std::slice::from_ref(&app.base), 2);
    assert!(rx.wait_on_both("resolved", Duration::from_secs(10)).await);
    load.stop().await;
    assert!(rx.for_("slack", "nd", "firing").is_empty());
    app.stop().await;
}

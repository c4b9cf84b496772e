//! The fault timeline against the proxy (over a real echo upstream) and the webhook sink:
//! faults start at their offsets, take effect, end, and are recorded as they happened.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use poolproof::faults::timeline::check;
use poolproof::faults::{FaultAction, FaultTargets, PlannedFault, Timeline, TimelineError};
use poolproof::sink::{Channel, WebhookSink};
use poolproof_services::proxy::TcpProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

async fn echo_upstream() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1024];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 || s.write_all(&b[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    a
}

async fn rtt(s: &mut TcpStream) -> Duration {
    let t = std::time::Instant::now();
    s.write_all(b"p").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    t.elapsed()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn db_latency_starts_and_ends_on_schedule() {
    let proxy = Arc::new(TcpProxy::start(echo_upstream().await).await.unwrap());
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let targets = FaultTargets {
        proxy: Some(proxy.clone()),
        ..Default::default()
    };
    let plan = vec![PlannedFault {
        at: ms(300),
        duration: Some(ms(700)),
        action: FaultAction::DbLatency(ms(250)),
    }];
    check(&plan, &targets).unwrap();
    let start = Instant::now();
    let tl = Timeline::start(plan, targets, start);

    assert!(rtt(&mut s).await < ms(150), "no latency before the fault");
    tokio::time::sleep_until(start + ms(400)).await;
    assert!(rtt(&mut s).await >= ms(250), "latency during the fault");
    let out = tl.wait().await;
    assert!(rtt(&mut s).await < ms(150), "latency gone after the fault");

    assert_eq!(out.len(), 1);
    assert!(out[0].error.is_none(), "{:?}", out[0].error);
    let ev = out[0].event.clone().expect("fault happened");
    assert_eq!(ev.kind, "db_latency");
    assert_eq!(ev.target.as_deref(), Some("postgres"));
    assert!((ev.planned_at - 0.3).abs() < 1e-9);
    assert!((0.3..0.6).contains(&ev.start), "start {}", ev.start);
    let end = ev.end.unwrap();
    assert!((1.0..1.5).contains(&end), "end {end}");
}

#[tokio::test]
async fn db_reset_for_a_duration_refuses_then_recovers() {
    let proxy = Arc::new(TcpProxy::start(echo_upstream().await).await.unwrap());
    let mut before = TcpStream::connect(proxy.local_addr()).await.unwrap();
    rtt(&mut before).await;
    let targets = FaultTargets {
        proxy: Some(proxy.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let tl = Timeline::start(
        vec![PlannedFault {
            at: ms(100),
            duration: Some(ms(400)),
            action: FaultAction::DbReset,
        }],
        targets,
        start,
    );
    tokio::time::sleep_until(start + ms(250)).await;
    let mut b = [0u8; 1];
    assert!(
        matches!(before.read(&mut b).await, Err(_) | Ok(0)),
        "open connection was reset"
    );
    let mut during = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let _ = during.write_all(b"x").await;
    assert!(
        matches!(during.read(&mut b).await, Err(_) | Ok(0)),
        "new connection refused during the fault"
    );
    let out = tl.wait().await;
    let mut after = TcpStream::connect(proxy.local_addr()).await.unwrap();
    rtt(&mut after).await;
    assert_eq!(out[0].detail.as_deref(), Some("1 connections reset"));
    assert!(proxy.stats().refused >= 1);
    let ev = out[0].event.clone().unwrap();
    assert!(ev.end.unwrap() - ev.start >= 0.39, "{ev:?}");
}

#[tokio::test]
async fn notifier_fail_and_down_act_on_the_sink() {
    let sink = WebhookSink::start().await.unwrap();
    let c = reqwest::Client::new();
    let post = || {
        c.post(sink.slack_url())
            .json(&serde_json::json!({"text": "x"}))
            .send()
    };
    let targets = FaultTargets {
        sink: Some(sink.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let tl = Timeline::start(
        vec![
            PlannedFault {
                at: ms(100),
                duration: Some(ms(300)),
                action: FaultAction::NotifierFail(StatusCode::SERVICE_UNAVAILABLE, None),
            },
            PlannedFault {
                at: ms(600),
                duration: Some(ms(300)),
                action: FaultAction::NotifierDown(Some(Channel::Slack)),
            },
        ],
        targets,
        start,
    );
    assert_eq!(post().await.unwrap().status(), 200);
    tokio::time::sleep_until(start + ms(250)).await;
    assert_eq!(post().await.unwrap().status(), 503);
    tokio::time::sleep_until(start + ms(500)).await;
    assert_eq!(post().await.unwrap().status(), 200);
    tokio::time::sleep_until(start + ms(750)).await;
    assert!(post().await.unwrap_err().is_connect());
    let out = tl.wait().await;
    assert_eq!(post().await.unwrap().status(), 200);
    let kinds: Vec<_> = out
        .iter()
        .map(|o| o.event.as_ref().unwrap().kind.as_str())
        .collect();
    assert_eq!(kinds, ["notifier_fail", "notifier_down"]);
    assert!(out.iter().all(|o| o.error.is_none()));
    let statuses: Vec<u16> = sink.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [200, 503, 200, 200]);
}

#[tokio::test]
async fn finishing_early_undoes_active_faults_and_skips_later_ones() {
    let proxy = Arc::new(TcpProxy::start(echo_upstream().await).await.unwrap());
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let targets = FaultTargets {
        proxy: Some(proxy.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let tl = Timeline::start(
        vec![
            PlannedFault {
                at: ms(0),
                duration: None,
                action: FaultAction::DbLatency(ms(300)),
            },
            PlannedFault {
                at: Duration::from_secs(60),
                duration: Some(ms(100)),
                action: FaultAction::DbReset,
            },
        ],
        targets,
        start,
    );
    tokio::time::sleep(ms(100)).await;
    assert!(rtt(&mut s).await >= ms(300));
    let out = tl.finish().await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "finish did not wait for the later fault"
    );
    assert!(rtt(&mut s).await < ms(150), "latency undone by finish");
    let ev = out[0].event.clone().unwrap();
    assert!(ev.end.is_some());
    assert!(
        out[1].event.is_none() && out[1].error.is_none(),
        "later fault never began"
    );
}

#[tokio::test]
async fn check_names_the_fault_lacking_its_target() {
    let plan = vec![
        PlannedFault {
            at: ms(0),
            duration: None,
            action: FaultAction::NotifierDown(None),
        },
        PlannedFault {
            at: ms(0),
            duration: None,
            action: FaultAction::DbLatency(ms(1)),
        },
    ];
    let sink = WebhookSink::start().await.unwrap();
    let t = FaultTargets {
        sink: Some(sink),
        ..Default::default()
    };
    let e = check(&plan, &t).unwrap_err();
    assert_eq!(
        e,
        TimelineError::MissingTarget {
            index: 1,
            kind: "db_latency",
            what: "the Postgres proxy"
        }
    );
    assert_eq!(
        e.to_string(),
        "faults[1] (db_latency): needs the Postgres proxy, which this run does not have"
    );
}

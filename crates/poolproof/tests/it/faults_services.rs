//! Faults against real Postgres and Redis (poolproof-services): `SELECT 1` through the
//! proxy under injected latency and resets, session termination, pause and stop/start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poolproof::faults::timeline::check;
use poolproof::faults::{
    FaultAction, FaultTargets, PlannedFault, Service, ServiceControl, ServiceOp, Timeline,
};
use poolproof_services::proxy::{Direction, TcpProxy};
use poolproof_services::{start_postgres, start_redis, Options, Postgres};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The same URL with the port replaced (to go through the proxy).
fn via(pg: &Postgres, port: u16) -> String {
    pg.url()
        .replace(&format!(":{}/", pg.port()), &format!(":{port}/"))
}

async fn select1(c: &mut PgConnection) -> Result<Duration, sqlx::Error> {
    let t = Instant::now();
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *c).await?;
    assert_eq!(one, 1);
    Ok(t.elapsed())
}

#[tokio::test]
async fn select_1_through_the_proxy_takes_the_injected_latency_and_resets_break_it() {
    let pg = start_postgres(&Options::default()).await.unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], pg.port()).into())
        .await
        .unwrap();
    let mut c = PgConnection::connect(&via(&pg, proxy.port()))
        .await
        .unwrap();
    let base = select1(&mut c).await.unwrap();
    assert!(base < ms(200), "baseline {base:?}");

    proxy.set_latency(Direction::ServerToClient, ms(400));
    let slow = select1(&mut c).await.unwrap();
    assert!(
        slow >= ms(400),
        "SELECT 1 took {slow:?} under 400 ms of latency"
    );

    proxy.clear_latency();
    let fast = select1(&mut c).await.unwrap();
    assert!(fast < ms(200), "after clearing: {fast:?}");

    proxy.reset_all();
    let broken = select1(&mut c).await;
    assert!(
        broken.is_err(),
        "a reset connection must fail its next query"
    );
    let mut again = PgConnection::connect(&via(&pg, proxy.port()))
        .await
        .unwrap();
    select1(&mut again).await.unwrap();
    assert_eq!(proxy.stats().reset, 1);
    again.close().await.unwrap();
    pg.shutdown().await.unwrap();
}

#[tokio::test]
async fn terminate_sessions_and_pause_postgres_on_the_timeline() {
    let pg = Arc::new(start_postgres(&Options::default()).await.unwrap());
    let mut victim = PgConnection::connect(&pg.url()).await.unwrap();
    select1(&mut victim).await.unwrap();
    let targets = FaultTargets {
        postgres: Some(pg.clone() as Arc<dyn ServiceControl>),
        postgres_admin_url: Some(pg.url()),
        database: Some(pg.database().to_owned()),
        ..Default::default()
    };
    let plan = vec![
        PlannedFault {
            at: ms(0),
            duration: None,
            action: FaultAction::DbTerminateSessions,
        },
        PlannedFault {
            at: ms(800),
            duration: Some(ms(1200)),
            action: FaultAction::Service(Service::Postgres, ServiceOp::Pause),
        },
    ];
    check(&plan, &targets).unwrap();
    let start = tokio::time::Instant::now();
    let tl = Timeline::start(plan, targets, start);

    tokio::time::sleep(ms(400)).await;
    assert!(
        select1(&mut victim).await.is_err(),
        "terminated session still answers"
    );

    let mut c = PgConnection::connect(&pg.url()).await.unwrap();
    tokio::time::sleep_until(start + ms(1200)).await;
    // Paused: the query waits until the unpause at ~2.0 s, then answers.
    let during = select1(&mut c).await.unwrap();
    assert!(
        during >= ms(500),
        "query answered while Postgres was paused ({during:?})"
    );
    let out = tl.wait().await;
    assert!(out.iter().all(|o| o.error.is_none()), "{out:?}");
    let detail = out[0].detail.clone().unwrap();
    assert!(detail.starts_with("1 sessions terminated"), "{detail}");
    let pause = out[1].event.clone().unwrap();
    assert_eq!(pause.kind, "postgres_pause");
    assert!(pause.end.unwrap() - pause.start >= 1.1, "{pause:?}");
    assert!(select1(&mut c).await.unwrap() < ms(500));
    drop(c);
    drop(victim);
    Arc::into_inner(pg).unwrap().shutdown().await.unwrap();
}

async fn redis_ping(port: u16) -> Result<(), String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
    let mut b = [0u8; 7];
    s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
    (&b == b"+PONG\r\n")
        .then_some(())
        .ok_or_else(|| "no PONG".into())
}

#[tokio::test]
async fn redis_stop_then_start_on_the_same_port() {
    let redis = Arc::new(start_redis(&Options::default()).await.unwrap());
    let port = redis.port();
    redis_ping(port).await.unwrap();
    let targets = FaultTargets {
        redis: Some(redis.clone() as Arc<dyn ServiceControl>),
        ..Default::default()
    };
    let start = tokio::time::Instant::now();
    let tl = Timeline::start(
        vec![PlannedFault {
            at: ms(100),
            duration: Some(ms(1500)),
            action: FaultAction::Service(Service::Redis, ServiceOp::Stop),
        }],
        targets,
        start,
    );
    // Wait until the stop took effect, then check Redis is really gone.
    let mut gone = false;
    for _ in 0..50 {
        if redis_ping(port).await.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(ms(50)).await;
    }
    assert!(gone, "Redis still answered during redis_stop");
    let out = tl.wait().await;
    assert!(out[0].error.is_none(), "{:?}", out[0].error);
    redis_ping(port).await.expect("Redis back on the same port");
    let ev = out[0].event.clone().unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.target.as_deref()),
        ("redis_stop", Some("redis"))
    );
    Arc::into_inner(redis).unwrap().shutdown().await.unwrap();
}

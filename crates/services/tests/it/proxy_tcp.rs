//! The fault proxy over plain TCP: pass-through, per-direction latency, resets, refusal.
//! The upstream is a real echo server on 127.0.0.1:0.

use std::time::{Duration, Instant};

use poolproof_services::proxy::{Direction, TcpProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got, msg);
    t.elapsed()
}

#[tokio::test]
async fn passes_bytes_through_and_counts_them() {
    let (up, _srv) = echo_server().await;
    let proxy = TcpProxy::start(up).await.unwrap();
    assert!(proxy.local_addr().ip().is_loopback());
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut s, b"hello").await;
    round_trip(&mut s, &vec![7u8; 100_000]).await;
    let st = proxy.stats();
    assert_eq!(st.accepted, 1);
    assert_eq!(st.active, 1);
    assert_eq!(st.bytes_client_to_server, 100_005);
    assert_eq!(st.bytes_server_to_client, 100_005);
    assert_eq!(st.chunks_delayed, 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn latency_applies_per_direction_while_set_and_not_after() {
    let (up, _srv) = echo_server().await;
    let proxy = TcpProxy::start(up).await.unwrap();
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();

    proxy.set_latency(Direction::ServerToClient, Duration::from_millis(300));
    let slow = round_trip(&mut s, b"ping").await;
    assert!(
        slow >= Duration::from_millis(300),
        "round trip {slow:?} under the injected 300 ms"
    );

    proxy.set_latency(Direction::ClientToServer, Duration::from_millis(200));
    let slower = round_trip(&mut s, b"ping").await;
    assert!(
        slower >= Duration::from_millis(500),
        "both directions: {slower:?} < 500 ms"
    );
    assert!(proxy.stats().chunks_delayed >= 3);

    proxy.clear_latency();
    assert_eq!(proxy.latency(Direction::ServerToClient), Duration::ZERO);
    let fast = round_trip(&mut s, b"ping").await;
    assert!(
        fast < Duration::from_millis(200),
        "latency cleared but round trip took {fast:?}"
    );
}

#[tokio::test]
async fn delayed_chunks_overlap_rather_than_queue() {
    // Ten back-to-back messages under 200 ms latency arrive after ~200 ms, not ~2 s:
    // latency is a delay line, not a throughput limit.
    let (up, _srv) = echo_server().await;
    let proxy = TcpProxy::start(up).await.unwrap();
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    proxy.set_latency(Direction::ServerToClient, Duration::from_millis(200));
    let t = Instant::now();
    for _ in 0..10 {
        s.write_all(b"x").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut got = [0u8; 10];
    s.read_exact(&mut got).await.unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "chunks queued serially: {took:?}"
    );
}

#[tokio::test]
async fn reset_breaks_open_connections_and_new_ones_work() {
    let (up, _srv) = echo_server().await;
    let proxy = TcpProxy::start(up).await.unwrap();
    let mut a = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut a, b"1").await;
    round_trip(&mut b, b"2").await;

    proxy.reset_all();
    for s in [&mut a, &mut b] {
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a reset connection must not hang");
        match r {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("expected a reset, read {n} bytes"),
        }
    }
    let st = proxy.stats();
    assert_eq!(st.reset, 2);
    assert_eq!(st.active, 0);

    let mut c = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut c, b"after").await;
}

#[tokio::test]
async fn refusing_resets_new_connections_until_lifted() {
    let (up, _srv) = echo_server().await;
    let proxy = TcpProxy::start(up).await.unwrap();
    proxy.set_refusing(true);
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let _ = s.write_all(b"x").await;
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("refused connection must not hang");
    assert!(
        matches!(r, Err(_) | Ok(0)),
        "refused connection carried data: {r:?}"
    );
    assert_eq!(proxy.stats().refused, 1);
    assert_eq!(proxy.stats().accepted, 0);

    proxy.set_refusing(false);
    let mut ok = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut ok, b"fine").await;
}

#[tokio::test]
async fn unreachable_upstream_resets_the_client() {
    // A port that was just free: nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = TcpProxy::start(dead).await.unwrap();
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("must not hang");
    assert!(matches!(r, Err(_) | Ok(0)));
    assert_eq!(proxy.stats().upstream_failures, 1);
}

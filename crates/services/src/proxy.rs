//! A userspace TCP proxy between the app and Postgres, steerable at run time: poolproof's
//! latency and reset faults, and the recovery tests of pooled-app, put it in front of the
//! Postgres this crate starts.
//!
//! The kernel here has no netem, so latency and connection resets are injected in
//! userspace: every accepted client connection is paired with one upstream connection
//! and two pumps copy bytes. Each chunk is stamped when read and released `latency`
//! later, like a delay line (throughput is not throttled, only delayed), so a delay of
//! L on the server→client direction makes every query take at least L. A reset closes
//! every open pair with RST (SO_LINGER 0) and can refuse new connections for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Errors of the proxy itself (not of the connections it carries).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy: cannot listen on 127.0.0.1:0: {0}")]
    Bind(#[source] std::io::Error),
}

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// app → Postgres
    ClientToServer,
    /// Postgres → app
    ServerToClient,
}

/// Counters of what the proxy carried and did; a snapshot is plain data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub accepted: u64,
    pub active: u64,
    pub refused: u64,
    pub reset: u64,
    pub upstream_failures: u64,
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    pub chunks_delayed: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    upstream_failures: AtomicU64,
    bytes_c2s: AtomicU64,
    bytes_s2c: AtomicU64,
    chunks_delayed: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    /// Added latency per direction, in microseconds, read once per chunk.
    latency_c2s_us: AtomicU64,
    latency_s2c_us: AtomicU64,
    refusing: AtomicBool,
    /// Bumped by `reset_all`; every connection watches it and dies on change.
    reset_gen: watch::Sender<u64>,
    counters: Counters,
}

/// A running proxy; dropping it (or `shutdown`) stops accepting and closes every pair.
pub struct TcpProxy {
    local: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`; pass-through until told otherwise.
    pub async fn start(upstream: SocketAddr) -> Result<Self, ProxyError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ProxyError::Bind)?;
        let local = listener.local_addr().map_err(ProxyError::Bind)?;
        let (reset_gen, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            upstream,
            latency_c2s_us: AtomicU64::new(0),
            latency_s2c_us: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            reset_gen,
            counters: Counters::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(Self {
            local,
            shared,
            stop,
            accept_task: Some(accept_task),
        })
    }

    /// The address the app should connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn port(&self) -> u16 {
        self.local.port()
    }

    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Delays each chunk travelling in `dir` by `latency` (zero turns it off).
    pub fn set_latency(&self, dir: Direction, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        match dir {
            Direction::ClientToServer => self.shared.latency_c2s_us.store(us, Ordering::Relaxed),
            Direction::ServerToClient => self.shared.latency_s2c_us.store(us, Ordering::Relaxed),
        }
    }

    /// Back to pass-through latency in both directions.
    pub fn clear_latency(&self) {
        self.set_latency(Direction::ClientToServer, Duration::ZERO);
        self.set_latency(Direction::ServerToClient, Duration::ZERO);
    }

    pub fn latency(&self, dir: Direction) -> Duration {
        let us = match dir {
            Direction::ClientToServer => self.shared.latency_c2s_us.load(Ordering::Relaxed),
            Direction::ServerToClient => self.shared.latency_s2c_us.load(Ordering::Relaxed),
        };
        Duration::from_micros(us)
    }

    /// Closes every open connection pair with RST, on both sides.
    pub fn reset_all(&self) {
        self.shared.reset_gen.send_modify(|g| *g += 1);
    }

    /// While set, new connections are accepted and reset at once (the port stays bound,
    /// so clients see "connection reset" rather than a stale port someone else may take).
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            upstream_failures: c.upstream_failures.load(Ordering::Relaxed),
            bytes_client_to_server: c.bytes_c2s.load(Ordering::Relaxed),
            bytes_server_to_client: c.bytes_s2c.load(Ordering::Relaxed),
            chunks_delayed: c.chunks_delayed.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting and closes all connections; waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.reset_all();
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.reset_gen.send_modify(|g| *g += 1);
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let client = match accepted {
            Ok((s, _)) => s,
            // Transient accept errors (EMFILE, ECONNABORTED): back off briefly and go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if shared.refusing.load(Ordering::Relaxed) {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            abort_stream(client);
            continue;
        }
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_pair(client, shared.clone(), stop.clone()));
    }
}

/// Drops a stream with SO_LINGER 0, so the peer gets RST instead of FIN.
fn abort_stream(s: TcpStream) {
    #[allow(deprecated)]
    // set_linger is deprecated only for its blocking-close footgun; 0 is the RST idiom.
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

async fn serve_pair(client: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut reset_rx = shared.reset_gen.subscribe();
    reset_rx.mark_unchanged();
    let upstream = tokio::select! {
        u = TcpStream::connect(shared.upstream) => u,
        _ = reset_rx.changed() => { abort_stream(client); return; }
    };
    let mut server = match upstream {
        Ok(s) => s,
        Err(_) => {
            shared
                .counters
                .upstream_failures
                .fetch_add(1, Ordering::Relaxed);
            abort_stream(client);
            return;
        }
    };
    let mut client = client;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.counters.active.fetch_add(1, Ordering::Relaxed);

    // Borrowed halves keep the sockets owned here, so an abort can close them with RST.
    let abort = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let c2s = pump(cr, sw, &shared, Direction::ClientToServer);
        let s2c = pump(sr, cw, &shared, Direction::ServerToClient);
        tokio::pin!(c2s, s2c);
        // One direction ending (EOF or error) lets the other drain briefly (half-close);
        // a reset or stop ends the pair at once.
        tokio::select! {
            _ = &mut c2s => drain(&mut s2c, &mut reset_rx).await,
            _ = &mut s2c => drain(&mut c2s, &mut reset_rx).await,
            _ = reset_rx.changed() => true,
            _ = stop.changed() => true,
        }
    };
    // Counters first: a peer that sees the RST must also see them updated.
    shared.counters.active.fetch_sub(1, Ordering::Relaxed);
    if abort {
        shared.counters.reset.fetch_add(1, Ordering::Relaxed);
        abort_stream(client);
        abort_stream(server);
    }
}

/// Waits up to 5 s for the remaining direction to finish; true when a reset cut it short.
async fn drain(
    other: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    reset_rx: &mut watch::Receiver<u64>,
) -> bool {
    tokio::select! {
        _ = other.as_mut() => false,
        _ = tokio::time::sleep(Duration::from_secs(5)) => false,
        _ = reset_rx.changed() => true,
    }
}

/// Copies one direction, delaying each chunk by the current latency for that direction.
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, shared: &Shared, dir: Direction) {
    let (latency, bytes) = match dir {
        Direction::ClientToServer => (&shared.latency_c2s_us, &shared.counters.bytes_c2s),
        Direction::ServerToClient => (&shared.latency_s2c_us, &shared.counters.bytes_s2c),
    };
    // The delay line: the reader stamps chunks, the writer releases them when due, so
    // several chunks in flight are delayed concurrently rather than one after another.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let lat = Duration::from_micros(latency.load(Ordering::Relaxed));
                    if !lat.is_zero() {
                        shared
                            .counters
                            .chunks_delayed
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    if tx
                        .send((Instant::now() + lat, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            // Counted before the write so a reader of the stats never lags the peer.
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The reader hit EOF: forward the half-close.
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

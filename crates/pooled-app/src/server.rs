//! The HTTP server: accepts connections up to a cap and serves each with hyper under the limits
//! that slow or hostile clients need ([`HttpLimits`]).
//!
//! `axum::serve` sets none of them: an idle, partial-header or stalled-body connection stayed open
//! for as long as the client liked, and 2,000 slow-header connections were all held. Here:
//! - at most `max_connections` are served at once; further ones wait in the listen backlog;
//! - hyper's header-read timeout bounds a request's headers (its clock starts when a connection
//!   waits for a request, so it also bounds a silent connection);
//! - [`IdleIo`] closes a connection that sends nothing while no request of it is in flight (an idle
//!   keep-alive connection, or one that connected and said nothing);
//! - body-read and whole-request timeouts and the body limit are tower-http layers on the router
//!   (see [`crate::app::router`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The server's limits, from `HTTP_*` settings (see the crate README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest wait for a request's complete headers.
    pub header_timeout: Duration,
    /// Longest a connection may stay silent with no request in flight.
    pub idle_timeout: Duration,
    /// Longest gap while reading a request body.
    pub body_timeout: Duration,
    /// Longest a request may take from headers to response (503 after).
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request body; a larger `Content-Length` is refused at once with 413.
    pub max_body_bytes: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish (for at
/// most the request timeout) before returning.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_error(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(IdleIo::new(stream, in_flight.clone(), limits.idle_timeout));
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = InFlight::enter(in_flight.clone());
            let call = router.clone().oneshot(req.map(Body::new));
            async move {
                let response = call.await;
                drop(guard);
                response
            }
        });
        let conn = builder.serve_connection(io, service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "connections still open after the shutdown grace period; closing them"
        );
    }
    Ok(())
}

/// Per-connection errors (the peer went away before we took it) are nothing; others (out of file
/// descriptors) are logged and the loop pauses, as hyper's and axum's servers do.
async fn accept_error(e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One request of a connection counted as in flight for as long as it lives (a guard, so that a
/// cancelled request is not left counted).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(n: Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        InFlight(n)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that fails its reads with `TimedOut` once it has been silent (nothing read or
/// written) for `idle` while none of its requests is in flight. A handler that takes long is not
/// idleness; its time is the request timeout's business.
struct IdleIo {
    stream: TcpStream,
    in_flight: Arc<AtomicUsize>,
    idle: Duration,
    last_activity: Instant,
    /// Armed lazily, only when a read finds nothing to read, so busy connections never touch the
    /// timer wheel per read.
    timer: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(stream: TcpStream, in_flight: Arc<AtomicUsize>, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            stream,
            in_flight,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                if this.in_flight.load(Ordering::Acquire) > 0 {
                    return Poll::Pending;
                }
                let deadline = this.last_activity + this.idle;
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for longer than HTTP_IDLE_TIMEOUT_MS",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.last_activity = Instant::now();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.last_activity = Instant::now();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

//! The request path's hand-off to the collector: a few bounded sample buffers (shards), one per
//! thread in practice. A request appends an 8-byte sample to its thread's shard under an
//! uncontended lock and returns; a full shard drops the sample and counts it, so a request never
//! waits for monitoring. The collector swaps the buffers out when it needs the data (once a second,
//! and when the alert engine or `/metrics` reads a window); histograms are recorded there.
//!
//! Why not a channel: a bounded `tokio::sync::mpsc` costs every request a semaphore CAS and a
//! queue push on cache lines shared by all workers, plus a mutex-guarded permit release per
//! message on the receiving side, and its receiver had to be polled on a 5 ms timer. Profiled at
//! saturation, that path was most of the monitoring's cost (docs/benchmarks.md, monitoring).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use axum::extract::MatchedPath;
use axum::http::Method;

/// Most distinct (method, route) pairs a shard interns; the route label set is bounded by the
/// router, this only guards against a bug turning it unbounded.
const MAX_ROUTES: usize = 1024;

/// One request as buffered: an index into its shard's route table, the status and the duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw {
    pub route: u16,
    pub status: u16,
    /// Microseconds, saturating at `u32::MAX` (71 minutes).
    pub us: u32,
}

/// A (method, matched route) pair as first seen by a shard; `None` for unmatched requests.
pub type RouteKey = (Method, Option<MatchedPath>);

#[derive(Default)]
struct ShardData {
    samples: Vec<Raw>,
    routes: Vec<RouteKey>,
}

/// One buffer, on its own cache lines so shards used by different cores never share one.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<ShardData>);

/// What one drain of one shard hands the collector.
pub struct Drained {
    /// Route keys the shard interned since the previous drain (append-only: index `known..`).
    pub new_routes: Vec<RouteKey>,
    pub samples: Vec<Raw>,
}

/// The sharded buffers.
pub struct Inbox {
    shards: Box<[Shard]>,
    mask: usize,
    per_shard: usize,
    dropped: AtomicU64,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Each thread gets the next shard in turn on first use: tokio's workers end up on distinct
    // shards and never contend for one lock.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn slot() -> usize {
    SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        s.set(v);
        v
    })
}

fn lock(m: &Mutex<ShardData>) -> MutexGuard<'_, ShardData> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn same_route(a: Option<&MatchedPath>, b: Option<&MatchedPath>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let (a, b) = (a.as_str(), b.as_str());
            // axum hands out the same `Arc<str>` per route: the pointer usually decides.
            std::ptr::eq(a, b) || a == b
        }
        _ => false,
    }
}

impl Inbox {
    /// `capacity` samples may wait between two drains, over all shards together.
    pub fn new(capacity: usize) -> Inbox {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = (threads * 2).next_power_of_two().clamp(2, 64);
        Inbox {
            shards: (0..n).map(|_| Shard::default()).collect(),
            mask: n - 1,
            per_shard: capacity.div_ceil(n).max(1),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Appends a sample to this thread's shard; false (and counted) when the shard is full.
    #[inline]
    pub fn push(&self, method: &Method, route: Option<&MatchedPath>, status: u16, us: u64) -> bool {
        let shard = &self.shards[slot() & self.mask];
        let mut g = lock(&shard.0);
        if g.samples.len() >= self.per_shard {
            drop(g);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let idx = match g
            .routes
            .iter()
            .position(|(m, r)| m == method && same_route(r.as_ref(), route))
        {
            Some(i) => i,
            None if g.routes.len() < MAX_ROUTES => {
                g.routes.push((method.clone(), route.cloned()));
                g.routes.len() - 1
            }
            None => {
                drop(g);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        g.samples.push(Raw {
            route: idx as u16,
            status,
            us: u32::try_from(us).unwrap_or(u32::MAX),
        });
        true
    }

    /// Takes shard `i`'s samples, leaving `fresh` (an empty buffer, allocated by the caller so the
    /// request path does not grow one), and the route keys after the first `known`.
    pub fn drain(&self, i: usize, known: usize, fresh: Vec<Raw>) -> Drained {
        let mut g = lock(&self.shards[i].0);
        let samples = std::mem::replace(&mut g.samples, fresh);
        let new_routes = g.routes.get(known..).map(<[_]>::to_vec).unwrap_or_default();
        Drained {
            new_routes,
            samples,
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_interns_routes_and_drops_when_full() {
        let inbox = Inbox::new(4 * 64);
        let per = inbox.per_shard;
        let mut ok = 0;
        for i in 0..(per + 10) {
            let m = if i % 2 == 0 {
                Method::GET
            } else {
                Method::POST
            };
            ok += usize::from(inbox.push(&m, None, 200, i as u64));
        }
        // One thread, one shard: exactly `per` kept, the rest dropped and counted.
        assert_eq!(ok, per);
        assert_eq!(inbox.dropped(), 10);
        let s = slot() & inbox.mask;
        let d = inbox.drain(s, 0, Vec::new());
        assert_eq!(d.samples.len(), per);
        assert_eq!(d.new_routes.len(), 2);
        assert_eq!(d.samples[1].route, 1);
        assert_eq!(d.samples[2].us, 2);
        // Drained: room again, and known routes are not repeated.
        assert!(inbox.push(&Method::GET, None, 500, u64::MAX));
        let d = inbox.drain(s, 2, Vec::new());
        assert!(d.new_routes.is_empty());
        assert_eq!(
            d.samples,
            vec![Raw {
                route: 0,
                status: 500,
                us: u32::MAX
            }]
        );
    }
}

//! The request path's hand-off to the collector: one bounded sample buffer (shard) per thread that
//! records requests. A request appends an 8-byte sample to its own thread's shard under an
//! uncontended lock and returns; a full shard drops the sample and counts it, so a request never
//! waits for monitoring. The collector swaps the buffers out when it needs the data (once a second,
//! and when the alert engine or `/metrics` reads a window); histograms are recorded there.
//!
//! Why a channel was replaced: a bounded `tokio::sync::mpsc` cost every request a semaphore CAS
//! and a queue push on cache lines shared by all workers (docs/benchmarks.md, monitoring).
//! Why the shard is found through a thread-local: at a moderate rate the app's cores also run
//! Postgres, Redis and the clients, so between two requests a worker's caches are mostly cold and
//! the hand-off costs about one cache miss per distinct line it touches. Indexing a shared shard
//! array (inbox, array, shard, route table, buffer) touched twice the lines that the thread-local
//! (which also caches the last routes' indices) and the shard's buffer do (issue 18's profile).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

use axum::extract::MatchedPath;
use axum::http::Method;

/// Most distinct (method, route) pairs a shard interns; the route label set is bounded by the
/// router, this only guards against a bug turning it unbounded.
const MAX_ROUTES: usize = 1024;

/// Route indices a thread remembers next to its shard (the app's busiest few routes).
const RECENT: usize = 4;

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

/// One thread's buffer, on its own cache lines.
#[repr(align(128))]
struct Shard {
    owner: ThreadId,
    data: Mutex<ShardData>,
}

/// What one drain of one shard hands the collector.
pub struct Drained {
    /// Route keys the shard interned since the previous drain (append-only: index `known..`).
    pub new_routes: Vec<RouteKey>,
    pub samples: Vec<Raw>,
}

/// The per-thread buffers of one collector.
pub struct Inbox {
    /// Tells this inbox's shard from another's in a thread's local slot (tests run several
    /// collectors in one process).
    id: usize,
    /// Every shard, in creation order: a shard's index here is its index for [`Inbox::drain`].
    shards: Mutex<Vec<Arc<Shard>>>,
    per_shard: usize,
    dropped: AtomicU64,
}

static NEXT_INBOX: AtomicUsize = AtomicUsize::new(1);

/// A route a thread saw lately: its key and its index in the thread's shard's table. The key
/// holds the route's template (one `Arc<str>` per route in axum), so comparing pointers decides.
type Recent = Option<(Method, Option<MatchedPath>, u16)>;

/// A thread's way to its shard of one inbox, and the routes it saw last.
struct Local {
    inbox: usize,
    shard: Option<Arc<Shard>>,
    recent: [Recent; RECENT],
    next: usize,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            inbox: 0,
            shard: None,
            recent: [None, None, None, None],
            next: 0,
        })
    };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn same_route(a: Option<&MatchedPath>, b: Option<&MatchedPath>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let (a, b) = (a.as_str(), b.as_str());
            std::ptr::eq(a, b) || a == b
        }
        _ => false,
    }
}

impl Inbox {
    /// `capacity` samples may wait between two drains in each thread's shard.
    pub fn new(capacity: usize) -> Inbox {
        Inbox {
            id: NEXT_INBOX.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            per_shard: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Shards so far (one per thread that pushed).
    pub fn shards(&self) -> usize {
        lock(&self.shards).len()
    }

    /// This thread's shard of this inbox, made on its first push (or found again when the
    /// thread pushed to another inbox in between).
    fn own_shard(&self) -> Arc<Shard> {
        let me = std::thread::current().id();
        let mut all = lock(&self.shards);
        if let Some(s) = all.iter().find(|s| s.owner == me) {
            return s.clone();
        }
        let s = Arc::new(Shard {
            owner: me,
            data: Mutex::default(),
        });
        all.push(s.clone());
        s
    }

    /// Appends a sample to this thread's shard; false (and counted) when the shard is full.
    #[inline]
    pub fn push(&self, method: &Method, route: Option<&MatchedPath>, status: u16, us: u64) -> bool {
        let kept = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            if local.inbox != self.id || local.shard.is_none() {
                *local = Local {
                    inbox: self.id,
                    shard: Some(self.own_shard()),
                    recent: Default::default(),
                    next: 0,
                };
            }
            let hit =
                local.recent.iter().flatten().find_map(|(m, r, i)| {
                    (same_route(r.as_ref(), route) && m == method).then_some(*i)
                });
            let Some(shard) = local.shard.as_ref() else {
                return false;
            };
            let (kept, interned) = self.push_to(shard, hit, method, route, status, us);
            if let (None, Some(i)) = (hit, interned) {
                let slot = local.next % RECENT;
                local.recent[slot] = Some((method.clone(), route.cloned(), i));
                local.next = local.next.wrapping_add(1);
            }
            kept
        });
        // Only while the thread is being torn down; nothing to record into then.
        kept.unwrap_or(false)
    }

    /// Appends to `shard`; `known` is the route's index when the thread remembered it. Returns
    /// whether the sample was kept and the route's index when it was looked up.
    fn push_to(
        &self,
        shard: &Shard,
        known: Option<u16>,
        method: &Method,
        route: Option<&MatchedPath>,
        status: u16,
        us: u64,
    ) -> (bool, Option<u16>) {
        let mut g = lock(&shard.data);
        if g.samples.len() >= self.per_shard {
            drop(g);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return (false, None);
        }
        let (idx, looked_up) = match known {
            Some(i) => (i, None),
            None => {
                let i = match g
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
                        return (false, None);
                    }
                };
                // MAX_ROUTES < u16::MAX.
                let i = i as u16;
                (i, Some(i))
            }
        };
        g.samples.push(Raw {
            route: idx,
            status,
            us: u32::try_from(us).unwrap_or(u32::MAX),
        });
        (true, looked_up)
    }

    /// Takes shard `i`'s samples, leaving `fresh` (an empty buffer, allocated by the caller so the
    /// request path does not grow one), and the route keys after the first `known`; `None` when
    /// there is no shard `i`.
    pub fn drain(&self, i: usize, known: usize, fresh: Vec<Raw>) -> Option<Drained> {
        let shard = lock(&self.shards).get(i)?.clone();
        let mut g = lock(&shard.data);
        let samples = std::mem::replace(&mut g.samples, fresh);
        let new_routes = g.routes.get(known..).map(<[_]>::to_vec).unwrap_or_default();
        Some(Drained {
            new_routes,
            samples,
        })
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
        let inbox = Inbox::new(64);
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
        assert_eq!(inbox.shards(), 1);
        let d = inbox.drain(0, 0, Vec::new()).unwrap();
        assert_eq!(d.samples.len(), per);
        assert_eq!(d.new_routes.len(), 2);
        assert_eq!(d.samples[1].route, 1);
        assert_eq!(d.samples[2].us, 2);
        // Drained: room again, and known routes are not repeated.
        assert!(inbox.push(&Method::GET, None, 500, u64::MAX));
        let d = inbox.drain(0, 2, Vec::new()).unwrap();
        assert!(d.new_routes.is_empty());
        assert_eq!(
            d.samples,
            vec![Raw {
                route: 0,
                status: 500,
                us: u32::MAX
            }]
        );
        assert!(inbox.drain(1, 0, Vec::new()).is_none());
    }

    #[test]
    fn each_thread_has_its_own_shard_and_threads_alternating_inboxes_keep_theirs() {
        let a = Inbox::new(1000);
        let b = Inbox::new(1000);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..100u64 {
                        // Switching inboxes on every push finds the thread's shard again.
                        assert!(a.push(&Method::GET, None, 200, i));
                        assert!(b.push(&Method::POST, None, 201, i));
                    }
                });
            }
        });
        for inbox in [&a, &b] {
            assert_eq!(inbox.shards(), 3);
            let total: usize = (0..3)
                .map(|i| inbox.drain(i, 0, Vec::new()).unwrap().samples.len())
                .sum();
            assert_eq!(total, 300);
        }
    }
}

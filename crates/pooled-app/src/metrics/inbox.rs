//! The request path's hand-off to the collector: one bounded ring of 8-byte samples (a shard)
//! per thread that records requests. A request writes its sample into its own thread's ring with
//! two plain stores and returns; a full ring drops the sample and counts it, so a request never
//! waits for monitoring. The collector reads the rings when it needs the data (once a second, and
//! when the alert engine or `/metrics` reads a window); histograms are recorded there.
//!
//! Why a channel was replaced: a bounded `tokio::sync::mpsc` cost every request a semaphore CAS
//! and a queue push on cache lines shared by all workers (docs/benchmarks.md, monitoring).
//! Why a single-producer ring and not a buffer under a lock: the lock's two atomic
//! read-modify-writes and the buffer's growth were most of what remained of the request path's
//! cost in issue 18's profile. A thread finds its ring through a thread-local, which also
//! remembers the indices of the routes it saw last, so a request takes no lock at all; only a
//! route new to the thread takes its ring's route-table lock.

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

impl Raw {
    #[inline]
    fn pack(self) -> u64 {
        u64::from(self.route) << 48 | u64::from(self.status) << 32 | u64::from(self.us)
    }
    fn unpack(v: u64) -> Raw {
        // Each field is masked to its width first: the conversions cannot fail.
        Raw {
            route: (v >> 48) as u16,
            status: (v >> 32 & 0xFFFF) as u16,
            us: (v & 0xFFFF_FFFF) as u32,
        }
    }
}

/// A (method, matched route) pair as first seen by a shard; `None` for unmatched requests.
pub type RouteKey = (Method, Option<MatchedPath>);

/// A counter on its own cache line: the ring's writer and reader each own one.
#[repr(align(128))]
struct Padded(AtomicUsize);

/// One thread's ring. Only the owner thread writes samples (advancing `tail`); only a drain,
/// under the collector's lock, reads them (advancing `head`).
struct Shard {
    owner: ThreadId,
    tail: Padded,
    head: Padded,
    slots: Box<[AtomicU64]>,
    /// Appended by the owner when it meets a route for the first time; read by drains.
    routes: Mutex<Vec<RouteKey>>,
}

/// What one drain of one shard hands the collector.
pub struct Drained {
    /// Route keys the shard interned since the previous drain (append-only: index `known..`).
    pub new_routes: Vec<RouteKey>,
    pub samples: Vec<Raw>,
}

/// The per-thread rings of one collector.
pub struct Inbox {
    /// Tells this inbox's shard from another's in a thread's local slot (tests run several
    /// collectors in one process).
    id: usize,
    /// Every shard, in creation order: a shard's index here is its index for [`Inbox::drain`].
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Slots per ring (a power of two).
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

#[inline]
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
    /// Up to `capacity` samples (rounded up to a power of two) may wait between two drains in
    /// each thread's ring.
    pub fn new(capacity: usize) -> Inbox {
        Inbox {
            id: NEXT_INBOX.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            per_shard: capacity.max(2).next_power_of_two(),
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
            tail: Padded(AtomicUsize::new(0)),
            head: Padded(AtomicUsize::new(0)),
            slots: (0..self.per_shard).map(|_| AtomicU64::new(0)).collect(),
            routes: Mutex::default(),
        });
        all.push(s.clone());
        s
    }

    /// Appends a sample to this thread's ring; false (and counted) when the ring is full.
    ///
    /// The common case (the thread's ring exists and the route is one it saw lately) is kept
    /// to a few instructions: the profile showed the request path's cost to be mostly
    /// instruction-cache misses on a large function, so everything else is out of line.
    #[inline]
    pub fn push(&self, method: &Method, route: Option<&MatchedPath>, status: u16, us: u64) -> bool {
        let us = u32::try_from(us).unwrap_or(u32::MAX);
        let kept = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            if local.inbox == self.id {
                if let Some(shard) = &local.shard {
                    for (m, r, i) in local.recent.iter().flatten() {
                        if same_route(r.as_ref(), route) && m == method {
                            let raw = Raw {
                                route: *i,
                                status,
                                us,
                            };
                            return self.write(shard, raw);
                        }
                    }
                }
            }
            self.push_slow(&mut local, method, route, status, us)
        });
        // Only while the thread is being torn down; nothing to record into then.
        kept.unwrap_or(false)
    }

    /// [`Inbox::push`] for a thread's first sample or a route it has not seen lately.
    #[cold]
    #[inline(never)]
    fn push_slow(
        &self,
        local: &mut Local,
        method: &Method,
        route: Option<&MatchedPath>,
        status: u16,
        us: u32,
    ) -> bool {
        if local.inbox != self.id || local.shard.is_none() {
            *local = Local {
                inbox: self.id,
                shard: Some(self.own_shard()),
                recent: Default::default(),
                next: 0,
            };
        }
        let Some(shard) = local.shard.clone() else {
            return false;
        };
        let Some(i) = intern(&shard, method, route) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let slot = local.next % RECENT;
        local.recent[slot] = Some((method.clone(), route.cloned(), i));
        local.next = local.next.wrapping_add(1);
        self.write(
            &shard,
            Raw {
                route: i,
                status,
                us,
            },
        )
    }

    /// The owner's side of the ring.
    #[inline]
    fn write(&self, shard: &Shard, raw: Raw) -> bool {
        let tail = shard.tail.0.load(Ordering::Relaxed);
        // Acquire: the drain has finished reading the slots it released.
        let head = shard.head.0.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= self.per_shard {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        shard.slots[tail & (self.per_shard - 1)].store(raw.pack(), Ordering::Relaxed);
        // Release: the slot (and any route interned for it) is visible before the new tail.
        shard.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Takes shard `i`'s samples and the route keys after the first `known`; `None` when there
    /// is no shard `i`. Callers serialize drains (the collector's lock): one reader per ring.
    pub fn drain(&self, i: usize, known: usize) -> Option<Drained> {
        let shard = lock(&self.shards).get(i)?.clone();
        let head = shard.head.0.load(Ordering::Relaxed);
        let tail = shard.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(self.per_shard);
        let mask = self.per_shard - 1;
        let samples = (0..n)
            .map(|k| Raw::unpack(shard.slots[head.wrapping_add(k) & mask].load(Ordering::Relaxed)))
            .collect();
        shard.head.0.store(tail, Ordering::Release);
        // After the tail: every route a taken sample points at is in the table.
        let new_routes = lock(&shard.routes)
            .get(known..)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        Some(Drained {
            new_routes,
            samples,
        })
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The index of (method, route) in `shard`'s table, interned when new; `None` when the table is
/// full.
fn intern(shard: &Shard, method: &Method, route: Option<&MatchedPath>) -> Option<u16> {
    let mut routes = lock(&shard.routes);
    let i = match routes
        .iter()
        .position(|(m, r)| m == method && same_route(r.as_ref(), route))
    {
        Some(i) => i,
        None if routes.len() < MAX_ROUTES => {
            routes.push((method.clone(), route.cloned()));
            routes.len() - 1
        }
        None => return None,
    };
    // MAX_ROUTES < u16::MAX.
    u16::try_from(i).ok()
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
        let d = inbox.drain(0, 0).unwrap();
        assert_eq!(d.samples.len(), per);
        assert_eq!(d.new_routes.len(), 2);
        assert_eq!(d.samples[1].route, 1);
        assert_eq!(d.samples[2].us, 2);
        // Drained: room again, and known routes are not repeated.
        assert!(inbox.push(&Method::GET, None, 500, u64::MAX));
        let d = inbox.drain(0, 2).unwrap();
        assert!(d.new_routes.is_empty());
        assert_eq!(
            d.samples,
            vec![Raw {
                route: 0,
                status: 500,
                us: u32::MAX
            }]
        );
        assert!(inbox.drain(1, 0).is_none());
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
                .map(|i| inbox.drain(i, 0).unwrap().samples.len())
                .sum();
            assert_eq!(total, 300);
        }
    }
}

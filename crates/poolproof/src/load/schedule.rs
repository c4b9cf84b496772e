//! The open model's arrival schedule: when the i-th request is due (piecewise-linear rate,
//! solved exactly per slot) and which route it takes (smooth weighted round-robin, so the
//! weights hold exactly over every cycle and a dropped start has a definite route).

use super::plan::RateSegment;
use std::time::Duration;

/// A start later than this after its scheduled time counts as late. Timer wake-ups on a busy
/// 2-core host are typically 0.1-2 ms late; 10 ms is beyond scheduling noise and far below
/// any latency an SLA here judges.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(10);

/// A start that found no free user for this long is dropped rather than sent: by then it
/// would be a timeout whatever the server did (it is the request timeout).
pub const DROP_AFTER_DEFAULT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Seg {
    start: f64,
    end: f64,
    from: f64,
    to: f64,
    /// Slots due before this segment.
    n_start: f64,
    /// Slots due within it.
    n: f64,
}

/// Slot times and routes of an open-model attack.
#[derive(Debug, Clone)]
pub struct Schedule {
    segs: Vec<Seg>,
    /// Slots due over the whole schedule (`0..total`).
    total: u64,
    /// Route index of slot `i` is `cycle[i % cycle.len()]`.
    cycle: Vec<usize>,
    /// A shard's slot `i` is the whole schedule's slot `k + i n`.
    stride: Option<(u64, u64)>,
}

impl Schedule {
    /// A schedule over `segments` (consecutive) and transactions of these weights (each >= 1).
    pub fn new(segments: &[RateSegment], weights: &[usize]) -> Schedule {
        let mut segs = Vec::with_capacity(segments.len());
        let mut n_start = 0.0;
        for s in segments {
            let dur = (s.end - s.start).max(0.0);
            let n = (s.from + s.to) / 2.0 * dur;
            segs.push(Seg {
                start: s.start,
                end: s.end,
                from: s.from,
                to: s.to,
                n_start,
                n,
            });
            n_start += n;
        }
        Schedule {
            segs,
            total: n_start.ceil() as u64,
            cycle: weighted_cycle(weights),
            stride: None,
        }
    }

    /// The whole schedule's index of this schedule's slot `i`.
    fn whole(&self, i: u64) -> u64 {
        match self.stride {
            Some((k, n)) => k + i * n,
            None => i,
        }
    }

    /// Shard `index` of `count`: slots `index`, `index + count`, … of this schedule, so the
    /// shards' schedules interleave into exactly this one.
    pub fn sharded(self, index: u32, count: u32) -> Schedule {
        if count <= 1 {
            return self;
        }
        let (k, n) = (u64::from(index), u64::from(count));
        Schedule {
            total: self.total.saturating_sub(k).div_ceil(n),
            stride: Some((k, n)),
            ..self
        }
    }

    /// How many slots the schedule holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The scheduled offset (seconds from the start of measured load) of slot `i`, `None`
    /// past the end of the schedule.
    pub fn time(&self, i: u64) -> Option<f64> {
        if i >= self.total {
            return None;
        }
        let x = self.whole(i) as f64;
        let seg = self
            .segs
            .iter()
            .find(|s| s.n > 0.0 && x < s.n_start + s.n)
            .or_else(|| self.segs.iter().rev().find(|s| s.n > 0.0))?;
        let x = (x - seg.n_start).max(0.0);
        let dur = seg.end - seg.start;
        // n(τ) = a τ + (b − a) τ² / (2D) = x, solved in the form that stays exact when b = a
        // and when a = 0: τ = 2x / (a + sqrt(a² + 4kx)), k = (b − a) / (2D).
        let (a, b) = (seg.from, seg.to);
        let k = (b - a) / (2.0 * dur);
        let tau = if x == 0.0 {
            0.0
        } else {
            let disc = (a * a + 4.0 * k * x).max(0.0);
            2.0 * x / (a + disc.sqrt())
        };
        Some(seg.start + tau.clamp(0.0, dur))
    }

    /// How many slots fall in `[from, to)` (of transaction `route` only, when given). Slot
    /// times never decrease, so the range is found by bisection and the route's share
    /// counted over whole cycles and the remainder.
    pub fn starts_within(&self, from: f64, to: f64, route: Option<usize>) -> u64 {
        let first_at_or_after = |t: f64| {
            let (mut lo, mut hi) = (0u64, self.total);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.time(mid).is_some_and(|x| x < t) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let (a, b) = (first_at_or_after(from), first_at_or_after(to));
        let Some(r) = route else {
            return b.saturating_sub(a);
        };
        // Routes repeat every cycle length (also in a shard, whose stride only permutes it).
        let period = self.cycle.len().max(1) as u64;
        let len = b.saturating_sub(a);
        let count = |n: u64| (a..a + n).filter(|&i| self.route(i) == r).count() as u64;
        (len / period) * count(period) + count(len % period)
    }

    /// The route (transaction index) of slot `i`.
    pub fn route(&self, i: u64) -> usize {
        if self.cycle.is_empty() {
            return 0;
        }
        self.cycle[(self.whole(i) % self.cycle.len() as u64) as usize]
    }
}

/// Smooth weighted round-robin (nginx's): over one cycle of `sum(weights)` slots each index
/// appears exactly its weight times, spread out rather than in runs.
pub(crate) fn weighted_cycle(weights: &[usize]) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += *w as i64;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        current[best] -= total as i64;
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, from: f64, to: f64) -> RateSegment {
        RateSegment {
            start,
            end,
            from,
            to,
        }
    }

    /// The count abort_on_fail's bound rests on: by bisection and whole route cycles, equal
    /// to walking every slot.
    #[test]
    fn starts_within_counts_every_slot_of_the_span_and_route() {
        let whole = Schedule::new(
            &[seg(-2.0, 0.0, 0.0, 50.0), seg(0.0, 7.0, 50.0, 120.0)],
            &[3, 1, 2],
        );
        for s in [whole.clone(), whole.sharded(1, 3)] {
            let walk = |from: f64, to: f64, r: Option<usize>| {
                (0..s.total())
                    .filter(|&i| {
                        let t = s.time(i).unwrap_or(f64::NAN);
                        t >= from && t < to && r.is_none_or(|r| s.route(i) == r)
                    })
                    .count() as u64
            };
            for (from, to) in [
                (0.0, 7.0),
                (-1.5, 7.0),
                (-10.0, 3.3),
                (2.0, 2.0),
                (5.0, 1.0),
            ] {
                for r in [None, Some(0), Some(1), Some(2)] {
                    assert_eq!(
                        s.starts_within(from, to, r),
                        walk(from, to, r),
                        "[{from}, {to}) {r:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_constant_rate_spaces_slots_evenly() {
        let s = Schedule::new(&[seg(-1.0, 2.0, 100.0, 100.0)], &[1]);
        assert_eq!(s.total(), 300);
        assert_eq!(s.time(0), Some(-1.0));
        assert!((s.time(150).unwrap() - 0.5).abs() < 1e-9);
        assert!((s.time(299).unwrap() - 1.99).abs() < 1e-9);
        assert_eq!(s.time(300), None);
    }

    #[test]
    fn a_linear_ramp_matches_the_integral_of_its_rate() {
        // 0 -> 200 rps over 2 s: 200 slots; n(t) = 50 t², so slot 50 is due at t = 1.
        let s = Schedule::new(
            &[seg(0.0, 2.0, 0.0, 200.0), seg(2.0, 3.0, 200.0, 200.0)],
            &[1],
        );
        assert_eq!(s.total(), 400);
        assert!((s.time(50).unwrap() - 1.0).abs() < 1e-9);
        assert!((s.time(200).unwrap() - 2.0).abs() < 1e-9);
        assert!((s.time(300).unwrap() - 2.5).abs() < 1e-9);
        // A falling ramp too: 200 -> 0 over 2 s, n(t) = 200 t - 50 t²; n(1) = 150.
        let d = Schedule::new(&[seg(0.0, 2.0, 200.0, 0.0)], &[1]);
        assert!((d.time(150).unwrap() - 1.0).abs() < 1e-9);
        // Slot times never go backwards.
        let mut last = f64::MIN;
        for i in 0..s.total() {
            let t = s.time(i).unwrap();
            assert!(t >= last, "slot {i} at {t} before {last}");
            last = t;
        }
    }

    #[test]
    fn shards_interleave_into_exactly_the_whole_schedule() {
        let whole = Schedule::new(
            &[seg(-1.0, 0.0, 0.0, 90.0), seg(0.0, 2.0, 90.0, 30.0)],
            &[3, 1, 2],
        );
        let mut union: Vec<(u64, usize)> = Vec::new();
        for k in 0..3 {
            let s = whole.clone().sharded(k, 3);
            for i in 0..s.total() {
                union.push((
                    (s.time(i).unwrap() * 1e9) as u64 + 2_000_000_000,
                    s.route(i),
                ));
            }
        }
        union.sort_unstable();
        let all: Vec<(u64, usize)> = (0..whole.total())
            .map(|i| {
                (
                    (whole.time(i).unwrap() * 1e9) as u64 + 2_000_000_000,
                    whole.route(i),
                )
            })
            .collect();
        assert_eq!(union.len(), all.len());
        assert_eq!(union, {
            let mut a = all.clone();
            a.sort_unstable();
            a
        });
    }

    #[test]
    fn zero_length_steps_are_skipped_and_routes_follow_the_weights_exactly() {
        let s = Schedule::new(
            &[
                seg(0.0, 1.0, 10.0, 10.0),
                seg(1.0, 1.0, 10.0, 50.0),
                seg(1.0, 2.0, 50.0, 50.0),
            ],
            &[3, 1],
        );
        assert_eq!(s.total(), 60);
        assert!((s.time(10).unwrap() - 1.0).abs() < 1e-9);
        assert!((s.time(35).unwrap() - 1.5).abs() < 1e-9);
        let routes: Vec<usize> = (0..8).map(|i| s.route(i)).collect();
        assert_eq!(routes.iter().filter(|r| **r == 1).count(), 2);
        assert_eq!(weighted_cycle(&[3, 1]), vec![0, 0, 1, 0]);
        assert_eq!(weighted_cycle(&[1, 1, 1]), vec![0, 1, 2]);
    }
}

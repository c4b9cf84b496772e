//! The fixed buckets of every exported latency histogram (`/metrics`), and their two recorders:
//! [`Counts`] for single-threaded recording (the metrics collector, under its own lock) and
//! [`AtomicCounts`] for hot paths shared by all workers (the pool's acquire, use and query
//! paths), where a record is a bucket search and two relaxed atomic adds, with no lock.
//!
//! The bounds run from 100 µs to 10 s in steps of 1, 1.5, 2, 3, 5 and 7.5 per decade (ratio
//! 1.33–1.67 between neighbours): this app's requests and queries range from ~100 µs (a cached
//! read) to seconds (a stalled database), and the alert thresholds (0.5, 1 and 2 s) are bounds,
//! so "p95 ≥ 2 s" and "a query ≥ 500 ms" are decided by a bucket edge, not an interpolation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in µs (the `le` labels, in seconds, are these / 10⁶); `+Inf` is implied.
pub const BOUNDS_US: [u64; 31] = [
    100, 150, 200, 300, 500, 750, //
    1_000, 1_500, 2_000, 3_000, 5_000, 7_500, //
    10_000, 15_000, 20_000, 30_000, 50_000, 75_000, //
    100_000, 150_000, 200_000, 300_000, 500_000, 750_000, //
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000, //
    10_000_000,
];

/// Buckets including `+Inf`.
pub const N: usize = BOUNDS_US.len() + 1;

/// The bucket of a value in µs: the first bound ≥ `us`, else `+Inf` (index `N - 1`).
#[inline]
pub fn index(us: u64) -> usize {
    BOUNDS_US.partition_point(|&b| b < us)
}

/// The upper bound of bucket `i` in seconds (`f64::MAX` for `+Inf`, as prometheus-client's
/// histogram encoder expects).
pub fn bound_seconds(i: usize) -> f64 {
    BOUNDS_US.get(i).map_or(f64::MAX, |&b| b as f64 / 1e6)
}

/// The bucket `(lower, upper]` in seconds that holds a value (the resolution of a quantile
/// estimated from these buckets around that value).
pub fn bucket_around(seconds: f64) -> (f64, f64) {
    let us = (seconds * 1e6).round().max(0.0) as u64;
    let i = index(us);
    let lower = if i == 0 { 0.0 } else { bound_seconds(i - 1) };
    (lower, bound_seconds(i))
}

/// Per-bucket (not cumulative) counts with their sum; recorded by one thread at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub buckets: [u64; N],
    pub sum_us: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            buckets: [0; N],
            sum_us: 0,
        }
    }
}

impl Counts {
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        self.buckets[index(us)] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// `(upper bound in s, count)` per bucket, the shape of
    /// `prometheus_client::encoding::MetricEncoder::encode_histogram`.
    pub fn pairs(&self) -> [(f64, u64); N] {
        std::array::from_fn(|i| (bound_seconds(i), self.buckets[i]))
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }
}

/// [`Counts`] recorded from many threads with relaxed atomics. A reader may see a record's
/// bucket without its sum (or the reverse) for an instant; counts are never lost.
#[derive(Debug)]
pub struct AtomicCounts {
    buckets: [AtomicU64; N],
    sum_us: AtomicU64,
}

impl Default for AtomicCounts {
    fn default() -> Self {
        AtomicCounts {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl AtomicCounts {
    #[inline]
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        Counts {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_span_100us_to_10s_and_hold_the_alert_thresholds() {
        assert_eq!(BOUNDS_US[0], 100);
        assert_eq!(*BOUNDS_US.last().unwrap(), 10_000_000);
        assert!(BOUNDS_US.windows(2).all(|w| w[0] < w[1]));
        for t in [500_000, 1_000_000, 2_000_000] {
            assert!(BOUNDS_US.contains(&t), "{t} µs is an alert threshold");
        }
        // Neighbours differ by at most 5/3.
        assert!(BOUNDS_US.windows(2).all(|w| w[1] * 3 <= w[0] * 5));
    }

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(index(0), 0);
        assert_eq!(index(100), 0);
        assert_eq!(index(101), 1);
        assert_eq!(
            index(2_000_000),
            BOUNDS_US.iter().position(|&b| b == 2_000_000).unwrap()
        );
        assert_eq!(index(10_000_001), N - 1);
        assert_eq!(bound_seconds(N - 1), f64::MAX);
        assert_eq!(bucket_around(0.0042), (0.003, 0.005));
        assert_eq!(bucket_around(0.005), (0.003, 0.005));
        assert_eq!(bucket_around(0.00005), (0.0, 0.0001));
    }

    #[test]
    fn atomic_and_plain_recorders_agree() {
        let a = AtomicCounts::default();
        let mut p = Counts::default();
        for us in [50, 120, 120, 2_500, 9_999_999, 20_000_000] {
            a.record(Duration::from_micros(us));
            p.record_us(us);
        }
        let s = a.snapshot();
        assert_eq!(s, p);
        assert_eq!(s.count(), 6);
        assert_eq!(s.buckets[N - 1], 1);
        assert_eq!(s.pairs()[1], (0.00015, 2));
        assert!((s.sum_seconds() - 30.002789).abs() < 1e-9);
    }
}

//! A latency histogram in microseconds with 3 significant digits (HDR), mergeable exactly.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Significant digits kept: values are exact to 0.1 %, well inside the 1 % the SLAs need.
const SIGFIG: u8 = 3;

/// Latencies in µs. Merging two histograms gives exactly the histogram of the union, so
/// percentiles over any time window come from merged per-second histograms, never from
/// averaged percentiles.
#[derive(Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .field("p50_us", &self.quantile_us(0.5))
            .field("max_us", &self.max_us())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // Auto-resizing from 1 µs up: a constant 3 is always a valid sigfig, so this cannot fail.
        let mut h = Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("sigfig 3 is valid"));
        h.auto(true);
        LatencyHistogram(h)
    }

    /// Records one latency; sub-microsecond values count as 1 µs.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.record_us(us);
    }

    pub fn record_us(&mut self, us: u64) {
        // `record` grows the histogram (auto-resize); `saturating_record` would clamp instead.
        // Resizing only fails past u64 indexing limits, where clamping is the right fallback.
        let us = us.max(1);
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }

    /// Adds all of `other`'s values. Auto-resizing makes this infallible.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // With auto-resize on, `add` only fails on counter overflow (> u64::MAX values).
        let _ = self.0.add(&other.0);
    }

    /// Adds the values of a raw HDR histogram (one deserialized from a generator shard).
    pub fn merge_raw(&mut self, other: &Histogram<u64>) {
        let _ = self.0.add(other);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1) in µs, or `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        (!self.is_empty()).then(|| self.0.value_at_quantile(q))
    }

    /// The value at quantile `q` in milliseconds, or `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.quantile_us(q).map(|us| us as f64 / 1000.0)
    }

    pub fn max_us(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.0.max())
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.max_us().map(|us| us as f64 / 1000.0)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.0.mean() / 1000.0)
    }

    /// The underlying HDR histogram, e.g. for serialization.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_uniform_distribution() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000u64 {
            h.record_us(us);
        }
        assert_eq!(h.count(), 10_000);
        let p50 = h.quantile_us(0.5).unwrap() as f64;
        let p95 = h.quantile_us(0.95).unwrap() as f64;
        let p99 = h.quantile_us(0.99).unwrap() as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.002, "p50 {p50}");
        assert!((p95 - 9500.0).abs() / 9500.0 < 0.002, "p95 {p95}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.002, "p99 {p99}");
        assert!((h.max_us().unwrap() as f64 - 10_000.0).abs() <= 10.0);
    }

    #[test]
    fn merging_equals_recording_the_union() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        let mut all = LatencyHistogram::new();
        for i in 0..5000u64 {
            let v = (i * 7919) % 100_000 + 1;
            if i % 3 == 0 {
                a.record_us(v)
            } else {
                b.record_us(v * 20)
            }
            all.record_us(if i % 3 == 0 { v } else { v * 20 });
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.count(), all.count());
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(merged.quantile_us(q), all.quantile_us(q), "q={q}");
        }
    }

    #[test]
    fn empty_histogram_has_no_percentiles_and_sub_microsecond_counts_as_one() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile_us(0.95), None);
        assert_eq!(h.max_ms(), None);
        h.record(Duration::from_nanos(10));
        assert_eq!(h.quantile_us(0.5), Some(1));
    }
}

//! Latency histograms: one shape for every HDR histogram in the collector (µs, 1 µs–60 s, two
//! significant digits), their compact V2 encoding for Redis, and percentile read-outs.
//!
//! Every stored histogram has the same bounds so any set of them merges exactly: percentiles over
//! minutes or hours come from the merged counts, never from averaging per-second percentiles.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency histogram in microseconds.
pub type Hist = Histogram<u64>;

/// Largest recordable value (60 s); longer requests are clamped to it (`saturating_record`).
pub const MAX_US: u64 = 60_000_000;
/// Two significant digits: 1 % value precision, ~20 KiB per live histogram, cheap to merge.
pub const SIGFIG: u8 = 2;

/// A fresh, empty histogram of the collector's shape.
pub fn new_hist() -> Hist {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("constant histogram bounds are valid")
}

/// Records one duration (µs), clamping into the histogram's range.
pub fn record(h: &mut Hist, us: u64) {
    h.saturating_record(us.clamp(1, MAX_US));
}

/// Errors reading a stored histogram.
#[derive(Debug, thiserror::Error)]
pub enum HistError {
    #[error("corrupt histogram encoding: {0}")]
    Decode(String),
    #[error("histogram merge failed: {0}")]
    Merge(String),
}

/// V2 (uncompressed) encoding: sparse, a few hundred bytes for a typical second.
pub fn encode(h: &Hist) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // Writing into a Vec cannot fail for a well-formed histogram.
    if V2Serializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Decodes a V2 encoding produced by [`encode`] (or any HDR V2 writer).
pub fn decode(bytes: &[u8]) -> Result<Hist, HistError> {
    let mut rd = bytes;
    Deserializer::new()
        .deserialize(&mut rd)
        .map_err(|e| HistError::Decode(format!("{e:?}")))
}

/// Adds a stored encoding into an accumulator.
pub fn merge_encoded(acc: &mut Hist, bytes: &[u8]) -> Result<(), HistError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let h = decode(bytes)?;
    acc.add(&h).map_err(|e| HistError::Merge(format!("{e:?}")))
}

/// Adds one live histogram into another; both have the collector's shape so this cannot fail.
pub fn merge(acc: &mut Hist, h: &Hist) {
    let _ = acc.add(h);
}

/// Percentiles of a histogram, in milliseconds (three decimals, i.e. µs resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Microseconds to milliseconds rounded to µs.
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Latency {
    pub fn of(h: &Hist) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_ms: us_to_ms(h.value_at_quantile(0.50)),
            p95_ms: us_to_ms(h.value_at_quantile(0.95)),
            p99_ms: us_to_ms(h.value_at_quantile(0.99)),
            max_ms: us_to_ms(h.max()),
            mean_ms: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_encodings_equal_direct_recording() {
        // Exactness: merging per-second encodings gives the very histogram of all raw values.
        let mut direct = new_hist();
        let mut merged = new_hist();
        for sec in 0..30u64 {
            let mut h = new_hist();
            for i in 0..(50 + sec * 7) {
                let v = 100 + (i * 7919 + sec * 104_729) % 250_000;
                record(&mut h, v);
                record(&mut direct, v);
            }
            merge_encoded(&mut merged, &encode(&h)).unwrap();
        }
        assert_eq!(merged.len(), direct.len());
        for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                direct.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!(merged, direct);
    }

    #[test]
    fn averaging_percentiles_would_be_wrong() {
        // A quiet second of fast requests and a busy slow one: the true p95 is slow.
        let mut a = new_hist();
        for _ in 0..10 {
            record(&mut a, 1_000);
        }
        let mut b = new_hist();
        for _ in 0..990 {
            record(&mut b, 500_000);
        }
        let mut m = new_hist();
        merge_encoded(&mut m, &encode(&a)).unwrap();
        merge_encoded(&mut m, &encode(&b)).unwrap();
        let p95 = Latency::of(&m).p95_ms;
        let avg = (Latency::of(&a).p95_ms + Latency::of(&b).p95_ms) / 2.0;
        assert!((p95 - 500.0).abs() < 5.0, "p95 {p95}");
        assert!((avg - p95).abs() > 200.0);
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(decode(&[1, 2, 3, 4, 5]).is_err());
        assert!(merge_encoded(&mut new_hist(), &[0xff; 40]).is_err());
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut h = new_hist();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= MAX_US);
    }
}

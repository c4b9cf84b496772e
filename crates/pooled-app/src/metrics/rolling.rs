//! Rolling windows: a live bucket kept equal to the merge of the last N finished seconds by adding
//! each new second and subtracting the one that leaves (HDR subtraction is exact), so a window's
//! percentiles are read without re-merging N histograms. Only the window the dashboard lists
//! routes for keeps per-route histograms: the others (the alert rules' windows, the 10 s
//! headline) are read for their totals and query times alone, and adding and subtracting every
//! route's histogram there was a third of the collector's per-second work (issue 18).

use std::collections::VecDeque;
use std::sync::Arc;

use super::bucket::{Bucket, LiveBucket};
use super::histogram;

pub struct Rolling {
    pub secs: u64,
    pub acc: LiveBucket,
    /// Whether `acc.routes` is kept (else it stays empty).
    routes: bool,
    members: VecDeque<Arc<Bucket>>,
}

impl Rolling {
    /// A window of `secs` seconds; `routes`: keep per-route histograms too.
    pub fn new(secs: u64, routes: bool) -> Rolling {
        Rolling {
            secs,
            acc: LiveBucket::new(0, secs as u32),
            routes,
            members: VecDeque::new(),
        }
    }

    /// Adds the second just finished (`live` and its encoded form) and drops seconds that fell out.
    pub fn push(&mut self, live: &LiveBucket, finished: Arc<Bucket>) {
        let now = finished.start;
        if self.routes {
            self.acc.absorb_live(live);
        } else {
            self.acc.absorb_live_totals(live);
        }
        self.members.push_back(finished);
        while let Some(old) = self.members.front() {
            if old.start + self.secs > now {
                break;
            }
            let old = self.members.pop_front().expect("front exists");
            if subtract(&mut self.acc, &old, self.routes).is_err() {
                self.rebuild();
                break;
            }
        }
        self.acc.start = self.members.front().map_or(now, |b| b.start);
    }

    /// Seconds of data currently covered.
    pub fn covered(&self) -> usize {
        self.members.len()
    }

    /// Recomputes the accumulator from its members (only after a corrupt-subtraction surprise).
    fn rebuild(&mut self) {
        let mut acc = LiveBucket::new(0, self.secs as u32);
        for b in &self.members {
            let _ = acc.absorb(b);
        }
        if !self.routes {
            acc.routes.clear();
        }
        self.acc = acc;
    }
}

fn subtract(acc: &mut LiveBucket, b: &Bucket, routes: bool) -> Result<(), histogram::HistError> {
    let sub = |a: &mut histogram::Hist, bytes: &[u8]| -> Result<(), histogram::HistError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let h = histogram::decode(bytes)?;
        a.subtract(&h)
            .map_err(|e| histogram::HistError::Merge(format!("{e:?}")))
    };
    sub(&mut acc.overall, &b.overall)?;
    acc.errors = acc.errors.saturating_sub(b.errors);
    for r in b.routes.iter().filter(|_| routes) {
        if let Some(e) = acc.routes.get_mut(&r.key) {
            sub(&mut e.hist, &r.hist)?;
            e.errors = e.errors.saturating_sub(r.errors);
            if e.hist.is_empty() {
                acc.routes.remove(&r.key);
            }
        }
    }
    for (k, bytes) in &b.db {
        if let Some(h) = acc.db.get_mut(k) {
            sub(h, bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::Latency;

    #[test]
    fn rolling_window_equals_fresh_merge_of_its_seconds() {
        let mut w = Rolling::new(10, true);
        let mut totals_only = Rolling::new(10, false);
        let mut all: Vec<Arc<Bucket>> = Vec::new();
        for s in 0..40u64 {
            let mut live = LiveBucket::new(1000 + s, 1);
            for i in 0..(s % 7 * 20 + 1) {
                live.record(
                    if i % 3 == 0 { "GET /a" } else { "GET /b" },
                    100 + i * s * 13,
                    i % 9 == 0,
                    true,
                );
            }
            let fin = Arc::new(live.finish());
            all.push(fin.clone());
            totals_only.push(&live, fin.clone());
            w.push(&live, fin);
            let mut fresh = LiveBucket::new(0, 10);
            for b in all.iter().rev().take(10) {
                fresh.absorb(b).unwrap();
            }
            assert_eq!(
                Latency::of(&w.acc.overall),
                Latency::of(&fresh.overall),
                "second {s}"
            );
            assert_eq!(w.acc.errors, fresh.errors);
            assert_eq!(w.acc.routes.len(), fresh.routes.len());
            for (k, r) in &fresh.routes {
                assert_eq!(
                    Latency::of(&w.acc.routes[k].hist),
                    Latency::of(&r.hist),
                    "{k}"
                );
            }
            assert_eq!(
                Latency::of(&totals_only.acc.overall),
                Latency::of(&fresh.overall)
            );
            assert_eq!(totals_only.acc.errors, fresh.errors);
            assert!(totals_only.acc.routes.is_empty());
        }
        assert_eq!(w.covered(), 10);
    }
}

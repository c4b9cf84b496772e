//! Client-side series: per-second, per-route latency histograms (corrected: from the
//! scheduled start; uncorrected: service time from the actual send), request and error
//! counts, and the fate of every scheduled start (sent on time, late, dropped).

use super::histogram::LatencyHistogram;
use super::timeline::Window;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a request counted as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// A response whose status differs from the transaction's expected status.
    Status(u16),
    /// No response within the request timeout.
    Timeout,
    /// No response: connection refused or reset, protocol error, body read failure.
    Transport,
}

impl ErrorKind {
    /// The stable label used in reports: the status code, `timeout` or `transport`.
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Status(s) => s.to_string(),
            ErrorKind::Timeout => "timeout".to_string(),
            ErrorKind::Transport => "transport".to_string(),
        }
    }
}

/// What became of one scheduled start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotFate {
    /// Sent within the late tolerance of its scheduled time.
    OnTime,
    /// Sent, but later than the tolerance: no user was free, or the generator was behind.
    /// Its corrected latency counts the wait.
    Late,
    /// Never sent: no user became free within the drop horizon (or before the load ended).
    Dropped,
}

/// One route's measurements during one second.
#[derive(Debug, Clone, Default)]
pub struct RouteSecond {
    /// Corrected latency of every request that got an HTTP response (expected status or
    /// not): from its scheduled start when it had one (queueing in the generator counts),
    /// else from its send. Requests without a response (timeouts, transport errors) are
    /// counted only in `errors`: their "latency" is how fast a connection was refused,
    /// which would flatter percentiles.
    pub latency: LatencyHistogram,
    /// Uncorrected latency (service time) of the same requests: from the actual send.
    pub service: LatencyHistogram,
    /// Requests completed in this second, successful or not.
    pub requests: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Starts scheduled in this second (open model, or a paced closed model), whatever
    /// became of them. Counted by scheduled time, unlike `requests` (by completion).
    pub scheduled: u64,
    /// Of `scheduled`, those sent later than the tolerance.
    pub late: u64,
    /// Of `scheduled`, those never sent.
    pub dropped: u64,
}

impl RouteSecond {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s measurements to these (another second, route or load worker).
    pub fn absorb(&mut self, other: &RouteSecond) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.requests += other.requests;
        self.scheduled += other.scheduled;
        self.late += other.late;
        self.dropped += other.dropped;
        for (k, n) in &other.errors {
            *self.errors.entry(*k).or_insert(0) += n;
        }
    }
}

/// All routes during one second; `t` is the second's start offset from the start of measured
/// load (negative during ramp and warm-up). A request belongs to the second it completed in.
#[derive(Debug, Clone, Default)]
pub struct SecondBucket {
    pub t: i64,
    pub routes: BTreeMap<String, RouteSecond>,
}

/// The client series of a run.
#[derive(Debug, Clone, Default)]
pub struct ClientSeries {
    /// Buckets by second; seconds without any completed request have no bucket.
    pub buckets: BTreeMap<i64, SecondBucket>,
    /// Route (transaction) names in scenario order, also those that never completed a request.
    pub routes: Vec<String>,
}

impl ClientSeries {
    pub fn new(routes: Vec<String>) -> Self {
        ClientSeries {
            buckets: BTreeMap::new(),
            routes,
        }
    }

    /// Records one completed request. `at` is its completion offset from the start of
    /// measured load in seconds; `latency` is `None` when no response arrived.
    pub fn record(
        &mut self,
        route: &str,
        at: f64,
        latency: Option<Duration>,
        error: Option<ErrorKind>,
    ) {
        self.record_timed(route, at, latency.map(|l| (l, l)), error);
    }

    /// Records one completed request with its (corrected, uncorrected) latency: they differ
    /// when the request started later than scheduled.
    pub fn record_timed(
        &mut self,
        route: &str,
        at: f64,
        latency: Option<(Duration, Duration)>,
        error: Option<ErrorKind>,
    ) {
        let Some(rs) = self.route_second(route, at) else {
            return;
        };
        rs.requests += 1;
        if let Some((corrected, service)) = latency {
            rs.latency.record(corrected);
            rs.service.record(service);
        }
        if let Some(e) = error {
            *rs.errors.entry(e).or_insert(0) += 1;
        }
    }

    /// Records one scheduled start (`at`: its scheduled offset) and what became of it.
    pub fn record_slot(&mut self, route: &str, at: f64, fate: SlotFate) {
        let Some(rs) = self.route_second(route, at) else {
            return;
        };
        rs.scheduled += 1;
        match fate {
            SlotFate::OnTime => {}
            SlotFate::Late => rs.late += 1,
            SlotFate::Dropped => rs.dropped += 1,
        }
    }

    fn route_second(&mut self, route: &str, at: f64) -> Option<&mut RouteSecond> {
        let t = at.floor() as i64;
        let bucket = self.buckets.entry(t).or_insert_with(|| SecondBucket {
            t,
            routes: BTreeMap::new(),
        });
        // Avoid allocating the route name on the hot path once the entry exists.
        if !bucket.routes.contains_key(route) {
            bucket
                .routes
                .insert(route.to_string(), RouteSecond::default());
        }
        bucket.routes.get_mut(route)
    }

    /// Merges another series into this one (e.g. from several load workers).
    pub fn merge(&mut self, other: &ClientSeries) {
        for r in &other.routes {
            if !self.routes.contains(r) {
                self.routes.push(r.clone());
            }
        }
        for (t, ob) in &other.buckets {
            let b = self.buckets.entry(*t).or_insert_with(|| SecondBucket {
                t: *t,
                routes: BTreeMap::new(),
            });
            for (name, ors) in &ob.routes {
                b.routes.entry(name.clone()).or_default().absorb(ors);
            }
        }
    }

    /// Whole seconds `t` whose middle `t + 0.5` lies in one of `windows`.
    pub fn seconds_in(windows: &[Window]) -> Vec<i64> {
        let mut ts: Vec<i64> = windows
            .iter()
            .flat_map(|w| {
                let first = (w.start - 0.5).ceil() as i64;
                let last = (w.end - 0.5).ceil() as i64; // exclusive
                first..last
            })
            .collect();
        ts.sort_unstable();
        ts.dedup();
        ts
    }

    /// Merged statistics over `windows`, for one route or (with `None`) all routes.
    pub fn window(&self, windows: &[Window], route: Option<&str>) -> WindowStats {
        let seconds = Self::seconds_in(windows);
        let mut sum = RouteSecond::default();
        for t in &seconds {
            let Some(b) = self.buckets.get(t) else {
                continue;
            };
            for (name, rs) in &b.routes {
                if route.is_none_or(|r| r == name) {
                    sum.absorb(rs);
                }
            }
        }
        let RouteSecond {
            latency,
            service,
            requests,
            errors,
            scheduled,
            late,
            dropped,
        } = sum;
        WindowStats {
            latency,
            service,
            scheduled,
            late,
            dropped,
            requests,
            errors,
            seconds: seconds.len() as f64,
        }
    }

    /// Statistics of one second, for one route or all.
    pub fn second(&self, t: i64, route: Option<&str>) -> WindowStats {
        self.window(&[Window::new(t as f64, t as f64 + 1.0)], route)
    }

    /// The range of seconds that have data, if any.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((
            *self.buckets.keys().next()?,
            *self.buckets.keys().next_back()?,
        ))
    }
}

/// Statistics merged over a set of seconds.
#[derive(Debug, Clone, Default)]
pub struct WindowStats {
    /// Corrected latency (from the scheduled start).
    pub latency: LatencyHistogram,
    /// Uncorrected latency (service time, from the actual send).
    pub service: LatencyHistogram,
    /// Scheduled starts, and of them those sent late or dropped (by scheduled time).
    pub scheduled: u64,
    pub late: u64,
    pub dropped: u64,
    pub requests: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Whole seconds covered (including seconds without any completed request).
    pub seconds: f64,
}

impl WindowStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn successes(&self) -> u64 {
        self.requests.saturating_sub(self.error_count())
    }

    /// Errors as a fraction of completed requests (0..=1), `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.error_count() as f64 / self.requests as f64)
    }

    /// Successful requests per second over the covered seconds, `None` when no time is covered.
    /// Errors do not count: fast failures are not capacity.
    pub fn throughput_rps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.successes() as f64 / self.seconds)
    }

    /// Dropped starts as a fraction of scheduled starts (0..=1), `None` without a schedule.
    pub fn dropped_rate(&self) -> Option<f64> {
        (self.scheduled > 0).then(|| self.dropped as f64 / self.scheduled as f64)
    }

    /// Scheduled starts per second over the covered seconds (`None` without a schedule).
    pub fn offered_rps(&self) -> Option<f64> {
        (self.seconds > 0.0 && self.scheduled > 0).then(|| self.scheduled as f64 / self.seconds)
    }

    /// All completed requests per second (successes and errors).
    pub fn request_rps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.requests as f64 / self.seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn seconds_in_windows_uses_the_middle_of_each_second() {
        assert_eq!(
            ClientSeries::seconds_in(&[Window::new(0.0, 3.0)]),
            vec![0, 1, 2]
        );
        assert_eq!(
            ClientSeries::seconds_in(&[Window::new(-2.0, 0.0)]),
            vec![-2, -1]
        );
        assert_eq!(
            ClientSeries::seconds_in(&[Window::new(1.4, 2.6)]),
            vec![1, 2]
        );
        assert_eq!(
            ClientSeries::seconds_in(&[Window::new(1.6, 2.4)]),
            Vec::<i64>::new()
        );
        assert_eq!(
            ClientSeries::seconds_in(&[Window::new(0.0, 2.0), Window::new(1.0, 4.0)]),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn window_merges_routes_seconds_and_errors_exactly() {
        let mut s = ClientSeries::new(vec!["a".into(), "b".into()]);
        // Warm-up request at t=-0.5 must not count in [0, 3).
        s.record("a", -0.5, ms(1000), None);
        for i in 0..100 {
            s.record("a", 0.1, ms(10), None);
            s.record(
                "b",
                1.2,
                ms(20),
                if i < 10 {
                    Some(ErrorKind::Status(500))
                } else {
                    None
                },
            );
        }
        s.record("b", 2.9, None, Some(ErrorKind::Transport));
        let w = s.window(&[Window::new(0.0, 3.0)], None);
        assert_eq!(w.requests, 201);
        assert_eq!(w.error_count(), 11);
        assert_eq!(w.errors.get(&ErrorKind::Status(500)), Some(&10));
        assert_eq!(w.latency.count(), 200);
        assert_eq!(w.seconds, 3.0);
        assert!((w.throughput_rps().unwrap() - 190.0 / 3.0).abs() < 1e-9);
        assert!((w.error_rate().unwrap() - 11.0 / 201.0).abs() < 1e-12);
        let p50 = w.latency.quantile_ms(0.5).unwrap();
        assert!((p50 - 10.0).abs() < 0.02, "{p50}");
        let b = s.window(&[Window::new(0.0, 3.0)], Some("b"));
        assert_eq!(b.requests, 101);
        assert!((b.latency.quantile_ms(0.5).unwrap() - 20.0).abs() < 0.03);
        assert!(w.latency.max_ms().unwrap() < 21.0, "warm-up value excluded");
    }

    #[test]
    fn merging_series_adds_counts() {
        let mut a = ClientSeries::new(vec!["x".into()]);
        let mut b = ClientSeries::new(vec!["y".into()]);
        a.record("x", 0.5, ms(1), None);
        b.record("x", 0.5, ms(3), Some(ErrorKind::Timeout));
        b.record("y", 1.5, ms(5), None);
        a.merge(&b);
        assert_eq!(a.routes, vec!["x".to_string(), "y".to_string()]);
        let w = a.window(&[Window::new(0.0, 2.0)], None);
        assert_eq!((w.requests, w.error_count(), w.latency.count()), (3, 1, 3));
        assert_eq!(a.span(), Some((0, 1)));
    }

    #[test]
    fn corrected_and_uncorrected_latency_and_slot_fates_add_up_per_window() {
        let mut s = ClientSeries::new(vec!["a".into()]);
        for i in 0..100u64 {
            // 90 on time at 2 ms; 10 waited 1 s for a user, then took 2 ms to serve.
            let corrected = if i < 10 { 1002 } else { 2 };
            s.record_timed(
                "a",
                1.5,
                Some((Duration::from_millis(corrected), Duration::from_millis(2))),
                None,
            );
            let fate = if i < 10 {
                SlotFate::Late
            } else {
                SlotFate::OnTime
            };
            s.record_slot("a", 0.5, fate);
        }
        for _ in 0..25 {
            s.record_slot("a", 0.7, SlotFate::Dropped);
        }
        let w = s.window(&[Window::new(0.0, 2.0)], None);
        assert_eq!((w.scheduled, w.late, w.dropped), (125, 10, 25));
        assert!((w.dropped_rate().unwrap() - 0.2).abs() < 1e-12);
        assert!((w.offered_rps().unwrap() - 62.5).abs() < 1e-9);
        assert!(w.latency.quantile_ms(0.95).unwrap() > 1000.0);
        assert!(w.service.quantile_ms(0.95).unwrap() < 2.1);
        // Merging keeps every count.
        let mut m = ClientSeries::default();
        m.merge(&s);
        m.merge(&s);
        let w = m.window(&[Window::new(0.0, 2.0)], Some("a"));
        assert_eq!(
            (w.scheduled, w.late, w.dropped, w.requests),
            (250, 20, 50, 200)
        );
        assert_eq!(w.service.count(), 200);
    }

    #[test]
    fn empty_window_has_no_rates() {
        let s = ClientSeries::default();
        let w = s.window(&[], None);
        assert_eq!(w.error_rate(), None);
        assert_eq!(w.throughput_rps(), None);
        let w = s.window(&[Window::new(0.0, 5.0)], None);
        assert_eq!(w.error_rate(), None);
        assert_eq!(w.throughput_rps(), Some(0.0));
    }
}

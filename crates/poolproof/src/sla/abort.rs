//! `abort_on_fail: true` (k6's `abortOnFail`): which SLA verdicts are already lost during the
//! load, and the early stop that records it.
//!
//! The rule is certainty, never a trend: the final figure is bounded from the live figures
//! and the most requests the planned load can still complete (`LoadPlan::max_measured_requests`,
//! M). Errors and slow responses already counted stay counted; every request still to come
//! can at best be fast and successful.
//! - `error_rate <= T` is lost once errors so far / M > T (`<`: ≥ T): the final rate is at
//!   least errors / M.
//! - `latency_pQ <= T` is lost once the responses slower than T so far exceed (1 − Q) · M:
//!   then fewer than Q of even M responses can be at or below T, so the Q-quantile lies above
//!   T. `latency_max` is lost at the first response over T. "Slower than T" counts whole
//!   histogram buckets wholly above T, so the histogram's rounding can only make the final
//!   figure larger. (`<`: buckets at or above T.)
//!
//! Other metrics (A/B ratios, server-side, alerts, throughput) are judged only at the end;
//! scenario validation rejects `abort_on_fail` on them.

use super::Unit;
use crate::load::LoadPlan;
use crate::observe::{ClientSeries, LatencyHistogram, Window};
use crate::scenario::{Comparator, Metric, Sla, Timing};
use serde::{Deserialize, Serialize};

/// What a live check judges.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Judged {
    ErrorRate {
        /// The threshold as a fraction.
        limit: f64,
    },
    Latency {
        /// The quantile in permille (950 for p95, 1000 for max).
        permille: u64,
        /// The threshold in microseconds.
        limit_us: u64,
        uncorrected: bool,
    },
}

/// One `abort_on_fail` SLA, ready to be checked against live figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortRule {
    /// The SLA's index in the scenario's list.
    pub index: usize,
    pub label: String,
    route: Option<String>,
    /// `<` rather than `<=`: reaching the threshold already fails.
    strict: bool,
    judged: Judged,
    /// The most requests (of the route) the plan can complete within measured load.
    max_requests: u64,
    unit: Unit,
    threshold_text: String,
}

/// Why and when a run stopped early: the SLA whose failure became certain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    /// The SLA's label, e.g. `error_rate <= 1%`.
    pub sla: String,
    /// The SLA's index in the scenario's `slas`.
    pub sla_index: usize,
    /// Seconds of measured load when the run stopped.
    pub at_s: f64,
    /// Seconds of measured load the scenario planned.
    pub planned_s: f64,
    /// The SLA's figure over the requests measured until then, in its unit.
    pub measured: f64,
    /// Why the verdict could no longer change.
    pub reason: String,
}

impl EarlyStop {
    /// One line for reports and the terminal.
    pub fn summary(&self) -> String {
        format!(
            "stopped early at {:.1} s of {:.0} s planned: {} can no longer be met — {}",
            self.at_s, self.planned_s, self.sla, self.reason
        )
    }
}

/// The abort rules of `slas` under `plan`: one per `abort_on_fail` SLA that validation let
/// through (others, and any whose total the plan cannot bound, are left out).
pub fn rules(slas: &[Sla], plan: &LoadPlan) -> Vec<AbortRule> {
    slas.iter()
        .enumerate()
        .filter(|(_, s)| s.abort_on_fail)
        .filter_map(|(i, s)| AbortRule::of(i, s, plan))
        .collect()
}

impl AbortRule {
    fn of(index: usize, sla: &Sla, plan: &LoadPlan) -> Option<AbortRule> {
        let strict = match sla.comparator {
            Comparator::Le => false,
            Comparator::Lt => true,
            Comparator::Gt | Comparator::Ge => return None,
        };
        let threshold = sla.threshold.canonical();
        let permille = match sla.metric {
            Metric::LatencyP50 => Some(500),
            Metric::LatencyP95 => Some(950),
            Metric::LatencyP99 => Some(990),
            Metric::LatencyMax => Some(1000),
            Metric::ErrorRate => None,
            _ => return None,
        };
        let judged = match permille {
            Some(permille) => Judged::Latency {
                permille,
                // Thresholds are in ms; histograms in µs.
                limit_us: (threshold * 1000.0).round().max(0.0) as u64,
                uncorrected: sla.timing == Some(Timing::Uncorrected),
            },
            None => Judged::ErrorRate { limit: threshold },
        };
        Some(AbortRule {
            index,
            label: sla.label(),
            route: sla.route.clone(),
            strict,
            judged,
            max_requests: plan.max_measured_requests(sla.route.as_deref())?,
            unit: Unit::of(sla.metric, &sla.threshold),
            threshold_text: sla.threshold.to_string(),
        })
    }

    /// Checks the live figures of measured load so far: `Some((figure so far, why))` once
    /// the SLA's failure is certain.
    pub fn check(&self, series: &ClientSeries, now_s: f64) -> Option<(f64, String)> {
        // Every second so far, the current partial one included.
        let w = series.window(
            &[Window::new(0.0, now_s.floor() + 1.0)],
            self.route.as_deref(),
        );
        let m = self.max_requests;
        match self.judged {
            Judged::ErrorRate { limit } => {
                let errors = w.error_count();
                if !error_budget_spent(errors, m, limit, self.strict) {
                    return None;
                }
                let so_far = w.error_rate()?;
                Some((
                    so_far,
                    format!(
                        "{errors} errors in the first {} requests already exceed {} of the at most {m} requests the planned load can complete (the error rate cannot end below {})",
                        w.requests, self.threshold_text, super::format_value(errors as f64 / m as f64, Unit::Fraction)
                    ),
                ))
            }
            Judged::Latency {
                permille,
                limit_us,
                uncorrected,
            } => {
                let h = if uncorrected { &w.service } else { &w.latency };
                let slow = slower_than(h, limit_us, self.strict);
                if !quantile_lost(slow, m, permille) {
                    return None;
                }
                let q = permille as f64 / 1000.0;
                let so_far = h.quantile_ms(q)?;
                let share = if permille == 1000 {
                    "any".to_string()
                } else {
                    format!("{} %", super::sig3((1000 - permille) as f64 / 10.0))
                };
                Some((
                    so_far,
                    format!(
                        "{slow} of the first {} responses took {} {}, more than {share} of the at most {m} requests the planned load can complete",
                        h.count(),
                        if self.strict { "at least" } else { "over" },
                        super::format_value(limit_us as f64 / 1000.0, self.unit)
                    ),
                ))
            }
        }
    }
}

/// Whether an error rate `<= limit` (`strict`: `< limit`) is already lost: `errors` so far
/// over the most requests that can complete, `max_requests`, already exceeds the limit (for
/// `<`, reaches it), so the final rate — at least that — must too.
pub fn error_budget_spent(errors: u64, max_requests: u64, limit: f64, strict: bool) -> bool {
    if errors == 0 || max_requests == 0 {
        return false;
    }
    let floor = errors as f64 / max_requests as f64;
    if strict {
        floor >= limit
    } else {
        floor > limit
    }
}

/// Whether a latency quantile (in permille: 950 = p95, 1000 = max) `<=` its threshold is
/// already lost: more than (1 − Q) of the most requests that can complete, `max_requests`,
/// were already slower than the threshold (`slow`). Then at most `max_requests − slow` < Q ·
/// N responses of any final count N ≤ max_requests are within the threshold, and the
/// quantile's rank ⌈Q · N⌉ falls among the slow ones. In integers: slow · 1000 > (1000 − Q) · M.
pub fn quantile_lost(slow: u64, max_requests: u64, permille: u64) -> bool {
    if slow == 0 {
        return false;
    }
    let slow = u128::from(slow) * 1000;
    let allowed = u128::from(1000u64.saturating_sub(permille)) * u128::from(max_requests);
    slow > allowed
}

/// Responses whose whole histogram bucket lies above `limit_us` (`strict`: at or above),
/// so the value the histogram reports for them is above (at or above) the threshold too.
fn slower_than(h: &LatencyHistogram, limit_us: u64, strict: bool) -> u64 {
    let inner = h.inner();
    inner
        .iter_recorded()
        .filter(|v| {
            let low = inner.lowest_equivalent(v.value_iterated_to());
            if strict {
                low >= limit_us
            } else {
                low > limit_us
            }
        })
        .map(|v| v.count_at_value())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn error_budget_is_spent_only_when_no_future_can_save_it() {
        // 1 % of at most 1000 requests is 10 errors: the 11th makes 1.1 % the floor.
        assert!(!error_budget_spent(10, 1000, 0.01, false));
        assert!(error_budget_spent(11, 1000, 0.01, false));
        // `<` fails at the threshold itself.
        assert!(error_budget_spent(10, 1000, 0.01, true));
        assert!(!error_budget_spent(9, 1000, 0.01, true));
        // A high rate so far is a trend, not a certainty: 5 of 6 requests failed, but
        // 994 more may succeed.
        assert!(!error_budget_spent(5, 1000, 0.01, false));
        assert!(!error_budget_spent(0, 0, 0.0, false));
        // A zero budget is lost at the first error.
        assert!(error_budget_spent(1, 1_000_000, 0.0, false));
    }

    #[test]
    fn a_quantile_is_lost_once_the_slow_ones_exceed_its_tail_of_the_total() {
        // p95 of at most 1000: 50 slow may still end at p95 within the threshold, 51 cannot.
        assert!(!quantile_lost(50, 1000, 950));
        assert!(quantile_lost(51, 1000, 950));
        // p99: 10 allowed.
        assert!(!quantile_lost(10, 1000, 990));
        assert!(quantile_lost(11, 1000, 990));
        // p50: half.
        assert!(!quantile_lost(500, 1000, 500));
        assert!(quantile_lost(501, 1000, 500));
        // max: the first slow one.
        assert!(quantile_lost(1, 1000, 1000));
        assert!(!quantile_lost(0, 1000, 1000));
    }

    /// The rule against the histogram the final verdict reads: with `slow` responses over the
    /// threshold and every other one of at most M fast, the quantile still ends above it, for
    /// any final count up to M.
    #[test]
    fn a_lost_quantile_stays_lost_for_every_final_count() {
        for (permille, m) in [(950u64, 200u64), (990, 500), (500, 101), (1000, 50)] {
            let q = permille as f64 / 1000.0;
            let needed = (1..=m)
                .find(|&s| quantile_lost(s, m, permille))
                .unwrap_or(m);
            for n in needed..=m {
                let mut h = LatencyHistogram::new();
                for _ in 0..needed {
                    h.record(Duration::from_millis(80));
                }
                for _ in needed..n {
                    h.record(Duration::from_millis(5));
                }
                let p = h.quantile_ms(q).unwrap_or(0.0);
                assert!(p > 50.0, "p{permille}‰ of {n} with {needed} slow: {p} ms");
            }
            // One fewer slow response is not certain: the final quantile can then be within.
            if needed > 1 {
                let mut h = LatencyHistogram::new();
                for _ in 0..needed - 1 {
                    h.record(Duration::from_millis(80));
                }
                for _ in needed - 1..m {
                    h.record(Duration::from_millis(5));
                }
                let p = h.quantile_ms(q).unwrap_or(0.0);
                assert!(
                    p <= 50.0,
                    "p{permille}‰ of {m} with {} slow: {p}",
                    needed - 1
                );
            }
        }
    }

    #[test]
    fn only_buckets_wholly_beyond_the_threshold_count_as_slow() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_micros(50_000)); // at the threshold: not over it
        h.record(Duration::from_micros(51_000));
        h.record(Duration::from_micros(200_000));
        assert_eq!(slower_than(&h, 50_000, false), 2);
        // `<`: reaching the threshold already fails, but only a bucket starting at or above
        // it is sure to read at or above it (50,000 µs lies in the bucket from 49,984).
        let aligned = h.inner().lowest_equivalent(50_000) >= 50_000;
        assert_eq!(slower_than(&h, 50_000, true), 2 + u64::from(aligned));
        assert_eq!(
            slower_than(&h, 51_000, true),
            1 + u64::from(h.inner().lowest_equivalent(51_000) >= 51_000)
        );
        assert_eq!(slower_than(&h, 300_000, false), 0);
        // A value that shares the threshold's bucket is not counted as over it: the histogram
        // cannot tell it from the threshold.
        let mut near = LatencyHistogram::new();
        near.record(Duration::from_micros(50_010));
        let same_bucket = near.inner().lowest_equivalent(50_010) <= 50_000;
        assert_eq!(slower_than(&near, 50_000, false), u64::from(!same_bucket));
    }

    fn series(requests: &[(f64, u64, bool)]) -> ClientSeries {
        let mut s = ClientSeries::new(vec!["r".into()]);
        for &(t, ms, ok) in requests {
            s.record(
                "r",
                t,
                Some(Duration::from_millis(ms)),
                (!ok).then_some(crate::observe::ErrorKind::Status(500)),
            );
        }
        s
    }

    fn rule(yaml: &str, max_requests: u64) -> AbortRule {
        let sla: Sla = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        let judged = match sla.metric {
            Metric::ErrorRate => Judged::ErrorRate {
                limit: sla.threshold.canonical(),
            },
            _ => Judged::Latency {
                permille: 950,
                limit_us: (sla.threshold.canonical() * 1000.0) as u64,
                uncorrected: false,
            },
        };
        AbortRule {
            index: 0,
            label: sla.label(),
            route: None,
            strict: false,
            judged,
            max_requests,
            unit: Unit::of(sla.metric, &sla.threshold),
            threshold_text: sla.threshold.to_string(),
        }
    }

    #[test]
    fn live_check_names_the_figures_that_decided() {
        let r = rule(
            "{metric: error_rate, comparator: '<=', threshold: 1%}",
            1000,
        );
        // 10 errors in the first second: still 1.0 % of 1000 at most, not lost.
        let mut reqs: Vec<(f64, u64, bool)> = (0..10).map(|_| (0.5, 3, false)).collect();
        reqs.extend((0..90).map(|_| (0.5, 3, true)));
        assert_eq!(r.check(&series(&reqs), 0.9), None);
        reqs.push((1.2, 3, false));
        let Some((so_far, why)) = r.check(&series(&reqs), 1.3) else {
            panic!("11 errors of at most 1000 must be certain");
        };
        assert!((so_far - 11.0 / 101.0).abs() < 1e-12);
        assert!(why.contains("11 errors in the first 101 requests"), "{why}");
        assert!(why.contains("1000"), "{why}");
        // Warm-up errors (negative offsets) do not count.
        let warm: Vec<(f64, u64, bool)> = (0..50).map(|_| (-0.5, 3, false)).collect();
        assert_eq!(r.check(&series(&warm), 0.2), None);

        let r = rule(
            "{metric: latency_p95, comparator: '<=', threshold: 50ms}",
            100,
        );
        let slow: Vec<(f64, u64, bool)> = (0..6).map(|_| (0.5, 80, true)).collect();
        let Some((p95, why)) = r.check(&series(&slow), 0.6) else {
            panic!("6 slow of at most 100 must be certain for p95");
        };
        assert!(p95 > 50.0);
        assert!(
            why.contains("6 of the first 6 responses took over 50 ms"),
            "{why}"
        );
        assert_eq!(r.check(&series(&slow[..5]), 0.6), None);
    }
}

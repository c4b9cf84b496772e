//! Health scoring: pure functions turning check results into 0–100 scores, the weighted
//! composite, and the insights (recommendations derived from the numbers).
//!
//! Weights (documented in docs/monitoring.md): database 30 %, performance 25 %, connection pool
//! 20 %, Redis 15 %, notifiers 10 %. A service is healthy at a score of 50 or more; the whole is
//! healthy when the database is and the composite is at least 70.

use serde::Serialize;

pub const WEIGHTS: [(&str, f64); 5] = [
    ("database", 0.30),
    ("performance", 0.25),
    ("connection_pool", 0.20),
    ("redis", 0.15),
    ("notifiers", 0.10),
];
pub const HEALTHY_SCORE: u8 = 50;
pub const OVERALL_HEALTHY_SCORE: u8 = 70;

/// Score of a round trip: 100 up to 5 ms, 80 at 50 ms, 40 at 500 ms, 20 beyond; 0 when it failed.
pub fn round_trip_score(rtt_ms: Option<f64>) -> u8 {
    let Some(t) = rtt_ms else { return 0 };
    let s = if t <= 5.0 {
        100.0
    } else if t <= 50.0 {
        100.0 - (t - 5.0) * 20.0 / 45.0
    } else if t <= 500.0 {
        80.0 - (t - 50.0) * 40.0 / 450.0
    } else {
        20.0
    };
    s.round().clamp(0.0, 100.0) as u8
}

/// Pool facts the score reads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolFacts {
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
    pub waiting: u64,
    pub acquire_timeouts_total: u64,
    pub fallback_mode: bool,
    pub pooling_enabled: bool,
}

impl PoolFacts {
    pub fn utilization_percent(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            (self.in_use as f64 * 1000.0 / self.max as f64).round() / 10.0
        }
    }
}

/// Pool: utilization above 70 % costs up to 30 points, waiters 5 each (up to 30), new acquire
/// timeouts since the last check 30; fallback (direct connections) caps the score at 40.
pub fn pool_score(p: &PoolFacts, new_timeouts: u64) -> u8 {
    let mut s = 100.0;
    let u = p.utilization_percent();
    if u > 70.0 {
        s -= (u - 70.0).min(30.0);
    }
    s -= (p.waiting as f64 * 5.0).min(30.0);
    if new_timeouts > 0 {
        s -= 30.0;
    }
    if p.fallback_mode {
        s = f64::min(s, 40.0);
    }
    s.round().clamp(0.0, 100.0) as u8
}

/// A figure against warning/critical thresholds: 100 below half the warning, 70 at the warning,
/// 40 at the critical, 20 beyond.
pub fn threshold_score(v: f64, warning: f64, critical: f64) -> u8 {
    let (w, c) = (warning.max(f64::MIN_POSITIVE), critical.max(warning));
    let s = if v < 0.5 * w {
        100.0
    } else if v < w {
        100.0 - 30.0 * (v - 0.5 * w) / (0.5 * w)
    } else if v < c {
        70.0 - 30.0 * (v - w) / (c - w).max(f64::MIN_POSITIVE)
    } else {
        20.0
    };
    s.round().clamp(0.0, 100.0) as u8
}

/// Notifiers: 100 with no recent failure (or none configured), 80 when the latest delivery
/// succeeded after a recent failure, 30 when the latest delivery failed.
pub fn notifier_score(recent_failure: bool, latest_failed: bool) -> u8 {
    match (recent_failure, latest_failed) {
        (false, _) => 100,
        (true, false) => 80,
        (true, true) => 30,
    }
}

/// Weighted composite of the per-service scores (names as in [`WEIGHTS`]).
pub fn composite(scores: &[(&str, u8)]) -> u8 {
    let mut total = 0.0;
    let mut weight = 0.0;
    for (name, w) in WEIGHTS {
        if let Some((_, s)) = scores.iter().find(|(n, _)| *n == name) {
            total += w * f64::from(*s);
            weight += w;
        }
    }
    if weight == 0.0 {
        0
    } else {
        (total / weight).round() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_curve() {
        assert_eq!(round_trip_score(None), 0);
        assert_eq!(round_trip_score(Some(0.3)), 100);
        assert_eq!(round_trip_score(Some(50.0)), 80);
        assert_eq!(round_trip_score(Some(500.0)), 40);
        assert_eq!(round_trip_score(Some(5000.0)), 20);
    }

    #[test]
    fn pool_penalties() {
        let mut p = PoolFacts {
            max: 20,
            in_use: 4,
            ..PoolFacts::default()
        };
        assert_eq!(pool_score(&p, 0), 100);
        p.in_use = 20;
        assert_eq!(pool_score(&p, 0), 70);
        p.waiting = 3;
        assert_eq!(pool_score(&p, 0), 55);
        assert_eq!(pool_score(&p, 2), 25);
        p = PoolFacts {
            max: 20,
            fallback_mode: true,
            ..PoolFacts::default()
        };
        assert_eq!(pool_score(&p, 0), 40);
    }

    #[test]
    fn thresholds_and_composite() {
        assert_eq!(threshold_score(100.0, 1000.0, 2000.0), 100);
        assert_eq!(threshold_score(1000.0, 1000.0, 2000.0), 70);
        assert_eq!(threshold_score(1500.0, 1000.0, 2000.0), 55);
        assert_eq!(threshold_score(2500.0, 1000.0, 2000.0), 20);
        let all100: Vec<_> = WEIGHTS.iter().map(|(n, _)| (*n, 100u8)).collect();
        assert_eq!(composite(&all100), 100);
        let mut s = all100.clone();
        s[0].1 = 0; // database down
        assert_eq!(composite(&s), 70);
        assert!((WEIGHTS.iter().map(|w| w.1).sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

//! The metrics the regression gate compares, with the direction that counts as worse and the
//! default tolerances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::summary::ReplicateSummary;

/// A comparable per-replicate metric. Names match the SLA metric names of the scenario format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyP50,
    LatencyP95,
    LatencyP99,
    Throughput,
    ErrorRate,
    PoolEfficiency,
    PoolUtilization,
    AcquireWaitP95,
    ServerLatencyP95,
}

/// Which way a change is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// How a value is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    PerSecond,
    Fraction,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 9] = [
        Metric::LatencyP50,
        Metric::LatencyP95,
        Metric::LatencyP99,
        Metric::Throughput,
        Metric::ErrorRate,
        Metric::PoolEfficiency,
        Metric::PoolUtilization,
        Metric::AcquireWaitP95,
        Metric::ServerLatencyP95,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
            Metric::Throughput => "throughput",
            Metric::ErrorRate => "error_rate",
            Metric::PoolEfficiency => "pool_efficiency",
            Metric::PoolUtilization => "pool_utilization",
            Metric::AcquireWaitP95 => "acquire_wait_p95",
            Metric::ServerLatencyP95 => "server_latency_p95",
        }
    }

    /// Higher latency, error rate, utilization and acquire wait are worse; lower throughput
    /// and pool efficiency are worse. Utilization counts as worse when higher because the
    /// offered load is the same in both runs: more in-use time per request means each request
    /// holds its connection longer (or the pool shrank).
    pub fn direction(self) -> Direction {
        match self {
            Metric::Throughput | Metric::PoolEfficiency => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::LatencyP50
            | Metric::LatencyP95
            | Metric::LatencyP99
            | Metric::AcquireWaitP95
            | Metric::ServerLatencyP95 => Unit::Millis,
            Metric::Throughput => Unit::PerSecond,
            Metric::ErrorRate | Metric::PoolEfficiency | Metric::PoolUtilization => Unit::Fraction,
        }
    }

    /// Smallest absolute change that matters, in the metric's unit. Metrics that sit near zero
    /// (error rate, acquire wait, utilization) would otherwise turn 0.01 % → 0.03 % errors or
    /// 20 µs → 60 µs acquire wait into "+200 %" regressions.
    pub fn default_min_effect(self) -> f64 {
        match self {
            Metric::ErrorRate => 0.005,      // 0.5 percentage points
            Metric::PoolUtilization => 0.02, // 2 percentage points
            Metric::AcquireWaitP95 => 1.0,   // 1 ms
            _ => 0.0,
        }
    }

    /// This metric's value in one replicate, if measured.
    pub fn value(self, r: &ReplicateSummary) -> Option<f64> {
        match self {
            Metric::LatencyP50 => Some(r.latency_p50_ms),
            Metric::LatencyP95 => Some(r.latency_p95_ms),
            Metric::LatencyP99 => Some(r.latency_p99_ms),
            Metric::Throughput => Some(r.throughput_rps),
            Metric::ErrorRate => Some(r.error_rate),
            Metric::PoolEfficiency => r.pool_efficiency,
            Metric::PoolUtilization => r.pool_utilization,
            Metric::AcquireWaitP95 => r.acquire_wait_p95_ms,
            Metric::ServerLatencyP95 => r.server_latency_p95_ms,
        }
        .filter(|v| v.is_finite())
    }

    /// Formats a value of this metric for tables.
    pub fn format(self, v: f64) -> String {
        match self.unit() {
            Unit::Millis => format!("{} ms", sig3(v)),
            Unit::PerSecond => format!("{} rps", sig3(v)),
            Unit::Fraction => format!("{} %", sig3(v * 100.0)),
        }
    }
}

/// Three significant digits, without exponent, for tables.
pub(crate) fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown metric name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{0}` (expected one of: latency_p50, latency_p95, latency_p99, throughput, error_rate, pool_efficiency, pool_utilization, acquire_wait_p95, server_latency_p95)")]
pub struct UnknownMetric(pub String);

impl FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

//! The metrics the regression gate compares, with the direction that counts as worse and the
//! default tolerances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::summary::ReplicateSummary;
use crate::sla::{format_value, Unit};

/// A comparable per-replicate metric. Names match the SLA metric names of the scenario format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMetric {
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
pub enum MetricDirection {
    LowerIsBetter,
    HigherIsBetter,
}

impl GateMetric {
    /// Every metric, in table order.
    pub const ALL: [GateMetric; 9] = [
        GateMetric::LatencyP50,
        GateMetric::LatencyP95,
        GateMetric::LatencyP99,
        GateMetric::Throughput,
        GateMetric::ErrorRate,
        GateMetric::PoolEfficiency,
        GateMetric::PoolUtilization,
        GateMetric::AcquireWaitP95,
        GateMetric::ServerLatencyP95,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GateMetric::LatencyP50 => "latency_p50",
            GateMetric::LatencyP95 => "latency_p95",
            GateMetric::LatencyP99 => "latency_p99",
            GateMetric::Throughput => "throughput",
            GateMetric::ErrorRate => "error_rate",
            GateMetric::PoolEfficiency => "pool_efficiency",
            GateMetric::PoolUtilization => "pool_utilization",
            GateMetric::AcquireWaitP95 => "acquire_wait_p95",
            GateMetric::ServerLatencyP95 => "server_latency_p95",
        }
    }

    /// Higher latency, error rate, utilization and acquire wait are worse; lower throughput
    /// and pool efficiency are worse. Utilization counts as worse when higher because the
    /// offered load is the same in both runs: more in-use time per request means each request
    /// holds its connection longer (or the pool shrank).
    pub fn direction(self) -> MetricDirection {
        match self {
            GateMetric::Throughput | GateMetric::PoolEfficiency => MetricDirection::HigherIsBetter,
            _ => MetricDirection::LowerIsBetter,
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            GateMetric::LatencyP50
            | GateMetric::LatencyP95
            | GateMetric::LatencyP99
            | GateMetric::AcquireWaitP95
            | GateMetric::ServerLatencyP95 => Unit::Milliseconds,
            GateMetric::Throughput => Unit::RequestsPerSecond,
            GateMetric::ErrorRate | GateMetric::PoolEfficiency | GateMetric::PoolUtilization => {
                Unit::Fraction
            }
        }
    }

    /// Smallest absolute change that matters, in the metric's unit. Metrics that sit near zero
    /// (error rate, acquire wait, utilization) would otherwise turn 0.01 % → 0.03 % errors or
    /// 20 µs → 60 µs acquire wait into "+200 %" regressions.
    pub fn default_min_effect(self) -> f64 {
        match self {
            GateMetric::ErrorRate => 0.005,      // 0.5 percentage points
            GateMetric::PoolUtilization => 0.02, // 2 percentage points
            GateMetric::AcquireWaitP95 => 1.0,   // 1 ms
            _ => 0.0,
        }
    }

    /// This metric's value in one replicate, if measured.
    pub fn value(self, r: &ReplicateSummary) -> Option<f64> {
        match self {
            GateMetric::LatencyP50 => Some(r.latency_p50_ms),
            GateMetric::LatencyP95 => Some(r.latency_p95_ms),
            GateMetric::LatencyP99 => Some(r.latency_p99_ms),
            GateMetric::Throughput => Some(r.throughput_rps),
            GateMetric::ErrorRate => Some(r.error_rate),
            GateMetric::PoolEfficiency => r.pool_efficiency,
            GateMetric::PoolUtilization => r.pool_utilization,
            GateMetric::AcquireWaitP95 => r.acquire_wait_p95_ms,
            GateMetric::ServerLatencyP95 => r.server_latency_p95_ms,
        }
        .filter(|v| v.is_finite())
    }

    /// Formats a value of this metric for tables.
    pub fn format(self, v: f64) -> String {
        format_value(v, self.unit())
    }
}

impl fmt::Display for GateMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown metric name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{0}` (expected one of: latency_p50, latency_p95, latency_p99, throughput, error_rate, pool_efficiency, pool_utilization, acquire_wait_p95, server_latency_p95)")]
pub struct UnknownMetric(pub String);

impl FromStr for GateMetric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GateMetric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

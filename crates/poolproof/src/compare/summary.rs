//! One replicate's figures: the unit the regression gate compares.
//!
//! A replicate is one complete measured load phase of one arm. The run loop produces one
//! `ReplicateSummary` per replicate and arm; report.json carries them as `replicates: [...]`,
//! and baselines store them unchanged.

use serde::{Deserialize, Serialize};

use crate::app::meter::CpuUsage;

/// The figures of one replicate. Latencies in milliseconds, rates as fractions (0.02 = 2 %).
/// Pool and server figures are absent when the app's monitoring endpoints were not sampled
/// (e.g. provider `external` without them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicateSummary {
    /// Arm name for A/B scenarios; absent for single-arm scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// 1-based replicate number; arms share numbers (replicate 2 of `pooled` ran next to
    /// replicate 2 of `unpooled`).
    pub index: u32,
    /// 1-based place of this replicate in the run's measuring order: arms interleave and
    /// their order rotates each replicate (AB, BA, ...), see `compare::replicate_schedule`.
    /// Absent in files written before the order was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Client-side latency percentiles over the measured phase, milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    /// Completed requests per second over the measured phase.
    pub throughput_rps: f64,
    /// Failed requests / all requests (wrong status, transport error), 0..=1.
    pub error_rate: f64,
    /// 1 − connections opened / acquisitions, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_efficiency: Option<f64>,
    /// Mean of in-use / max over the samples, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_utilization: Option<f64>,
    /// Pool acquire wait p95, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_wait_p95_ms: Option<f64>,
    /// Server-side request latency p95 from the app's metrics, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_latency_p95_ms: Option<f64>,
    /// CPU the load generator (the poolproof process) used during the measured phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_generator: Option<CpuUsage>,
    /// Scheduled loads (open model, or closed with `rate_limit`): the share of the starts the
    /// load generator had a free user waiting for that went out more than the late tolerance
    /// (10 ms) after their scheduled time, 0..=1: its own lag behind schedule, not the app's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_late_share: Option<f64>,
    /// The same starts' lag p99, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag_p99_ms: Option<f64>,
}

//! Each generator shard's own figures (rate, lag, CPU, clock offset), measured by the
//! coordinator in `generators` and judged in `run::verdict`: a shard whose clock is off or that
//! fell behind its schedule makes the run inconclusive.

use serde::{Deserialize, Serialize};

/// A shard's clock may differ from the coordinator's by at most this much: beyond it, its
/// seconds are not the coordinator's seconds and merged per-second figures blur.
const MAX_CLOCK_OFFSET_MS: f64 = 50.0;

/// One shard's figures, in report.json and report.html.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFigures {
    pub shard: u32,
    /// Where it ran (pid, swarm task id, pod name).
    pub name: String,
    /// Requests it completed over measured load, and per second.
    pub requests: u64,
    pub rate_rps: f64,
    /// Starts it had scheduled over measured load (open model, paced closed model).
    pub scheduled: u64,
    /// Of the starts it had a free user for, how many went out late, and its p99 lag.
    pub lag_starts: u64,
    pub late_starts: u64,
    pub lag_p99_ms: Option<f64>,
    /// CPU it used over its run, and the cores that kept busy on average.
    pub cpu_seconds: f64,
    pub busy_cores: f64,
    /// Its clock minus the coordinator's, and the round trip that was measured over.
    pub clock_offset_ms: f64,
    pub clock_rtt_ms: f64,
}

impl ShardFigures {
    /// Why this shard's figures cannot be trusted, if they cannot.
    pub fn doubt(&self, max_late_share: f64) -> Option<String> {
        if self.clock_offset_ms.abs() > MAX_CLOCK_OFFSET_MS {
            return Some(format!(
                "generator shard {} ({}) has a clock {:.1} ms off the coordinator's (limit {MAX_CLOCK_OFFSET_MS} ms): its seconds are not the run's seconds",
                self.shard, self.name, self.clock_offset_ms
            ));
        }
        let late_share = if self.lag_starts > 0 {
            self.late_starts as f64 / self.lag_starts as f64
        } else {
            0.0
        };
        (late_share > max_late_share).then(|| {
            format!(
                "generator shard {} ({}) did not keep its schedule: {} of {} starts it had a free user for went out late (p99 {} ms); it is CPU-saturated",
                self.shard,
                self.name,
                self.late_starts,
                self.lag_starts,
                self.lag_p99_ms.map_or("-".into(), |v| format!("{v:.1}"))
            )
        })
    }
}

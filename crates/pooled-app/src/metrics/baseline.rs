//! The latency baseline regressions are measured against, and the one slot per instance it
//! lives in. The collector fills the slot from the first `baseline_secs` of traffic; the Redis
//! writer publishes it and adopts the deployment's shared one. Both hold the slot, not each
//! other.

use std::sync::{Arc, RwLock};

use serde::Serialize;

/// A baseline: the latency of the first minutes of traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub p95_ms: f64,
    pub p50_ms: f64,
    pub requests: u64,
    pub established_at: u64,
    /// "local" (taken by this instance) or "redis" (adopted from the deployment).
    pub source: &'static str,
}

/// The instance's baseline, once there is one; cheap to clone, shared between tasks.
#[derive(Debug, Clone, Default)]
pub struct BaselineSlot(Arc<RwLock<Option<Baseline>>>);

impl BaselineSlot {
    /// The baseline in force, if any.
    pub fn get(&self) -> Option<Baseline> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether a baseline is in force (the collector then stops accumulating one).
    pub fn is_set(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Sets `b` unless a baseline is already in force (a shared one may have come first).
    pub fn set_if_absent(&self, b: Baseline) {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(b);
        }
    }

    /// Adopts a baseline shared through Redis (the first instance's wins).
    pub fn set_shared(&self, b: Baseline) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(b);
    }
}

//! Health monitor: database, Redis, pool, notifier and performance checks scored 0–100, a
//! weighted composite with insights, checked in the background and read from a cache.

pub mod monitor;
pub mod score;

pub use monitor::{DbProbe, HealthMonitor, HealthReport, PoolProbe, Readiness};

//! Metrics collector: per-route HDR latency histograms recorded off the request path, per-second
//! buckets persisted to Redis per instance, exact percentiles over any window by merging
//! histograms, a query-kind breakdown, and a baseline with regression detection.

pub mod baseline;
pub mod bucket;
pub mod cluster;
pub mod collector;
pub mod histogram;
pub mod inbox;
pub mod rolling;
pub mod store;
pub mod summary;

pub use collector::{CollectorConfig, MetricsCollector, QueryTimeSource, Sample, WindowStats};

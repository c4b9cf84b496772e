//! Building blocks of the Prometheus exposition (`GET /metrics`), shared by the metrics
//! collector, the pool layer and the endpoint: the fixed latency buckets and their recorders,
//! label values escaped for the text format, and the Prometheus text 0.0.4 form of
//! prometheus-client's OpenMetrics output for scrapers that do not ask for OpenMetrics.

pub mod buckets;
pub mod encode;
pub mod label;
pub mod text004;

//! The crate's integration tests, linked into one binary: one link instead of one per file
//! (cold CI builds and disk). Each file below is one area; nextest still runs every test
//! in its own process, so tests keep their own environment.

mod alert_mutes;
mod alerts_e2e;
mod binary;
mod config_errors;
mod data_path;
mod db_recovery;
mod fallback;
mod monitoring_api;
mod pgbouncer;
mod pooling;
mod prometheus_rules;
mod real_prometheus;
mod redis_down;
mod redis_pause;
mod summary_exact;
mod support;

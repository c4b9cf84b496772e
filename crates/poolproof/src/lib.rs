//! poolproof: YAML scenarios, real services, goose load, faults, SLA verdicts and reports.

pub mod app;
pub mod cli;
pub mod compare;
pub mod exit;
pub mod faults;
pub mod interrupt;
pub mod load;
pub mod observe;
pub mod progress;
pub mod provider;
pub mod redact;
pub mod report;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod sink;
pub mod sla;
pub mod stats;
pub mod teardown;

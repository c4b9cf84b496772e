//! poolproof: YAML scenarios, real services, goose load, faults, SLA verdicts and reports.

pub mod faults;
pub mod observe;

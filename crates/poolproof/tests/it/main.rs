//! The crate's integration tests, linked into one binary: one link instead of one per file
//! (cold CI builds and disk). Each file below is one area; nextest still runs every test
//! in its own process, so tests keep their own environment.

mod abort_on_fail;
mod compare_cli;
mod concurrent_arms;
mod crossover_arms;
mod faults_services;
mod gate_git;
mod generators;
mod history;
mod html_report;
mod invalid_scenarios;
mod load_generator;
mod module_cycles;
mod open_model;
mod regression_gate_e2e;
mod regression_gate_stats;
mod sample_report;
mod scenario_twins;
mod schema;
mod sink;
mod sla_reports;
mod sources;
mod support;
mod timeline_local;
mod validate_e2e;

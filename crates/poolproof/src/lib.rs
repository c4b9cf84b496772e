//! poolproof: YAML scenarios, real services, goose load, faults, SLA verdicts and reports.
//!
//! One run flows one way through the modules, in this order:
//!
//! 1. [`scenario`] reads and validates a YAML file into a typed [`scenario::Scenario`],
//!    including what it runs against ([`scenario::Target`]);
//! 2. [`run`] drives it: [`run::plan`] turns its `load:` into the load engine's plan,
//!    [`provider`] starts Postgres and Redis (or points at a deployed app), [`app`] starts
//!    and stops the pooled-app instances;
//! 3. [`load`] drives goose against them (or [`generators`] splits that over shards on
//!    other processes or machines and merges their histograms) while [`faults`] plays the
//!    fault timeline, [`silence`] creates the scenario's alert silences, [`sampler`] polls
//!    the app's monitoring endpoints and [`sink`] receives its alerts;
//! 4. everything measured lands in [`observe::Observations`];
//! 5. [`sla`] turns observations into verdicts (with [`stats`] for intervals);
//! 6. [`report`] writes report.json, report.md, junit.xml and report.html;
//! 7. [`compare`] gates a run against a baseline, [`history`] records its summary for the
//!    trend, and [`exit`] maps every outcome to the process exit code.
//!
//! Around them: [`cli`] is the command line, [`progress`] the live status line,
//! [`interrupt`] Ctrl-C, [`teardown`] the last-resort cleanup, [`redact`] keeps secrets out
//! of what is printed.

pub mod app;
pub mod cli;
pub mod compare;
pub mod exit;
pub mod faults;
pub mod gate;
pub mod generators;
pub mod history;
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
pub mod silence;
pub mod sink;
pub mod sla;
pub mod stats;
pub mod teardown;

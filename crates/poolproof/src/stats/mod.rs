//! Statistics shared by the SLA checks and the regression gate: the seeded generator that makes
//! every interval reproducible from its seed, normal and Student-t quantiles, and the bootstrap
//! intervals built on them. Knows nothing of scenarios, runs or reports.

pub mod bootstrap;
pub mod dist;
pub mod rng;

pub use bootstrap::{BootstrapConfig, Interval};

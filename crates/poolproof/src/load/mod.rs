//! Load generation: drives a plan of weighted HTTP transactions with goose as a library and
//! records precise client-side measurements (own HDR histograms, per route, per second).
//!
//! Timeline of one attack: ramp (users start evenly) → warm-up → measured load → stop.
//! Ramp and warm-up are recorded at negative offsets and excluded from SLAs; measured load
//! is `[0, duration)`. Requests completing after the measured window are not recorded.

mod attack;
mod handle;
mod plan;
mod recorder;
pub mod template;

pub use attack::{Attack, LoadError, LoadOutcome};
pub use handle::{LoadHandle, LoadPhase, LoadProgress};
pub use plan::{HttpMethod, LoadPlan, TransactionPlan};
pub use template::{Template, TemplateError};

/// Routes `log` records (goose logs through `log`) to `tracing`, leaving goose's out: it
/// warns once per failed request, which floods the console during faults. Without a `log`
/// logger, goose would install its own console logger at the first attack.
///
/// Idempotent; does nothing when a `log` logger is already installed (e.g. by
/// `tracing_subscriber::fmt().init()`, in which case add `goose=off` to its filter).
/// A binary that inits tracing-subscriber after calling this must use `try_init`.
pub fn install_log_bridge() {
    let _ = tracing_log::LogTracer::builder()
        .ignore_crate("goose")
        .init();
}

/// The goose version this crate drives, for reports.
pub const GOOSE_VERSION: &str = "0.19";

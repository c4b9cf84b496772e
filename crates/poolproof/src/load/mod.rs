//! Load generation: drives a plan of weighted HTTP transactions with goose as a library and
//! records precise client-side measurements (own HDR histograms, per route, per second).
//!
//! Two models. Closed: a fixed set of users, each sending its next request when the last
//! completes, optionally paced by a rate limit. Open: requests start on an arrival schedule
//! ([`Schedule`]) whatever the server does; goose users (at most `max_in_flight`) pull the
//! next scheduled start from it, so a stalled server shows up as late starts whose latency
//! counts from the scheduled time (coordinated omission corrected, as wrk2 and oha do), and
//! as dropped starts when no user frees up within the drop horizon (k6's dropped
//! iterations). Every scheduled start's fate is counted per route and per second.
//!
//! Timeline of one attack: ramp (users start evenly; open: the rate ramps up) → warm-up →
//! measured load → stop.
//! Ramp and warm-up are recorded at negative offsets and excluded from SLAs; measured load
//! is `[0, duration)`. Requests completing after the measured window are not recorded.

mod attack;
mod handle;
mod plan;
pub(crate) mod recorder;
mod schedule;
pub mod template;

pub use attack::{Attack, LoadError, LoadOutcome};
pub use handle::{LoadHandle, LoadPhase, LoadProgress};
pub use plan::{HttpMethod, LoadPlan, OpenPlan, RateSegment, ShardOf, TransactionPlan};
pub use schedule::{Schedule, DROP_AFTER_DEFAULT, LATE_TOLERANCE};
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

//! Fault injection: the timeline that drives faults against the services, the TCP proxy in
//! front of Postgres ([`poolproof_services::proxy`]) and the webhook sink.

mod control;
pub mod timeline;

pub use timeline::{
    FaultAction, FaultOutcome, FaultTargets, PlannedFault, Service, ServiceControl, ServiceOp,
    Timeline, TimelineError,
};

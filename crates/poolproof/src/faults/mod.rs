//! Fault injection: the userspace TCP proxy in front of Postgres and the timeline that
//! drives faults against services, the proxy and the webhook sink.

mod control;
pub mod proxy;
pub mod timeline;

pub use proxy::{Direction, ProxyError, ProxyStats, TcpProxy};
pub use timeline::{
    FaultAction, FaultOutcome, FaultTargets, PlannedFault, Service, ServiceControl, ServiceOp,
    Timeline, TimelineError,
};

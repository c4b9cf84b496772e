//! Fault injection: the userspace TCP proxy in front of Postgres and the timeline that
//! drives faults against services, the proxy and the webhook sink.

pub mod proxy;

pub use proxy::{Direction, ProxyError, ProxyStats, TcpProxy};

//! The one error type of this crate: what failed, for which service, and why.

use std::time::Duration;

/// Why a service could not be started, controlled or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The container runtime refused or failed an operation.
    #[error("{service}: container operation `{op}` failed: {source}")]
    Container {
        service: &'static str,
        op: &'static str,
        #[source]
        source: Box<testcontainers::TestcontainersError>,
    },
    /// Talking to the Docker engine failed (outside testcontainers' own calls).
    #[error("docker engine: {0}")]
    Engine(String),
    /// A binary the processes provider needs is not installed.
    #[error("{service}: `{binary}` not found; {hint}")]
    MissingBinary {
        service: &'static str,
        binary: String,
        hint: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("{service}: {what}: {source}")]
    Io {
        service: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A set-up command (initdb, useradd) failed.
    #[error("{service}: `{command}` failed: {detail}")]
    Command {
        service: &'static str,
        command: String,
        detail: String,
    },
    /// The service did not answer within the deadline.
    #[error("{service} on 127.0.0.1:{port} not ready after {waited:?}: {last}{log}")]
    NotReady {
        service: &'static str,
        port: u16,
        waited: Duration,
        last: String,
        /// Tail of the service's log, prefixed with a newline, or empty.
        log: String,
    },
    /// The service's process exited while it was expected to run.
    #[error("{service} exited ({status}){log}")]
    Exited {
        service: &'static str,
        status: String,
        log: String,
    },
    /// An operation that is not valid in the service's current state.
    #[error("{service}: {what}")]
    State {
        service: &'static str,
        what: &'static str,
    },
}

impl ServiceError {
    pub(crate) fn io(
        service: &'static str,
        what: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            service,
            what: what.into(),
            source,
        }
    }

    /// True when the failure came from the host port being taken meanwhile, so that a
    /// retry on another free port can succeed.
    pub(crate) fn is_port_clash(&self) -> bool {
        crate::ports::says_port_taken(&self.to_string())
    }
}

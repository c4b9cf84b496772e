//! Why a run ended without a verdict, and the exit code each reason maps to.

use crate::exit::Exit;
use crate::redact;

/// Why a run ended without a verdict.
#[derive(Debug)]
pub enum RunError {
    /// The scenario cannot run as written (exit 2).
    Usage(String),
    /// Something the run needs failed: services, app, load generator, disk (exit 3).
    Infra(String),
    /// Ctrl-C / SIGTERM (exit 130).
    Interrupted,
}

impl RunError {
    /// An infrastructure failure; URLs in the message lose their credentials, because the
    /// message is printed and may land in CI logs.
    pub(super) fn infra(what: impl std::fmt::Display) -> Self {
        RunError::Infra(redact::redact_urls(&what.to_string()))
    }

    /// A failure the scenario is at fault for (`usage`: exit 2) or else the machine (exit 3).
    pub(super) fn usage_or_infra(usage: bool, what: impl std::fmt::Display) -> Self {
        if usage {
            RunError::Usage(what.to_string())
        } else {
            RunError::infra(what)
        }
    }
}

impl From<&RunError> for Exit {
    fn from(e: &RunError) -> Self {
        match e {
            RunError::Usage(_) => Exit::Invalid,
            RunError::Infra(_) => Exit::Infrastructure,
            RunError::Interrupted => Exit::Interrupted,
        }
    }
}

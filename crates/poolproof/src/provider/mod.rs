//! Where a run's services (and, for `external`, the app) come from: `containers`
//! (testcontainers against a local engine; the default where one answers), `processes` (the
//! machine's own Postgres and Redis as a non-root user on free ports) or `external` (an already
//! deployed app at a URL; nothing is started and faults are refused).
//!
//! Provisioning starts by sweeping what killed runs left behind; everything started here is torn
//! down by [`Provisioned::teardown`], or by the handles' `Drop` on error, Ctrl-C and panic.

mod local;

pub use local::LocalServices;

use crate::scenario::{ExternalApp, Provider, Scenario, Target};

/// Why provisioning failed (exit 3), or why the scenario cannot run with its provider (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Unusable(String),
    #[error("{what} could not start: {reason}")]
    Start { what: &'static str, reason: String },
}

impl ProviderError {
    /// Whether the scenario itself is at fault (exit 2) rather than the machine (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(self, ProviderError::Unusable(_))
    }
}

/// What a run got from its provider.
pub enum Provisioned {
    Local(Box<LocalServices>),
    External(ExternalApp),
}

impl Provisioned {
    pub fn kind(&self) -> Provider {
        match self {
            Provisioned::Local(l) => l.kind(),
            Provisioned::External(_) => Provider::External,
        }
    }

    /// Stops and removes everything that was started (a no-op for `external`).
    pub async fn teardown(self) {
        if let Provisioned::Local(l) = self {
            l.teardown().await;
        }
    }
}

/// The provider a scenario runs with: `external` for a deployed app, else its
/// `services.provider`, else `containers` where a Docker engine answers, else `processes`.
pub async fn resolve(scenario: &Scenario) -> Provider {
    match (&scenario.target, scenario.services.provider) {
        (Target::External(_), _) => Provider::External,
        (Target::Managed, Some(p)) => p,
        (Target::Managed, None) if local::engine_answers().await => Provider::Containers,
        (Target::Managed, None) => Provider::Processes,
    }
}

/// Provisions what `scenario` needs with `provider`, labelling it with `run_id`.
pub async fn provision(
    scenario: &Scenario,
    provider: Provider,
    run_id: &str,
) -> Result<Provisioned, ProviderError> {
    match &scenario.target {
        Target::External(app) => Ok(Provisioned::External(app.clone())),
        Target::Managed => LocalServices::start(scenario, provider, run_id)
            .await
            .map(|l| Provisioned::Local(Box::new(l))),
    }
}

//! What a validated scenario runs against, as validation found it: an app and services that
//! poolproof starts and owns (and may fault), or an already deployed app at a URL, which it
//! only loads and samples. `run` and `provider` take this type and never re-check the YAML.

use super::types::Secret;

/// The system a scenario's load goes to.
#[derive(Clone, Debug, Default)]
pub enum Target {
    /// poolproof starts Postgres, Redis and the app itself (`containers` or `processes`).
    #[default]
    Managed,
    /// `services.provider: external`: a deployed app; no services, no faults, no arms.
    External(ExternalApp),
}

/// A deployed app to run against.
#[derive(Clone, Debug)]
pub struct ExternalApp {
    /// Base URL (http or https, with a host), without a trailing slash.
    pub url: String,
    /// Bearer token for its performance API; never printed.
    pub token: Option<Secret>,
    /// A monitoring role's `postgres://` URL of its database (the `postgres` source); never
    /// printed.
    pub monitor_database_url: Option<Secret>,
}

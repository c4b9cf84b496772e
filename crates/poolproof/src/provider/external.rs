//! The `external` provider: a deployed app at `app.url` with an optional bearer token. Nothing is
//! started or stopped, and faults are refused, since poolproof does not own that app's services.

use super::ProviderError;
use crate::scenario::{Scenario, Secret};

/// A deployed app to run against.
pub struct External {
    /// Base URL without a trailing slash.
    pub url: String,
    pub token: Option<Secret>,
}

impl External {
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, ProviderError> {
        if !scenario.faults.is_empty() {
            return Err(ProviderError::Unusable(
                "faults: not supported with services.provider external (poolproof does not own a deployed app's services)"
                    .into(),
            ));
        }
        let url = scenario
            .app
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ProviderError::Unusable("app.url: required with services.provider external".into())
            })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ProviderError::Unusable(format!(
                "app.url: `{}` is not an http(s) URL",
                crate::redact::redact_urls(url)
            )));
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token: scenario.app.token.clone().filter(|t| !t.is_empty()),
        })
    }
}

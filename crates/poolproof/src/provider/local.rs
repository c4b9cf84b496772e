//! The `containers` and `processes` providers, on top of `poolproof-services`: leftovers of
//! killed runs are swept first, then Postgres and Redis start labelled with the run id.

use super::ProviderError;
use crate::scenario::{Provider, Scenario};
use poolproof_services as services;

/// Postgres and Redis started for one run.
pub struct LocalServices {
    kind: Provider,
    // Shared with the fault timeline (pause/stop/restart) while a load runs.
    postgres: std::sync::Arc<services::Postgres>,
    redis: std::sync::Arc<services::Redis>,
    database_url: String,
    redis_url: String,
}

/// Whether a Docker engine answers and the images exist (what `containers` needs).
pub async fn engine_answers() -> bool {
    services::resolve_provider(&options(None, None, None, "probe")).await
        == services::Provider::Containers
}

fn options(
    kind: Option<services::Provider>,
    pg: Option<&str>,
    redis: Option<&str>,
    run_id: &str,
) -> services::Options {
    let mut o = services::Options::default();
    if kind.is_some() {
        o.provider = kind;
    }
    if let Some(image) = pg {
        o.postgres_image = image.to_owned();
    }
    if let Some(image) = redis {
        o.redis_image = image.to_owned();
    }
    o.run_label = run_id.to_owned();
    o
}

impl LocalServices {
    /// Sweeps leftovers of dead runs, then starts both services with `kind`.
    pub async fn start(
        scenario: &Scenario,
        kind: Provider,
        run_id: &str,
    ) -> Result<Self, ProviderError> {
        match services::sweep_leftovers().await {
            Ok(0) => {}
            Ok(n) => eprintln!("poolproof: removed {n} leftover service(s) of killed runs"),
            // A failed sweep costs at most some memory; the run itself can go on.
            Err(e) => eprintln!("poolproof: could not sweep leftovers of killed runs: {e}"),
        }
        let want = match kind {
            Provider::Containers => services::Provider::Containers,
            Provider::Processes => services::Provider::Processes,
            Provider::External => {
                return Err(ProviderError::Unusable(
                    "services.provider external starts no services".into(),
                ))
            }
        };
        let opts = options(
            Some(want),
            scenario.services.postgres.image.as_deref(),
            scenario.services.redis.image.as_deref(),
            run_id,
        );
        let (postgres, redis) =
            services::start_both(&opts)
                .await
                .map_err(|e| ProviderError::Start {
                    what: "postgres/redis",
                    reason: crate::redact::redact_urls(&e.to_string()),
                })?;
        Ok(Self {
            kind,
            database_url: postgres.url(),
            redis_url: redis.url(),
            postgres: std::sync::Arc::new(postgres),
            redis: std::sync::Arc::new(redis),
        })
    }

    pub fn kind(&self) -> Provider {
        self.kind
    }

    /// `postgres://…` with the password: for the app's environment only, never printed.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn redis_url(&self) -> Option<&str> {
        Some(&self.redis_url)
    }

    /// The Postgres handle (pause/stop/restart for the fault timeline).
    pub fn postgres(&self) -> &services::Postgres {
        &self.postgres
    }

    /// The Redis handle (pause/stop/restart for the fault timeline).
    pub fn redis(&self) -> &services::Redis {
        &self.redis
    }

    /// The Postgres handle for the fault timeline.
    pub fn postgres_control(&self) -> std::sync::Arc<dyn crate::faults::ServiceControl> {
        self.postgres.clone()
    }

    /// The Redis handle for the fault timeline.
    pub fn redis_control(&self) -> std::sync::Arc<dyn crate::faults::ServiceControl> {
        self.redis.clone()
    }

    /// Stops and removes both services.
    pub async fn teardown(self) {
        // The timeline's clones are gone once its load ended; should one remain, dropping the
        // handle still removes the service.
        let pg = async {
            match std::sync::Arc::try_unwrap(self.postgres) {
                Ok(pg) => pg.shutdown().await,
                Err(_) => Ok(()),
            }
        };
        let redis = async {
            match std::sync::Arc::try_unwrap(self.redis) {
                Ok(r) => r.shutdown().await,
                Err(_) => Ok(()),
            }
        };
        let (pg, redis) = tokio::join!(pg, redis);
        for (what, r) in [("postgres", pg), ("redis", redis)] {
            if let Err(e) = r {
                eprintln!("poolproof: tearing down {what}: {e}");
            }
        }
    }
}

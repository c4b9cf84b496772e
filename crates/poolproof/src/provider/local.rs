//! The `containers` and `processes` providers, on top of `poolproof-services`: leftovers of
//! killed runs are swept first, then Postgres and Redis start labelled with the run id, and
//! with `services.pgbouncer` a PgBouncer in front of Postgres (same provider), which the app
//! instances then connect to.

use super::ProviderError;
use crate::scenario::{FaultKind, PgBouncerPoolMode, PgBouncerService, Provider, Scenario};
use poolproof_services as services;

/// Postgres and Redis started for one run.
pub struct LocalServices {
    kind: Provider,
    // Shared with the fault timeline (pause/stop/restart) while a load runs.
    postgres: std::sync::Arc<services::Postgres>,
    redis: std::sync::Arc<services::Redis>,
    /// Between the app instances and Postgres (`services.pgbouncer`).
    pgbouncer: Option<services::PgBouncer>,
    /// With PgBouncer and latency or reset faults: the harness' proxy between PgBouncer and
    /// Postgres (PgBouncer's server connections go through it; started before PgBouncer, so
    /// it lives here rather than per arm).
    postgres_proxy: Option<std::sync::Arc<services::proxy::TcpProxy>>,
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
        let needs_proxy = scenario
            .faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::DbLatency | FaultKind::DbReset));
        let (pgbouncer, postgres_proxy) = match &scenario.services.pgbouncer {
            Some(spec) => {
                let mut settings = pgbouncer_settings(spec);
                let proxy = if needs_proxy {
                    let proxy =
                        services::proxy::TcpProxy::start(([127, 0, 0, 1], postgres.port()).into())
                            .await
                            .map_err(|e| ProviderError::Start {
                                what: "postgres proxy",
                                reason: e.to_string(),
                            })?;
                    settings.postgres_port = Some(proxy.port());
                    Some(std::sync::Arc::new(proxy))
                } else {
                    None
                };
                let pgbouncer = services::start_pgbouncer(&opts, &postgres, &settings)
                    .await
                    .map_err(|e| ProviderError::Start {
                        what: "pgbouncer",
                        reason: crate::redact::redact_urls(&e.to_string()),
                    })?;
                (Some(pgbouncer), proxy)
            }
            None => (None, None),
        };
        Ok(Self {
            kind,
            pgbouncer,
            postgres_proxy,
            database_url: postgres.url(),
            redis_url: redis.url(),
            postgres: std::sync::Arc::new(postgres),
            redis: std::sync::Arc::new(redis),
        })
    }

    pub fn kind(&self) -> Provider {
        self.kind
    }

    /// Postgres itself, `postgres://…` with the password: for fixtures, samplers, faults and the
    /// app's migrations; never printed.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Where the app instances connect: PgBouncer when the scenario has one, else Postgres.
    /// Holds the password; never printed.
    pub fn app_database_url(&self) -> String {
        match &self.pgbouncer {
            Some(p) => p.url(),
            None => self.database_url.clone(),
        }
    }

    /// The proxy between PgBouncer and Postgres (latency and reset faults behind PgBouncer).
    pub fn postgres_proxy(&self) -> Option<std::sync::Arc<services::proxy::TcpProxy>> {
        self.postgres_proxy.clone()
    }

    /// The PgBouncer in front of Postgres, if any.
    pub fn pgbouncer(&self) -> Option<&services::PgBouncer> {
        self.pgbouncer.as_ref()
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

    /// Stops and removes every service (PgBouncer first: it holds connections to Postgres).
    pub async fn teardown(self) {
        if let Some(pgb) = self.pgbouncer {
            if let Err(e) = pgb.shutdown().await {
                eprintln!("poolproof: tearing down pgbouncer: {e}");
            }
        }
        if let Some(proxy) = self
            .postgres_proxy
            .and_then(|p| std::sync::Arc::try_unwrap(p).ok())
        {
            proxy.shutdown().await;
        }
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

/// The scenario's `services.pgbouncer` in the services crate's terms.
fn pgbouncer_settings(spec: &PgBouncerService) -> services::PgBouncerSettings {
    let mode = match spec.pool_mode {
        PgBouncerPoolMode::Session => services::PoolMode::Session,
        PgBouncerPoolMode::Transaction => services::PoolMode::Transaction,
        PgBouncerPoolMode::Statement => services::PoolMode::Statement,
    };
    let mut settings = services::PgBouncerSettings::new(mode, spec.default_pool_size);
    settings.max_client_conn = spec.max_client_conn;
    if let Some(image) = &spec.image {
        settings.image.clone_from(image);
    }
    settings
}

//! [`AppState`]: what every handler shares (configuration, database layer, cache, instrumentation),
//! and its start-up sequence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::config::Config;
use crate::middleware::{Instrumentation, RequestObserver};
use crate::monitoring::{MonitorSettings, MonitoringStack};
use crate::pool::{Db, DbError, DbSettings};
use crate::workload::migrate;

/// Shared application state; cheap to clone (all handles).
///
/// Other subsystems (metrics collector, alerts, health) attach here: add an observer with
/// [`AppState::add_observer`] before building the router, and add fields for their own handles.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub cache: Cache,
    /// Observers, 4xx/5xx totals and the log switch used by the request middleware.
    pub instrumentation: Instrumentation,
    /// Set once migrations and seed have been applied (readiness depends on it).
    pub migrated: Arc<AtomicBool>,
    pub started_at: Instant,
    /// The monitoring stack (metrics collector, alerts, health, dashboard API state).
    pub monitoring: Arc<MonitoringStack>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("db", &self.db)
            .field("instrumentation", &self.instrumentation)
            .finish()
    }
}

/// Start-up failures that stop the process (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database layer: {0}")]
    Db(#[from] DbError),
    #[error("ALERT_RULES_FILE: {0}")]
    Rules(#[from] crate::alerts::rules::RulesError),
    #[error("monitoring: {0}")]
    Monitoring(#[from] crate::monitoring::StackError),
}

impl AppState {
    /// Connects (never failing on an unreachable database or Redis: those degrade and recover), then
    /// migrates and seeds; when the database is down, that step retries in the background.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let db = Db::new(
            config.database_url.expose(),
            DbSettings::from_config(&config),
        )
        .await?;
        let cache = Cache::new(
            config.redis_url.as_ref().map(|u| u.expose()),
            config.cache_timeout,
        );
        let rules = crate::alerts::rules::load_rules(config.alert_rules_file.as_deref())?;
        let stack = MonitoringStack::start(
            MonitorSettings::from_config(&config, rules),
            crate::monitoring::pool_hooks(&db),
        )?;
        let mut observers: Vec<Arc<dyn RequestObserver>> = Vec::new();
        if config.monitoring_enabled {
            observers.push(Arc::new(stack.monitoring.collector.clone()));
        }
        let state = AppState {
            monitoring: Arc::new(stack),
            instrumentation: Instrumentation {
                observers: Arc::new(observers),
                totals: Default::default(),
                log_requests: config.log_requests,
            },
            config: Arc::new(config),
            db,
            cache,
            migrated: Arc::new(AtomicBool::new(false)),
            started_at: Instant::now(),
        };
        if state.config.run_migrations {
            if let Err(e) = state.migrate_once().await {
                tracing::warn!(error = %e, "migrations not applied yet; retrying in the background");
                let s = state.clone();
                tokio::spawn(async move { s.migrate_until_done().await });
            }
        } else {
            state.migrated.store(true, Ordering::Release);
        }
        Ok(state)
    }

    /// Registers a request observer (before [`crate::app::router`] is called).
    pub fn add_observer(&mut self, observer: Arc<dyn RequestObserver>) {
        Arc::make_mut(&mut self.instrumentation.observers).push(observer);
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    async fn migrate_once(&self) -> Result<(), DbError> {
        let c = &self.config;
        let outcome = migrate::migrate_and_seed(
            &self.db,
            c.migration_url.as_ref(),
            c.seed_users,
            c.seed_buddy_requests,
        )
        .await?;
        if outcome.seeded_users > 0 {
            tracing::info!(
                users = c.seed_users,
                buddy_requests = c.seed_buddy_requests,
                "seeded fixtures"
            );
        }
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    async fn migrate_until_done(&self) {
        let mut pause = Duration::from_millis(250);
        loop {
            tokio::time::sleep(pause).await;
            match self.migrate_once().await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "migrations still pending"),
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

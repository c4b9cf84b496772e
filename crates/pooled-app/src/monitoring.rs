//! Assembles the monitoring stack — collector, Redis writer, alert engine with notifiers, health
//! monitor — from typed settings, and hands back the API state; dropping the stack stops its tasks.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::alerts::channels::{self, Channel, Resend, Slack};
use crate::alerts::coord::Coordinator;
use crate::alerts::dispatch::{Dispatcher, RetryPolicy};
use crate::alerts::routes::Routes;
use crate::alerts::rules::RuleSet;
use crate::alerts::silences::SilenceStore;
use crate::alerts::Alerts;
use crate::api::{handlers::SummaryCache, Monitoring};
use crate::health::monitor::HealthInputs;
use crate::health::{DbProbe, HealthMonitor, PoolProbe};
use crate::metrics::collector::CollectorConfig;
use crate::metrics::store::{self, StoreConfig, StoreStatus};
use crate::metrics::{MetricsCollector, QueryTimeSource};
use crate::redis_link::RedisLink;

/// Settings of the monitoring stack (from the app's configuration).
#[derive(Clone)]
pub struct MonitorSettings {
    pub monitoring_enabled: bool,
    pub alerts_enabled: bool,
    pub instance: String,
    pub redis_url: Option<String>,
    pub retention: Duration,
    pub rules: RuleSet,
    /// Channels per severity.
    pub routes: Routes,
    pub eval_interval: Duration,
    pub slack_webhook_url: Option<String>,
    pub alert_email: Option<String>,
    pub alert_email_from: String,
    pub resend_api_key: Option<String>,
    pub resend_api_url: String,
    pub api_token: Option<String>,
    pub notify_timeout: Duration,
    pub retry: RetryPolicy,
    pub health_interval: Duration,
    pub baseline: Duration,
}

impl std::fmt::Debug for MonitorSettings {
    // Secrets (webhook URL, API key, token) are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorSettings")
            .field("monitoring_enabled", &self.monitoring_enabled)
            .field("alerts_enabled", &self.alerts_enabled)
            .field("instance", &self.instance)
            .field("rules", &self.rules.rules.len())
            .field("routes", &self.routes)
            .field("slack", &self.slack_webhook_url.is_some())
            .field("email", &self.alert_email.is_some())
            .field("token", &self.api_token.is_some())
            .finish()
    }
}

impl MonitorSettings {
    /// Defaults: the report's rules, 1 s evaluation, 24 h retention, no channels.
    pub fn new(instance: String) -> MonitorSettings {
        MonitorSettings {
            monitoring_enabled: true,
            alerts_enabled: true,
            instance,
            redis_url: None,
            retention: Duration::from_secs(24 * 3600),
            rules: crate::alerts::rules::default_rules(),
            routes: Routes::default(),
            eval_interval: Duration::from_secs(1),
            slack_webhook_url: None,
            alert_email: None,
            alert_email_from: crate::config::DEFAULT_ALERT_EMAIL_FROM.into(),
            resend_api_key: None,
            resend_api_url: "https://api.resend.com".into(),
            api_token: None,
            notify_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            health_interval: Duration::from_secs(1),
            baseline: Duration::from_secs(300),
        }
    }
}

/// A unique id for this process when `INSTANCE_ID` is unset (summaries are keyed per instance).
pub fn instance_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", std::process::id(), &u[..8])
}

/// What the pool gives the monitoring stack.
#[derive(Clone, Default)]
pub struct PoolHooks {
    pub db: Option<Arc<dyn DbProbe>>,
    pub pool: Option<Arc<dyn PoolProbe>>,
    pub queries: Option<Arc<dyn QueryTimeSource>>,
    pub pool_json: Option<Arc<dyn Fn() -> serde_json::Value + Send + Sync>>,
    /// The pool's metrics for `/metrics`.
    pub pool_metrics: Option<Arc<dyn prometheus_client::collector::Collector>>,
}

/// The running stack.
pub struct MonitoringStack {
    pub monitoring: Monitoring,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MonitoringStack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Errors building the stack (bad Redis URL).
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("REDIS_URL: {0}")]
    Redis(String),
}

impl MonitoringStack {
    /// Starts every task. Must run inside a Tokio runtime.
    pub fn start(s: MonitorSettings, hooks: PoolHooks) -> Result<MonitoringStack, StackError> {
        let mut tasks = Vec::new();
        let redis = match &s.redis_url {
            Some(u) => Some(Arc::new(
                RedisLink::new(u, Duration::from_millis(500))
                    .map_err(|e| StackError::Redis(e.to_string()))?,
            )),
            None => None,
        };
        let status = Arc::new(RwLock::new(StoreStatus::default()));
        let mut cfg = CollectorConfig::new(s.instance.clone());
        cfg.enabled = s.monitoring_enabled;
        cfg.baseline_secs = s.baseline.as_secs().max(1);
        cfg.windows = s.rules.rules.iter().map(|r| r.window_secs()).collect();
        // The writer shares the collector's baseline slot and the collector feeds the writer's
        // inbox: start the writer's channel first.
        let (flush_tx, flush_rx) = if s.monitoring_enabled && redis.is_some() {
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let (collector, h) = MetricsCollector::start(
            cfg,
            flush_tx,
            status.clone(),
            if s.monitoring_enabled {
                hooks.queries.clone()
            } else {
                None
            },
        );
        tasks.extend(h);
        if let (Some(link), Some(rx)) = (&redis, flush_rx) {
            let sc = StoreConfig {
                instance: s.instance.clone(),
                retention: s.retention,
                backlog_cap: 7200,
                batch: 600,
            };
            tasks.push(store::spawn_writer(
                link.clone(),
                sc,
                status.clone(),
                rx,
                Some(collector.baseline_slot()),
            ));
        }
        let alerts = if s.monitoring_enabled {
            let http = channels::http_client(s.notify_timeout);
            let mut chans = Vec::new();
            if let Some(url) = &s.slack_webhook_url {
                chans.push(Channel::Slack(Slack {
                    client: http.clone(),
                    url: url.clone(),
                }));
            }
            if let (Some(to), Some(key)) = (&s.alert_email, &s.resend_api_key) {
                chans.push(Channel::Email(Resend {
                    client: http.clone(),
                    base_url: s.resend_api_url.clone(),
                    api_key: key.clone(),
                    from: s.alert_email_from.clone(),
                    to: to
                        .split(',')
                        .map(|x| x.trim().to_owned())
                        .filter(|x| !x.is_empty())
                        .collect(),
                }));
            }
            let (d, h) = Dispatcher::start(chans, s.routes, s.retry, 256, s.alerts_enabled);
            tasks.push(h);
            let coord = redis
                .as_ref()
                .map(|l| Coordinator::new(l.clone(), s.instance.clone(), Duration::from_secs(30)));
            // Silences live in Redis so every instance honours them; without it, in memory.
            let silences = match &redis {
                Some(l) => SilenceStore::Redis(l.clone()),
                None => SilenceStore::Memory(Arc::default()),
            };
            let (a, h) = Alerts::start(
                s.rules.clone(),
                collector.clone(),
                coord,
                silences,
                d,
                s.eval_interval,
            );
            tasks.push(h);
            Some(a)
        } else {
            None
        };
        let (health, h) = HealthMonitor::start(
            HealthInputs {
                db: hooks.db.clone(),
                pool: hooks.pool.clone(),
                redis: redis.clone(),
                collector: collector.clone(),
                alerts: alerts.clone(),
                db_timeout: Duration::from_secs(1),
            },
            s.health_interval,
        );
        tasks.push(h);
        let monitoring = Monitoring {
            enabled: s.monitoring_enabled,
            collector,
            alerts,
            health,
            redis,
            pool: hooks.pool,
            queries: hooks.queries.filter(|_| s.monitoring_enabled),
            pool_json: hooks.pool_json,
            pool_metrics: hooks.pool_metrics,
            token: s.api_token.map(Arc::from),
            retention_hours: s.retention.as_secs_f64() / 3600.0,
            summary_cache: Arc::new(SummaryCache::default()),
            ready_check: None,
        };
        Ok(MonitoringStack { monitoring, tasks })
    }
}

/// The database layer as the stack's probes and query-time source.
mod db_hooks {
    use super::*;
    use crate::health::monitor::BoxFut;
    use crate::health::score::PoolFacts;
    use crate::metrics::histogram::Hist;
    use crate::pool::{Db, PoolMode};

    impl DbProbe for Db {
        fn round_trip(&self) -> BoxFut<'_, Result<f64, String>> {
            Box::pin(async move {
                // The driver's text can name users, hosts and databases, and /readyz answers
                // anyone: the log gets it, the health output only the kind of failure.
                self.ping()
                    .await
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .map_err(|e| {
                        tracing::warn!(error = %e, "health check: database round trip failed");
                        e.reason().to_owned()
                    })
            })
        }
    }

    impl PoolProbe for Db {
        fn facts(&self) -> PoolFacts {
            let g = self.gauges();
            let stats = self.stats_handle();
            PoolFacts {
                size: g.size,
                idle: g.idle,
                in_use: g.size.saturating_sub(g.idle),
                max: g.max,
                waiting: stats.waiting(),
                acquire_timeouts_total: stats.acquire_timeouts(),
                fallback_mode: g.mode == PoolMode::Fallback,
                pooling_enabled: g.pooling_enabled,
            }
        }
    }

    impl QueryTimeSource for Db {
        fn take_query_times(&self) -> Vec<(&'static str, Hist)> {
            self.stats_handle()
                .take_query_times(crate::metrics::histogram::new_hist)
                .into_iter()
                .map(|(kind, h)| (kind.label(), h))
                .collect()
        }
        fn pause_query_times(&self, paused: bool) {
            self.stats_handle().pause_query_times(paused);
        }
    }

    /// Hooks for the stack from the app's database layer.
    pub fn pool_hooks(db: &Db) -> PoolHooks {
        let d = db.clone();
        PoolHooks {
            db: Some(Arc::new(db.clone())),
            pool: Some(Arc::new(db.clone())),
            queries: Some(Arc::new(db.clone())),
            pool_json: Some(Arc::new(move || {
                serde_json::to_value(d.stats()).unwrap_or(serde_json::Value::Null)
            })),
            pool_metrics: Some(Arc::new(db.metrics())),
        }
    }
}

pub use db_hooks::pool_hooks;

impl MonitorSettings {
    /// Settings from the app's configuration and its (already loaded) rules.
    pub fn from_config(c: &crate::config::Config, rules: RuleSet) -> MonitorSettings {
        let mut s = MonitorSettings::new(c.instance_id.clone().unwrap_or_else(instance_id));
        s.monitoring_enabled = c.monitoring_enabled;
        s.alerts_enabled = c.alerts_enabled;
        s.redis_url = c.redis_url.as_ref().map(|u| u.expose().to_owned());
        s.retention = c.metrics_retention;
        s.rules = rules;
        s.routes = c.alert_routes;
        s.eval_interval = c.alert_eval_interval;
        s.slack_webhook_url = c.slack_webhook_url.as_ref().map(|u| u.expose().clone());
        s.alert_email = c.alert_email.clone();
        s.alert_email_from = c.alert_email_from.clone();
        s.resend_api_key = c.resend_api_key.as_ref().map(|k| k.expose().clone());
        s.resend_api_url = c.resend_api_url.clone();
        s.api_token = c.api_token.as_ref().map(|t| t.expose().clone());
        s
    }
}

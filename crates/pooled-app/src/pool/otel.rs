//! The pool in OpenTelemetry's semantic conventions for database clients, with Prometheus
//! naming (`db.client.connection.count` → `db_client_connection_count`, seconds suffixed):
//! connection counts by state, the configured limits, waiting acquisitions, timeouts, and the
//! create / wait / use time histograms, plus `db.client.operation.duration` per statement kind.
//! Read at scrape time from the layer's atomics (a prometheus-client collector).
//!
//! Mapping onto this layer: `max` is `DATABASE_POOL_SIZE`; sqlx has no separate idle limits,
//! so `idle_max` is the pool size too and `idle_min` is `DATABASE_POOL_MIN` (the connections
//! sqlx keeps open). `used` counts pooled connections lent out; in fallback and unpooled mode
//! there is no pool (counts 0, `pooled_app_pool_fallback_mode` says why) while `wait_time`
//! (the connect then), `create_time` and `use_time` still record the direct connections.
//! `create_time` covers the connects made inside an acquisition or the first fill, not those
//! of sqlx's background top-up (see `CONNECT_CLOCK`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{Db, QueryKind};
use crate::exposition::encode::{counter, gauge, histogram};
use crate::exposition::label::{Esc, Labels};

/// The collector; cheap to build (one clone of the layer's handle and the pool name).
pub struct PoolMetrics {
    db: Db,
    /// `db.client.connection.pool.name`: `host:port/database`, as OpenTelemetry suggests for
    /// pools without a name of their own (never the user or password).
    name: String,
}

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics")
            .field("name", &self.name)
            .finish()
    }
}

impl PoolMetrics {
    pub(super) fn new(db: Db) -> PoolMetrics {
        let o = &db.inner.connect_options;
        let name = format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        );
        PoolMetrics { db, name }
    }

    pub fn pool_name(&self) -> &str {
        &self.name
    }
}

impl Collector for PoolMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = self.db.gauges();
        let s = &self.db.inner.stats;
        let settings = &self.db.inner.settings;
        let pool = || -> Labels { vec![("db_client_connection_pool_name", Esc(&self.name))] };
        let state = |st: &'static str| -> Labels {
            vec![
                ("db_client_connection_pool_name", Esc(&self.name)),
                ("db_client_connection_state", Esc(st)),
            ]
        };
        gauge(
            &mut enc,
            "db_client_connection_count",
            "Connections open in the pool, by state (idle or used).",
            &[
                (state("idle"), u64::from(g.idle)),
                (state("used"), u64::from(g.size.saturating_sub(g.idle))),
            ],
        )?;
        let (max, min) = if settings.pooling {
            (settings.max, settings.min)
        } else {
            (0, 0)
        };
        gauge(
            &mut enc,
            "db_client_connection_max",
            "Maximum open connections allowed (DATABASE_POOL_SIZE).",
            &[(pool(), u64::from(max))],
        )?;
        gauge(
            &mut enc,
            "db_client_connection_idle_max",
            "Maximum idle connections allowed (the pool size: sqlx has no separate limit).",
            &[(pool(), u64::from(max))],
        )?;
        gauge(
            &mut enc,
            "db_client_connection_idle_min",
            "Minimum connections kept open (DATABASE_POOL_MIN).",
            &[(pool(), u64::from(min))],
        )?;
        gauge(
            &mut enc,
            "db_client_connection_pending_requests",
            "Acquisitions waiting for a connection.",
            &[(pool(), s.waiting())],
        )?;
        counter(
            &mut enc,
            "db_client_connection_timeouts",
            "Acquisitions that timed out.",
            &[(pool(), s.acquire_timeouts())],
        )?;
        for (name, help, counts) in [
            (
                "db_client_connection_create_time",
                "Time to open a connection.",
                &s.create_time,
            ),
            (
                "db_client_connection_wait_time",
                "Time to obtain a connection (pooled: the wait in acquire; direct: the connect).",
                &s.wait_time,
            ),
            (
                "db_client_connection_use_time",
                "Time from obtaining a connection to giving it back.",
                &s.use_time,
            ),
        ] {
            let snap = counts.snapshot();
            histogram(&mut enc, name, help, &[(pool(), &snap)])?;
        }
        let ops: Vec<(QueryKind, crate::exposition::buckets::Counts)> = QueryKind::ALL
            .iter()
            .map(|k| (*k, s.operation_time[k.index()].snapshot()))
            .filter(|(_, c)| c.count() > 0)
            .collect();
        let series: Vec<(Labels, &crate::exposition::buckets::Counts)> = ops
            .iter()
            .map(|(k, c)| {
                (
                    vec![
                        ("db_system_name", Esc("postgresql")),
                        ("db_operation_name", Esc(k.label())),
                    ],
                    c,
                )
            })
            .collect();
        histogram(
            &mut enc,
            "db_client_operation_duration",
            "Duration of database statements, by kind.",
            &series,
        )
    }
}

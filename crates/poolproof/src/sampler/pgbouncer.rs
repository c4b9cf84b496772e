//! The `pgbouncer` source: what PgBouncer does between the app instances and Postgres. Once a
//! second, on one admin-console connection of its own (database `pgbouncer`, which speaks the
//! simple-query protocol only): `SHOW POOLS` (clients active and waiting,
//! server connections, the oldest client's wait) and `SHOW STATS` (transactions and wait time,
//! cumulative) of the app's database.
//!
//! The URL holds the password and is never printed. A sample that fails is a gap with a short
//! reason; the connection is opened again on the next tick.

use crate::observe::PgbouncerSample;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use std::str::FromStr;
use std::time::Duration;

/// The admin console's connection and the database whose pools it reads.
pub struct PgbouncerMonitor {
    options: PgConnectOptions,
    /// The app's database as PgBouncer names it (the `database` column).
    database: String,
    conn: Option<PgConnection>,
}

impl PgbouncerMonitor {
    /// A monitor of `database`'s pools through the admin console at `admin_url`; `Err` when the
    /// URL does not parse (the message names no part of it).
    pub fn new(admin_url: &str, database: &str) -> Result<Self, String> {
        let options = PgConnectOptions::from_str(admin_url)
            .map_err(|_| "the pgbouncer source's admin URL does not parse".to_owned())?
            .disable_statement_logging();
        Ok(Self {
            options,
            database: database.to_owned(),
            conn: None,
        })
    }

    async fn connect(&mut self, timeout: Duration) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        let conn = tokio::time::timeout(timeout, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| "pgbouncer: connect timed out".to_owned())?
            .map_err(|e| format!("pgbouncer: cannot connect ({})", super::postgres::short(&e)))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// One sample (its `t` is set by the caller).
    pub async fn sample(&mut self, timeout: Duration) -> PgbouncerSample {
        if let Err(e) = self.connect(timeout).await {
            return gap(e);
        }
        let Some(conn) = self.conn.as_mut() else {
            return gap("pgbouncer: not connected".into());
        };
        let ask = async {
            // A plain `&str` goes as a simple query (the console refuses Parse/Bind).
            let pools = sqlx::Executor::fetch_all(&mut *conn, "SHOW POOLS").await?;
            let stats = sqlx::Executor::fetch_all(&mut *conn, "SHOW STATS").await?;
            Ok::<_, sqlx::Error>((pools, stats))
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(Ok((pools, stats))) => read(&self.database, &pools, &stats),
            Ok(Err(e)) => {
                self.conn = None;
                gap(format!(
                    "pgbouncer: query failed ({})",
                    super::postgres::short(&e)
                ))
            }
            Err(_) => {
                self.conn = None;
                gap("pgbouncer: timed out".into())
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }
}

/// A column of an admin-console row as a number. The console answers in text format with its
/// own column types (int4 or int8 depending on the column and version), so the text is read
/// unchecked and parsed.
fn number(row: &PgRow, column: &str) -> Option<u64> {
    row.try_get_unchecked::<Option<String>, _>(column)
        .ok()
        .flatten()
        .and_then(|text| text.trim().parse::<u64>().ok())
}

fn is_database(row: &PgRow, database: &str) -> bool {
    row.try_get_unchecked::<Option<String>, _>("database")
        .ok()
        .flatten()
        .is_some_and(|d| d == database)
}

/// The figures of `database` in `SHOW POOLS` (summed over its users' pools) and `SHOW STATS`.
fn read(database: &str, pools: &[PgRow], stats: &[PgRow]) -> PgbouncerSample {
    let pools: Vec<&PgRow> = pools.iter().filter(|r| is_database(r, database)).collect();
    let stats = stats.iter().find(|r| is_database(r, database));
    if pools.is_empty() && stats.is_none() {
        return gap(format!(
            "pgbouncer: no pool of database {database} in SHOW POOLS"
        ));
    }
    let sum = |columns: &[&str]| -> Option<u64> {
        let mut total = 0;
        for row in &pools {
            for column in columns {
                total += number(row, column)?;
            }
        }
        (!pools.is_empty()).then_some(total)
    };
    // The oldest waiting client over the pools: seconds plus the microseconds part.
    let max_wait_ms = pools
        .iter()
        .filter_map(|r| {
            let secs = number(r, "maxwait")?;
            let micros = number(r, "maxwait_us").unwrap_or(0);
            Some(secs as f64 * 1000.0 + micros as f64 / 1000.0)
        })
        .reduce(f64::max);
    PgbouncerSample {
        t: 0.0,
        clients_active: sum(&["cl_active"]),
        clients_waiting: sum(&["cl_waiting"]),
        server_connections: sum(&["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]),
        server_active: sum(&["sv_active"]),
        max_wait_ms,
        xact_count: stats.and_then(|r| number(r, "total_xact_count")),
        wait_time_us: stats.and_then(|r| number(r, "total_wait_time")),
        avg_wait_us: stats.and_then(|r| number(r, "avg_wait_time")),
        error: None,
    }
}

fn gap(error: String) -> PgbouncerSample {
    PgbouncerSample {
        error: Some(error),
        ..PgbouncerSample::default()
    }
}

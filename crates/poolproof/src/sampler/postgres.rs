//! The `postgres` source: pool efficiency as the database sees it, whatever the app reports
//! about itself. Once a second, on one connection of its own: `pg_stat_database.sessions` of
//! the app's database (sessions opened, cumulative) and the client connections to it in
//! `pg_stat_activity` (held now), its own connection excepted.
//!
//! The URL is the run's database (managed providers) or a monitoring role's
//! (`services.postgres.database_url`, external); it is never printed. A sample that fails is
//! a gap with a short reason; the connection is opened again on the next tick, and the sessions
//! the sampler opened itself after its first are taken off the counter.

use crate::observe::DbSample;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// What one tick asks: both figures in one round trip.
const QUERY: &str = "SELECT \
     (SELECT sessions FROM pg_stat_database WHERE datname = current_database())::bigint, \
     (SELECT count(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND backend_type = 'client backend' \
          AND pid <> pg_backend_pid())::bigint";

/// The database sampler's connection and what it has opened itself.
pub struct DbMonitor {
    options: PgConnectOptions,
    conn: Option<PgConnection>,
    /// Connections this monitor opened after its first (each is a session on the counter).
    own_reconnects: u64,
    connected_once: bool,
}

impl DbMonitor {
    /// A monitor for the database at `url`; `None` when the URL does not parse (the message
    /// names no part of it).
    pub fn new(url: &str) -> Result<Self, String> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| "the postgres source's database URL does not parse".to_owned())?
            .application_name("poolproof-monitor")
            .disable_statement_logging();
        Ok(Self {
            options,
            conn: None,
            own_reconnects: 0,
            connected_once: false,
        })
    }

    /// Opens the connection ahead of the first tick, so that the monitor's own session is on
    /// the counter before the load starts.
    pub async fn connect(&mut self, timeout: Duration) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        let conn = tokio::time::timeout(timeout, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| "postgres: connect timed out".to_owned())?
            .map_err(|e| format!("postgres: cannot connect ({})", short(&e)))?;
        if self.connected_once {
            self.own_reconnects += 1;
        }
        self.connected_once = true;
        let mut conn = conn;
        // Ask for this backend's statistics (its own session among them) to be flushed at
        // once, not up to a second later in the middle of the load. Not allowed for every
        // role; then the first tick's report does it.
        let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut conn)
            .await;
        self.conn = Some(conn);
        Ok(())
    }

    /// One sample (its `t` is set by the caller).
    pub async fn sample(&mut self, timeout: Duration) -> DbSample {
        if let Err(e) = self.connect(timeout).await {
            return gap(e);
        }
        let Some(conn) = self.conn.as_mut() else {
            return gap("postgres: not connected".into());
        };
        let q = sqlx::query_as::<_, (Option<i64>, Option<i64>)>(QUERY).fetch_one(conn);
        match tokio::time::timeout(timeout, q).await {
            Ok(Ok((sessions, connections))) => DbSample {
                t: 0.0,
                sessions: sessions.map(|s| (s.max(0) as u64).saturating_sub(self.own_reconnects)),
                connections: connections.map(|c| c.max(0) as u64),
                error: None,
            },
            Ok(Err(e)) => {
                self.conn = None;
                gap(format!("postgres: query failed ({})", short(&e)))
            }
            Err(_) => {
                self.conn = None;
                gap("postgres: timed out".into())
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

fn gap(error: String) -> DbSample {
    DbSample {
        error: Some(error),
        ..DbSample::default()
    }
}

/// A short reason without the server's details (which may name users or hosts).
pub(crate) fn short(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("SQLSTATE {code}"),
            None => "database error".into(),
        },
        sqlx::Error::Io(_) => "connection error".into(),
        sqlx::Error::Tls(_) => "TLS error".into(),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => "pool error".into(),
        _ => "protocol error".into(),
    }
}

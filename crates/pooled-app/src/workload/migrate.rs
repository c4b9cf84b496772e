//! Embedded migrations (`fixtures/sql/migrations`) and the deterministic seed (`poolproof_seed`, a SQL
//! function from those migrations that fills empty tables with `generate_series`).

use std::str::FromStr;
use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::config::SecretUrl;
use crate::pool::{Db, DbError, QueryKind};

/// The schema, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../fixtures/sql/migrations");

/// What [`migrate_and_seed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOutcome {
    /// Users inserted (0 when the tables already held data).
    pub seeded_users: i64,
}

/// Applies pending migrations, then seeds `users` users and `requests` buddy requests if the tables are
/// empty. Safe to run concurrently from several instances (both steps take advisory locks).
///
/// With `migration_url` (`DATABASE_MIGRATION_URL`) both run on one connection of their own to that
/// database, closed afterwards; else on a connection of the pool layer. The migrator's advisory lock
/// is a session lock, which a transaction-pooling PgBouncer would leave held on whichever server
/// connection took it: behind one, the migration URL is Postgres itself.
pub async fn migrate_and_seed(
    db: &Db,
    migration_url: Option<&SecretUrl>,
    users: u32,
    requests: u32,
) -> Result<SeedOutcome, DbError> {
    if let Some(url) = migration_url {
        return migrate_direct(db, url, users, requests).await;
    }
    let mut conn = db.acquire().await?;
    let t = Instant::now();
    let r = run_migrations(conn.as_mut()).await;
    conn.finish(QueryKind::Other, t, r)?;
    let t = Instant::now();
    let r = seed(conn.as_mut(), users, requests).await;
    let seeded_users = conn.finish(QueryKind::Other, t, r)?;
    Ok(SeedOutcome { seeded_users })
}

async fn migrate_direct(
    db: &Db,
    url: &SecretUrl,
    users: u32,
    requests: u32,
) -> Result<SeedOutcome, DbError> {
    let unavailable = |e: sqlx::Error| {
        DbError::Unavailable(format!(
            "DATABASE_MIGRATION_URL: {}",
            crate::config::redact_url(&e.to_string())
        ))
    };
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(unavailable)?
        .application_name("pooled-app-migrate")
        .disable_statement_logging();
    let connect = PgConnection::connect_with(&options);
    let mut conn = tokio::time::timeout(db.connect_timeout(), connect)
        .await
        .map_err(|_| DbError::Unavailable("DATABASE_MIGRATION_URL: connect timed out".into()))?
        .map_err(unavailable)?;
    let r = run_migrations(&mut conn).await;
    let r = match r {
        Ok(()) => seed(&mut conn, users, requests).await,
        Err(e) => Err(e),
    };
    let _ = conn.close().await;
    Ok(SeedOutcome {
        seeded_users: r.map_err(DbError::Query)?,
    })
}

async fn run_migrations(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    MIGRATOR.run_direct(conn).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => e,
        other => sqlx::Error::Migrate(Box::new(other)),
    })
}

async fn seed(conn: &mut PgConnection, users: u32, requests: u32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT poolproof_seed($1, $2)")
        .bind(i32::try_from(users).unwrap_or(i32::MAX))
        .bind(i32::try_from(requests).unwrap_or(i32::MAX))
        .fetch_one(conn)
        .await
}

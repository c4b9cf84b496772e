//! Embedded migrations (`fixtures/sql/migrations`) and the deterministic seed (`poolproof_seed`, a SQL
//! function from those migrations that fills empty tables with `generate_series`).

use std::time::Instant;

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
pub async fn migrate_and_seed(db: &Db, users: u32, requests: u32) -> Result<SeedOutcome, DbError> {
    let mut conn = db.acquire().await?;
    let t = Instant::now();
    let r = MIGRATOR
        .run_direct(conn.as_mut())
        .await
        .map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => e,
            other => sqlx::Error::Migrate(Box::new(other)),
        });
    conn.finish(QueryKind::Other, t, r)?;
    let t = Instant::now();
    let r = sqlx::query_scalar::<_, i64>("SELECT poolproof_seed($1, $2)")
        .bind(i32::try_from(users).unwrap_or(i32::MAX))
        .bind(i32::try_from(requests).unwrap_or(i32::MAX))
        .fetch_one(conn.as_mut())
        .await;
    let seeded_users = conn.finish(QueryKind::Other, t, r)?;
    Ok(SeedOutcome { seeded_users })
}

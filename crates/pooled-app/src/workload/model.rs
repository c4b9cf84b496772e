//! Domain rows shared by the endpoints, and the cached profile lookup.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::pool::{DbConn, QueryKind, Statement};
use crate::state::AppState;

/// A user's public profile; cached in Redis under [`profile_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct UserProfile {
    pub id: i64,
    pub name: String,
    pub city: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
}

pub fn profile_key(id: i64) -> String {
    format!("pooled-app:user:{id}")
}

/// The profiles of `ids` (at most a few), from the cache where possible; the misses are read in one
/// query on `conn` (acquired lazily by the caller through `get_conn`) and written back to the cache.
pub async fn profiles(
    state: &AppState,
    conn: &mut Option<DbConn>,
    ids: &[i64],
) -> Result<HashMap<i64, UserProfile>, ApiError> {
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for &id in ids {
        match state.cache.get_json::<UserProfile>(&profile_key(id)).await {
            Some(p) => {
                found.insert(id, p);
            }
            None => missing.push(id),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    if conn.is_none() {
        *conn = Some(state.db.acquire().await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(ApiError::Internal);
    };
    let t = Instant::now();
    let rows = c
        .fetch_all::<UserProfile>(
            Statement::new("SELECT id, name, city, bio, created_at FROM users WHERE id = ANY($1)")
                .bind(&missing[..]),
        )
        .await;
    let rows = c.finish(QueryKind::Select, t, rows)?;
    for p in rows {
        state
            .cache
            .set_json(&profile_key(p.id), &p, state.config.cache_ttl)
            .await;
        found.insert(p.id, p);
    }
    Ok(found)
}

//! `GET /api/buddies?user_id=N[&limit=M]`: a user's accepted matches, newest first (served by the
//! partial indexes on `matches(user_a|user_b, updated_at)`).

use std::time::Instant;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::pool::{QueryKind, Statement};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct BuddiesQuery {
    pub user_id: i64,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Buddy {
    pub id: i64,
    pub name: String,
    pub city: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct BuddiesResponse {
    pub user_id: i64,
    pub buddies: Vec<Buddy>,
}

pub async fn list_buddies(
    State(state): State<AppState>,
    q: Result<Query<BuddiesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BuddiesResponse>, ApiError> {
    let Query(q) = q?;
    let limit = i64::from(q.limit.unwrap_or(20).clamp(1, 100));
    let mut conn = state.db.acquire().await?;
    let t = Instant::now();
    let rows = conn
        .fetch_all::<Buddy>(
            Statement::new(
                "SELECT u.id, u.name, u.city, m.updated_at AS since FROM ( \
                     SELECT user_b AS other, updated_at FROM matches WHERE user_a = $1 AND accepted \
                     UNION ALL \
                     SELECT user_a AS other, updated_at FROM matches WHERE user_b = $1 AND accepted \
                 ) m JOIN users u ON u.id = m.other \
                 ORDER BY m.updated_at DESC LIMIT $2",
            )
            .bind(q.user_id)
            .bind(limit),
        )
        .await;
    let buddies = conn.finish(QueryKind::Select, t, rows)?;
    Ok(Json(BuddiesResponse {
        user_id: q.user_id,
        buddies,
    }))
}

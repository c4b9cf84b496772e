//! `POST /api/buddy/respond` `{"request_id": N, "accept": bool}`: read the request, update its status,
//! upsert its match (three queries), and return both users' profiles from the cache (a miss costs one
//! more query that fills it).
//!
//! The two writes are idempotent (`UPDATE ... SET status`, `INSERT ... ON CONFLICT (request_id) DO
//! UPDATE`), so answering a request again is allowed (load tests repeat ids) and a retry after a
//! failure between them converges; hence no explicit transaction and its two extra round trips.

use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::model::{profiles, UserProfile};
use crate::error::ApiError;
use crate::pool::QueryKind;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondBody {
    pub request_id: i64,
    pub accept: bool,
}

#[derive(Debug, Serialize)]
pub struct RespondResponse {
    pub request_id: i64,
    pub status: &'static str,
    pub match_id: i64,
    pub requester: Option<UserProfile>,
    pub recipient: Option<UserProfile>,
}

pub async fn respond(
    State(state): State<AppState>,
    body: Result<Json<RespondBody>, JsonRejection>,
) -> Result<Json<RespondResponse>, ApiError> {
    let Json(body) = body?;
    let mut conn = state.db.acquire().await?;

    let t = Instant::now();
    let row = sqlx::query_as::<_, (i64, i64)>(
        "SELECT requester_id, recipient_id FROM buddy_requests WHERE id = $1",
    )
    .bind(body.request_id)
    .fetch_optional(conn.as_mut())
    .await;
    let Some((requester_id, recipient_id)) = conn.finish(QueryKind::Select, t, row)? else {
        return Err(ApiError::NotFound(format!(
            "no buddy request with id {}",
            body.request_id
        )));
    };

    let status = if body.accept { "accepted" } else { "declined" };
    let t = Instant::now();
    let updated =
        sqlx::query("UPDATE buddy_requests SET status = $2, responded_at = now() WHERE id = $1")
            .bind(body.request_id)
            .bind(status)
            .execute(conn.as_mut())
            .await;
    conn.finish(QueryKind::Update, t, updated)?;

    let t = Instant::now();
    let match_id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO matches (request_id, user_a, user_b, accepted) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id) DO UPDATE SET accepted = EXCLUDED.accepted, updated_at = now() \
         RETURNING id",
    )
    .bind(body.request_id)
    .bind(requester_id)
    .bind(recipient_id)
    .bind(body.accept)
    .fetch_one(conn.as_mut())
    .await;
    let match_id = conn.finish(QueryKind::Insert, t, match_id)?;

    // A pooled connection goes back before the cache lookups (a miss re-acquires cheaply); a direct one
    // is kept, so that unpooled mode stays one connection per request.
    let mut conn = if conn.is_pooled() { None } else { Some(conn) };
    let mut found = profiles(&state, &mut conn, &[requester_id, recipient_id]).await?;
    Ok(Json(RespondResponse {
        request_id: body.request_id,
        status,
        match_id,
        requester: found.remove(&requester_id),
        recipient: found.remove(&recipient_id),
    }))
}

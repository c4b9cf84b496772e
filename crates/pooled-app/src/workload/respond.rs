//! `POST /api/buddy/respond` `{"request_id": N, "accept": bool}`: update the request's status and
//! upsert its match in one statement, and return both users' profiles from the cache (a miss costs
//! one more query that fills it).
//!
//! Answering a request again is allowed (load tests repeat ids): the last answer wins, for the
//! status and the match alike.

use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::model::{profiles, UserProfile};
use crate::error::ApiError;
use crate::pool::{QueryKind, Statement};
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

    let status = if body.accept { "accepted" } else { "declined" };
    let t = Instant::now();
    // One statement: the UPDATE takes the request's row lock and the upsert runs under it, so
    // concurrent answers to one request serialize and the last one sets both status and match.
    // Two statements without a transaction let them interleave (status declined, match accepted).
    let row = conn
        .fetch_optional::<(i64, i64, i64)>(
            Statement::new(
                "WITH answered AS ( \
                     UPDATE buddy_requests SET status = $2, responded_at = now() WHERE id = $1 \
                     RETURNING requester_id, recipient_id) \
                 INSERT INTO matches (request_id, user_a, user_b, accepted) \
                 SELECT $1, requester_id, recipient_id, $3 FROM answered \
                 ON CONFLICT (request_id) DO UPDATE SET accepted = EXCLUDED.accepted, updated_at = now() \
                 RETURNING id, user_a, user_b",
            )
            .bind(body.request_id)
            .bind(status)
            .bind(body.accept),
        )
        .await;
    let Some((match_id, requester_id, recipient_id)) = conn.finish(QueryKind::Update, t, row)?
    else {
        return Err(ApiError::NotFound(format!(
            "no buddy request with id {}",
            body.request_id
        )));
    };

    // A pooled connection goes back before the cache lookups: a miss acquires again, and holding
    // this one while waiting for another deadlocks a small pool under concurrency (every handler
    // holding one, all waiting for a second). A direct one is kept, so that unpooled mode stays
    // one connection per request.
    let mut conn = if conn.is_pooled() {
        drop(conn);
        None
    } else {
        Some(conn)
    };
    let mut found = profiles(&state, &mut conn, &[requester_id, recipient_id]).await?;
    Ok(Json(RespondResponse {
        request_id: body.request_id,
        status,
        match_id,
        requester: found.remove(&requester_id),
        recipient: found.remove(&recipient_id),
    }))
}

//! `GET /api/users/{id}`: a profile, served from the Redis cache when present.

use axum::extract::{Path, State};
use axum::Json;

use super::model::{profiles, UserProfile};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<UserProfile>, ApiError> {
    let Path(id) = id?;
    let mut conn = None;
    let mut found = profiles(&state, &mut conn, &[id]).await?;
    found
        .remove(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no user with id {id}")))
}

//! The buddy-matching workload: schema and seed (see [`migrate`]) and the endpoints that make
//! realistic queries through the pool layer and the cache.

pub mod buddies;
pub mod migrate;
pub mod model;
pub mod respond;
pub mod users;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// `POST /api/buddy/respond`, `GET /api/users/{id}`, `GET /api/buddies?user_id=`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/buddy/respond", post(respond::respond))
        .route("/api/users/{id}", get(users::get_user))
        .route("/api/buddies", get(buddies::list_buddies))
}

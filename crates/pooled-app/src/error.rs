//! [`ApiError`]: the JSON error responses of the workload endpoints (`{"error": "..."}`).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::pool::DbError;

/// `Retry-After` of a `pool exhausted` answer: a second is long against the pool's turnover of
/// milliseconds, and short enough that a client's retry still finds the load it reported on.
pub const RETRY_AFTER_SECS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// A request the handler cannot take, with its status (400, 415, 422).
    #[error("{1}")]
    BadRequest(StatusCode, String),
    #[error("database unavailable")]
    Unavailable,
    /// Overload: 503 with `Retry-After`, so that clients back off instead of retrying at once.
    #[error("pool exhausted")]
    PoolExhausted,
    #[error("internal error")]
    Internal,
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                ApiError::Unavailable
            }
            DbError::Exhausted => ApiError::PoolExhausted,
            DbError::Query(err) => {
                tracing::error!(error = %err, "query failed");
                ApiError::Internal
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(s, _) => *s,
            ApiError::Unavailable | ApiError::PoolExhausted => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        match self {
            ApiError::PoolExhausted => {
                (status, [(header::RETRY_AFTER, RETRY_AFTER_SECS)], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

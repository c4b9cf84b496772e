//! Bearer-token guard for the monitoring API: when `PERFORMANCE_API_TOKEN` is set, requests need
//! `Authorization: Bearer <token>` (compared in constant time) or get 401. The token is never
//! logged or echoed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Constant-time equality (time depends on the lengths only).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    std::hint::black_box(d) == 0
}

/// Whether a request carries the token.
pub fn authorized(token: &str, req: &Request) -> bool {
    let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
    else {
        return false;
    };
    ct_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless authorized (or no token set).
pub async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    match token {
        Some(t) if !authorized(&t, &req) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"performance\"")],
            axum::Json(serde_json::json!({"error": "unauthorized", "message": "a valid bearer token is required (PERFORMANCE_API_TOKEN)"})),
        )
            .into_response(),
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret-token", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret-tokeN"));
        assert!(!ct_eq(b"secret", b"secret-token"));
        assert!(ct_eq(b"", b""));
    }
}

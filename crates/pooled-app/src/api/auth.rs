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
    // The scheme name is case-insensitive (RFC 7235 §2.1): `BEARER x` is as good as `Bearer x`.
    let Some((scheme, given)) = v.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
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

    fn with_auth(value: &str) -> Request {
        Request::builder()
            .header(header::AUTHORIZATION, value)
            .body(axum::body::Body::empty())
            .unwrap_or_else(|e| panic!("request: {e}"))
    }

    #[test]
    fn scheme_name_is_case_insensitive() {
        for ok in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR tok"] {
            assert!(authorized("tok", &with_auth(ok)), "{ok}");
        }
        for bad in ["Basic tok", "Bearertok", "Bearer other", "tok", "Bearer"] {
            assert!(!authorized("tok", &with_auth(bad)), "{bad}");
        }
    }
}

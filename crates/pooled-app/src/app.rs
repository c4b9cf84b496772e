//! The HTTP application: [`router`] assembles the routes and the request middleware, [`serve`] runs
//! it on a listener until SIGINT/SIGTERM (or a given shutdown future).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::config::Config;
use crate::middleware;
use crate::state::{AppState, StartError};
use crate::workload;

/// All routes with the instrumentation middleware outermost (it sees the matched route and the fallback).
pub fn router(state: AppState) -> Router {
    let instrumentation = state.instrumentation.clone();
    let mut monitoring = state.monitoring.monitoring.clone();
    // /readyz also fails until migrations are applied.
    let migrated = state.migrated.clone();
    monitoring.ready_check = Some(Arc::new(move || {
        (!migrated.load(std::sync::atomic::Ordering::Acquire))
            .then(|| "migrations not applied yet".to_owned())
    }));
    let token = monitoring.token.clone();
    let limits = state.config.http;
    Router::new()
        .merge(workload::routes())
        // /healthz, /readyz, the dashboard API, /metrics and the page come from the monitoring stack.
        .merge(crate::api::router(monitoring))
        .route(
            "/api/performance/pool",
            get(pool_stats).route_layer(axum::middleware::from_fn_with_state(
                token,
                crate::api::auth::require_token,
            )),
        )
        .fallback(not_found)
        .with_state(state)
        // Inside the instrumentation, so that a timed-out or refused request is counted like any
        // other. The body limit refuses a huge `Content-Length` at once (413) rather than reading.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            instrumentation,
            middleware::instrument,
        ))
}

/// `GET /api/performance/pool`: [`crate::pool::PoolStatsSnapshot`] as JSON.
async fn pool_stats(State(state): State<AppState>) -> Json<crate::pool::PoolStatsSnapshot> {
    Json(state.db.stats())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such route" })),
    )
        .into_response()
}

/// Builds the state from `config` and serves on `listener` until SIGINT or SIGTERM.
pub async fn serve(config: Config, listener: TcpListener) -> Result<(), ServeError> {
    let state = AppState::build(config).await?;
    serve_state(state, listener, shutdown_signal()).await
}

/// Serves an already built state until `shutdown` completes; then closes the pool.
pub async fn serve_state<F>(
    state: AppState,
    listener: TcpListener,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let db = state.db.clone();
    let limits = state.config.http;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, pool_mode = ?db.mode(), "listening");
    }
    let result = crate::server::serve(listener, router(state), limits, shutdown).await;
    db.close().await;
    result.map_err(ServeError::Io)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("server: {0}")]
    Io(std::io::Error),
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

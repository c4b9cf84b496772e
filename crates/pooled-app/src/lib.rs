//! pooled-app: the system under test. A small buddy-matching web service with pooled Postgres access
//! (stats, graceful degradation), a Redis cache, and per-request instrumentation, plus the monitoring
//! stack (metrics, alerts, health, dashboard API) built on top of it.
//!
//! # Running
//! `pooled-app` reads its settings from the environment (see [`config::Config`] and
//! [`config::VARIABLES`]) and serves HTTP on `BIND_ADDR`.
//!
//! # Exit codes
//! - `0`: stopped by SIGINT/SIGTERM after a graceful shutdown (or `--help`);
//! - `1`: runtime failure (the port cannot be bound, the server fails);
//! - `2`: invalid configuration or usage: one line `pooled-app: invalid VAR="value": expected ...` on
//!   stderr, printed before any port is bound.
//!
//! # Embedding
//! [`state::AppState::build`] then [`app::router`] (or [`app::serve`] / [`app::serve_state`] on a
//! `TcpListener`, which tests bind to `127.0.0.1:0`).

pub mod alerts;
pub mod api;
pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod exposition;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod monitoring;
pub mod pool;
pub mod redis_link;
pub mod request_scope;
pub mod server;
pub mod state;
pub mod workload;

pub use app::{router, serve, serve_state};
pub use config::{Config, ConfigError};
pub use middleware::{RequestObserver, RequestRecord};
pub use pool::PoolStatsSnapshot;
pub use state::AppState;

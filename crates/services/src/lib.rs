//! Starts real Postgres 15 and Redis (and optionally PgBouncer in front of Postgres, see
//! [`start_pgbouncer`]) for tests and for poolproof: Docker containers through
//! testcontainers from local images (built by `ci/build-images.sh`, never pulled), or the
//! machine's own binaries as local processes when no engine answers. Every service keeps
//! its host port across stop/start/restart, so an app keeps its URL, and everything started
//! is removed on drop or [`Postgres::shutdown`] / [`Redis::shutdown`]. [`proxy::TcpProxy`]
//! sits in front of a service to inject latency and connection resets.

mod containers;
mod engine;
mod error;
mod managed;
mod options;
mod owner;
mod pg_process;
mod pgbouncer;
mod ports;
mod probe;
mod processes;
pub mod proxy;
mod redis_process;
mod services;
mod sweep;

pub use containers::{OWNER_LABEL, RUN_LABEL};
pub use engine::engine_answers;
pub use error::ServiceError;
pub use options::{
    Options, Provider, DEFAULT_POSTGRES_IMAGE, DEFAULT_REDIS_IMAGE, ENV_POSTGRES_IMAGE,
    ENV_PROVIDER, ENV_REDIS_IMAGE,
};
pub use pgbouncer::{
    start_pgbouncer, PgBouncer, PgBouncerSettings, PoolMode, ADMIN_DATABASE,
    DEFAULT_PGBOUNCER_IMAGE, ENV_PGBOUNCER_IMAGE,
};
pub use ports::{free_loopback_port, says_port_taken};
pub use processes::{state_dir, SERVICE_USER};
pub use services::{resolve_provider, start_both, start_postgres, start_redis, Postgres, Redis};
pub use sweep::sweep_leftovers;

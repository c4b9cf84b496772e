//! Real Postgres and Redis from `poolproof-services` (containers from local images, else local
//! processes), removed when the handles are dropped or shut down.

use poolproof_services::Options;
pub use poolproof_services::{Postgres, Redis};

pub async fn postgres() -> Postgres {
    poolproof_services::start_postgres(&Options::default())
        .await
        .unwrap_or_else(|e| panic!("start Postgres: {e}"))
}

pub async fn both() -> (Postgres, Redis) {
    poolproof_services::start_both(&Options::default())
        .await
        .unwrap_or_else(|e| panic!("start Postgres and Redis: {e}"))
}

/// Unwraps a service control call with a message naming it.
pub fn ok<E: std::fmt::Display>(what: &str, r: Result<(), E>) {
    if let Err(e) = r {
        panic!("{what}: {e}");
    }
}

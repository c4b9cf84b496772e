//! The crate's integration tests, linked into one binary: one link instead of one per file
//! (cold CI builds and disk). Each file below is one area; nextest still runs every test
//! in its own process, so tests keep their own environment.

mod lifecycle;
mod proxy_tcp;
mod sweep;

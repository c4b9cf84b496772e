//! Test support: real Postgres and Redis from `poolproof-services`, and the app run in-process.
#![allow(dead_code)]

pub mod app;
pub mod services;

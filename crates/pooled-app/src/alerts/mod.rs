//! Alert engine: rules from YAML, a pure per-rule state machine evaluated every
//! `ALERT_EVAL_INTERVAL_MS`, cross-instance claims in Redis, and notifications to Slack and email
//! (Resend) routed by severity, with inhibition, silences, keep-firing, no-data alerts, cooldowns,
//! backoff, retries and idempotency keys — all off the request path.

pub mod channels;
pub mod coord;
pub mod dispatch;
pub mod engine;
pub mod message;
pub mod routes;
pub mod rules;
pub mod runner;
pub mod silences;

pub use runner::Alerts;

//! The scenario's `load:` section as the load engine's plan, for a given set of targets.

use crate::load::{HttpMethod, LoadPlan, Template, TransactionPlan};
use crate::scenario::{Load, Method};
use std::time::Duration;

/// Per-request timeout: long enough for a fault's latency, short enough that a hung request
/// shows up as an error well inside a run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the load plan; the error names the offending field (a scenario that passed
/// validation does not produce one).
pub fn load_plan(
    load: &Load,
    targets: Vec<String>,
    bearer_token: Option<String>,
) -> Result<LoadPlan, String> {
    let mut transactions = Vec::with_capacity(load.transactions.len());
    for (i, t) in load.transactions.iter().enumerate() {
        let path = Template::parse(t.path.as_str())
            .map_err(|e| format!("load.transactions[{i}].path: {e}"))?;
        let body = match &t.body {
            Some(b) => Some(
                Template::parse(b.as_str())
                    .map_err(|e| format!("load.transactions[{i}].body: {e}"))?,
            ),
            None => None,
        };
        transactions.push(TransactionPlan {
            name: t.name.clone(),
            weight: t.weight as usize,
            method: method(t.method),
            path,
            body,
            expect_status: t.expect_status,
        });
    }
    Ok(LoadPlan {
        targets,
        users: load.users as usize,
        ramp: load.ramp.get(),
        warmup: load.warmup.get(),
        duration: load.duration.get(),
        // goose throttles in whole requests per second; a fractional limit rounds up to >= 1.
        rate_limit: load.rate_limit.map(|r| r.ceil().max(1.0) as u32),
        transactions,
        request_timeout: REQUEST_TIMEOUT,
        bearer_token,
    })
}

fn method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
    }
}

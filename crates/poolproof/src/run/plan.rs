//! The scenario's `load:` section as the load engine's plan, for a given set of targets.

use crate::load::{HttpMethod, LoadPlan, OpenPlan, RateSegment, Template, TransactionPlan};
use crate::scenario::{Load, LoadModel, Method};
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
        users: load.carriers() as usize,
        ramp: load.ramp.get(),
        warmup: load.warmup.get(),
        duration: load.measured(),
        rate_limit: load.rate_limit,
        open: open_plan(load),
        transactions,
        request_timeout: REQUEST_TIMEOUT,
        bearer_token,
        shard: None,
    })
}

/// The open model's arrival schedule: the ramp from 0 to the first rate, the warm-up at it,
/// then the stages (or the constant rate) over measured load.
fn open_plan(load: &Load) -> Option<OpenPlan> {
    if load.model != LoadModel::Open {
        return None;
    }
    let stages = load.stage_spans();
    let first = stages.first()?.2;
    let (ramp, warmup) = (load.ramp.as_secs_f64(), load.warmup.as_secs_f64());
    let mut segments = Vec::new();
    if ramp > 0.0 {
        segments.push(RateSegment {
            start: -(ramp + warmup),
            end: -warmup,
            from: 0.0,
            to: first,
        });
    }
    if warmup > 0.0 {
        segments.push(RateSegment {
            start: -warmup,
            end: 0.0,
            from: first,
            to: first,
        });
    }
    segments.extend(
        stages
            .into_iter()
            .map(|(start, end, from, to)| RateSegment {
                start,
                end,
                from,
                to,
            }),
    );
    Some(OpenPlan { segments })
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

//! Client-side SLA metrics: latency percentiles, error rate, throughput.

use super::{phase_kind, Measure};
use crate::observe::Observations;
use crate::scenario::{Metric, Sla};

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    let phase = phase_kind(sla.phase);
    let windows = obs.windows(phase);
    let scope = sla
        .route
        .as_deref()
        .map(|r| format!("route {r}"))
        .unwrap_or_else(|| "all routes".into());
    if windows.is_empty() {
        return Measure::NoData(format!(
            "phase `{}` does not occur in this run",
            phase.as_str()
        ));
    }
    if let Some(route) = sla.route.as_deref() {
        if !obs.client.routes.iter().any(|r| r == route) {
            return Measure::NoData(format!("no transaction named `{route}` was run"));
        }
    }
    let w = obs.client.window(&windows, sla.route.as_deref());
    let over = format!(
        "{scope}, {} requests over {} s of `{}`",
        w.requests,
        w.seconds,
        phase.as_str()
    );
    let q = match sla.metric {
        Metric::LatencyP50 => Some(0.50),
        Metric::LatencyP95 => Some(0.95),
        Metric::LatencyP99 => Some(0.99),
        Metric::LatencyMax => Some(1.0),
        _ => None,
    };
    if let Some(q) = q {
        return match w.latency.quantile_ms(q) {
            Some(value) => Measure::Value {
                value,
                detail: format!("{} responses; {over}", w.latency.count()),
            },
            None => Measure::NoData(format!("no response received; {over}")),
        };
    }
    match sla.metric {
        Metric::ErrorRate => match w.error_rate() {
            Some(value) => {
                let by: Vec<String> = w
                    .errors
                    .iter()
                    .map(|(k, n)| format!("{}: {n}", k.label()))
                    .collect();
                let errors = if by.is_empty() {
                    "no errors".to_string()
                } else {
                    by.join(", ")
                };
                Measure::Value {
                    value,
                    detail: format!("{errors}; {over}"),
                }
            }
            None => Measure::NoData(format!("no request completed; {over}")),
        },
        Metric::Throughput => match w.throughput_rps() {
            Some(value) => Measure::Value {
                value,
                detail: format!("{} successful; {over}", w.successes()),
            },
            None => Measure::NoData(format!("no time covered; {over}")),
        },
        other => Measure::NotEvaluated(format!("{} is not a client-side metric", other.as_str())),
    }
}

//! Client-side SLA metrics: latency percentiles (corrected by default, or uncorrected),
//! error rate, throughput, dropped requests and offered rate.

use super::{sla_windows, Measure};
use crate::observe::Observations;
use crate::scenario::{Metric, Sla, Timing};

pub(crate) fn measure(sla: &Sla, obs: &Observations) -> Measure {
    let phase = super::phase_kind(sla.phase);
    let windows = match sla_windows(sla, obs) {
        Ok(w) => w,
        Err(why) => return Measure::NoData(why),
    };
    let scope = sla
        .route
        .as_deref()
        .map(|r| format!("route {r}"))
        .unwrap_or_else(|| "all routes".into());
    if windows.is_empty() {
        return super::phase_missing(phase);
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
        let uncorrected = sla.timing == Some(Timing::Uncorrected);
        let (h, other, label, other_label) = if uncorrected {
            (&w.service, &w.latency, "uncorrected", "corrected")
        } else {
            (&w.latency, &w.service, "corrected", "uncorrected")
        };
        return match h.quantile_ms(q) {
            // Without a schedule both figures are the same: say nothing about correction.
            Some(value) if w.scheduled == 0 => Measure::Value {
                value,
                detail: format!("{} responses; {over}", h.count()),
            },
            Some(value) => {
                let mut detail = format!("{label}; {} responses; {over}", h.count());
                if let Some(o) = other.quantile_ms(q) {
                    detail.push_str(&format!("; {other_label}: {} ms", super::value::sig3(o)));
                }
                detail.push_str(&format!(
                    "; {} of {} scheduled starts late, {} dropped",
                    w.late, w.scheduled, w.dropped
                ));
                Measure::Value { value, detail }
            }
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
        Metric::DroppedRequests => match w.dropped_rate() {
            Some(value) => Measure::Value {
                value,
                detail: format!(
                    "{} of {} scheduled starts dropped, {} late; {over}",
                    w.dropped, w.scheduled, w.late
                ),
            },
            None => Measure::NoData(format!("no scheduled start; {over}")),
        },
        Metric::OfferedRate => match w.offered_rps() {
            Some(value) => Measure::Value {
                value,
                detail: format!(
                    "{} scheduled starts; throughput {} rps; {over}",
                    w.scheduled,
                    w.throughput_rps()
                        .map_or("-".to_string(), super::value::sig3)
                ),
            },
            None => Measure::NoData(format!("no scheduled start; {over}")),
        },
        other => Measure::NotEvaluated(format!("{} is not a client-side metric", other.as_str())),
    }
}

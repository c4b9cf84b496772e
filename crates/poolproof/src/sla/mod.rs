//! SLA evaluation: each scenario SLA against a run's observations → a verdict with the
//! measured value and the threshold. "No data" is a failure, never a silent pass.
//!
//! How each metric is measured (all over the SLA's phase, warm-up excluded):
//! - `latency_p50|p95|p99|max`: client-side, from the merged per-second HDR histograms of the
//!   phase (overall or one route); requests without a response are not latencies.
//! - `error_rate`: errors / completed requests (unexpected status, timeout, transport).
//! - `throughput`: successful requests per second of the phase.
//! - `pool_efficiency`: 1 − Δconnections opened / Δacquisitions between the first and last
//!   sample of the phase, summed over instances (falls back to the app's cumulative figure when
//!   the phase holds a single sample per instance).
//! - `pool_utilization`: the peak of in use / max over the phase's samples.
//! - `acquire_wait_p95`: the highest acquire-wait p95 the app reported in the phase (the app
//!   reports it since start, so this is conservative).
//! - `health_score`: min (default) or mean of the composite score samples.
//! - `server_latency_p95`: mean of the app's sampled p95 (its last 10 s, once a second); per
//!   route, of the app's `routes[]` entry (its last 60 s) that the transaction's method and path
//!   match (`GET /api/users/{{rand:1..9}}` is served by `GET /api/users/{id}`). With the
//!   `prometheus` source instead: the p95 of what `http_server_request_duration_seconds`
//!   counted over the phase.
//! - `pool_utilization`, `acquire_wait_p95`, `pending_requests` from the `prometheus` source
//!   (when pooled-app's API was not sampled): peak used / max, the p95 of what the
//!   `db_client_connection_wait_time` histogram counted over the phase, the peak of the
//!   per-second sum of `db_client_connection_pending_requests`.
//! - `db_sessions_opened_per_request`, `db_connections_peak`: the `postgres` source, see
//!   [`database`].
//! - `pgbouncer_clients_waiting_peak`, `pgbouncer_server_connections_peak`,
//!   `pgbouncer_avg_wait`: the `pgbouncer` source, see [`pgbouncer`].
//! - `dropped_requests`: scheduled starts never sent / scheduled starts (by scheduled time);
//!   `offered_rate`: scheduled starts per second.
//! - `max_sustained_rate`: see [`capacity`].
//! - alert and A/B metrics: see [`alerts`] and [`ratios`].
//!
//! Latency metrics judge the corrected latency (from each request's scheduled start) unless
//! the SLA says `timing: uncorrected`; `stage: N` narrows client and ratio SLAs to one stage
//! of an open-model ramp.

pub mod abort;
mod alerts;
mod capacity;
mod client;
mod database;
mod pgbouncer;
mod ratios;
mod server;
mod value;

pub use abort::EarlyStop;
pub use value::{format_value, sig3, Unit};

use crate::observe::{Observations, PhaseKind};
use crate::scenario::{ArmsMode, Comparator, Metric, Phase, Sla, Transaction};
use crate::stats::Interval;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The outcome of one SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Failed,
    /// Nothing was measured for this SLA: a failure.
    NoData,
    /// poolproof cannot evaluate this metric (yet, or in this configuration): a failure.
    NotEvaluated,
    /// A ratio SLA with `confidence:` whose interval straddles the threshold, or one whose
    /// value lies within its `noise_floor:` of the threshold: too noisy to decide (exit 4
    /// unless another SLA failed).
    Inconclusive,
}

impl Verdict {
    pub fn passed(self) -> bool {
        self == Verdict::Met
    }

    /// Met or failed on a measured value (not inconclusive, not missing).
    fn decided(self) -> bool {
        matches!(self, Verdict::Met | Verdict::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Failed => "FAILED",
            Verdict::NoData => "NO DATA",
            Verdict::NotEvaluated => "NOT EVALUATED",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// One SLA's verdict with everything a report shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaResult {
    /// e.g. `latency_p95[profile] <= 50ms`.
    pub label: String,
    pub metric: String,
    pub comparator: String,
    pub route: Option<String>,
    pub phase: String,
    /// The threshold in the metric's unit (ms, fraction, rps, score, count, multiple).
    pub threshold: f64,
    /// The threshold as written in the scenario.
    pub threshold_text: String,
    pub unit: Unit,
    pub measured: Option<f64>,
    /// The measured value formatted in the threshold's style, or `-`.
    pub measured_text: String,
    pub verdict: Verdict,
    /// How the value was obtained, or why there is none.
    pub detail: String,
    /// Ratio metrics: how many (treatment, baseline) pairs the value is the mean of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<usize>,
    /// Ratio metrics with two or more pairs: the paired bootstrap interval of the mean, in
    /// the metric's unit, at `confidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The interval's level as a fraction (0.95); the SLA's `confidence:` or 95 % for show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The interval and n as reports show them: `[-1.2 %, 0.31 %] n=30`, `n=1`, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval_text: String,
}

impl SlaResult {
    pub fn passed(&self) -> bool {
        self.verdict.passed()
    }
}

/// What an SLA metric evaluated to before comparison.
pub(crate) enum Measure {
    Value {
        value: f64,
        detail: String,
    },
    /// A ratio metric: the mean of `pairs` per-pair values, with its interval (two or more
    /// pairs) at the level the SLA asks for.
    Paired {
        value: f64,
        detail: String,
        pairs: usize,
        interval: Option<Interval>,
        confidence: f64,
    },
    NoData(String),
    NotEvaluated(String),
}

/// Arm name → replicate number → that replicate's observations.
pub type ArmReplicates<'a> = BTreeMap<String, BTreeMap<u32, &'a Observations>>;

/// The observations a set of SLAs is evaluated against: the run itself, plus each A/B arm's
/// observations (empty without arms).
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub obs: &'a Observations,
    pub arms: &'a BTreeMap<String, Observations>,
    /// Every replicate of every arm (arm → replicate number → observations): ratio SLAs pair
    /// arm A and arm B of the same replicate. Empty → `arms` is taken as one pair.
    pub arm_replicates: &'a ArmReplicates<'a>,
    /// How the arms ran: replicate pairs (interleaved) or second-by-second pairs within each
    /// replicate (concurrent).
    pub arms_mode: ArmsMode,
    /// Arm names in scenario order: a ratio SLA without `arms:` compares the first two.
    pub arm_names: &'a [String],
    /// The scenario's transactions: a per-route server SLA finds the app's route template
    /// that the transaction's path matches.
    pub transactions: &'a [Transaction],
}

pub(crate) fn phase_kind(p: Phase) -> PhaseKind {
    match p {
        Phase::Load => PhaseKind::Load,
        Phase::Before => PhaseKind::Before,
        Phase::During => PhaseKind::During,
        Phase::After => PhaseKind::After,
    }
}

/// The SLA's phase and its windows, or the answer that the phase did not occur in the run.
pub(crate) fn phase_windows(
    sla: &Sla,
    obs: &Observations,
) -> Result<(PhaseKind, Vec<crate::observe::Window>), Measure> {
    let phase = phase_kind(sla.phase);
    let windows = obs.windows(phase);
    if windows.is_empty() {
        return Err(phase_missing(phase));
    }
    Ok((phase, windows))
}

/// The answer for an SLA whose phase did not occur in the run.
pub(crate) fn phase_missing(phase: PhaseKind) -> Measure {
    Measure::NoData(format!(
        "phase `{}` does not occur in this run",
        phase.as_str()
    ))
}

/// The windows an SLA looks at: its phase, narrowed to its `stage:` when it has one.
pub(crate) fn sla_windows(
    sla: &Sla,
    obs: &Observations,
) -> Result<Vec<crate::observe::Window>, String> {
    let windows = obs.windows(phase_kind(sla.phase));
    let Some(n) = sla.stage else {
        return Ok(windows);
    };
    let Some(stage) = obs.stages.get((n as usize).saturating_sub(1)) else {
        return Err(format!("stage {n} was not run"));
    };
    let sw = stage.window();
    Ok(windows.iter().filter_map(|w| w.intersect(&sw)).collect())
}

/// Evaluates one SLA. `all` is the scenario's full SLA list (recovery time uses the
/// latency and error-rate SLAs as its definition of "recovered").
pub fn evaluate(sla: &Sla, all: &[Sla], input: EvalInput<'_>) -> SlaResult {
    let unit = Unit::of(sla.metric, &sla.threshold);
    // `arm:` judges that arm's observations instead of the first arm's.
    let input = match &sla.arm {
        Some(arm) => match input.arms.get(arm) {
            Some(obs) => EvalInput { obs, ..input },
            None => {
                return result(
                    sla,
                    unit,
                    Measure::NoData(format!("arm `{arm}` did not run")),
                )
            }
        },
        None => input,
    };
    let measure = match sla.metric {
        Metric::LatencyP50
        | Metric::LatencyP95
        | Metric::LatencyP99
        | Metric::LatencyMax
        | Metric::ErrorRate
        | Metric::Throughput
        | Metric::DroppedRequests
        | Metric::OfferedRate => client::measure(sla, input.obs),
        Metric::MaxSustainedRate => match capacity::sustained(all, input.obs) {
            Ok((value, detail)) => Measure::Value { value, detail },
            Err(why) => Measure::NoData(why),
        },
        Metric::PoolEfficiency
        | Metric::PoolUtilization
        | Metric::AcquireWaitP95
        | Metric::HealthScore
        | Metric::ServerLatencyP95
        | Metric::FallbackActivations
        | Metric::PendingRequests => server::measure(sla, input.obs, input.transactions),
        Metric::DbSessionsOpenedPerRequest | Metric::DbConnectionsPeak => {
            database::measure(sla, input.obs)
        }
        Metric::PgbouncerClientsWaitingPeak
        | Metric::PgbouncerServerConnectionsPeak
        | Metric::PgbouncerAvgWait => pgbouncer::measure(sla, input.obs),
        Metric::AlertLatency
        | Metric::AlertResolution
        | Metric::DuplicateNotifications
        | Metric::NotificationsWhileInhibited
        | Metric::NotificationsWhileSilenced => alerts::measure(sla, input.obs),
        Metric::RecoveryTime => alerts::recovery_time(all, input.obs),
        Metric::P95Improvement
        | Metric::CapacityRatio
        | Metric::ConnectionOverheadReduction
        | Metric::ThroughputLoss
        | Metric::CpuPerRequestIncrease => ratios::measure(sla, all, &input),
    };
    let judged = result(sla, unit, measure);
    match &sla.noise_floor {
        Some(pair) => against_noise_floor(judged, sla, pair, all, &input),
        None => judged,
    }
}

/// Holds a ratio SLA's verdict against the run's own noise: the same metric between two arms
/// that differ in nothing (`noise_floor:`). An A/A interval wider than the threshold says that
/// noise alone moves the figure by more than the threshold; a measured value within that width
/// of the threshold could then have landed on either side, so it is inconclusive. A value
/// farther away (a gross cost, a clear pass) keeps its verdict.
fn against_noise_floor(
    mut judged: SlaResult,
    sla: &Sla,
    pair: &crate::scenario::ArmPair,
    all: &[Sla],
    input: &EvalInput<'_>,
) -> SlaResult {
    let aa_sla = Sla {
        arms: Some(pair.clone()),
        noise_floor: None,
        ..sla.clone()
    };
    let names = format!("{} vs {}", pair.treatment, pair.baseline);
    let unit = judged.unit;
    let interval = match ratios::measure(&aa_sla, all, input) {
        Measure::Paired {
            interval: Some(iv), ..
        } => iv,
        Measure::Paired { .. } => {
            return undecidable(
                judged,
                format!("noise floor ({names}): one pair, no interval"),
            )
        }
        Measure::NoData(why) | Measure::NotEvaluated(why) => {
            return undecidable(judged, format!("noise floor ({names}): {why}"))
        }
        Measure::Value { .. } => return judged,
    };
    let width = interval.hi - interval.lo;
    let threshold = sla.threshold.canonical();
    let floor = format!(
        "noise floor ({names}) [{}, {}]",
        format_value(interval.lo, unit),
        format_value(interval.hi, unit)
    );
    let decisive = judged
        .measured
        .is_some_and(|v| (v - threshold).abs() > width);
    if width > threshold.abs() && !decisive {
        return undecidable(
            judged,
            format!("{floor} is wider than the threshold and the value lies within it"),
        );
    }
    judged.detail.push_str(&format!("; {floor}"));
    judged
}

/// A verdict that cannot stand without its noise floor: inconclusive, saying why. A missing
/// value or a metric not evaluated stays the failure it is.
fn undecidable(mut judged: SlaResult, why: String) -> SlaResult {
    judged.detail.push_str(&format!("; {why}"));
    if judged.verdict.decided() {
        judged.verdict = Verdict::Inconclusive;
    }
    judged
}

/// "No data" for a metric of a once-a-second `source` (`postgres`, `pgbouncer`): `what` was
/// looked for in `samples` samples `within` the phase; `error` is why the first failed one did.
pub(crate) fn no_source_figures(
    what: &str,
    within: &str,
    source: crate::scenario::Source,
    samples: usize,
    error: Option<&str>,
) -> String {
    match error {
        Some(r) => format!("no {what} figures in the {within} (the {source} source failed: {r})"),
        None if samples == 0 => format!(
            "no {what} figures: no {source} samples in the phase (is `{source}` in sources?)"
        ),
        None => format!("no {what} figures in the {within}"),
    }
}

/// The verdict of `measure` against the SLA's threshold, with everything reports show.
fn result(sla: &Sla, unit: Unit, measure: Measure) -> SlaResult {
    let threshold = sla.threshold.canonical();
    let point = |value: f64| {
        if holds(sla.comparator, value, threshold) {
            Verdict::Met
        } else {
            Verdict::Failed
        }
    };
    let mut paired = None;
    let (measured, verdict, detail) = match measure {
        Measure::Value { value, detail } => (Some(value), point(value), detail),
        Measure::Paired {
            value,
            mut detail,
            pairs,
            interval,
            confidence,
        } => {
            paired = Some((pairs, interval, confidence));
            let verdict = match (sla.confidence, interval) {
                (None, _) => point(value),
                (Some(_), Some(iv)) => {
                    match (
                        holds(sla.comparator, iv.lo, threshold),
                        holds(sla.comparator, iv.hi, threshold),
                    ) {
                        (true, true) => Verdict::Met,
                        (false, false) => Verdict::Failed,
                        _ => Verdict::Inconclusive,
                    }
                }
                (Some(_), None) => {
                    detail.push_str("; one pair has no interval to decide on");
                    Verdict::Inconclusive
                }
            };
            (Some(value), verdict, detail)
        }
        Measure::NoData(why) => (None, Verdict::NoData, why),
        Measure::NotEvaluated(why) => (None, Verdict::NotEvaluated, why),
    };
    let interval_text = match paired {
        Some((n, Some(iv), _)) => format!(
            "[{}, {}] n={n}",
            format_value(iv.lo, unit),
            format_value(iv.hi, unit)
        ),
        Some((n, None, _)) => format!("n={n}"),
        None => String::new(),
    };
    SlaResult {
        label: sla.label(),
        metric: sla.metric.as_str().to_string(),
        comparator: sla.comparator.as_str().to_string(),
        route: sla.route.clone(),
        phase: sla.phase.to_string(),
        threshold,
        threshold_text: sla.threshold.to_string(),
        unit,
        measured_text: measured
            .map(|v| format_value(v, unit))
            .unwrap_or_else(|| "-".to_string()),
        measured,
        verdict,
        detail,
        pairs: paired.map(|p| p.0),
        interval: paired.and_then(|p| p.1),
        confidence: paired.and_then(|p| p.1.map(|_| p.2)),
        interval_text,
    }
}

/// Evaluates every SLA of a scenario, in order.
pub fn evaluate_all(slas: &[Sla], input: EvalInput<'_>) -> Vec<SlaResult> {
    slas.iter().map(|s| evaluate(s, slas, input)).collect()
}

/// After an early stop: the SLA that stopped the run failed on the figures that made its
/// failure certain (the final window drops the partial last second, so it is not re-judged
/// there); every other SLA was judged on the shortened load, which its detail says.
pub fn apply_early_stop(results: &mut [SlaResult], stop: &EarlyStop) {
    for (i, r) in results.iter_mut().enumerate() {
        if i == stop.sla_index {
            r.verdict = Verdict::Failed;
            r.measured = Some(stop.measured);
            r.measured_text = format_value(stop.measured, r.unit);
            r.detail = format!(
                "certain failure, the run stopped early at {:.1} s of {:.0} s: {}",
                stop.at_s, stop.planned_s, stop.reason
            );
        } else {
            r.detail.push_str(&format!(
                "; judged on {:.1} s of {:.0} s planned (the run stopped early)",
                stop.at_s, stop.planned_s
            ));
        }
    }
}

/// Whether every SLA was met (an empty list passes: there was nothing to fail).
pub fn all_met(results: &[SlaResult]) -> bool {
    results.iter().all(SlaResult::passed)
}

/// Whether an SLA failed outright (failed, no data, not evaluated): exit 1. Inconclusive
/// SLAs are not met but did not fail.
pub fn any_failed(results: &[SlaResult]) -> bool {
    results
        .iter()
        .any(|r| !r.passed() && r.verdict != Verdict::Inconclusive)
}

/// `measured <op> threshold`; a non-finite measurement never holds.
fn holds(op: Comparator, measured: f64, threshold: f64) -> bool {
    measured.is_finite() && op.holds(measured, threshold)
}

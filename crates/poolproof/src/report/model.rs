//! The report data model (what report.json holds, schema version 1) and how it is built
//! from a run's observations and SLA verdicts.

use crate::app::host::HostFacts;
use crate::observe::{
    AlertDelivery, FaultEvent, Observations, PhaseKind, ServerSample, SilenceEvent, Window,
    WindowStats,
};
use crate::scenario::Scenario;
use crate::sla::SlaResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any incompatible change of report.json.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything needed to build a report.
pub struct ReportInput<'a> {
    pub scenario: &'a Scenario,
    /// The scenario file as given on the command line, if any.
    pub scenario_path: Option<&'a str>,
    pub run_id: &'a str,
    /// RFC 3339 start time of the run.
    pub started_at: &'a str,
    /// Wall time of the whole run in seconds, when known.
    pub wall_time_s: Option<f64>,
    pub host: HostFacts,
    /// The primary observations (the run, or the first arm of an A/B run).
    pub obs: &'a Observations,
    /// Per-arm observations of an A/B run (empty otherwise).
    pub arms: &'a BTreeMap<String, Observations>,
    pub slas: &'a [SlaResult],
    pub interrupted: bool,
    /// Problems worth showing that are not SLA verdicts (e.g. a sampler endpoint missing).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    pub poolproof: String,
    pub goose: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Client-side figures over a window (latencies in ms, error rate as a fraction).
///
/// `p50_ms`..`mean_ms` are corrected latencies: from each request's scheduled start when it
/// had one (open model, paced closed model), so waiting in the generator counts. The
/// `uncorrected_*` figures are service times from the actual send; with the scheduled,
/// late and dropped counts they appear only when requests started on a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub throughput_rps: Option<f64>,
    /// Scheduled starts (by scheduled time), and of them those sent late or never sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scheduled: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// Dropped / scheduled starts (fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_rate: Option<f64>,
    /// Scheduled starts per second: what was offered (compare with `throughput_rps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_rps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_max_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub seconds: f64,
    /// Error counts by status code, `timeout` or `transport`.
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl Summary {
    pub fn of(w: &WindowStats) -> Summary {
        let sched = w.scheduled > 0;
        let unc = |q: f64| {
            if sched {
                w.service.quantile_ms(q)
            } else {
                None
            }
        };
        Summary {
            requests: w.requests,
            errors: w.error_count(),
            error_rate: w.error_rate(),
            throughput_rps: w.throughput_rps(),
            scheduled: w.scheduled,
            late: w.late,
            dropped: w.dropped,
            dropped_rate: w.dropped_rate(),
            offered_rps: w.offered_rps(),
            uncorrected_p50_ms: unc(0.5),
            uncorrected_p95_ms: unc(0.95),
            uncorrected_p99_ms: unc(0.99),
            uncorrected_max_ms: if sched { w.service.max_ms() } else { None },
            p50_ms: w.latency.quantile_ms(0.5),
            p95_ms: w.latency.quantile_ms(0.95),
            p99_ms: w.latency.quantile_ms(0.99),
            max_ms: w.latency.max_ms(),
            mean_ms: w.latency.mean_ms(),
            seconds: w.seconds,
            errors_by_kind: w.errors.iter().map(|(k, n)| (k.label(), *n)).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSummary {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// One second of client-side data (overall, and per route).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSecond {
    /// Second start, offset from the start of measured load.
    pub t: i64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Uncorrected (service-time) p95, when requests started on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_p95_ms: Option<f64>,
    /// Starts scheduled in this second, and of them late and dropped ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scheduled: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    pub routes: BTreeMap<String, RouteSecondSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSecondSummary {
    pub requests: u64,
    pub errors: u64,
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub client: Vec<ClientSecond>,
    pub server: Vec<ServerSample>,
    /// The database's samples (`postgres` source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db: Vec<crate::observe::DbSample>,
    /// PgBouncer's samples (`pgbouncer` source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pgbouncer: Vec<crate::observe::PgbouncerSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub name: String,
    pub summary: Summary,
    pub routes: Vec<RouteSummary>,
}

/// The app processes' CPU over one arm run's measured load (locally started apps only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCpuRun {
    /// The arm (absent without arms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub replicate: u32,
    /// Client-side requests completed in the measured load.
    pub requests: u64,
    /// CPU seconds of the arm's app processes over it (schedstat, summed over instances).
    pub cpu_seconds: f64,
    /// Microseconds of app CPU per completed request.
    pub cpu_us_per_request: Option<f64>,
}

impl AppCpuRun {
    /// The figures of one arm run; `None` without CPU samples at both ends of its load.
    pub fn of(arm: Option<&str>, replicate: u32, obs: &Observations) -> Option<AppCpuRun> {
        let cpu = obs.app_cpu_in(&obs.windows(PhaseKind::Load))?;
        Some(AppCpuRun {
            arm: arm.map(str::to_string),
            replicate,
            requests: cpu.requests,
            cpu_seconds: cpu.cpu_ns as f64 / 1e9,
            cpu_us_per_request: cpu.us_per_request(),
        })
    }

    /// Its row of the reports' app CPU table, unescaped: arm, replicate, requests, CPU and CPU
    /// per request (`missing` without requests).
    pub fn cells(&self, missing: &str) -> [String; 5] {
        [
            self.arm.clone().unwrap_or_else(|| "-".into()),
            self.replicate.to_string(),
            self.requests.to_string(),
            format!("{:.3} s", self.cpu_seconds),
            self.cpu_us_per_request
                .map_or_else(|| missing.into(), |u| format!("{u:.2} µs")),
        ]
    }
}

/// How well the load generator kept its own schedule over measured load: of the starts a
/// user was already waiting for, how many it sent later than the late tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorReport {
    pub starts: u64,
    pub late: u64,
    pub p99_lag_ms: Option<f64>,
    pub max_lag_ms: Option<f64>,
}

impl GeneratorReport {
    pub fn of(g: &crate::observe::GeneratorLag) -> GeneratorReport {
        GeneratorReport {
            starts: g.starts,
            late: g.late,
            p99_lag_ms: g.p99_ms,
            max_lag_ms: g.max_ms,
        }
    }
}

/// The content of report.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub scenario: String,
    pub description: String,
    pub scenario_path: Option<String>,
    pub run_id: String,
    pub started_at: String,
    pub wall_time_s: Option<f64>,
    /// All SLAs met and the run was not interrupted.
    pub passed: bool,
    pub interrupted: bool,
    /// An `abort_on_fail` SLA's failure became certain during the load and stopped the run
    /// early: which SLA, at which second of measured load, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<crate::sla::EarlyStop>,
    /// Labels of the SLAs that were not met (failed, no data or not evaluated).
    pub failed_slas: Vec<String>,
    pub host: HostFacts,
    pub tools: Tools,
    /// The scenario as run, secrets and secret-looking env values replaced by `***`.
    pub settings: serde_json::Value,
    pub slas: Vec<SlaResult>,
    /// Client-side figures over the measured load.
    pub summary: Summary,
    pub routes: Vec<RouteSummary>,
    pub phases: Vec<PhaseSpan>,
    pub faults: Vec<FaultEvent>,
    pub alerts: Vec<AlertDelivery>,
    /// Alert silences the scenario created, as they were in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silences: Vec<SilenceEvent>,
    pub arms: Vec<ArmSummary>,
    pub series: Series,
    /// Per-arm time series of an A/B run (empty otherwise), for side-by-side charts.
    #[serde(default)]
    pub arm_series: BTreeMap<String, Series>,
    pub notes: Vec<String>,
    /// Per-replicate figures (every arm × replicate) for the regression gate and the noise
    /// check (`crate::compare`); filled by the run loop after [`RunReport::build`].
    #[serde(default)]
    pub replicates: Vec<crate::compare::ReplicateSummary>,
    /// App CPU per arm run (every arm × replicate of locally started apps); filled by the run
    /// loop after [`RunReport::build`].
    #[serde(default)]
    pub app_cpu: Vec<AppCpuRun>,
    /// The load generator's own timeliness (scheduled loads): whether it kept its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorReport>,
    /// Sharded load: every generator shard's rate, lag, CPU and clock offset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<crate::observe::ShardFigures>,
    /// `validate --baseline`: the regression gate's comparison, shown in report.md and
    /// report.html. Not in report.json: the run directory's comparison.json carries it.
    #[serde(skip)]
    pub comparison: Option<crate::compare::Comparison>,
    /// `--history FILE`: the scenario's trend over the recorded runs (this one last), drawn in
    /// report.html. Not in report.json: the history file carries it.
    #[serde(skip)]
    pub history: Option<crate::history::trend::Trend>,
}

fn load_summaries(obs: &Observations) -> (Summary, Vec<RouteSummary>) {
    let load = obs.windows(PhaseKind::Load);
    let summary = Summary::of(&obs.client.window(&load, None));
    let routes = obs
        .client
        .routes
        .iter()
        .map(|r| RouteSummary {
            name: r.clone(),
            summary: Summary::of(&obs.client.window(&load, Some(r))),
        })
        .collect();
    (summary, routes)
}

fn client_series(obs: &Observations) -> Vec<ClientSecond> {
    let from = obs
        .warmup
        .map(|w| w.start)
        .unwrap_or(obs.load.start)
        .floor() as i64;
    let to = obs.load.end.ceil() as i64;
    (from..to)
        .map(|t| {
            let all = obs.client.second(t, None);
            let routes = obs
                .client
                .routes
                .iter()
                .map(|r| {
                    let w = obs.client.second(t, Some(r));
                    (
                        r.clone(),
                        RouteSecondSummary {
                            requests: w.requests,
                            errors: w.error_count(),
                            p95_ms: w.latency.quantile_ms(0.95),
                            dropped: w.dropped,
                        },
                    )
                })
                .collect();
            ClientSecond {
                t,
                requests: all.requests,
                errors: all.error_count(),
                p50_ms: all.latency.quantile_ms(0.5),
                p95_ms: all.latency.quantile_ms(0.95),
                p99_ms: all.latency.quantile_ms(0.99),
                max_ms: all.latency.max_ms(),
                uncorrected_p95_ms: if all.scheduled > 0 {
                    all.service.quantile_ms(0.95)
                } else {
                    None
                },
                scheduled: all.scheduled,
                late: all.late,
                dropped: all.dropped,
                routes,
            }
        })
        .collect()
}

fn phases(obs: &Observations) -> Vec<PhaseSpan> {
    let mut out = Vec::new();
    for kind in [
        PhaseKind::Warmup,
        PhaseKind::Load,
        PhaseKind::Before,
        PhaseKind::During,
        PhaseKind::After,
    ] {
        for Window { start, end } in obs.windows(kind) {
            out.push(PhaseSpan {
                name: kind.as_str().to_string(),
                start,
                end,
            });
        }
    }
    out
}

/// Env names whose values are treated as secrets in the settings.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|s| n.contains(s))
}

/// Replaces secret-looking env values and URL passwords anywhere in the settings.
fn scrub(v: &mut serde_json::Value, key: Option<&str>) {
    match v {
        serde_json::Value::String(s) => {
            if key.is_some_and(secret_name) {
                *s = "***".to_string();
            } else {
                *s = crate::redact::redact_urls(s);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub(x, None)),
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                scrub(x, Some(k));
            }
        }
        _ => {}
    }
}

impl RunReport {
    pub fn build(input: ReportInput<'_>) -> RunReport {
        let obs = input.obs;
        let (summary, routes) = load_summaries(obs);
        let mut settings = serde_json::to_value(input.scenario).unwrap_or(serde_json::Value::Null);
        scrub(&mut settings, None);
        let failed_slas: Vec<String> = input
            .slas
            .iter()
            .filter(|s| !s.passed())
            .map(|s| s.label.clone())
            .collect();
        let arms = input
            .arms
            .iter()
            .map(|(name, o)| {
                let (summary, routes) = load_summaries(o);
                ArmSummary {
                    name: name.clone(),
                    summary,
                    routes,
                }
            })
            .collect();
        RunReport {
            schema_version: SCHEMA_VERSION,
            scenario: input.scenario.name.clone(),
            description: input.scenario.description.clone(),
            scenario_path: input.scenario_path.map(str::to_string),
            run_id: input.run_id.to_string(),
            started_at: input.started_at.to_string(),
            wall_time_s: input.wall_time_s,
            passed: failed_slas.is_empty() && !input.interrupted,
            interrupted: input.interrupted,
            early_stop: None,
            failed_slas,
            host: input.host,
            tools: Tools {
                poolproof: env!("CARGO_PKG_VERSION").to_string(),
                goose: crate::load::GOOSE_VERSION.to_string(),
            },
            settings,
            slas: input.slas.to_vec(),
            summary,
            routes,
            phases: phases(obs),
            faults: obs.faults.clone(),
            alerts: obs.alerts.clone(),
            silences: obs.silences.clone(),
            arms,
            series: Series {
                client: client_series(obs),
                server: obs.server.clone(),
                db: obs.db.clone(),
                pgbouncer: obs.pgbouncer.clone(),
            },
            arm_series: input
                .arms
                .iter()
                .map(|(name, o)| {
                    (
                        name.clone(),
                        Series {
                            client: client_series(o),
                            server: o.server.clone(),
                            db: o.db.clone(),
                            pgbouncer: o.pgbouncer.clone(),
                        },
                    )
                })
                .collect(),
            notes: input.notes,
            replicates: Vec::new(),
            app_cpu: Vec::new(),
            generator: obs.generator.as_ref().map(GeneratorReport::of),
            generators: obs.shards.clone(),
            comparison: None,
            history: None,
        }
    }
}

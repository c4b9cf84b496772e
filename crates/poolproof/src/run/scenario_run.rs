//! One scenario from start to verdict: provision → (the app migrates and seeds at start-up) →
//! start the app instance(s) → wait until ready → warm-up and measured load (with the fault
//! timeline) while sampling the app every second → stop → evaluate SLAs → write reports →
//! tear down. Arms × replicates repeat the app-and-load part on the same services.

use super::arm::{
    all_ready, start_instances, ArmContext, ArmMeasurement, ArmSpec, SAMPLE_EVERY, STOP_GRACE,
};
use super::error::RunError;
use super::plan::load_plan;
use crate::app::{self, AppInstance};
use crate::faults::timeline::check as check_faults;
use crate::faults::{FaultTargets, PlannedFault, Timeline};
use crate::generators::LoadDriver;
use crate::interrupt;
use crate::load::{LoadError, LoadOutcome};
use crate::observe::Observations;
use crate::progress::Progress;
use crate::provider::{self, Provisioned};
use crate::sampler::{PgbouncerTarget, Sampler, SourceSet};
use crate::scenario::{ArmsMode, Launch, Provider, Scenario, Source, DEFAULT_METRICS_PATH};
use crate::sink::WebhookSink;
use poolproof_services::proxy::TcpProxy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options shared by all scenarios of one `validate`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run directories go to `<reports_dir>/<scenario>/<run-id>/`.
    pub reports_dir: PathBuf,
    /// `--baseline`: after the run, gate against these figures (crate::compare).
    pub baseline: Option<PathBuf>,
    /// The regression gate's settings (`--tolerance`, ...).
    pub gate: crate::compare::GateConfig,
    /// `poolproof gate`: after the run, compare these two arms of it pair by pair.
    pub arm_pair: Option<PairedArms>,
    /// `--history FILE`: append the run's summary to this history file (crate::history).
    pub history: Option<PathBuf>,
}

/// Two arms of one run that `poolproof gate` compares: BASE and NEW, with the labels the
/// comparison shows for them (e.g. the commits they were built from).
#[derive(Debug, Clone)]
pub struct PairedArms {
    pub base_arm: String,
    pub base_label: String,
    pub new_arm: String,
    pub new_label: String,
}

/// The measurements of one arm in one replicate.
pub struct ArmRun {
    pub arm: String,
    pub replicate: u32,
    /// 1-based place in the run's measuring order (crate::compare::replicate_schedule).
    pub position: u32,
    pub obs: Observations,
    /// CPU the poolproof process used during this arm's load (noise self-check).
    pub cpu: Option<crate::app::meter::CpuUsage>,
    /// `crossover:`: the replicate's switches (the same for every arm of it).
    pub(crate) crossover: Option<super::crossover::Switches>,
}

/// Everything a finished run hands to SLA evaluation and the report writers.
pub struct Measured {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub provider: Provider,
    pub runs: Vec<ArmRun>,
    /// Ctrl-C stopped the load early: the data is partial and gets no verdict.
    pub interrupted: bool,
    /// An `abort_on_fail` SLA's failure became certain and stopped the load (the run's
    /// remaining replicates were not run).
    pub early_stop: Option<crate::sla::EarlyStop>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub wall: Duration,
}

/// Runs `scenario` and returns its measurements (or why there are none). `progress` shows
/// the phases; the run directory is created first so that even a failed run leaves its logs.
pub async fn measure(
    scenario: &Scenario,
    opts: &RunOptions,
    progress: &mut Progress,
) -> Result<Measured, RunError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let provider = provider::resolve(scenario).await;
    let run_id = super::id::new_run_id();
    let run_dir = opts.reports_dir.join(&scenario.name).join(&run_id);
    std::fs::create_dir_all(&run_dir).map_err(|e| {
        RunError::infra(format!(
            "cannot create the run directory {}: {e}",
            run_dir.display()
        ))
    })?;

    progress.phase(&format!("provisioning services ({provider})"));
    // Provisioning is not cancelled midway (a half-created container would escape its handle);
    // an interruption is looked at once it is done.
    let provisioned = provider::provision(scenario, provider, &run_id)
        .await
        .map_err(|e| RunError::usage_or_infra(e.is_usage(), e))?;
    let result = with_services(scenario, &provisioned, &run_dir, progress).await;
    progress.phase("tearing down");
    provisioned.teardown().await;
    let (runs, interrupted, early_stop) = result?;
    Ok(Measured {
        run_id,
        run_dir,
        provider,
        runs,
        interrupted,
        early_stop,
        started_at,
        wall: started.elapsed(),
    })
}

/// What the arms × replicates loop hands back: the runs, whether Ctrl-C cut them short, and
/// the early stop of an `abort_on_fail` SLA that ended them.
type Runs = (Vec<ArmRun>, bool, Option<crate::sla::EarlyStop>);

/// Runs arms × replicates on provisioned services.
async fn with_services(
    scenario: &Scenario,
    provisioned: &Provisioned,
    run_dir: &Path,
    progress: &mut Progress,
) -> Result<Runs, RunError> {
    if interrupt::requested() {
        return Err(RunError::Interrupted);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| RunError::infra(format!("HTTP client: {e}")))?;
    let arms: Vec<ArmSpec> = if scenario.arms.is_empty() {
        vec![ArmSpec {
            name: "default".to_owned(),
            env: BTreeMap::new(),
            launch: scenario.launch(None),
        }]
    } else {
        scenario
            .arms
            .iter()
            .map(|a| ArmSpec {
                name: a.name.clone(),
                env: a.env.0.clone(),
                launch: scenario.launch(Some(a)),
            })
            .collect()
    };
    let (binary, sink) = match provisioned {
        Provisioned::Local(services) => {
            let binary = if arms
                .iter()
                .any(|a| matches!(a.launch, Launch::PooledApp { .. }))
            {
                progress.phase("locating pooled-app");
                Some(
                    app::locate_binary(scenario.app.binary.as_deref())
                        .await
                        .map_err(RunError::infra)?,
                )
            } else {
                None
            };
            if !scenario.fixtures.sql.0.is_empty() {
                progress.phase("applying fixtures.sql");
                app::fixtures::apply(services.database_url(), &scenario.fixtures.sql.0)
                    .await
                    .map_err(|e| RunError::usage_or_infra(e.is_usage(), e))?;
            }
            let sink = WebhookSink::start().await.map_err(RunError::infra)?;
            (binary, Some(sink))
        }
        Provisioned::External(_) => (None, None),
    };
    let sources = source_set(scenario, provisioned);
    let no_env = BTreeMap::new();
    let base = ArmContext {
        scenario,
        provisioned,
        run_dir,
        client: &client,
        binary: binary.as_deref(),
        launch: &arms[0].launch,
        sources: &sources,
        sink: sink.as_ref(),
        arm: "",
        arm_env: &no_env,
        replicate: 0,
        label: String::new(),
    };
    let result = match scenario.arms_mode {
        ArmsMode::Concurrent => concurrent_runs(&base, &arms, progress).await,
        ArmsMode::Interleaved => interleaved_runs(&base, &arms, progress).await,
    };
    if let Some(sink) = sink {
        sink.shutdown().await;
    }
    result
}

/// Every arm at once, replicate by replicate (`arms_mode: concurrent`).
async fn concurrent_runs(
    base: &ArmContext<'_>,
    arms: &[ArmSpec],
    progress: &mut Progress,
) -> Result<Runs, RunError> {
    let mut runs = Vec::new();
    for replicate in 1..=base.scenario.replicates {
        let measured = super::concurrent::run_replicate(base, arms, replicate, progress).await?;
        let cut = measured.iter().any(|m| m.interrupted);
        for (arm, m) in arms.iter().zip(measured) {
            runs.push(ArmRun {
                arm: arm.name.clone(),
                replicate,
                // All arms of a replicate ran at once: they share its place.
                position: replicate,
                obs: m.obs,
                cpu: m.cpu,
                crossover: m.crossover,
            });
        }
        if cut {
            return Ok((runs, true, None));
        }
    }
    Ok((runs, false, None))
}

/// One arm after the other, in the rotating measuring order (`arms_mode: interleaved`).
async fn interleaved_runs(
    base: &ArmContext<'_>,
    arms: &[ArmSpec],
    progress: &mut Progress,
) -> Result<Runs, RunError> {
    let scenario = base.scenario;
    let names: Vec<String> = scenario.arms.iter().map(|a| a.name.clone()).collect();
    let mut runs = Vec::new();
    for (position, arm_index, replicate) in measuring_order(&names, scenario.replicates) {
        let Some(spec) = arms.get(arm_index) else {
            continue;
        };
        let ctx = ArmContext {
            arm: &spec.name,
            arm_env: &spec.env,
            launch: &spec.launch,
            replicate,
            label: label(scenario, arms.len(), &spec.name, replicate),
            ..*base
        };
        let m = run_arm(&ctx, progress).await?;
        runs.push(ArmRun {
            arm: spec.name.clone(),
            replicate,
            position,
            obs: m.obs,
            cpu: m.cpu,
            crossover: None,
        });
        if m.interrupted {
            return Ok((runs, true, None));
        }
        // The verdict is already lost: the remaining replicates would change nothing.
        if let Some(stop) = m.early_stop {
            progress.phase(&format!("{}{}", ctx.label, stop.summary()));
            return Ok((runs, false, Some(stop)));
        }
    }
    Ok((runs, false, None))
}

/// The run's measuring order as (1-based position, arm index, replicate): interleaved
/// replicate by replicate, the arm order rotated each replicate (AB, BA, AB, ...) so host drift
/// hits every arm alike and no arm always runs first. Single-arm scenarios use arm index 0.
fn measuring_order(arm_names: &[String], replicates: u32) -> Vec<(u32, usize, u32)> {
    crate::compare::replicate_schedule(arm_names, replicates)
        .into_iter()
        .zip(1u32..)
        .map(|(step, position)| {
            let arm = step
                .arm
                .and_then(|a| arm_names.iter().position(|n| *n == a))
                .unwrap_or(0);
            (position, arm, step.replicate)
        })
        .collect()
}

fn label(scenario: &Scenario, arms: usize, arm: &str, replicate: u32) -> String {
    match (
        arms > 1 || !scenario.arms.is_empty(),
        scenario.replicates > 1,
    ) {
        (true, true) => format!("arm {arm}, replicate {replicate}: "),
        (true, false) => format!("arm {arm}: "),
        (false, true) => format!("replicate {replicate}: "),
        (false, false) => String::new(),
    }
}

/// One arm in one replicate: app up, load, app down.
async fn run_arm(
    ctx: &ArmContext<'_>,
    progress: &mut Progress,
) -> Result<ArmMeasurement, RunError> {
    let sc = ctx.scenario;
    let plan: Vec<PlannedFault> = sc.faults.iter().map(PlannedFault::from).collect();
    let mut faults = None;
    // The app's DATABASE_URL points at the proxy, so the proxy must live as long as the app
    // does, not only while the timeline runs: the timeline drops its handle when its last
    // fault ends, which used to close the proxy and leave the app without a database.
    let mut proxy_for_app: Option<Arc<TcpProxy>> = None;
    let (mut instances, targets, token) = match ctx.provisioned {
        Provisioned::Local(services) => {
            let n = sc.app.instances.max(1) as usize;
            // Latency and reset faults sit between the app and Postgres: the app's
            // DATABASE_URL goes through the harness' proxy (only then, so other runs measure
            // the direct path). Behind PgBouncer the provider has put the proxy between
            // PgBouncer and Postgres instead, and the app keeps PgBouncer's URL.
            let proxy = match services.postgres_proxy() {
                Some(p) => Some(p),
                None if plan.iter().any(|f| f.action.needs_proxy()) => {
                    let pg = services.postgres();
                    let proxy = TcpProxy::start(([127, 0, 0, 1], pg.port()).into())
                        .await
                        .map_err(RunError::infra)?;
                    Some(Arc::new(proxy))
                }
                None => None,
            };
            let database_url = match &proxy {
                Some(p) if services.pgbouncer().is_none() => via_port(
                    services.database_url(),
                    services.postgres().port(),
                    p.port(),
                ),
                _ => services.app_database_url(),
            };
            proxy_for_app.clone_from(&proxy);
            if !plan.is_empty() {
                let t = FaultTargets {
                    proxy,
                    sink: ctx.sink.cloned(),
                    postgres: Some(services.postgres_control()),
                    redis: Some(services.redis_control()),
                    postgres_admin_url: Some(services.database_url().to_owned()),
                    database: Some(services.postgres().database().to_owned()),
                };
                check_faults(&plan, &t).map_err(|e| RunError::Usage(e.to_string()))?;
                faults = Some((plan, t));
            }
            progress.phase(&format!(
                "{}starting {} ({n} instance{})",
                ctx.label,
                ctx.launch.name(),
                if n == 1 { "" } else { "s" }
            ));
            let instances = start_instances(ctx, &database_url, services.redis_url(), n)?;
            let token = sc
                .app
                .env
                .get("PERFORMANCE_API_TOKEN")
                .or_else(|| ctx.arm_env.get("PERFORMANCE_API_TOKEN").map(String::as_str))
                .map(str::to_owned);
            // The targets are the instances' URLs once they are ready (see `drive`).
            (instances, Vec::new(), token)
        }
        Provisioned::External(ext) => (
            Vec::new(),
            vec![ext.url.clone()],
            ext.token.as_ref().map(|t| t.expose().to_owned()),
        ),
    };
    let result = drive(ctx, &mut instances, targets, token, faults, progress).await;
    if !instances.is_empty() {
        progress.phase(&format!("{}stopping {}", ctx.label, ctx.launch.name()));
        futures::future::join_all(instances.iter_mut().map(|i| i.stop(STOP_GRACE))).await;
    }
    drop(proxy_for_app);
    result
}

/// Readiness, then the load with sampling and the fault timeline.
async fn drive(
    ctx: &ArmContext<'_>,
    instances: &mut [AppInstance],
    // The external app's URL; empty for instances poolproof starts (their URLs, known once
    // they are ready, are used).
    targets: Vec<String>,
    token: Option<String>,
    faults: Option<(Vec<PlannedFault>, FaultTargets)>,
    progress: &mut Progress,
) -> Result<ArmMeasurement, RunError> {
    let sc = ctx.scenario;
    let timeout = sc.app.ready_timeout.get();
    progress.phase(&format!("{}waiting for readiness", ctx.label));
    let ready = async {
        if instances.is_empty() {
            app::wait_ready_url(ctx.client, &targets[0], ctx.launch.ready(), timeout).await
        } else {
            all_ready(instances.iter_mut(), ctx.client, timeout).await
        }
    };
    tokio::select! {
        r = ready => r.map_err(RunError::infra)?,
        () = interrupt::wait() => return Err(RunError::Interrupted),
    }
    // An instance whose port was taken at start-up started again on another one.
    let targets = if instances.is_empty() {
        targets
    } else {
        instances.iter().map(|i| i.url.clone()).collect()
    };

    let plan = load_plan(
        &sc.load,
        targets.clone(),
        if instances.is_empty() {
            token.clone()
        } else {
            None
        },
    )
    .map_err(RunError::Usage)?;
    // abort_on_fail SLAs judge the first run (the one the SLAs read): watch only that one.
    // Runs with arms (scenario validation allows none; `poolproof gate` adds base and head)
    // compare arms over every replicate, which an early stop would cut short.
    let abort_rules = if ctx.replicate <= 1 && sc.arms.is_empty() {
        crate::sla::abort::rules(&sc.slas, &plan)
    } else {
        Vec::new()
    };
    let driver = LoadDriver::prepare(
        plan,
        sc.load.generators.as_ref(),
        ctx.run_dir.join("generators"),
    )
    .await
    .map_err(|e| match e {
        LoadError::InvalidPlan(_) => RunError::Usage(e.to_string()),
        e => RunError::infra(e),
    })?;
    let handle = driver.handle();
    let watch = super::early_stop::Watch::start(handle.clone(), abort_rules);
    // The silences count from the start of measured load too; they are deleted once it ends.
    let (silences_done, silences_done_rx) = tokio::sync::oneshot::channel::<()>();
    let silences = (!sc.silences.is_empty()).then(|| {
        let h = handle.clone();
        let plan = sc.silences.clone();
        let api = crate::silence::SilenceApi {
            client: ctx.client.clone(),
            base: targets[0].clone(),
            token: token.clone(),
        };
        tokio::spawn(async move {
            let Some(start) = h.wait_measure_start().await else {
                return Ok(Vec::new());
            };
            crate::silence::run(plan, api, start, silences_done_rx).await
        })
    });
    let sampler = Sampler::start(
        ctx.client.clone(),
        targets,
        token,
        SAMPLE_EVERY,
        ctx.sources.clone(),
    );
    // The app processes' CPU time at every second of measured load (locally started apps).
    let pids: Vec<u32> = instances.iter().filter_map(AppInstance::pid).collect();
    let app_cpu = crate::app::cpu::LoadWindowSampler::start(handle.clone(), vec![pids]);
    let live = handle.clone();
    progress.live(sc.load.measured(), move || live.progress());
    // The fault timeline counts from the start of measured load, known once warm-up ends;
    // when the load stops (also early, on Ctrl-C) every active fault is undone.
    let (load_done, load_done_rx) = tokio::sync::oneshot::channel::<()>();
    let timeline = faults.map(|(plan, targets)| {
        let h = handle.clone();
        tokio::spawn(async move {
            let Some(start) = h.wait_measure_start().await else {
                return Vec::new();
            };
            let tl = Timeline::start(plan, targets, start.into());
            let _ = load_done_rx.await;
            tl.finish().await
        })
    });
    let hold = tokio::spawn(interrupt::hold_killswitch());
    // The load generator's own CPU over ramp, warm-up and load (regression gate noise check).
    let cpu_meter = crate::app::meter::CpuMeter::start();
    let outcome = driver.run().await;
    let cpu = cpu_meter.and_then(|m| m.finish());
    let early_stop = match watch {
        Some(w) => w.finish().await,
        None => None,
    };
    hold.abort();
    let _ = load_done.send(());
    let _ = silences_done.send(());
    let silence_result = match silences {
        Some(t) => t
            .await
            .unwrap_or_else(|e| Err(format!("silence task failed: {e}"))),
        None => Ok(Vec::new()),
    };
    let (silence_events, silence_error) = match silence_result {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let fault_outcomes = match timeline {
        Some(t) => t
            .await
            .map_err(|e| RunError::infra(format!("fault timeline: {e}")))?,
        None => Vec::new(),
    };
    let sampled = sampler.stop().await;
    let app_cpu = app_cpu
        .finish()
        .await
        .map_err(|e| RunError::infra(format!("app CPU sampler: {e}")))?
        .into_iter()
        .next()
        .unwrap_or_default();
    progress.phase(&format!("{}load finished", ctx.label));
    let (outcome, shards): (LoadOutcome, _) = outcome.map_err(RunError::infra)?;
    let origin = handle.measure_start().unwrap_or_else(Instant::now);
    let alerts = ctx.sink.map(|s| s.observed(origin)).unwrap_or_default();
    let obs = Observations {
        client: outcome.client,
        server: sampled.server(origin),
        db: sampled.db(origin),
        pgbouncer: sampled.pgbouncer(origin),
        warmup: Some(outcome.warmup),
        load: outcome.load,
        faults: fault_outcomes
            .iter()
            .filter_map(|o| o.event.clone())
            .collect(),
        alerts,
        silences: silence_events,
        app_cpu,
        stages: crate::observe::StageSpan::of(&sc.load),
        generator: sc.load.is_scheduled().then_some(outcome.generator),
        shards,
        gaps: Vec::new(),
    };
    // A fault that could not be injected (or undone) leaves a run that did not test what
    // the scenario says: an infrastructure failure, not a verdict.
    if let Some(e) = fault_outcomes.iter().find_map(|o| o.error.as_ref()) {
        return Err(RunError::infra(format!("fault timeline: {e}")));
    }
    // Likewise a silence that could not be created (or removed).
    if let Some(e) = silence_error {
        return Err(RunError::infra(format!("silences: {e}")));
    }
    Ok(ArmMeasurement {
        obs,
        interrupted: outcome.interrupted || interrupt::requested(),
        cpu,
        early_stop,
        crossover: None,
    })
}

/// What the run's samplers read, from the scenario's `sources:`: the app's endpoints, for
/// `postgres` the run's database directly (not through the fault proxy or PgBouncer) or the
/// deployed app's monitoring URL, and for `pgbouncer` its admin console.
fn source_set(scenario: &Scenario, provisioned: &Provisioned) -> SourceSet {
    SourceSet {
        pooled_app: scenario.samples(Source::PooledApp),
        prometheus: scenario.samples(Source::Prometheus).then(|| {
            scenario
                .app
                .metrics_path
                .clone()
                .unwrap_or_else(|| DEFAULT_METRICS_PATH.to_owned())
        }),
        postgres: match provisioned {
            _ if !scenario.samples(Source::Postgres) => None,
            Provisioned::Local(services) => Some(services.database_url().to_owned()),
            Provisioned::External(ext) => ext
                .monitor_database_url
                .as_ref()
                .map(|u| u.expose().to_owned()),
        },
        pgbouncer: match provisioned {
            Provisioned::Local(services) if scenario.samples(Source::Pgbouncer) => {
                services.pgbouncer().map(|p| PgbouncerTarget {
                    admin_url: p.admin_url(),
                    database: services.postgres().database().to_owned(),
                })
            }
            _ => None,
        },
    }
}

/// `url` with its `127.0.0.1:{from}` port replaced by `to` (the app's way through the proxy).
fn via_port(url: &str, from: u16, to: u16) -> String {
    url.replacen(
        &format!("@127.0.0.1:{from}/"),
        &format!("@127.0.0.1:{to}/"),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::measuring_order;

    #[test]
    fn two_arms_alternate_ab_ba_ab() {
        let arms = vec!["pooled".to_string(), "unpooled".to_string()];
        let order: Vec<String> = measuring_order(&arms, 3)
            .into_iter()
            .map(|(pos, arm, rep)| format!("{pos}:{}{rep}", &arms[arm][..1]))
            .collect();
        assert_eq!(order, ["1:p1", "2:u1", "3:u2", "4:p2", "5:p3", "6:u3"]);
    }

    #[test]
    fn every_arm_replicate_pair_runs_exactly_once_and_first_arm_leads() {
        let arms: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let order = measuring_order(&arms, 5);
        assert_eq!(order.len(), 15);
        let mut pairs: Vec<(usize, u32)> = order.iter().map(|&(_, a, r)| (a, r)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), 15);
        // The first step is the first arm's first replicate: conclude() reads it as the run's
        // own view for the non-ratio SLAs.
        assert_eq!(order[0], (1, 0, 1));
        // Each arm leads some replicate.
        for a in 0..3 {
            assert!(order
                .iter()
                .any(|&(p, arm, r)| arm == a && p == 3 * (r - 1) + 1));
        }
    }

    #[test]
    fn single_arm_is_one_step_per_replicate_on_arm_zero() {
        assert_eq!(measuring_order(&[], 3), [(1, 0, 1), (2, 0, 2), (3, 0, 3)]);
    }
}

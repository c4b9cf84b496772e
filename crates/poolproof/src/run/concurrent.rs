//! `arms_mode: concurrent`: one replicate with every arm's app up at once and one goose attack
//! driving them together, so whatever else runs on the host hits every arm alike. Users are
//! spread round-robin over the apps, which are listed arm by arm in turn (the arm order rotating
//! every replicate), so each arm gets the same number of users, started alternately. Each arm's
//! requests go to its own client series, and each arm's apps are sampled on their own (server
//! sampler, /proc CPU): every arm ends up with its own observations, as when interleaved.

use super::arm::{
    all_ready, start_instances, ArmContext, ArmMeasurement, ArmSpec, SAMPLE_EVERY, STOP_GRACE,
};
use super::crossover::{self, Schedule, Switcher, Switches};
use super::error::RunError;
use super::plan::load_plan;
use crate::app::AppInstance;
use crate::interrupt;
use crate::load::Attack;
use crate::observe::Observations;
use crate::progress::Progress;
use crate::provider::Provisioned;
use crate::sampler::Sampler;
use std::collections::BTreeMap;
use std::time::Instant;

/// Runs replicate `replicate` with all `arms` side by side and returns every arm's
/// measurement, in `arms` order; they share one load, so one interruption flag and one load
/// generator CPU figure. `base` carries the run-wide parts (its arm fields are ignored).
pub(super) async fn run_replicate(
    base: &ArmContext<'_>,
    arms: &[ArmSpec],
    replicate: u32,
    progress: &mut Progress,
) -> Result<Vec<ArmMeasurement>, RunError> {
    let sc = base.scenario;
    let Provisioned::Local(services) = base.provisioned else {
        return Err(RunError::Usage(
            "arms_mode: concurrent needs apps that poolproof starts (not provider: external)"
                .into(),
        ));
    };
    let n = sc.app.instances.max(1) as usize;
    let label = if sc.replicates > 1 {
        format!("replicate {replicate}: ")
    } else {
        String::new()
    };
    progress.phase(&format!(
        "{label}starting the apps of {} arms side by side ({n} instance{} each)",
        arms.len(),
        if n == 1 { "" } else { "s" }
    ));
    let mut apps: Vec<Vec<AppInstance>> = Vec::with_capacity(arms.len());
    for ArmSpec {
        name: arm,
        env: arm_env,
        launch,
    } in arms
    {
        // Crossover: every app starts with monitoring built, to be paused and resumed.
        let crossover_env = sc.crossover.map(|_| {
            let mut env = arm_env.clone();
            env.insert(
                crate::scenario::validate::CROSSOVER_VARIABLE.to_owned(),
                "true".to_owned(),
            );
            env
        });
        let arm_env = crossover_env.as_ref().unwrap_or(arm_env);
        let ctx = ArmContext {
            scenario: sc,
            provisioned: base.provisioned,
            run_dir: base.run_dir,
            client: base.client,
            binary: base.binary,
            launch,
            sources: base.sources,
            sink: base.sink,
            arm,
            arm_env,
            replicate,
            label: format!("arm {arm}, replicate {replicate}: "),
        };
        // Apps already started are dropped (killed) if a later one fails to start.
        apps.push(start_instances(
            &ctx,
            &services.app_database_url(),
            services.redis_url(),
            n,
        )?);
    }
    let result = drive(base, arms, &mut apps, replicate, &label, progress).await;
    progress.phase(&format!("{label}stopping the apps"));
    futures::future::join_all(
        apps.iter_mut()
            .flat_map(|a| a.iter_mut())
            .map(|i| i.stop(STOP_GRACE)),
    )
    .await;
    result
}

/// The bearer token an arm's app expects on its monitoring endpoints, if any.
fn token(base: &ArmContext<'_>, arm_env: &BTreeMap<String, String>) -> Option<String> {
    arm_env
        .get("PERFORMANCE_API_TOKEN")
        .map(String::as_str)
        .or_else(|| base.scenario.app.env.get("PERFORMANCE_API_TOKEN"))
        .map(str::to_owned)
}

/// (target URLs, the arm of each) with the apps listed arm by arm in turn, the arm order
/// rotated by the replicate: users go round-robin over targets, so each arm gets users alike.
fn targets(apps: &[Vec<AppInstance>], replicate: u32) -> (Vec<String>, Vec<usize>) {
    let n = apps.iter().map(Vec::len).max().unwrap_or(0);
    let order = arm_order(replicate, apps.len());
    let mut urls = Vec::new();
    let mut groups = Vec::new();
    for i in 0..n {
        for &a in &order {
            if let Some(inst) = apps.get(a).and_then(|v| v.get(i)) {
                urls.push(inst.url.clone());
                groups.push(a);
            }
        }
    }
    (urls, groups)
}

/// Arm indices in the order their apps are listed in `replicate`: rotated by one each
/// replicate, so no arm always gets the first user of the ramp.
fn arm_order(replicate: u32, arms: usize) -> Vec<usize> {
    let k = arms.max(1);
    let first = (replicate.saturating_sub(1) as usize) % k;
    (first..k).chain(0..first).filter(|a| *a < arms).collect()
}

async fn drive(
    base: &ArmContext<'_>,
    arms: &[ArmSpec],
    apps: &mut [Vec<AppInstance>],
    replicate: u32,
    label: &str,
    progress: &mut Progress,
) -> Result<Vec<ArmMeasurement>, RunError> {
    let sc = base.scenario;
    let timeout = sc.app.ready_timeout.get();
    progress.phase(&format!("{label}waiting for readiness"));
    let ready = all_ready(apps.iter_mut().flatten(), base.client, timeout);
    tokio::select! {
        r = ready => r.map_err(RunError::infra)?,
        () = interrupt::wait() => return Err(RunError::Interrupted),
    }

    let switcher = sc.crossover.map(|period| Switcher {
        client: base.client.clone(),
        groups: apps
            .iter()
            .map(|a| a.iter().map(|i| i.url.clone()).collect())
            .collect(),
        tokens: arms.iter().map(|arm| token(base, &arm.env)).collect(),
        monitoring: arms
            .iter()
            .map(|arm| {
                arm.env
                    .get(crate::scenario::validate::CROSSOVER_VARIABLE)
                    .is_some_and(|v| v == "true")
            })
            .collect(),
        schedule: Schedule::new(period.get(), arms.len()),
    });
    if let Some(sw) = &switcher {
        progress.phase(&format!(
            "{label}crossover: the {} app groups take each arm's state in turn, {} s at a time",
            arms.len(),
            sw.schedule.period_s
        ));
        sw.apply(0)
            .await
            .map_err(|e| RunError::infra(format!("crossover: {e}")))?;
    }

    let (urls, groups) = targets(apps, replicate);
    let plan = load_plan(&sc.load, urls, None).map_err(RunError::Usage)?;
    let attack = Attack::grouped(plan, groups).map_err(|e| RunError::Usage(e.to_string()))?;
    let handle = attack.handle();
    let samplers: Vec<Sampler> = apps
        .iter()
        .zip(arms)
        .map(|(a, arm)| {
            let bases = a.iter().map(|i| i.url.clone()).collect();
            Sampler::start(
                base.client.clone(),
                bases,
                token(base, &arm.env),
                SAMPLE_EVERY,
                base.sources.clone(),
            )
        })
        .collect();
    let pids: Vec<Vec<u32>> = apps
        .iter()
        .map(|a| a.iter().filter_map(AppInstance::pid).collect())
        .collect();
    let app_cpu = crate::app::cpu::LoadWindowSampler::start(handle.clone(), pids);
    let live = handle.clone();
    progress.live(sc.load.measured(), move || live.progress());
    let hold = tokio::spawn(interrupt::hold_killswitch());
    let cpu_meter = crate::app::meter::CpuMeter::start();
    // Crossover: the switching task, its log (which outlives it) and its schedule.
    let switching = switcher.map(|sw| {
        let schedule = sw.schedule;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Switches::new(schedule.period_s)));
        let (h, task_log) = (handle.clone(), log.clone());
        let task = tokio::spawn(async move {
            let Some(origin) = h.wait_measure_start().await else {
                return Ok(());
            };
            sw.run(origin, h.measured_duration(), &task_log).await
        });
        (task, log, schedule)
    });
    let outcome = attack.run().await;
    let cpu = cpu_meter.and_then(|m| m.finish());
    hold.abort();
    let mut server = Vec::with_capacity(samplers.len());
    for s in samplers {
        server.push(s.stop().await);
    }
    let mut app_cpu = app_cpu
        .finish()
        .await
        .map_err(|e| RunError::infra(format!("app CPU sampler: {e}")))?;
    progress.phase(&format!("{label}load finished"));
    let mut outcome = outcome.map_err(RunError::infra)?;
    let interrupted = outcome.interrupted || interrupt::requested();
    // Cut short, the switches made so far still say which group held which arm.
    let crossed = match switching {
        None => None,
        Some((task, log, schedule)) => {
            if interrupted {
                task.abort();
            } else {
                task.await
                    .map_err(|e| RunError::infra(format!("crossover: {e}")))?
                    .map_err(|e| RunError::infra(format!("crossover: {e}")))?;
            }
            let switches = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Some((switches, schedule))
        }
    };
    let origin = handle.measure_start().unwrap_or_else(Instant::now);
    let alerts = base.sink.map(|s| s.observed(origin)).unwrap_or_default();
    let mut per_group = Vec::with_capacity(arms.len());
    for (a, samples) in server.iter().enumerate() {
        per_group.push(Observations {
            client: outcome
                .by_group
                .get_mut(a)
                .map(std::mem::take)
                .unwrap_or_default(),
            server: samples.server(origin),
            db: samples.db(origin),
            pgbouncer: samples.pgbouncer(origin),
            warmup: Some(outcome.warmup),
            load: outcome.load,
            faults: Vec::new(),
            // The sink cannot tell the arms' notifications apart: each arm sees them all.
            alerts: alerts.clone(),
            // Concurrent arms take no silences (scenario validation).
            silences: Vec::new(),
            app_cpu: app_cpu.get_mut(a).map(std::mem::take).unwrap_or_default(),
            // Concurrent arms run the closed model only (scenario validation).
            stages: Vec::new(),
            generator: sc.load.is_scheduled().then(|| outcome.generator.clone()),
            shards: Vec::new(),
            gaps: Vec::new(),
        });
    }
    let per_arm = match &crossed {
        Some((switches, schedule)) => crossover::regroup(per_group, schedule, switches),
        None => per_group,
    };
    let switches = crossed.map(|(switches, _)| switches);
    Ok(per_arm
        .into_iter()
        .map(|obs| ArmMeasurement {
            obs,
            interrupted,
            cpu,
            // abort_on_fail is for single-arm runs (scenario validation).
            early_stop: None,
            crossover: switches.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::arm_order;

    #[test]
    fn the_arm_listed_first_rotates_every_replicate() {
        assert_eq!(arm_order(1, 2), [0, 1]);
        assert_eq!(arm_order(2, 2), [1, 0]);
        assert_eq!(arm_order(3, 2), [0, 1]);
        assert_eq!(arm_order(3, 3), [2, 0, 1]);
        assert_eq!(arm_order(1, 0), Vec::<usize>::new());
    }
}

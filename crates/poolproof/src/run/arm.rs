//! What both arm modes share (`arms_mode: interleaved` in `scenario_run`, `concurrent` in
//! `concurrent`): an arm's description and context, starting its app instances, waiting until
//! they are ready, and what one measured arm hands back.

use super::env::{instance_env, BehindPgbouncer, EnvInputs, SinkUrls};
use super::error::RunError;
use crate::app::meter::CpuUsage;
use crate::app::{self, AppInstance, InstanceSpec};
use crate::observe::Observations;
use crate::provider::Provisioned;
use crate::scenario::{Launch, Scenario};
use crate::sink::WebhookSink;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long an instance gets to exit after SIGTERM before it is killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);
/// The sampler's period.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One arm: its name, the env it sets on top of `app.env`, and how its app starts.
pub(super) struct ArmSpec {
    pub(super) name: String,
    pub(super) env: BTreeMap<String, String>,
    pub(super) launch: Launch,
}

/// What one arm (or, in concurrent mode, the run-wide part of every arm) needs to start and
/// measure its apps.
pub(super) struct ArmContext<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) provisioned: &'a Provisioned,
    pub(super) run_dir: &'a Path,
    pub(super) client: &'a reqwest::Client,
    /// pooled-app's binary, located when some arm runs it.
    pub(super) binary: Option<&'a Path>,
    /// How this arm's app starts.
    pub(super) launch: &'a Launch,
    /// The server-side sources its samplers read.
    pub(super) sources: &'a crate::sampler::SourceSet,
    pub(super) sink: Option<&'a Arc<WebhookSink>>,
    pub(super) arm: &'a str,
    pub(super) arm_env: &'a BTreeMap<String, String>,
    pub(super) replicate: u32,
    pub(super) label: String,
}

/// What one measured arm hands back.
pub(super) struct ArmMeasurement {
    pub(super) obs: Observations,
    /// Ctrl-C cut the load short: the data is partial.
    pub(super) interrupted: bool,
    /// CPU the load generator used during the load (the regression gate's noise check).
    pub(super) cpu: Option<CpuUsage>,
    /// An `abort_on_fail` SLA stopped the load early: which, when and why.
    pub(super) early_stop: Option<crate::sla::EarlyStop>,
    /// `crossover:`: the replicate's switches as they happened.
    pub(super) crossover: Option<super::crossover::Switches>,
}

/// Starts `n` instances of the app for the arm in `ctx`, each with its own port and log.
pub(super) fn start_instances(
    ctx: &ArmContext<'_>,
    database_url: &str,
    redis_url: Option<&str>,
    n: usize,
) -> Result<Vec<AppInstance>, RunError> {
    let provisioned_pgbouncer = match ctx.provisioned {
        Provisioned::Local(services) => services
            .pgbouncer()
            .map(|p| (services.database_url(), p.settings().pool_mode)),
        Provisioned::External(_) => None,
    };
    // Only pooled-app's settings are known; another program is told in docs/services.md.
    let pgbouncer = match (ctx.launch, provisioned_pgbouncer) {
        (Launch::PooledApp { .. }, Some((postgres_url, mode))) => Some(BehindPgbouncer {
            postgres_url,
            per_transaction: mode != poolproof_services::PoolMode::Session,
        }),
        _ => None,
    };
    let (program, args, port_env) = match ctx.launch {
        Launch::PooledApp { .. } => {
            let binary = ctx
                .binary
                .ok_or_else(|| RunError::Infra("no pooled-app binary".into()))?;
            (binary.to_path_buf(), Vec::new(), None)
        }
        Launch::Command { argv, port_env, .. } => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| RunError::Usage("app.command is empty".into()))?;
            (program.into(), args.to_vec(), Some(port_env.as_str()))
        }
    };
    let sink = ctx.sink.map(|s| SinkUrls {
        slack: s.slack_url(),
        resend: s.resend_url(),
    });
    let suffix = if ctx.label.is_empty() {
        String::new()
    } else {
        format!("-{}-r{}", ctx.arm, ctx.replicate)
    };
    let mut instances = Vec::with_capacity(n);
    for number in 1..=n {
        let port = app::free_port().map_err(RunError::infra)?;
        let mut env = instance_env(&EnvInputs {
            database_url,
            redis_url,
            port,
            seed_users: ctx.scenario.fixtures.users,
            seed_buddy_requests: ctx.scenario.fixtures.buddy_requests,
            sink: sink.as_ref(),
            pgbouncer,
            scenario_env: Some(&ctx.scenario.app.env.0),
            arm_env: Some(ctx.arm_env),
        });
        if let Some(var) = port_env {
            // The scenario's own env may not move the port: poolproof chose it and loads it.
            env.insert(var.to_owned(), port.to_string());
        }
        let spec = InstanceSpec {
            number,
            binary: program.clone(),
            args: args.clone(),
            ready: ctx.launch.ready().to_owned(),
            env,
            port,
            port_env: port_env.map(str::to_owned),
            log_path: ctx.run_dir.join(format!("app-{number}{suffix}.log")),
        };
        // Instances already started are dropped (killed) if a later one fails to spawn.
        instances.push(AppInstance::spawn(&spec).map_err(RunError::infra)?);
    }
    Ok(instances)
}

/// Waits until every instance is ready; the first failure once all have answered or failed.
pub(super) async fn all_ready<'a>(
    instances: impl Iterator<Item = &'a mut AppInstance>,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), app::AppError> {
    let all = futures::future::join_all(instances.map(|i| i.wait_ready(client, timeout))).await;
    all.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
}

//! Load beyond one process: a scenario's load split over N generator shards (`poolproof
//! generate`) on an engine — `local` processes, a Docker Swarm job or a Kubernetes Indexed
//! Job — each starting on the coordinator's instant with its share (the open model's
//! schedule interleaved slot by slot, the closed model's users and rate divided), and merged
//! back exactly: per-second, per-route HDR histograms added, counts summed. A shard that
//! dies, never registers or goes silent fails the run (exit 3) by name; one that lagged its
//! schedule or whose clock is off makes it inconclusive (exit 4, judged in `run::verdict`).

mod coordinator;
pub mod engine;
mod shard;
pub mod wire;

pub use engine::{kubernetes_manifest, EngineError};
pub use shard::{run_shard, ShardEnv, ShardError};

use crate::load::{Attack, LoadError, LoadHandle, LoadOutcome, LoadPlan};
use crate::scenario::{GeneratorEngine, Generators};
use coordinator::Coordinator;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A shard's clock may differ from the coordinator's by at most this much: beyond it, its
/// seconds are not the coordinator's seconds and merged per-second figures blur.
pub const MAX_CLOCK_OFFSET_MS: f64 = 50.0;

/// One shard's figures, in report.json and report.html.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFigures {
    pub shard: u32,
    /// Where it ran (pid, swarm task id, pod name).
    pub name: String,
    /// Requests it completed over measured load, and per second.
    pub requests: u64,
    pub rate_rps: f64,
    /// Starts it had scheduled over measured load (open model, paced closed model).
    pub scheduled: u64,
    /// Of the starts it had a free user for, how many went out late, and its p99 lag.
    pub lag_starts: u64,
    pub late_starts: u64,
    pub lag_p99_ms: Option<f64>,
    /// CPU it used over its run, and the cores that kept busy on average.
    pub cpu_seconds: f64,
    pub busy_cores: f64,
    /// Its clock minus the coordinator's, and the round trip that was measured over.
    pub clock_offset_ms: f64,
    pub clock_rtt_ms: f64,
}

impl ShardFigures {
    /// Why this shard's figures cannot be trusted, if they cannot.
    pub fn doubt(&self, max_late_share: f64) -> Option<String> {
        if self.clock_offset_ms.abs() > MAX_CLOCK_OFFSET_MS {
            return Some(format!(
                "generator shard {} ({}) has a clock {:.1} ms off the coordinator's (limit {MAX_CLOCK_OFFSET_MS} ms): its seconds are not the run's seconds",
                self.shard, self.name, self.clock_offset_ms
            ));
        }
        let late_share = if self.lag_starts > 0 {
            self.late_starts as f64 / self.lag_starts as f64
        } else {
            0.0
        };
        (late_share > max_late_share).then(|| {
            format!(
                "generator shard {} ({}) did not keep its schedule: {} of {} starts it had a free user for went out late (p99 {} ms); it is CPU-saturated",
                self.shard,
                self.name,
                self.late_starts,
                self.lag_starts,
                self.lag_p99_ms.map_or("-".into(), |v| format!("{v:.1}"))
            )
        })
    }
}

/// How long shards get to start and register before the timeline begins, by engine.
fn default_start_after(engine: GeneratorEngine) -> Duration {
    match engine {
        GeneratorEngine::Local => Duration::from_secs(3),
        GeneratorEngine::Swarm => Duration::from_secs(10),
        GeneratorEngine::Kubernetes => Duration::from_secs(60),
    }
}

/// Runs a plan's load: in this process, or on generator shards.
pub enum LoadDriver {
    InProcess(Attack),
    Sharded(Sharded),
}

/// A sharded load, prepared: the coordinator listens and the timeline's origin is fixed.
pub struct Sharded {
    coordinator: Coordinator,
    engine: GeneratorEngine,
    count: u32,
    coordinator_url: String,
    handle: LoadHandle,
    origin: Instant,
    log_dir: PathBuf,
    run_name: String,
}

impl LoadDriver {
    /// Prepares `plan` for the generators `spec` asks for (`None` or one local generator:
    /// in this process). Builds the swarm image first, so the start instant leaves the
    /// shards their whole `start_after`. `log_dir` receives local shards' logs.
    pub async fn prepare(
        plan: LoadPlan,
        spec: Option<&Generators>,
        log_dir: PathBuf,
    ) -> Result<LoadDriver, LoadError> {
        let spec = match spec {
            Some(g) if g.count > 1 || g.engine != GeneratorEngine::Local => g,
            _ => return Attack::new(plan).map(LoadDriver::InProcess),
        };
        plan.validate().map_err(LoadError::InvalidPlan)?;
        if spec.engine == GeneratorEngine::Swarm {
            engine::ensure_image("swarm")
                .await
                .map_err(|e| LoadError::Shard(e.to_string()))?;
        }
        let local = spec.engine == GeneratorEngine::Local;
        let bind: SocketAddr = if local {
            ([127, 0, 0, 1], 0).into()
        } else {
            ([0, 0, 0, 0], 0).into()
        };
        let start_after = spec
            .start_after
            .map_or_else(|| default_start_after(spec.engine), |d| d.get());
        let origin = Instant::now() + start_after;
        let handle = LoadHandle::remote(&plan, origin);
        let coordinator = Coordinator::start(plan, spec.count, origin, bind).await?;
        let host = spec.advertise.clone().unwrap_or_else(|| "127.0.0.1".into());
        let coordinator_url = format!("http://{host}:{}", coordinator.port());
        let run_name = format!("poolproof-gen-{}", &coordinator.key()[..10]);
        Ok(LoadDriver::Sharded(Sharded {
            coordinator,
            engine: spec.engine,
            count: spec.count,
            coordinator_url,
            handle,
            origin,
            log_dir,
            run_name,
        }))
    }

    pub fn handle(&self) -> LoadHandle {
        match self {
            LoadDriver::InProcess(a) => a.handle(),
            LoadDriver::Sharded(s) => s.handle.clone(),
        }
    }

    /// Runs the load to its end; the shards' figures are empty in process.
    pub async fn run(self) -> Result<(LoadOutcome, Vec<ShardFigures>), LoadError> {
        match self {
            LoadDriver::InProcess(a) => a.run().await.map(|o| (o, Vec::new())),
            LoadDriver::Sharded(s) => s.run().await,
        }
    }
}

impl Sharded {
    async fn run(self) -> Result<(LoadOutcome, Vec<ShardFigures>), LoadError> {
        let spec = engine::LaunchSpec {
            count: self.count,
            coordinator_url: self.coordinator_url.clone(),
            key: self.coordinator.key(),
            log_dir: &self.log_dir,
            run_name: self.run_name.clone(),
        };
        let mut launched = engine::launch(self.engine, &spec)
            .await
            .map_err(|e| LoadError::Shard(e.to_string()))?;
        let result = self
            .coordinator
            .collect(&self.handle, &mut launched, self.origin)
            .await;
        // Teardown (processes killed, service or job removed) before the verdict.
        drop(launched);
        if result.is_err() {
            // Whatever waits on this load's timeline (samplers, the fault timeline) ends now.
            self.handle.abandon();
        }
        result
    }
}

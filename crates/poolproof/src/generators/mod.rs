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
use crate::observe::ShardFigures;
use crate::scenario::{GeneratorEngine, Generators};
use coordinator::Coordinator;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

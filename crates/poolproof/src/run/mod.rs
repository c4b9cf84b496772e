//! `poolproof validate`: each scenario from YAML to verdict — provision services, start the app,
//! warm up, load (with the fault timeline), sample the app, stop, evaluate SLAs, write reports,
//! tear down (also on error, Ctrl-C and panic). Several scenarios run one after another; the
//! overall exit code is the worst of them.
//!
//! Exit codes: 0 every SLA met; 1 an SLA failed; 2 the scenario cannot run as written;
//! 3 infrastructure failure (services, app, load generator, disk) — one line names what failed;
//! 130 interrupted (Ctrl-C / SIGTERM: load stopped, everything torn down, the partial report
//! written, no verdict).

mod arm;
mod concurrent;
mod crossover;
mod early_stop;
pub mod env;
mod error;
pub mod id;
pub mod plan;
pub mod scenario_run;
pub mod verdict;

pub use error::RunError;
pub use scenario_run::{PairedArms, RunOptions};

use crate::exit::Exit;
use crate::progress::Progress;
use crate::scenario::LoadedScenario;
use crate::{interrupt, teardown};
use futures::FutureExt;

/// Runs validated scenarios one after another and returns the worst outcome.
pub fn run_scenarios(scenarios: Vec<LoadedScenario>, opts: &RunOptions) -> Exit {
    teardown::install_panic_hook();
    if let Err(e) = interrupt::install() {
        eprintln!("poolproof: {e}");
        return Exit::Infrastructure;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("poolproof: cannot start the async runtime: {e}");
            return Exit::Infrastructure;
        }
    };
    let mut worst = Exit::Ok;
    for loaded in &scenarios {
        if interrupt::requested() {
            break;
        }
        // A panic is caught here, inside the runtime, so the run's handles (containers, app
        // processes, temp dirs) are dropped where their async teardown can still run.
        let outcome =
            runtime.block_on(std::panic::AssertUnwindSafe(run_one(loaded, opts)).catch_unwind());
        let exit = match outcome {
            Ok(exit) => exit,
            Err(_) => {
                eprintln!(
                    "{}: internal error (panic, see above); everything it started was torn down",
                    loaded.path.display()
                );
                Exit::Infrastructure
            }
        };
        worst = worst.worst(exit);
    }
    drop(runtime);
    teardown::kill_registered();
    if interrupt::requested() {
        return Exit::Interrupted;
    }
    worst
}

async fn run_one(loaded: &LoadedScenario, opts: &RunOptions) -> Exit {
    let scenario = &loaded.scenario;
    let mut progress = Progress::new(&scenario.name);
    let measured = scenario_run::measure(scenario, opts, &mut progress).await;
    match measured {
        Ok(m) => {
            progress.finish(&format!("done in {:.1}s", m.wall.as_secs_f64()));
            verdict::conclude(loaded, &m, opts)
        }
        Err(e) => {
            progress.finish("stopped");
            let exit = Exit::from(&e);
            match e {
                RunError::Usage(msg) => eprintln!("{}: {msg}", loaded.path.display()),
                RunError::Infra(msg) => {
                    eprintln!("{}: infrastructure failure: {msg}", loaded.path.display())
                }
                RunError::Interrupted => eprintln!("{}: interrupted", loaded.path.display()),
            }
            exit
        }
    }
}

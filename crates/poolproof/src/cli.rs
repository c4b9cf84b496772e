//! The command line: `validate`, `check`, `schema`, `list`, `compare`, `history`, `baseline`, `gate`; turns every
//! outcome into an [`Exit`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::exit::Exit;
use crate::scenario::{self, expand_paths, LoadedScenario, Scenario, ScenarioError};

/// poolproof: YAML scenarios against real services, goose load, faults, SLA verdicts, reports.
///
/// Exit codes: 0 all SLAs met; 1 an SLA or regression gate failed; 2 invalid scenario or
/// usage; 3 infrastructure failure; 4 inconclusive (too noisy to decide).
#[derive(Debug, Parser)]
#[command(
    name = "poolproof",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 all SLAs met; 1 an SLA or regression gate failed; 2 invalid scenario or usage; 3 infrastructure failure; 4 inconclusive (too noisy to decide)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios and check their SLAs (default: scenarios/smoke.yaml).
    Validate(ValidateArgs),
    /// Validate scenario files without running them; prints `ok FILE` or one located error per file.
    Check(CheckArgs),
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// List the scenarios in a directory (default: scenarios/).
    List(ListArgs),
    /// Compare NEW against BASE (baselines, report.json files or run directories): per metric,
    /// the change with a bootstrap interval over replicates and a verdict; exit 1 on a
    /// regression, 4 when inconclusive.
    Compare(crate::compare::cli::CompareArgs),
    /// Print the trend of every metric over the runs a history file recorded (`--history` of
    /// validate and gate): per run its commit, value, interval and change against the run
    /// before; exit 0 printed, 2 unreadable or corrupt file, or no run matches.
    History(crate::history::cli::HistoryArgs),
    /// Manage baselines in `reports/baselines/`.
    Baseline(crate::compare::cli::BaselineArgs),
    /// Gate the work tree against a git revision: build both pooled-apps (the base in a git
    /// worktree, cached by commit), run them as two arms of SCENARIO replicate by replicate,
    /// and judge every metric on the paired changes; exit 1 on a regression, 4 when
    /// inconclusive.
    Gate(crate::gate::GateCommandArgs),
    /// Run one load generator shard of a sharded run. Started by the run's engine, not by
    /// hand: reads POOLPROOF_COORDINATOR (the coordinator's URL), POOLPROOF_RUN_KEY and
    /// optionally POOLPROOF_SHARD or JOB_COMPLETION_INDEX. Exit 0 when its measurements were
    /// delivered, 2 on a bad environment, 3 when it could not run.
    Generate,
    /// Load generator shards on other engines.
    #[command(subcommand)]
    Generators(GeneratorsCommand),
}

/// `poolproof generators …`.
#[derive(Debug, Subcommand)]
pub enum GeneratorsCommand {
    /// Print the Kubernetes manifest (an Indexed Job) that runs a scenario's generator shards.
    Render(RenderArgs),
}

/// `poolproof generators render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The engine to render for (only `kubernetes` has a manifest).
    #[arg(long, default_value = "kubernetes")]
    pub engine: crate::scenario::GeneratorEngine,
    /// The coordinator's URL as the pods reach it.
    #[arg(long, default_value = "http://poolproof-coordinator:7700")]
    pub coordinator: String,
    /// The image holding the poolproof binary.
    #[arg(long, default_value = "poolproof/generator:latest")]
    pub image: String,
    /// The Job's name (also the stem of its key Secret, `<name>-key`).
    #[arg(long, default_value = "poolproof-generators")]
    pub name: String,
    /// The scenario whose `load.generators.count` sets the shard count.
    pub scenario: PathBuf,
}

/// `poolproof validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Scenario files or directories of them.
    pub paths: Vec<PathBuf>,
    /// Override every scenario's `replicates`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub replicates: Option<u32>,
    /// Where run directories are written (`<DIR>/<scenario>/<run-id>/`).
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// After the run, gate against this baseline (or report.json): exit 1 on a regression,
    /// 4 when inconclusive.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub gate: crate::compare::cli::GateArgs,
    #[command(flatten)]
    pub record: crate::history::cli::RecordArgs,
    /// Split every scenario's load over this many generator shards (its `load.generators.count`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub generators: Option<u32>,
    /// Where the shards run (its `load.generators.engine`): local, swarm or kubernetes.
    #[arg(long)]
    pub generator_engine: Option<crate::scenario::GeneratorEngine>,
}

/// `poolproof check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Scenario files or directories of them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `poolproof list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Directory to list.
    #[arg(default_value = "scenarios")]
    pub dir: PathBuf,
}

/// Parses argv and runs the command. Usage errors exit 2 (clap's default), `--help` 0.
pub fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Invalid
            } else {
                Exit::Ok
            };
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Validate(args) => cmd_validate(&args),
        Command::Check(args) => cmd_check(&args),
        Command::Schema => {
            print_out(&scenario::schema::schema_json());
            Exit::Ok
        }
        Command::List(args) => cmd_list(&args),
        Command::Compare(args) => crate::compare::cli::cmd_compare(&args),
        Command::Baseline(args) => crate::compare::cli::cmd_baseline(&args),
        Command::History(args) => crate::history::cli::cmd_history(&args),
        Command::Gate(args) => crate::gate::cmd_gate(&args),
        Command::Generate => cmd_generate(),
        Command::Generators(GeneratorsCommand::Render(args)) => cmd_render(&args),
    }
}

fn print_err(e: &ScenarioError) {
    eprintln!("{e}");
}

fn print_out(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`poolproof schema | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

fn cmd_check(args: &CheckArgs) -> Exit {
    let files = match expand_paths(&args.files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let mut exit = Exit::Ok;
    for f in &files {
        match scenario::load_file(f) {
            Ok(_) => print_out(&format!("ok {}\n", f.display())),
            Err(e) => {
                print_err(&e);
                exit = Exit::Invalid;
            }
        }
    }
    exit
}

fn cmd_validate(args: &ValidateArgs) -> Exit {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("scenarios/smoke.yaml")]
    } else {
        args.paths.clone()
    };
    let files = match expand_paths(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let mut scenarios = match scenario::load_all(&files) {
        Ok(s) => s,
        Err(errors) => {
            errors.iter().for_each(print_err);
            return Exit::Invalid;
        }
    };
    if let Some(r) = args.replicates {
        for s in &mut scenarios {
            s.scenario.replicates = r;
        }
    }
    if args.generators.is_some() || args.generator_engine.is_some() {
        for s in &mut scenarios {
            let mut g = s
                .scenario
                .load
                .generators
                .clone()
                .unwrap_or(scenario::Generators {
                    count: 1,
                    engine: scenario::GeneratorEngine::Local,
                    start_after: None,
                    advertise: None,
                });
            g.count = args.generators.unwrap_or(g.count);
            g.engine = args.generator_engine.unwrap_or(g.engine);
            if let Err(issue) = scenario::validate::check_generators(&s.scenario, &g) {
                eprintln!(
                    "{}: --generators/--generator-engine: {}",
                    s.path.display(),
                    issue.message
                );
                return Exit::Invalid;
            }
            s.scenario.load.generators = Some(g);
        }
    }
    run_scenarios(scenarios, args)
}

/// Runs validated scenarios and returns the worst outcome (see [`crate::run`]).
pub fn run_scenarios(scenarios: Vec<LoadedScenario>, args: &ValidateArgs) -> Exit {
    // A baseline that cannot be read is a usage error, found before minutes of load.
    if let Some(b) = &args.baseline {
        if let Err(e) = crate::compare::load_figures(b) {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    }
    if let Err(exit) = args.record.check() {
        return exit;
    }
    let opts = crate::run::RunOptions {
        reports_dir: args.reports_dir.clone(),
        baseline: args.baseline.clone(),
        gate: args.gate.config(),
        arm_pair: None,
        history: args.record.history.clone(),
    };
    crate::run::run_scenarios(scenarios, &opts)
}

fn cmd_list(args: &ListArgs) -> Exit {
    let files = match expand_paths(std::slice::from_ref(&args.dir)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    let mut rows = Vec::new();
    let mut exit = Exit::Ok;
    for f in &files {
        match scenario::load_for_listing(f) {
            Ok(s) => rows.push(list_row(f, &s)),
            Err(e) => {
                print_err(&e);
                exit = Exit::Invalid;
            }
        }
    }
    let mut out = String::new();
    let w = rows.iter().map(|r| r[0].len()).max().unwrap_or(4).max(4);
    let w2 = rows.iter().map(|r| r[1].len()).max().unwrap_or(4).max(4);
    let w3 = rows.iter().map(|r| r[2].len()).max().unwrap_or(4).max(4);
    out.push_str(&format!(
        "{:w$}  {:w2$}  {:w3$}  DESCRIPTION\n",
        "NAME", "LOAD", "TAGS"
    ));
    for r in &rows {
        out.push_str(&format!(
            "{:w$}  {:w2$}  {:w3$}  {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    print_out(&out);
    exit
}

fn list_row(path: &Path, s: &Scenario) -> [String; 4] {
    let _ = path;
    let load = scenario::Duration::new(s.total_load_time()).to_string();
    [
        s.name.clone(),
        load,
        s.tags.join(","),
        s.description.clone(),
    ]
}

fn cmd_generate() -> Exit {
    let env = match crate::generators::ShardEnv::from_env() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    crate::load::install_log_bridge();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("generator shard: cannot start the async runtime: {e}");
            return Exit::Infrastructure;
        }
    };
    match runtime.block_on(crate::generators::run_shard(env)) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("{e}");
            Exit::Infrastructure
        }
    }
}

fn cmd_render(args: &RenderArgs) -> Exit {
    if args.engine != scenario::GeneratorEngine::Kubernetes {
        eprintln!(
            "generators render: --engine {}: only kubernetes has a manifest (swarm and local are started by `poolproof validate`)",
            args.engine.as_str()
        );
        return Exit::Invalid;
    }
    let loaded = match scenario::load_file(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            print_err(&e);
            return Exit::Invalid;
        }
    };
    let count = loaded.load.generators.as_ref().map_or(1, |g| g.count);
    print_out(&crate::generators::kubernetes_manifest(
        &args.name,
        count,
        &args.image,
        &args.coordinator,
    ));
    Exit::Ok
}

//! `poolproof-services`: starts Postgres and Redis for local use and CI.
//! `up` keeps them running until Ctrl-C/SIGTERM; `run -- CMD...` runs a command with
//! DATABASE_URL and REDIS_URL set and tears the services down when it exits;
//! `sweep` removes what killed runs left behind. URLs are printed without passwords.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use poolproof_services::{start_both, sweep_leftovers, Options, Provider};

#[derive(Parser)]
#[command(
    version,
    about = "Start Postgres 15 and Redis for poolproof and its tests"
)]
struct Cli {
    /// containers | processes (default: containers when a Docker engine and the local
    /// images are there, else processes; env POOLPROOF_SERVICES_PROVIDER)
    #[arg(long, global = true, value_parser = parse_provider)]
    provider: Option<Provider>,
    /// Value of the poolproof.run label (default: unique per run)
    #[arg(long, global = true)]
    run_label: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start both and keep them running until Ctrl-C or SIGTERM
    Up {
        /// Also write DATABASE_URL=... and REDIS_URL=... (with the password) to this file, mode 0600
        #[arg(long)]
        env_file: Option<std::path::PathBuf>,
    },
    /// Start both, run CMD with DATABASE_URL and REDIS_URL set, stop both when it exits
    Run {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Remove containers and processes left by runs that were killed
    Sweep,
}

fn parse_provider(text: &str) -> Result<Provider, String> {
    Provider::parse(text).ok_or_else(|| format!("expected containers or processes, got {text:?}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("poolproof-services: {e:#}");
            // 3: infrastructure failure, as in poolproof's exit codes.
            ExitCode::from(3)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut options = Options::default();
    if cli.provider.is_some() {
        options.provider = cli.provider;
    }
    if let Some(label) = cli.run_label {
        options.run_label = label;
    }
    match cli.command {
        Command::Sweep => {
            let removed = sweep_leftovers().await?;
            println!("removed {removed} leftover service(s)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Up { env_file } => {
            let (postgres, redis) = start_both(&options).await.context("starting services")?;
            if let Some(path) = env_file {
                write_env_file(&path, &postgres.url(), &redis.url())?;
            }
            println!("provider: {}", postgres.provider());
            println!("DATABASE_URL={}", postgres.url_redacted());
            println!("REDIS_URL={}", redis.url());
            println!("ready; Ctrl-C to stop");
            wait_for_signal().await?;
            let (a, b) = tokio::join!(postgres.shutdown(), redis.shutdown());
            a?;
            b?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { command } => {
            let (postgres, redis) = start_both(&options).await.context("starting services")?;
            eprintln!(
                "poolproof-services: {} provider; DATABASE_URL={} REDIS_URL={}",
                postgres.provider(),
                postgres.url_redacted(),
                redis.url()
            );
            let (program, args) = command.split_first().context("no command given")?;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .env("DATABASE_URL", postgres.url())
                .env("REDIS_URL", redis.url())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {program}"))?;
            let status = tokio::select! {
                status = child.wait() => Some(status.with_context(|| format!("waiting for {program}"))?),
                signal = wait_for_signal() => { signal?; None }
            };
            if status.is_none() {
                // A terminal's Ctrl-C reaches the child too, a `kill` of this process does not:
                // pass SIGTERM on, give it a moment to shut down, then kill_on_drop ends it.
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
            }
            let (a, b) = tokio::join!(postgres.shutdown(), redis.shutdown());
            a?;
            b?;
            Ok(match status.and_then(|s| s.code()) {
                Some(0) => ExitCode::SUCCESS,
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => ExitCode::from(130),
            })
        }
    }
}

fn write_env_file(
    path: &std::path::Path,
    database_url: &str,
    redis_url: &str,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "DATABASE_URL={database_url}\nREDIS_URL={redis_url}")
        .with_context(|| format!("writing {}", path.display()))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

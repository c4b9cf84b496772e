//! `poolproof gate --base <git-ref> SCENARIO`: the regression gate that runs the base and the
//! head side by side. It builds the base revision's pooled-app from git (cached by commit,
//! [`base_build`]) and the work tree's, runs them as the two arms `base` and `head` of the
//! scenario, replicate by replicate in rotating order (the run loop's interleaving), and judges
//! every gated metric on the paired differences (`compare::Design::Paired`). Both sides share
//! the host's conditions in every pair, so a busy neighbour slows both rather than one.
//!
//! Exit codes: 0 no regression, 1 regression (or a failed SLA), 2 usage (unknown ref, a
//! scenario the gate cannot run), 3 infrastructure (a build fails), 4 inconclusive, 130
//! interrupted.

pub mod base_build;

use std::path::PathBuf;

use clap::Args;

use crate::exit::Exit;
use crate::scenario::{self, Arm, EnvMap, LoadedScenario, Scenario};
use base_build::{AppBuild, BuildError, Repo};

/// The arm names of a gate run.
const BASE_ARM: &str = "base";
const HEAD_ARM: &str = "head";

/// `poolproof gate`.
#[derive(Debug, Clone, Args)]
pub struct GateCommandArgs {
    /// The revision to compare against (a commit, branch or tag): its pooled-app is built in a
    /// git worktree and kept in `<target>/gate-cache/<commit>/`.
    #[arg(long, value_name = "GIT-REF")]
    pub base: String,
    /// Replicates (pairs of base and head runs); default: the scenario's `replicates`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub replicates: Option<u32>,
    /// Where the run directory is written (`<DIR>/<scenario>/<run-id>/`).
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    #[command(flatten)]
    pub gate: crate::compare::cli::GateArgs,
    #[command(flatten)]
    pub record: crate::history::cli::RecordArgs,
    /// The scenario to run (single-arm, pooled-app, local services).
    pub scenario: PathBuf,
}

/// Why a scenario cannot be a gate's: the gate supplies the arms and the app itself.
fn check_shape(s: &Scenario) -> Result<(), String> {
    if !s.arms.is_empty() {
        return Err("arms: the gate runs base and head as the scenario's two arms; use a scenario without arms".into());
    }
    if s.app.command.is_some() {
        return Err("app.command: the gate builds and runs pooled-app; remove app.command".into());
    }
    if s.is_external() {
        return Err(
            "services.provider: external runs no app of its own; the gate needs local services"
                .into(),
        );
    }
    Ok(())
}

/// `poolproof gate`: builds both sides, runs them, and returns the gate's exit code.
pub fn cmd_gate(args: &GateCommandArgs) -> Exit {
    crate::teardown::install_panic_hook();
    if let Err(e) = crate::interrupt::install() {
        eprintln!("poolproof: {e}");
        return Exit::Infrastructure;
    }
    let path = &args.scenario;
    let mut sc = match scenario::load_file(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid;
        }
    };
    if let Err(why) = check_shape(&sc) {
        eprintln!("{}: {why}", path.display());
        return Exit::Invalid;
    }
    if let Err(exit) = args.record.check() {
        return exit;
    }
    let (base, head) = match build_sides(&args.base, sc.app.binary.clone()) {
        Ok(sides) => sides,
        Err(e) => {
            return match e {
                BuildError::Interrupted => {
                    eprintln!("poolproof gate: {e}");
                    Exit::Interrupted
                }
                e if e.is_usage() => {
                    eprintln!("{e}");
                    Exit::Invalid
                }
                e => {
                    eprintln!("poolproof gate: infrastructure failure: {e}");
                    Exit::Infrastructure
                }
            };
        }
    };
    if let Some(r) = args.replicates {
        sc.replicates = r;
    }
    sc.arms = vec![arm(BASE_ARM, &base.app.path), arm(HEAD_ARM, &head.app.path)];
    let opts = crate::run::RunOptions {
        reports_dir: args.reports_dir.clone(),
        baseline: None,
        gate: args.gate.config(),
        arm_pair: Some(crate::run::PairedArms {
            base_arm: BASE_ARM.to_owned(),
            base_label: base.label,
            new_arm: HEAD_ARM.to_owned(),
            new_label: head.label,
        }),
        history: args.record.history.clone(),
    };
    let loaded = LoadedScenario {
        path: path.clone(),
        scenario: sc,
    };
    crate::run::run_scenarios(vec![loaded], &opts)
}

/// One side's arm: pooled-app from `binary`, started like any arm's `command`.
fn arm(name: &str, binary: &std::path::Path) -> Arm {
    Arm {
        name: name.to_owned(),
        env: EnvMap::default(),
        command: Some(vec![binary.to_string_lossy().into_owned()]),
        // pooled-app binds BIND_ADDR, which every instance gets; PORT is set beside it.
        port_env: None,
        ready: None,
    }
}

/// One side of the gate: its pooled-app and how the comparison names it.
struct Side {
    label: String,
    app: AppBuild,
}

/// The base's and the head's pooled-app. The base is built first so that the target
/// directory's `release/pooled-app` ends up being the head's again.
fn build_sides(base_ref: &str, head_binary: Option<PathBuf>) -> Result<(Side, Side), BuildError> {
    let cwd = std::env::current_dir().map_err(|source| BuildError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let repo = Repo::discover(&cwd)?;
    let base_commit = repo.resolve(base_ref)?;
    let base = repo.app_at(&base_commit)?;
    report_side("base", &base_commit.to_string(), &base);
    let base_label = format!("{base_ref} ({base_commit})");
    let head = match head_binary {
        Some(path) => {
            if !path.is_file() {
                return Err(BuildError::Io {
                    path,
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            Side {
                label: "app.binary".to_owned(),
                app: AppBuild {
                    path,
                    from_cache: false,
                },
            }
        }
        None => {
            let head_commit = repo.resolve("HEAD")?;
            if repo.is_clean()? {
                let b = repo.app_at(&head_commit)?;
                report_side("head", &head_commit.to_string(), &b);
                Side {
                    label: format!("HEAD ({head_commit})"),
                    app: b,
                }
            } else {
                let b = repo.app_in_work_tree()?;
                report_side("head", "the work tree", &b);
                Side {
                    label: format!("HEAD ({head_commit}) + uncommitted changes"),
                    app: b,
                }
            }
        }
    };
    Ok((
        Side {
            label: base_label,
            app: base,
        },
        head,
    ))
}

fn report_side(side: &str, what: &str, b: &AppBuild) {
    let how = if b.from_cache { "cached" } else { "built" };
    eprintln!(
        "poolproof gate: {side} pooled-app at {what}: {how} {}",
        b.path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_supplies_arms_and_app_itself() {
        let ok = scenario::load_bytes(
            b"name: g\nload:\n  users: 1\n  duration: 2s\n  transactions:\n    - {name: h, path: /healthz}\n",
            "g.yaml",
        );
        let Ok(mut s) = ok else {
            panic!("fixture scenario does not load: {ok:?}");
        };
        assert_eq!(check_shape(&s), Ok(()));
        s.arms = vec![arm("x", std::path::Path::new("/bin/true"))];
        assert!(check_shape(&s).is_err_and(|e| e.starts_with("arms:")));
        s.arms.clear();
        s.app.command = Some(vec!["python".into()]);
        assert!(check_shape(&s).is_err_and(|e| e.starts_with("app.command:")));
    }
}

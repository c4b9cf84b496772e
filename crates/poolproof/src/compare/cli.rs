//! The regression gate's command-line edge: `poolproof compare`, `poolproof baseline save`,
//! and the gate flags shared with `validate --baseline`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::exit::Exit;
use crate::scenario::Percent;

use super::baseline::{load_figures, save_baseline, BaselineError};
use super::comparison::compare;
use super::gate::{print_comparison, write_json};
use super::metric::GateMetric;
use super::verdict::GateConfig;

/// Flags of the regression gate (shared by `compare` and `validate --baseline`).
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Relative change tolerated before a metric can regress.
    #[arg(long, default_value_t = default_percent(|c| c.tolerance), value_name = "PERCENT")]
    pub tolerance: Percent,
    /// Per-metric tolerance, e.g. `latency_p99=10%` (repeatable).
    #[arg(long = "metric-tolerance", value_name = "METRIC=PERCENT", value_parser = parse_metric_tolerance)]
    pub metric_tolerance: Vec<(GateMetric, Percent)>,
    /// Replicate spread (coefficient of variation) above which a metric is erratic, not gated.
    #[arg(long, default_value_t = default_percent(|c| c.erratic_cv), value_name = "PERCENT")]
    pub erratic_cv: Percent,
    /// Two-sided confidence level of the bootstrap interval.
    #[arg(long, default_value_t = default_percent(|c| c.bootstrap.confidence), value_name = "PERCENT")]
    pub confidence: Percent,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = GateConfig::default().bootstrap.resamples as u32, value_parser = clap::value_parser!(u32).range(200..=1_000_000))]
    pub resamples: u32,
    /// Seed of the bootstrap (same inputs and seed, same intervals).
    #[arg(long, default_value_t = GateConfig::default().seed)]
    pub seed: u64,
    /// Host CPU pressure (share of a replicate's load time in which some task waited for a
    /// CPU, Linux PSI) above which the comparison is inconclusive.
    #[arg(long, default_value_t = default_percent(|c| c.max_host_cpu_pressure), value_name = "PERCENT")]
    pub max_cpu_pressure: Percent,
    /// Share of the load generator's starts sent late (beyond 10 ms) above which the
    /// comparison is inconclusive.
    #[arg(long, default_value_t = default_percent(|c| c.max_generator_late_share), value_name = "PERCENT")]
    pub max_generator_late: Percent,
}

/// A default of [`GateConfig`] as its flag shows it: one home for the gate's defaults.
fn default_percent(pick: fn(&GateConfig) -> f64) -> Percent {
    Percent::from_fraction(pick(&GateConfig::default()))
}

fn parse_metric_tolerance(s: &str) -> Result<(GateMetric, Percent), String> {
    let (m, p) = s
        .split_once('=')
        .ok_or_else(|| format!("expected METRIC=PERCENT (e.g. latency_p99=10%), got {s:?}"))?;
    let metric: GateMetric = m
        .trim()
        .parse()
        .map_err(|e: super::metric::UnknownMetric| e.to_string())?;
    let pct: Percent = p
        .parse()
        .map_err(|e: crate::scenario::types::ValueError| e.to_string())?;
    Ok((metric, pct))
}

impl GateArgs {
    /// The gate configuration these flags describe.
    pub fn config(&self) -> GateConfig {
        let mut c = GateConfig {
            tolerance: self.tolerance.fraction(),
            erratic_cv: self.erratic_cv.fraction(),
            seed: self.seed,
            max_host_cpu_pressure: self.max_cpu_pressure.fraction(),
            max_generator_late_share: self.max_generator_late.fraction(),
            ..GateConfig::default()
        };
        c.bootstrap.confidence = self.confidence.fraction().clamp(0.5, 0.999);
        c.bootstrap.resamples = self.resamples as usize;
        for (m, p) in &self.metric_tolerance {
            c.tolerances.insert(*m, p.fraction());
        }
        c
    }
}

/// `poolproof compare BASE NEW`, or `poolproof compare --baseline-history FILE NEW`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The reference: a baseline file, a report.json, or a run directory. Omitted with
    /// --baseline-history (then the one path given is NEW).
    #[arg(value_name = "BASE")]
    pub base: Option<PathBuf>,
    /// The candidate: a baseline file, a report.json, or a run directory.
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    #[command(flatten)]
    pub history: crate::history::cli::HistoryBaselineArgs,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Also write the comparison as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `poolproof baseline ...`.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

/// Baseline subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum BaselineCommand {
    /// Save a run's per-replicate figures as `<reports-dir>/baselines/<scenario>.json`.
    Save {
        /// A run directory or its report.json.
        input: PathBuf,
        /// The reports directory the baselines directory lives in.
        #[arg(long, default_value = "reports")]
        reports_dir: PathBuf,
    },
}

fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// `poolproof compare BASE NEW` (or `--baseline-history FILE NEW`): exit 0 pass,
/// 1 regression, 2 unreadable input or usage, 4 inconclusive.
pub fn cmd_compare(args: &CompareArgs) -> Exit {
    let load = |p: &Path| {
        load_figures(p).map_err(|e| {
            eprintln!("{e}");
        })
    };
    let hist = &args.history;
    let (base, new) = match (&hist.baseline_history, &args.base, &args.new) {
        (None, Some(b), Some(n)) => {
            if hist.filter.branch.is_some() || hist.filter.last.is_some() {
                eprintln!(
                    "compare: --branch and --last choose runs of --baseline-history; they need it"
                );
                return Exit::Invalid;
            }
            let (Ok(base), Ok(new)) = (load(b), load(n)) else {
                return Exit::Invalid;
            };
            (base, new)
        }
        (Some(h), Some(n), None) => {
            let Ok(new) = load(n) else {
                return Exit::Invalid;
            };
            match crate::history::cli::history_baseline(h, &hist.filter, &new) {
                Ok(base) => (base, new),
                Err(e) => {
                    eprintln!("{e}");
                    return Exit::Invalid;
                }
            }
        }
        (Some(_), Some(_), Some(_)) => {
            eprintln!(
                "compare: with --baseline-history, give only NEW (BASE comes from the history)"
            );
            return Exit::Invalid;
        }
        _ => {
            eprintln!("compare: expected BASE NEW, or --baseline-history FILE NEW");
            return Exit::Invalid;
        }
    };
    let c = compare(&base, &new, &args.gate.config());
    print_comparison(&c);
    if let Some(p) = &args.json {
        if let Err(e) = write_json(p, &c) {
            eprintln!("{e}");
            return Exit::Infrastructure;
        }
    }
    Exit::from(c.outcome)
}

/// `poolproof baseline save`.
pub fn cmd_baseline(args: &BaselineArgs) -> Exit {
    match &args.command {
        BaselineCommand::Save { input, reports_dir } => match save_baseline(input, reports_dir) {
            Ok(out) => {
                print_stdout(&format!("saved baseline {}\n", out.display()));
                Exit::Ok
            }
            Err(e @ BaselineError::Write { .. }) => {
                eprintln!("{e}");
                Exit::Infrastructure
            }
            Err(e) => {
                eprintln!("{e}");
                Exit::Invalid
            }
        },
    }
}

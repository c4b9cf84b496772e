//! Regression gating: compares per-replicate figures of a NEW run against a BASE run (a
//! baseline or another report) and decides, metric by metric, whether NEW regressed — only
//! when a bootstrap confidence interval of the change lies wholly past the tolerance.
//! Method and measured error rates: docs/regression-gating.md.

pub mod baseline;
pub mod cli;
pub mod comparison;
pub mod gate;
pub mod metric;
pub mod noise;
pub mod observed;
pub mod render;
pub mod schedule;
pub mod summary;
pub mod verdict;

pub use baseline::{load_figures, save_baseline, Baseline, BaselineError, BASELINE_FORMAT};
pub use comparison::{compare, compare_with, Comparison, Design, Outcome, RunFigures};
pub use metric::{GateMetric, MetricDirection};
pub use noise::{noise_summary, NoiseSummary};
pub use render::{comparison_cells, comparison_markdown, noise_markdown, noise_sentence, RowCells};
pub use schedule::{replicate_schedule, Step};
pub use summary::ReplicateSummary;
pub use verdict::{decide, decide_paired, GateConfig, GateVerdict, MetricComparison};

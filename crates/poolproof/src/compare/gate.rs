//! Running the regression gate and showing its result: the comparison written as
//! comparison.json / comparison.md beside a run, printed (warnings to stderr, the table to
//! stdout) and appended to the GitHub step summary. Shared by `poolproof compare`, the
//! `validate --baseline` run loop and `poolproof gate`.

use std::io::Write as _;
use std::path::Path;

use super::baseline::{load_figures, BaselineError};
use super::comparison::{compare, compare_with, Comparison, Design, RunFigures};
use super::render::comparison_markdown;
use super::verdict::GateConfig;

/// Appends to `$GITHUB_STEP_SUMMARY` when set; a failure there is a warning, not a verdict.
fn step_summary(md: &str) {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(md.as_bytes()));
        if let Err(e) = r {
            eprintln!("warning: cannot append to $GITHUB_STEP_SUMMARY: {e}");
        }
    }
}

/// Prints a comparison: warnings to stderr (one line each), the markdown table to stdout.
pub fn print_comparison(c: &Comparison) {
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    let md = comparison_markdown(c);
    let mut out = std::io::stdout().lock();
    // A closed pipe (`poolproof compare … | head`) is not an error worth a panic.
    let _ = out.write_all(md.as_bytes()).and_then(|_| out.flush());
    step_summary(&md);
}

/// Writes the comparison as pretty JSON (the `--json` file and comparison.json).
pub(super) fn write_json(path: &Path, c: &Comparison) -> Result<(), BaselineError> {
    let werr = |source| BaselineError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(c).map_err(|e| werr(std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(werr)
}

/// The `validate --baseline FILE` gate, for the run loop: compares the run's figures with the
/// baseline, writes `comparison.json` and `comparison.md` into the run directory, and returns
/// the comparison (the caller prints it with [`print_comparison`] and maps its outcome to the
/// exit code with `Exit::from`).
pub fn gate_run(
    baseline: &Path,
    new: &RunFigures,
    gate: &GateConfig,
    run_dir: &Path,
) -> Result<Comparison, BaselineError> {
    let base = load_figures(baseline)?;
    let c = compare(&base, new, gate);
    write_beside(&c, run_dir)?;
    Ok(c)
}

/// The `poolproof gate` verdict, for the run loop: BASE and NEW are two arms of the same run,
/// compared pair by pair ([`Design::Paired`]); writes `comparison.json` and `comparison.md`
/// into the run directory like [`gate_run`].
pub fn gate_pairs(
    base: &RunFigures,
    new: &RunFigures,
    gate: &GateConfig,
    run_dir: &Path,
) -> Result<Comparison, BaselineError> {
    let c = compare_with(base, new, gate, Design::Paired);
    write_beside(&c, run_dir)?;
    Ok(c)
}

/// comparison.json and comparison.md in `run_dir`.
fn write_beside(c: &Comparison, run_dir: &Path) -> Result<(), BaselineError> {
    write_json(&run_dir.join("comparison.json"), c)?;
    let md = comparison_markdown(c);
    std::fs::write(run_dir.join("comparison.md"), &md).map_err(|source| BaselineError::Write {
        path: run_dir.join("comparison.md"),
        source,
    })
}

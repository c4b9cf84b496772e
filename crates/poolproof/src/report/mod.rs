//! Run reports: `report.json` (versioned), `report.md`, `junit.xml`, `report.html` and the GitHub step
//! summary, written to `reports/<scenario>/<run-id>/`; plus the normalized view that insta
//! snapshots.

pub mod html;
mod junit;
mod markdown;
mod model;
mod normalize;
pub mod xml;

pub use junit::junit_xml;
pub use markdown::markdown;
pub use model::{
    AppCpuRun, ArmSummary, ClientSecond, PhaseSpan, ReportInput, RouteSummary, RunReport, Series,
    Summary, Tools, SCHEMA_VERSION,
};
pub use normalize::{bucket, NormalizedReport, NormalizedRoute, NormalizedSla};

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialize the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// The files one run's reports were written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    pub dir: PathBuf,
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub junit: PathBuf,
    /// The self-contained HTML report ([`html`]).
    pub html: PathBuf,
    /// The GitHub step summary appended to, when `$GITHUB_STEP_SUMMARY` was set.
    pub step_summary: Option<PathBuf>,
}

/// `<root>/<scenario>/<run-id>/`.
pub fn run_dir(root: &Path, scenario: &str, run_id: &str) -> PathBuf {
    root.join(scenario).join(run_id)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file via a temporary sibling and a rename, so a reader never sees half a report.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes report.json, report.md and junit.xml into `dir` (created if needed), and appends
/// the markdown to `$GITHUB_STEP_SUMMARY` when it is set.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<ReportPaths, ReportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = dir.join("report.json");
    let md = dir.join("report.md");
    let junit = dir.join("junit.xml");
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    write_atomic(&json, text.as_bytes())?;
    let markdown_text = markdown(report);
    write_atomic(&md, markdown_text.as_bytes())?;
    write_atomic(&junit, junit_xml(report).as_bytes())?;
    let html = dir.join("report.html");
    write_atomic(&html, html::page(report).as_bytes())?;
    let step_summary = match std::env::var_os("GITHUB_STEP_SUMMARY") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            append_step_summary(&p, &markdown_text)?;
            Some(p)
        }
        _ => None,
    };
    Ok(ReportPaths {
        dir: dir.to_path_buf(),
        json,
        markdown: md,
        junit,
        html,
        step_summary,
    })
}

/// Appends to the GitHub step summary file (several runs in one job each add theirs).
pub fn append_step_summary(path: &Path, markdown_text: &str) -> Result<(), ReportError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(markdown_text.as_bytes()).map_err(io(path))?;
    f.write_all(b"\n").map_err(io(path))
}

/// Reads a report.json back (e.g. for `compare` or the normalized view of a stored run).
pub fn read_json(path: &Path) -> Result<RunReport, ReportError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Ok(serde_json::from_str(&text)?)
}

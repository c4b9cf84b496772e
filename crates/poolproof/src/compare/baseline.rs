//! Baseline files (`reports/baselines/<scenario>.json`) and loading run figures from either a
//! baseline or a run's report.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::comparison::RunFigures;
use super::summary::ReplicateSummary;
use crate::app::host::{self, HostFacts};

/// Format tag of baseline files; bump on incompatible changes.
pub const BASELINE_FORMAT: &str = "poolproof-baseline/1";

/// A saved baseline: the per-replicate figures of one run plus where it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format: String,
    pub scenario: String,
    /// RFC 3339 time the baseline was saved.
    pub saved_at: String,
    /// The report it was saved from.
    pub source: String,
    #[serde(with = "host::baseline_record")]
    pub host: HostFacts,
    pub tools: BTreeMap<String, String>,
    pub replicates: Vec<ReplicateSummary>,
}

/// Why figures could not be loaded or a baseline saved.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not valid JSON: {msg}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{path}: field `{field}`: {msg}")]
    Field {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Accepts a run directory (containing report.json) or a file.
pub fn resolve_input(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    }
}

fn field_err(path: &Path, field: impl Into<String>, msg: impl Into<String>) -> BaselineError {
    BaselineError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        msg: msg.into(),
    }
}

/// Deserialises one field with the field path in the error.
fn take<T: serde::de::DeserializeOwned>(
    path: &Path,
    field: &str,
    v: &serde_json::Value,
) -> Result<T, BaselineError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let full = if inner == "." {
            field.to_string()
        } else {
            format!("{field}.{inner}")
        };
        field_err(path, full, e.inner().to_string())
    })
}

/// Loads run figures from a baseline file, a report.json, or a run directory.
///
/// A report.json must carry `scenario` (a name, or an object with `name`) and
/// `replicates: [ReplicateSummary...]`; `host` and `tools` are optional.
pub fn load_figures(input: &Path) -> Result<RunFigures, BaselineError> {
    let path = resolve_input(input);
    let text = std::fs::read_to_string(&path).map_err(|source| BaselineError::Read {
        path: path.clone(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| BaselineError::Json {
        path: path.clone(),
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })?;
    let label = path.display().to_string();
    if let Some(fmt) = v.get("format").and_then(|f| f.as_str()) {
        if fmt.starts_with("poolproof-baseline/") {
            if fmt != BASELINE_FORMAT {
                return Err(field_err(
                    &path,
                    "format",
                    format!("unsupported baseline format `{fmt}` (this poolproof reads {BASELINE_FORMAT})"),
                ));
            }
            let b: Baseline = take(&path, "baseline", &v)?;
            return Ok(RunFigures {
                label,
                scenario: b.scenario,
                replicates: b.replicates,
                host: Some(b.host),
                tools: b.tools,
            });
        }
    }
    let scenario = match v.get("scenario") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(o @ serde_json::Value::Object(_)) => o
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                field_err(
                    &path,
                    "scenario.name",
                    "missing: expected the scenario name",
                )
            })?,
        _ => {
            return Err(field_err(
                &path,
                "scenario",
                "missing: neither a baseline (`format`) nor a report.json with a scenario name",
            ))
        }
    };
    let reps = v.get("replicates").ok_or_else(|| {
        field_err(
            &path,
            "replicates",
            "missing: this report has no per-replicate summaries (written by an older poolproof?)",
        )
    })?;
    let replicates: Vec<ReplicateSummary> = take(&path, "replicates", reps)?;
    if replicates.is_empty() {
        return Err(field_err(&path, "replicates", "empty: nothing to compare"));
    }
    let host = match v.get("host") {
        Some(h) if h.is_object() => Some(take(&path, "host", h)?),
        _ => None,
    };
    let tools = match v.get("tools") {
        Some(t) if !t.is_null() => take(&path, "tools", t)?,
        _ => BTreeMap::new(),
    };
    Ok(RunFigures {
        label,
        scenario,
        replicates,
        host,
        tools,
    })
}

/// Builds a baseline from a run's figures. Host facts come from the run when it recorded
/// them, else from this host (baselines are saved right after the run, on its host).
pub fn baseline_from(figures: RunFigures) -> Baseline {
    let mut tools = tool_versions();
    for (k, v) in figures.tools {
        tools.entry(k).or_insert(v);
    }
    Baseline {
        format: BASELINE_FORMAT.into(),
        scenario: figures.scenario,
        saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: figures.label,
        host: match figures.host {
            // A report header lacks the CPU model and kernel: when it describes this very
            // host (the usual case, saving right after the run), complete it from here.
            Some(mut h) => {
                let here = HostFacts::collect();
                if h.hostname_id() == here.hostname_id() {
                    h.complete_from(&here);
                }
                h
            }
            None => HostFacts::collect(),
        },
        tools,
        replicates: figures.replicates,
    }
}

/// Tool versions recorded with a baseline.
pub fn tool_versions() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("poolproof".into(), env!("CARGO_PKG_VERSION").into());
    m
}

/// Where `baseline save` writes: `<reports_dir>/baselines/<scenario>.json`.
pub fn baseline_path(reports_dir: &Path, scenario: &str) -> PathBuf {
    reports_dir
        .join("baselines")
        .join(format!("{scenario}.json"))
}

/// Writes a baseline atomically (temp file + rename), creating the directory.
pub fn write_baseline(path: &Path, b: &Baseline) -> Result<(), BaselineError> {
    let werr = |source| BaselineError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let mut text = serde_json::to_string_pretty(b).map_err(|e| werr(std::io::Error::other(e)))?;
    text.push('\n');
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("baseline.json")
    ));
    std::fs::write(&tmp, text).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(e)
    })
}

/// `poolproof baseline save INPUT`: loads the run's figures and writes the baseline next to
/// the other baselines. Returns where it wrote.
pub fn save_baseline(input: &Path, reports_dir: &Path) -> Result<PathBuf, BaselineError> {
    let figures = load_figures(input)?;
    let b = baseline_from(figures);
    let out = baseline_path(reports_dir, &b.scenario);
    write_baseline(&out, &b)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(i: u32, p95: f64) -> ReplicateSummary {
        ReplicateSummary {
            index: i,
            latency_p50_ms: p95 / 3.0,
            latency_p95_ms: p95,
            latency_p99_ms: p95 * 1.5,
            throughput_rps: 400.0,
            pool_efficiency: Some(0.98),
            pool_utilization: Some(0.4),
            acquire_wait_p95_ms: Some(0.2),
            server_latency_p95_ms: Some(p95 * 0.8),
            ..Default::default()
        }
    }

    #[test]
    fn report_json_round_trips_through_a_baseline() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let run = dir.path().join("reports/smoke/run-1");
        std::fs::create_dir_all(&run).unwrap_or_else(|e| panic!("{e}"));
        let report = serde_json::json!({
            "schema_version": 1,
            "scenario": {"name": "smoke"},
            "replicates": [rep(1, 20.0), rep(2, 21.0), rep(3, 19.5)],
            "slas": [],
        });
        std::fs::write(run.join("report.json"), report.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let out =
            save_baseline(&run, &dir.path().join("reports")).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.ends_with("reports/baselines/smoke.json"));
        let f = load_figures(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.scenario, "smoke");
        assert_eq!(f.replicates.len(), 3);
        assert_eq!(f.replicates[1].latency_p95_ms, 21.0);
        let host = f.host.unwrap_or_else(|| panic!("host missing"));
        assert!(
            host.differences(&HostFacts::collect()).is_empty(),
            "{host:?}"
        );
        assert_eq!(host.hostname_id(), HostFacts::collect().hostname_id());
        assert!(f.tools.contains_key("poolproof"));
    }

    #[test]
    fn errors_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let p = dir.path().join("report.json");
        std::fs::write(&p, r#"{"scenario": "x", "replicates": [{"index": 1}]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let e = load_figures(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("report.json") && e.contains("replicates"), "{e}");
        assert!(e.contains("latency_p50_ms"), "{e}");

        std::fs::write(&p, "{\n  \"scenario\": \n}").unwrap_or_else(|e| panic!("{e}"));
        let e = load_figures(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("report.json:3:1"), "{e}");

        std::fs::write(&p, r#"{"scenario": "x"}"#).unwrap_or_else(|e| panic!("{e}"));
        let e = load_figures(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("field `replicates`"), "{e}");
    }
}

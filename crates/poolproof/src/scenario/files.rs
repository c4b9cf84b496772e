//! Scenario files on disk as the commands name them: directories expanded into their
//! `*.yaml` files, and every file loaded into a [`LoadedScenario`] that remembers its path.
//! Lives beside the loader so that `run` and `cli` both take it from here, not from each other.

use std::path::PathBuf;

use super::{load_file, Scenario, ScenarioError};

/// A scenario file that loaded and validated.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its typed content.
    pub scenario: Scenario,
}

/// A path argument that names no scenario files.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("{}: cannot read directory: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no *.yaml scenario files in this directory", path.display())]
    NoScenarios { path: PathBuf },
}

/// Expands directories into their `*.yaml` / `*.yml` files (sorted); files pass through.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PathsError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| PathsError::ReadDir {
                path: p.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            if files.is_empty() {
                return Err(PathsError::NoScenarios { path: p.clone() });
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Loads every file; all of them or, when any is invalid, every file's error in order (so a
/// user sees all broken files at once, not the first).
pub fn load_all(files: &[PathBuf]) -> Result<Vec<LoadedScenario>, Vec<ScenarioError>> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in files {
        match load_file(f) {
            Ok(s) => ok.push(LoadedScenario {
                path: f.clone(),
                scenario: s,
            }),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        Ok(ok)
    } else {
        Err(bad)
    }
}

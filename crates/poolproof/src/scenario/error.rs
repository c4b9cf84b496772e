//! The one error type of scenario loading: one line, `FILE:LINE:COLUMN: field.path: message`.

use std::fmt;

/// What kind of problem a [`ScenarioError`] reports (all are "invalid scenario", exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read (missing, a directory, permissions).
    Io,
    /// Too large, not UTF-8, empty, or not YAML.
    Syntax,
    /// `${VAR}` interpolation failed.
    Interpolation,
    /// Valid YAML that does not fit the scenario model (unknown key, wrong type, bad value).
    Schema,
    /// Fits the model but contradicts itself (unknown route, fault past the end of load, …).
    Semantic,
}

/// A scenario that cannot be used, located in its file where a position means something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file (or origin label given to `load_str`).
    pub origin: String,
    /// 1-based line and column in the original file, when known.
    pub position: Option<(usize, usize)>,
    /// Dotted field path (`slas[2].threshold`), when the problem is in one field.
    pub path: Option<String>,
    /// What is wrong; one line, never containing an interpolated secret.
    pub message: String,
    /// The class of problem.
    pub kind: ErrorKind,
}

impl ScenarioError {
    pub(crate) fn new(origin: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_string(),
            position: None,
            path: None,
            message: one_line(&message.into()),
            kind,
        }
    }
    pub(crate) fn at(mut self, position: Option<(usize, usize)>) -> Self {
        self.position = position;
        self
    }
    pub(crate) fn with_path(mut self, path: impl Into<String>) -> Self {
        let p = path.into();
        self.path = (!p.is_empty() && p != ".").then_some(p);
        self
    }
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some((l, c)) = self.position {
            write!(f, ":{l}:{c}")?;
        }
        f.write_str(": ")?;
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.message)
    }
}

//! Time windows, phases, fault events and alert deliveries of a run.

use serde::{Deserialize, Serialize};

/// A half-open time span `[start, end)` in seconds from the start of measured load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl Window {
    pub fn new(start: f64, end: f64) -> Self {
        Window { start, end }
    }

    pub fn contains(&self, t: f64) -> bool {
        t >= self.start && t < self.end
    }

    pub fn duration(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }

    /// The overlap of two windows, `None` when it is empty.
    pub fn intersect(&self, other: &Window) -> Option<Window> {
        let w = Window::new(self.start.max(other.start), self.end.min(other.end));
        (w.end > w.start).then_some(w)
    }

    /// What is left of this window without `gaps` (in order; empty pieces dropped).
    pub fn minus(&self, gaps: &[Window]) -> Vec<Window> {
        let mut gaps: Vec<&Window> = gaps
            .iter()
            .filter(|g| self.intersect(g).is_some())
            .collect();
        gaps.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut out = Vec::new();
        let mut from = self.start;
        for g in gaps {
            if g.start > from {
                out.push(Window::new(from, g.start));
            }
            from = from.max(g.end);
        }
        if self.end > from {
            out.push(Window::new(from, self.end));
        }
        out
    }
}

#[cfg(test)]
mod window_tests {
    use super::Window;

    #[test]
    fn minus_cuts_gaps_out_in_order() {
        let w = Window::new(0.0, 10.0);
        let gaps = [
            Window::new(5.0, 6.0),
            Window::new(-1.0, 1.0),
            Window::new(9.0, 12.0),
        ];
        assert_eq!(
            w.minus(&gaps),
            [Window::new(1.0, 5.0), Window::new(6.0, 9.0)]
        );
        assert_eq!(w.minus(&[]), [w]);
        assert!(w.minus(&[Window::new(-1.0, 11.0)]).is_empty());
    }
}

/// The phase an SLA is evaluated over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Ramp-up and warm-up: never used by SLAs, shown in reports.
    Warmup,
    /// The whole measured load window.
    Load,
    /// From the start of load to the first fault.
    Before,
    /// Each fault's actual span.
    During,
    /// From the end of the last fault to the end of load.
    After,
}

impl PhaseKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PhaseKind::Warmup => "warmup",
            PhaseKind::Load => "load",
            PhaseKind::Before => "before",
            PhaseKind::During => "during",
            PhaseKind::After => "after",
        }
    }
}

/// A fault as it really happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// The scenario's fault kind, e.g. `db_latency`.
    pub kind: String,
    /// What it acted on, e.g. `postgres`, when the kind does not say.
    pub target: Option<String>,
    /// The planned start offset (scenario `at`).
    pub planned_at: f64,
    /// The actual start offset, once the fault took effect.
    pub start: f64,
    /// The actual end offset, `None` if it never ended before the load did.
    pub end: Option<f64>,
}

/// An alert silence as it was in force at the app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SilenceEvent {
    /// The alert it muted; `None`: every alert.
    pub alert: Option<String>,
    /// The planned start offset (scenario `at`).
    pub planned_at: f64,
    /// When the app had stored it (its answer arrived), offset in seconds.
    pub start: f64,
    /// When it ended at the app (`ends_at`), offset in seconds.
    pub end: f64,
}

impl SilenceEvent {
    /// Whether it muted `alert` at offset `t`.
    pub fn mutes(&self, alert: &str, t: f64) -> bool {
        t >= self.start && t < self.end && self.alert.as_deref().is_none_or(|a| a == alert)
    }
}

/// Whether a notification announced a firing alert or its resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    Firing,
    Resolved,
}

/// One notification received by the webhook sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// Arrival offset in seconds from the start of measured load.
    pub t: f64,
    /// `slack` or `email`.
    pub channel: String,
    /// The alert rule's name, e.g. `high_request_latency_p95_critical`.
    pub alert: String,
    pub transition: AlertTransition,
    /// The status the sink answered with (a sink told to fail answers 5xx).
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_intersection_and_containment() {
        let a = Window::new(0.0, 10.0);
        assert_eq!(
            a.intersect(&Window::new(5.0, 15.0)),
            Some(Window::new(5.0, 10.0))
        );
        assert_eq!(a.intersect(&Window::new(10.0, 15.0)), None);
        assert!(a.contains(0.0) && !a.contains(10.0));
        assert_eq!(Window::new(3.0, 1.0).duration(), 0.0);
    }
}

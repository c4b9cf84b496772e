//! Progress display while a scenario runs: on a terminal a live status line (phase,
//! elapsed/total, rps, p95, errors) redrawn about four times a second on stderr; otherwise one
//! plain line per phase, so CI logs stay short and readable. The figures are the load
//! generator's own snapshot ([`LoadProgress`]); this module only renders them.

use crate::load::LoadProgress;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Progress of one scenario run.
pub struct Progress {
    scenario: String,
    tty: bool,
    started: Instant,
    live: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Progress {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            live: None,
        }
    }

    /// Announces a phase (provisioning, starting the app, warm-up, load, reports...).
    pub fn phase(&mut self, phase: &str) {
        self.end_live();
        let t = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K[{t:6.1}s] {}: {phase}", self.scenario);
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "[{t:6.1}s] {}: {phase}", self.scenario);
        }
    }

    /// Shows a live line for measured load of `total` length: on a terminal it is redrawn ~4×/s
    /// from the snapshot `read` returns; otherwise a plain line is printed whenever the load's
    /// phase (ramp, warm-up, load, ...) changes. Ends at the next `phase` or `finish`.
    pub fn live<F>(&mut self, total: Duration, read: F)
    where
        F: Fn() -> LoadProgress + Send + 'static,
    {
        self.end_live();
        let (stop, mut stopped) = watch::channel(false);
        let scenario = self.scenario.clone();
        let tty = self.tty;
        let started = self.started;
        let task = tokio::spawn(async move {
            let mut last_phase = "";
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let p = read();
                let phase = p.phase.as_str();
                if phase != last_phase {
                    last_phase = phase;
                    if !tty {
                        eprintln!(
                            "[{:6.1}s] {scenario}: {phase}",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                if tty {
                    let line = live_line(&scenario, total, &p);
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
            }
        });
        self.live = Some((stop, task));
    }

    /// Ends the display (a terminal's line is closed with a newline).
    pub fn finish(&mut self, last: &str) {
        self.phase(last);
        if self.tty {
            eprintln!();
        }
    }

    fn end_live(&mut self) {
        if let Some((stop, task)) = self.live.take() {
            let _ = stop.send(true);
            task.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end_live();
    }
}

/// The live line's text (kept pure so its format is tested).
pub fn live_line(scenario: &str, total: Duration, p: &LoadProgress) -> String {
    let p95 = p
        .p95_ms
        .map(|ms| format!("{ms:.1}ms"))
        .unwrap_or_else(|| "-".into());
    format!(
        "{scenario}: {} {:>5.1}/{:.0}s  {:>7.0} rps  p95 {p95}  errors {}/{}",
        p.phase.as_str(),
        p.elapsed_s.min(total.as_secs_f64()),
        total.as_secs_f64(),
        p.rps,
        p.errors,
        p.requests
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadPhase;

    #[test]
    fn live_line_shows_phase_time_rps_p95_errors() {
        let p = LoadProgress {
            phase: LoadPhase::Measuring,
            elapsed_s: 12.34,
            rps: 401.4,
            p95_ms: Some(2.35),
            requests: 1200,
            errors: 3,
        };
        let line = live_line("smoke", Duration::from_secs(30), &p);
        assert_eq!(
            line,
            "smoke: load  12.3/30s      401 rps  p95 2.4ms  errors 3/1200"
        );
        let warm = LoadProgress {
            phase: LoadPhase::Warmup,
            elapsed_s: -2.5,
            rps: 0.0,
            p95_ms: None,
            requests: 0,
            errors: 0,
        };
        assert_eq!(
            live_line("smoke", Duration::from_secs(5), &warm),
            "smoke: warm-up  -2.5/5s        0 rps  p95 -  errors 0/0"
        );
    }
}

//! Progress display while a scenario runs: on a terminal a live status line (phase,
//! elapsed/total, rps, p95, errors) redrawn about four times a second on stderr; otherwise one
//! plain line per phase, so CI logs stay short and readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Live figures from the load generator, read on each redraw.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveStats {
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p95: Option<Duration>,
}

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

    /// Shows a live line for a timed phase of `total` length: on a terminal it is redrawn ~4×/s
    /// from what `read` returns (the current sub-phase name, seconds from the start of measured
    /// load — negative before it — and the figures); otherwise a plain line
    /// is printed whenever the sub-phase changes. Ends at the next `phase` or `finish`.
    pub fn live<F>(&mut self, total: Duration, read: F)
    where
        F: Fn() -> (&'static str, f64, LiveStats) + Send + 'static,
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
                let (phase, elapsed, s) = read();
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
                    let line = live_line(&scenario, phase, elapsed, total, &s);
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
pub fn live_line(
    scenario: &str,
    phase: &str,
    elapsed: f64,
    total: Duration,
    s: &LiveStats,
) -> String {
    let p95 = s
        .p95
        .map(|d| format!("{:.1}ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into());
    format!(
        "{scenario}: {phase} {:>5.1}/{:.0}s  {:>7.0} rps  p95 {p95}  errors {}/{}",
        elapsed.min(total.as_secs_f64()),
        total.as_secs_f64(),
        s.rps,
        s.errors,
        s.requests
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_line_shows_phase_time_rps_p95_errors() {
        let s = LiveStats {
            requests: 1200,
            errors: 3,
            rps: 401.4,
            p95: Some(Duration::from_micros(2350)),
        };
        let line = live_line("smoke", "load", 12.34, Duration::from_secs(30), &s);
        assert_eq!(
            line,
            "smoke: load  12.3/30s      401 rps  p95 2.4ms  errors 3/1200"
        );
        let none = live_line(
            "smoke",
            "warm-up",
            -2.5,
            Duration::from_secs(5),
            &LiveStats::default(),
        );
        assert_eq!(
            none,
            "smoke: warm-up  -2.5/5s        0 rps  p95 -  errors 0/0"
        );
    }
}

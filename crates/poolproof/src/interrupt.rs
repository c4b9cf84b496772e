//! The process-wide Ctrl-C / SIGTERM handler, shared by the load generator and the run.
//!
//! goose installs its own handler when an attack starts unless one is already installed, and
//! that handler takes SIGINT over and `exit(1)`s on the second Ctrl-C — skipping teardown, with
//! the code that means "SLA failed". Installing this one first (ctrlc allows one) keeps the
//! decision with poolproof: the first signal stops the running attack (goose's killswitch) and
//! asks the run to stop; the run tears down, writes what it has and exits 130. A second signal
//! kills the app instances at once and exits 130 (that run's containers are swept at the next
//! start).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use tokio::sync::watch;

/// The exit code of an interrupted run (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: u8 = 130;

static COUNT: AtomicU32 = AtomicU32::new(0);
static CHANNEL: OnceLock<Result<watch::Sender<u32>, String>> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("cannot install the Ctrl-C handler: {0}")]
pub struct InterruptError(String);

/// Installs the handler (once per process) and returns a receiver of the number of signals
/// seen so far; it changes on each one. Safe to call many times.
pub fn install() -> Result<watch::Receiver<u32>, InterruptError> {
    let slot = CHANNEL.get_or_init(|| {
        let (tx, _rx) = watch::channel(0u32);
        let handler_tx = tx.clone();
        ctrlc::set_handler(move || {
            let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
            goose::trigger_killswitch("SIGINT received");
            if n == 1 {
                eprintln!(
                    "\npoolproof: interrupted: stopping load, tearing down (again to kill at once)"
                );
            } else {
                eprintln!("\npoolproof: interrupted twice: killing app instances and exiting");
                crate::teardown::kill_registered();
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            let _ = handler_tx.send(n);
        })
        .map(|()| tx)
        .map_err(|e| e.to_string())
    });
    match slot {
        Ok(tx) => Ok(tx.subscribe()),
        Err(e) => Err(InterruptError(e.clone())),
    }
}

/// How many signals this process has received.
pub fn count() -> u32 {
    COUNT.load(Ordering::SeqCst)
}

/// Whether a stop was requested (at least one signal).
pub fn requested() -> bool {
    count() > 0
}

/// Resolves when a stop is requested (at once if it already was); pending forever if the
/// handler could not be installed.
pub async fn wait() {
    match install() {
        Ok(mut rx) => {
            let _ = rx.wait_for(|n| *n > 0).await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Once a stop is requested, keeps goose's killswitch set (race it against the load in a
/// `select!`; it never returns): goose clears the killswitch when an attack starts, so a signal
/// that arrives just before that would otherwise be lost.
pub async fn hold_killswitch() {
    wait().await;
    loop {
        goose::trigger_killswitch("SIGINT received");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

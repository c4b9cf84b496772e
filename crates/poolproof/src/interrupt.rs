//! Ctrl-C / SIGTERM handling for a run: the first signal asks the run to stop (goose's load is
//! stopped through its killswitch, then the run tears down and writes what it has, exit 130); a
//! second one kills the app instances at once and exits 130 (containers of that run are swept at
//! the next start).
//!
//! The handler is installed with `ctrlc` before goose starts: goose then fails to install its
//! own (ctrlc allows one), which would otherwise take SIGINT over and `exit(1)` on the second
//! one — an exit code that means "SLA failed".

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use tokio::sync::watch;

/// The exit code of an interrupted run (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: u8 = 130;

static SIGNALS: AtomicU32 = AtomicU32::new(0);
static WATCH: OnceLock<watch::Sender<bool>> = OnceLock::new();

/// A handle to wait for, or test, an interruption.
#[derive(Clone)]
pub struct Interrupt {
    rx: watch::Receiver<bool>,
}

impl Interrupt {
    /// Installs the process-wide handler (once) and returns a handle.
    ///
    /// Fails only if another Ctrl-C handler was installed first (a bug in poolproof).
    pub fn install() -> Result<Self, ctrlc::Error> {
        let tx = WATCH.get_or_init(|| watch::channel(false).0);
        let rx = tx.subscribe();
        static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
        let installed = INSTALLED.get_or_init(|| {
            ctrlc::set_handler(|| {
                let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    eprintln!("\npoolproof: interrupted: stopping load, tearing down (Ctrl-C again to kill at once)");
                    goose::trigger_killswitch("SIGINT received");
                    if let Some(tx) = WATCH.get() {
                        let _ = tx.send(true);
                    }
                } else {
                    eprintln!("\npoolproof: interrupted twice: killing app instances and exiting");
                    crate::teardown::kill_registered();
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
            })
            .map_err(|e| e.to_string())
        });
        match installed {
            Ok(()) => Ok(Self { rx }),
            Err(_) => Err(ctrlc::Error::MultipleHandlers),
        }
    }

    /// Whether a stop was requested.
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when a stop is requested (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|set| *set).await;
    }

    /// Once a stop is requested, keeps goose's killswitch set (race it against the load in a
    /// `select!`; it never returns after a stop): goose clears the killswitch
    /// when an attack starts, so a signal that arrives just before that would otherwise be lost.
    pub async fn hold_killswitch(&self) {
        self.wait().await;
        loop {
            goose::trigger_killswitch("SIGINT received");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

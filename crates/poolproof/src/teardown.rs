//! Last-resort teardown: a registry of the process groups a run started, killed by a panic hook
//! (or explicitly) so that no app instance outlives poolproof, whatever path it exits by.
//!
//! Ordinary teardown happens through the owners' `stop`/`Drop` (app instances, service handles);
//! this registry only covers the paths where those cannot run: a panic on another thread, or an
//! exit that skips destructors.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::sync::{Mutex, Once};

static GROUPS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// For a child's `pre_exec`: the kernel SIGKILLs the child when the thread that spawned it
/// dies, so nothing poolproof starts outlives a SIGKILLed poolproof. One `prctl` call, which
/// is async-signal-safe, as code between fork and exec must be.
pub fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling (child) process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Ok(())
}

/// Remembers a process group to kill if poolproof panics or exits abruptly.
pub fn register_process_group(pgid: Pid) {
    if let Ok(mut g) = GROUPS.lock() {
        g.push(pgid);
    }
}

/// Forgets a process group that was stopped normally.
pub fn unregister_process_group(pgid: Pid) {
    if let Ok(mut g) = GROUPS.lock() {
        g.retain(|p| *p != pgid);
    }
}

/// Kills every registered process group (SIGKILL). Safe to call more than once.
pub fn kill_registered() {
    let groups = match GROUPS.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    for pgid in groups {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

/// Installs (once) a panic hook that kills the registered process groups before the default hook
/// prints the panic. Containers and temp dirs are released by their owners' `Drop` as the panic
/// unwinds; leftovers of a run that could not unwind are swept at the next start.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_registered();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn kill_registered_kills_the_group() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn();
        let mut child = child.expect("spawn sleep");
        let pgid = Pid::from_raw(child.id() as i32);
        register_process_group(pgid);
        kill_registered();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        assert!(status.contains("signal: 9"), "sleep ended with {status}");
        // A second call finds nothing left to kill.
        kill_registered();
    }
}

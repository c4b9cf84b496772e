//! The processes provider: the machine's own `postgres` and `redis-server` in temp dirs on
//! free loopback ports, as the system user `poolproof` when running as root (postgres refuses
//! root), each in its own process group so pause/stop/kill reach every backend. A pid file
//! per service lets a later run sweep what a killed run left behind.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{Gid, Pid, Uid};

use crate::owner::ProcessToken;
use crate::ServiceError;

/// Name of the system user that runs the services when this process is root.
pub const SERVICE_USER: &str = "poolproof";

/// Where pid files and the initdb template live (shared by all runs on the machine).
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join("poolproof-services")
}

/// Every live descendant of `root`, from the parent pids in `/proc/<pid>/stat`.
fn descendants(root: i32) -> Vec<ProcessToken> {
    let parents: Vec<(i32, i32)> = fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter_map(|pid| {
                    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    // After the command name (which may hold spaces): state, then the ppid.
                    let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
                    Some((pid, ppid.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found
        .into_iter()
        .skip(1)
        .filter_map(ProcessToken::of)
        .collect()
}

/// A service's process group and every descendant outside it. Postgres's children call
/// setsid(), so a group signal misses them: a "paused" Postgres kept answering on open
/// connections, and a child left stopped outlived its killed postmaster. Taken while the
/// leader lives (afterwards its children belong to init); signalled only while each is still
/// the very process that was found (pid reuse).
pub(crate) struct Family {
    leader: i32,
    members: Vec<ProcessToken>,
}

impl Family {
    pub(crate) fn of(leader: i32) -> Family {
        Family {
            leader,
            members: descendants(leader),
        }
    }

    pub(crate) fn signal(&self, signal: Signal) -> nix::Result<()> {
        let group = killpg(Pid::from_raw(self.leader), signal);
        for member in self.members.iter().filter(|m| m.is_alive()) {
            let _ = kill(Pid::from_raw(member.pid), signal);
        }
        group
    }
}

pub(crate) fn pid_dir() -> PathBuf {
    state_dir().join("pids")
}

/// The user to run services as: `Some` (the `poolproof` user, created if needed) when root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs {
    pub uid: Uid,
    pub gid: Gid,
}

pub(crate) fn run_as(service: &'static str) -> Result<Option<RunAs>, ServiceError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let lookup = || {
        nix::unistd::User::from_name(SERVICE_USER)
            .ok()
            .flatten()
            .map(|u| RunAs {
                uid: u.uid,
                gid: u.gid,
            })
    };
    if let Some(found) = lookup() {
        return Ok(Some(found));
    }
    let useradd = find_binary("useradd", &["/usr/sbin/useradd", "/sbin/useradd"])
        .unwrap_or_else(|| PathBuf::from("useradd"));
    let output = Command::new(useradd)
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(SERVICE_USER)
        .output()
        .map_err(|e| ServiceError::io(service, "running useradd", e))?;
    // Another test process may have created the user meanwhile: look again either way.
    lookup().map(Some).ok_or_else(|| ServiceError::Command {
        service,
        command: format!("useradd {SERVICE_USER}"),
        detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// A temp dir `<prefix>…` for one service process, owned by the service user (removed when
/// dropped).
pub(crate) fn service_dir(
    service: &'static str,
    prefix: &str,
    who: Option<RunAs>,
) -> Result<tempfile::TempDir, ServiceError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| ServiceError::io(service, "creating a temp dir", e))?;
    hand_over(service, dir.path(), who)?;
    Ok(dir)
}

/// Gives `path` to the service user (no-op when not root).
pub(crate) fn hand_over(
    service: &'static str,
    path: &Path,
    who: Option<RunAs>,
) -> Result<(), ServiceError> {
    if let Some(who) = who {
        nix::unistd::chown(path, Some(who.uid), Some(who.gid)).map_err(|e| {
            ServiceError::io(service, format!("chown {}", path.display()), e.into())
        })?;
    }
    Ok(())
}

/// Runs a set-up command to completion as the service user; stdin from `input`.
pub(crate) fn run_setup(
    service: &'static str,
    mut command: Command,
    who: Option<RunAs>,
    input: Option<&str>,
) -> Result<(), ServiceError> {
    if let Some(who) = who {
        command.uid(who.uid.as_raw()).gid(who.gid.as_raw());
    }
    let shown = format!("{:?}", command.get_program());
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| ServiceError::io(service, format!("starting {shown}"), e))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| ServiceError::io(service, format!("writing to {shown}"), e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| ServiceError::io(service, format!("waiting for {shown}"), e))?;
    if output.status.success() {
        Ok(())
    } else {
        let mut detail = String::from_utf8_lossy(&output.stderr).into_owned();
        detail.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(ServiceError::Command {
            service,
            command: shown,
            detail: last_lines(&detail, 10),
        })
    }
}

/// Finds an executable: the first of `candidates` that exists, else in `PATH`.
pub(crate) fn find_binary(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .chain(
            ["/usr/sbin", "/usr/bin"]
                .iter()
                .map(|d| Path::new(d).join(name)),
        )
        .find(|p| p.is_file())
}

/// 16 random bytes, hex: passwords and unique names.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `out` from the OS's randomness, or from fastrand's if the OS has none: none of its
/// uses is a secret worth a failure.
pub(crate) fn random_bytes(out: &mut [u8]) {
    if getrandom::fill(out).is_err() {
        fastrand::fill(out);
    }
}

/// The last `n` lines of `text`, prefixed with a newline (empty when `text` is blank).
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(n);
    format!("\n{}", lines[start..].join("\n"))
}

/// How to (re)spawn one service process.
#[derive(Debug, Clone)]
pub(crate) struct Spawn {
    pub service: &'static str,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub run_as: Option<RunAs>,
    /// Signal for a clean stop (SIGINT = postgres' fast shutdown).
    pub stop_signal: Signal,
    pub run_label: String,
}

/// One service process, its temp dir and its pid file. Dropping it kills the process group
/// and removes both.
pub(crate) struct ProcessService {
    spawn: Spawn,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
    pid_file: PathBuf,
    child: Option<Child>,
}

impl ProcessService {
    /// Takes ownership of `dir` (removed on drop) and starts the process.
    pub fn start_in(spawn: Spawn, dir: tempfile::TempDir) -> Result<ProcessService, ServiceError> {
        let log = dir.path().join("service.log");
        let pid_file = pid_dir().join(format!(
            "{}-{}.pid",
            spawn.service,
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(random_hex)
        ));
        let mut service = ProcessService {
            spawn,
            dir: Some(dir),
            log,
            pid_file,
            child: None,
        };
        service.spawn()?;
        Ok(service)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Starts the process again (after a stop) with the same arguments, port and data.
    pub fn spawn(&mut self) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        if self.child.is_some() {
            return Err(ServiceError::State {
                service,
                what: "already running",
            });
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| ServiceError::io(service, format!("opening {}", self.log.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| ServiceError::io(service, "duplicating the log handle", e))?;
        let mut command = Command::new(&self.spawn.program);
        command
            .args(&self.spawn.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Own process group: signals reach postgres' backends too, and a Ctrl-C meant for
            // the test runner does not hit the service first.
            .process_group(0);
        if let Some(dir) = self.dir() {
            command.current_dir(dir);
        }
        if let Some(who) = self.spawn.run_as {
            command.uid(who.uid.as_raw()).gid(who.gid.as_raw());
        }
        let child = command.spawn().map_err(|e| {
            ServiceError::io(
                service,
                format!("starting {}", self.spawn.program.display()),
                e,
            )
        })?;
        self.child = Some(child);
        self.write_pid_file()
    }

    fn write_pid_file(&self) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        let Some(child) = self.child.as_ref() else {
            return Ok(());
        };
        let child_token = ProcessToken::of(child.id() as i32).unwrap_or(ProcessToken {
            pid: child.id() as i32,
            start: 0,
        });
        let dir = self
            .dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let text = format!(
            "owner={}\nchild={}\ndir={}\nrun={}\n",
            ProcessToken::current(),
            child_token,
            dir,
            self.spawn.run_label
        );
        let pids = pid_dir();
        fs::create_dir_all(&pids)
            .map_err(|e| ServiceError::io(service, format!("creating {}", pids.display()), e))?;
        // Readable by all: the sweep of another user's run must at least see it.
        let _ = fs::set_permissions(state_dir(), fs::Permissions::from_mode(0o1777));
        let _ = fs::set_permissions(&pids, fs::Permissions::from_mode(0o1777));
        let tmp = self.pid_file.with_extension("tmp");
        fs::write(&tmp, text)
            .and_then(|()| fs::rename(&tmp, &self.pid_file))
            .map_err(|e| {
                ServiceError::io(service, format!("writing {}", self.pid_file.display()), e)
            })
    }

    /// `Err` with the log tail when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        let Some(child) = self.child.as_mut() else {
            return Err(ServiceError::State {
                service,
                what: "stopped",
            });
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(ServiceError::Exited {
                    service,
                    status: status.to_string(),
                    log: self.log_tail(),
                })
            }
            Err(e) => Err(ServiceError::io(service, "checking the process", e)),
        }
    }

    pub fn log_tail(&self) -> String {
        last_lines(&fs::read_to_string(&self.log).unwrap_or_default(), 15)
    }

    fn signal_group(&self, signal: Signal) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        let Some(child) = self.child.as_ref() else {
            return Err(ServiceError::State {
                service,
                what: "stopped",
            });
        };
        // With the leader stopped first (it is signalled first), no new child appears while
        // the others are signalled.
        Family::of(child.id() as i32)
            .signal(signal)
            .map_err(|e| ServiceError::io(service, format!("sending {signal}"), e.into()))
    }

    /// SIGSTOP to the process group and every descendant: connections stay open but nothing
    /// answers.
    pub fn pause(&self) -> Result<(), ServiceError> {
        self.signal_group(Signal::SIGSTOP)
    }

    pub fn unpause(&self) -> Result<(), ServiceError> {
        self.signal_group(Signal::SIGCONT)
    }

    /// Clean stop: the stop signal to the leader, a deadline, then SIGKILL to the group.
    pub async fn stop(&mut self) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        let Some(child) = self.child.as_mut() else {
            return Err(ServiceError::State {
                service,
                what: "already stopped",
            });
        };
        let pid = Pid::from_raw(child.id() as i32);
        let family = Family::of(pid.as_raw());
        // A paused service cannot act on the signal: resume it first.
        let _ = family.signal(Signal::SIGCONT);
        let _ = kill(pid, self.spawn.stop_signal);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => {
                    let _ = family.signal(Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
            }
        }
        // Stray members (e.g. backends of a killed postmaster).
        let _ = family.signal(Signal::SIGKILL);
        self.child = None;
        Ok(())
    }

    /// SIGKILL to the group and reap the leader, at once.
    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Family::of(child.id() as i32).signal(Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process, removes the temp dir and the pid file.
    pub fn shutdown(mut self) -> Result<(), ServiceError> {
        let service = self.spawn.service;
        self.kill_now();
        let _ = fs::remove_file(&self.pid_file);
        if let Some(dir) = self.dir.take() {
            dir.close()
                .map_err(|e| ServiceError::io(service, "removing the temp dir", e))?;
        }
        Ok(())
    }
}

impl Drop for ProcessService {
    fn drop(&mut self) {
        self.kill_now();
        let _ = fs::remove_file(&self.pid_file);
        // self.dir (TempDir) removes itself.
    }
}

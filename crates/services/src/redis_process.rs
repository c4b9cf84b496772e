//! Redis as a local process: `redis-server` on a given loopback port in a temp dir, no
//! persistence.

use std::ffi::OsString;

use nix::sys::signal::Signal;

use crate::processes::{find_binary, run_as, service_dir, ProcessService, Spawn};
use crate::ServiceError;

const SERVICE: &str = "redis";

/// Starts redis-server on `port` (a real port: `--port 0` would turn TCP off).
pub(crate) fn start(port: u16, run_label: &str) -> Result<ProcessService, ServiceError> {
    let program = find_binary("redis-server", &[]).ok_or(ServiceError::MissingBinary {
        service: SERVICE,
        binary: "redis-server".to_owned(),
        hint: "install it (apt-get install redis-server, or run ci/services.sh)",
    })?;
    let who = run_as(SERVICE)?;
    let dir = service_dir(SERVICE, "poolproof-redis-", who)?;
    let mut args: Vec<OsString> = Vec::new();
    for arg in [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
    ] {
        args.push(arg.into());
    }
    args.push(dir.path().as_os_str().to_owned());
    let spawn = Spawn {
        service: SERVICE,
        program,
        args,
        run_as: who,
        stop_signal: Signal::SIGTERM,
        run_label: run_label.to_owned(),
    };
    ProcessService::start_in(spawn, dir)
}

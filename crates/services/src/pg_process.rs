//! Postgres as a local process: an initdb'd template (made once per machine and user,
//! since initdb takes seconds) copied into a temp dir per instance.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;

use crate::containers::POSTGRES_SETTINGS;
use crate::processes::{
    find_binary, hand_over, random_hex, run_as, run_setup, service_dir, state_dir, ProcessService,
    RunAs, Spawn,
};
use crate::ServiceError;

const SERVICE: &str = "postgres";
/// Database and superuser name of the processes provider.
pub(crate) const NAME: &str = "poolproof";
/// Bumped when the template's content changes, so stale templates are not reused.
const TEMPLATE_VERSION: u32 = 1;

/// Directory with `initdb` and `postgres` (`POOLPROOF_PG_BINDIR` overrides).
fn bindir() -> Result<PathBuf, ServiceError> {
    let dir = std::env::var_os("POOLPROOF_PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
        return Ok(dir);
    }
    // Elsewhere, initdb on PATH names the directory.
    find_binary("initdb", &[])
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| d.join("postgres").is_file())
        .ok_or(ServiceError::MissingBinary {
            service: SERVICE,
            binary: format!("{}/postgres", dir.display()),
            hint:
                "install postgresql-15 (apt-get install postgresql-15) or set POOLPROOF_PG_BINDIR",
        })
}

/// An initdb'd data directory with superuser and database `poolproof`, and its password.
struct Template {
    data: PathBuf,
    password: String,
}

fn template(bin: &Path, who: Option<RunAs>) -> Result<Template, ServiceError> {
    let uid = who
        .map(|w| w.uid.as_raw())
        .unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let base = state_dir().join(format!("pg15-template-v{TEMPLATE_VERSION}-{uid}"));
    let read = |base: &Path| -> Option<Template> {
        base.join("ready").is_file().then_some(())?;
        Some(Template {
            data: base.join("data"),
            password: fs::read_to_string(base.join("password"))
                .ok()?
                .trim()
                .to_owned(),
        })
    };
    if let Some(found) = read(&base) {
        return Ok(found);
    }
    let io = |what: String| move |e| ServiceError::io(SERVICE, what, e);
    fs::create_dir_all(state_dir()).map_err(io(format!("creating {}", state_dir().display())))?;
    let building = state_dir().join(format!(
        "pg15-template-v{TEMPLATE_VERSION}-{uid}.building-{}",
        random_hex()
    ));
    fs::create_dir(&building).map_err(io(format!("creating {}", building.display())))?;
    let result = build_template(bin, who, &building);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&building);
        return Err(e);
    }
    // Atomic publish; when a concurrent run published first, theirs is as good as ours.
    if fs::rename(&building, &base).is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    read(&base).ok_or_else(|| ServiceError::State {
        service: SERVICE,
        what: "the initdb template vanished after it was built",
    })
}

fn build_template(bin: &Path, who: Option<RunAs>, dir: &Path) -> Result<(), ServiceError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e| ServiceError::io(SERVICE, what, e)
    };
    hand_over(SERVICE, dir, who)?;
    let password = random_hex();
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, format!("{password}\n")).map_err(io("writing the password file"))?;
    hand_over(SERVICE, &pwfile, who)?;
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", NAME, "-E", "UTF8", "--locale=C"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ])
        .current_dir(dir);
    run_setup(SERVICE, initdb, who, None)?;
    let _ = fs::remove_file(&pwfile);
    let mut single = Command::new(bin.join("postgres"));
    single
        .args(["--single", "-F", "-j", "-D"])
        .arg(&data)
        .arg("postgres")
        .current_dir(dir);
    run_setup(
        SERVICE,
        single,
        who,
        Some(&format!("CREATE DATABASE {NAME};\n")),
    )?;
    fs::write(dir.join("password"), &password).map_err(io("writing the password"))?;
    fs::write(dir.join("ready"), "").map_err(io("marking the template ready"))
}

/// A started Postgres process and its credentials.
pub(crate) struct Started {
    pub process: ProcessService,
    pub password: String,
}

/// Copies the template into a fresh temp dir and starts postgres on `port`.
pub(crate) fn start(port: u16, run_label: &str) -> Result<Started, ServiceError> {
    let bin = bindir()?;
    let who = run_as(SERVICE)?;
    let template = template(&bin, who)?;
    let dir = service_dir(SERVICE, "poolproof-pg-", who)?;
    let data = dir.path().join("data");
    // `cp -a` keeps modes and owners (data dirs must be 0700 and owned by the server user).
    let mut copy = Command::new("cp");
    copy.arg("-a").arg(&template.data).arg(&data);
    run_setup(SERVICE, copy, None, None)?;

    let mut args: Vec<OsString> = vec!["-D".into(), data.into_os_string()];
    args.extend(["-p".into(), port.to_string().into()]);
    args.extend(["-c".into(), "listen_addresses=127.0.0.1".into()]);
    args.push("-c".into());
    args.push(format!("unix_socket_directories={}", dir.path().display()).into());
    args.extend(POSTGRES_SETTINGS.iter().map(OsString::from));
    let spawn = Spawn {
        service: SERVICE,
        program: bin.join("postgres"),
        args,
        run_as: who,
        stop_signal: Signal::SIGINT,
        run_label: run_label.to_owned(),
    };
    Ok(Started {
        process: ProcessService::start_in(spawn, dir)?,
        password: template.password,
    })
}

//! PgBouncer in front of a started [`Postgres`]: Debian's `pgbouncer` (1.18 on bookworm) as a
//! container from the local image `poolproof/pgbouncer:1.18` (built by `ci/build-images.sh`, on
//! the host network so that it reaches Postgres at the same loopback port the harness uses, also
//! across a Postgres restart), or as a local process of the machine's own binary. Its ini and
//! auth file are generated per instance; the password is only in files of the service (mode 0600
//! for the process), never on a command line or in output.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::signal::Signal;
use testcontainers::core::WaitFor;
use testcontainers::{ContainerRequest, GenericImage, ImageExt};

use crate::managed::{Backend, Managed};
use crate::options::split_image;
use crate::ports::free_port;
use crate::probe::Probe;
use crate::processes::{find_binary, hand_over, run_as, service_dir, ProcessService, Spawn};
use crate::services::loopback_url;
use crate::{containers, Options, Postgres, Provider, ServiceError};

const SERVICE: &str = "pgbouncer";
/// The admin console's database name (`SHOW STATS`, `SHOW POOLS`; simple-query protocol only).
pub const ADMIN_DATABASE: &str = "pgbouncer";
/// Where the image keeps the generated files.
const IMAGE_CONFIG_DIR: &str = "/etc/pgbouncer";

/// How PgBouncer hands server connections to clients (`pool_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client for the client's whole session.
    Session,
    /// A server connection per transaction: named prepared statements do not survive it
    /// (before PgBouncer 1.21).
    Transaction,
    /// A server connection per statement; multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    /// The name as PgBouncer's ini (and scenarios) spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// What the started PgBouncer is configured with.
#[derive(Debug, Clone)]
pub struct PgBouncerSettings {
    pub pool_mode: PoolMode,
    /// Server connections per (database, user) pair.
    pub default_pool_size: u32,
    /// Client connections accepted at once.
    pub max_client_conn: u32,
    /// `name:tag` of the image (containers provider).
    pub image: String,
    /// Where PgBouncer reaches Postgres on 127.0.0.1: its own port by default, a proxy's
    /// (latency and reset faults) when one sits in between.
    pub postgres_port: Option<u16>,
}

/// Default PgBouncer image, built by `ci/build-images.sh`.
pub const DEFAULT_PGBOUNCER_IMAGE: &str = "poolproof/pgbouncer:1.18";
/// Environment variable overriding the PgBouncer image.
pub const ENV_PGBOUNCER_IMAGE: &str = "POOLPROOF_PGBOUNCER_IMAGE";

impl PgBouncerSettings {
    /// `pool_mode` and `default_pool_size` as given, room for 1000 clients, the image from
    /// `POOLPROOF_PGBOUNCER_IMAGE` or the local build.
    pub fn new(pool_mode: PoolMode, default_pool_size: u32) -> Self {
        let image = std::env::var(ENV_PGBOUNCER_IMAGE)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PGBOUNCER_IMAGE.to_owned());
        PgBouncerSettings {
            pool_mode,
            default_pool_size,
            max_client_conn: 1000,
            image,
            postgres_port: None,
        }
    }
}

/// A running PgBouncer in front of one Postgres database, same user and password.
pub struct PgBouncer {
    managed: Managed<GenericImage>,
    user: String,
    password: String,
    database: String,
    settings: PgBouncerSettings,
}

/// The two generated files: `pgbouncer.ini` and `userlist.txt` (`dir` is where they live as
/// PgBouncer sees it).
fn config_files(
    dir: &str,
    port: u16,
    postgres: &Postgres,
    settings: &PgBouncerSettings,
) -> (String, String) {
    let ini = format!(
        "[databases]\n\
         {db} = host=127.0.0.1 port={pg_port} dbname={db}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         ; md5, not scram-sha-256: PgBouncer runs SCRAM's PBKDF2 (4096 rounds) for every client\n\
         ; login on its one thread; 8 instances opening 160 connections at once took over 2 s.\n\
         auth_type = md5\n\
         auth_file = {dir}/userlist.txt\n\
         admin_users = {user}\n\
         pool_mode = {mode}\n\
         default_pool_size = {size}\n\
         max_client_conn = {clients}\n\
         ; sqlx and other drivers send it; PgBouncer does not track it.\n\
         ignore_startup_parameters = extra_float_digits\n\
         ; SHOW STATS averages per second instead of per minute.\n\
         stats_period = 1\n\
         log_connections = 0\n\
         log_disconnections = 0\n",
        db = postgres.database(),
        pg_port = settings.postgres_port.unwrap_or(postgres.port()),
        user = postgres.user(),
        mode = settings.pool_mode.as_str(),
        size = settings.default_pool_size,
        clients = settings.max_client_conn,
    );
    // Plain text: PgBouncer checks clients' md5 with it and logs in to Postgres with SCRAM.
    let userlist = format!("\"{}\" \"{}\"\n", postgres.user(), postgres.password());
    (ini, userlist)
}

/// Starts PgBouncer in front of `postgres` with the provider that runs `postgres`.
pub async fn start_pgbouncer(
    options: &Options,
    postgres: &Postgres,
    settings: &PgBouncerSettings,
) -> Result<PgBouncer, ServiceError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_start(options, postgres, settings).await {
            Err(e) if attempt < 3 && e.is_port_clash() => continue,
            other => return other,
        }
    }
}

async fn try_start(
    options: &Options,
    postgres: &Postgres,
    settings: &PgBouncerSettings,
) -> Result<PgBouncer, ServiceError> {
    let port = free_port(SERVICE)?;
    let probe = Probe::Postgres {
        user: postgres.user().to_owned(),
        database: postgres.database().to_owned(),
    };
    let managed = match postgres.provider() {
        Provider::Containers => {
            let (ini, userlist) = config_files(IMAGE_CONFIG_DIR, port, postgres, settings);
            let request = request(settings, ini, userlist, &options.run_label);
            let container = containers::start(SERVICE, request).await?;
            Managed::new(
                SERVICE,
                port,
                probe,
                std::time::Duration::from_secs(30),
                Backend::Container(Box::new(container)),
            )
        }
        Provider::Processes => {
            let process = start_process(port, postgres, settings, &options.run_label)?;
            Managed::new(
                SERVICE,
                port,
                probe,
                std::time::Duration::from_secs(15),
                Backend::Process(process),
            )
        }
    };
    managed.wait_initially_ready().await?;
    Ok(PgBouncer {
        managed,
        user: postgres.user().to_owned(),
        password: postgres.password().to_owned(),
        database: postgres.database().to_owned(),
        settings: settings.clone(),
    })
}

fn request(
    settings: &PgBouncerSettings,
    ini: String,
    userlist: String,
    run_label: &str,
) -> ContainerRequest<GenericImage> {
    let (name, tag) = split_image(&settings.image);
    let image =
        GenericImage::new(name, tag).with_wait_for(WaitFor::message_on_stderr("process up"));
    let request = image
        // Host network: PgBouncer reaches Postgres at its published loopback port (kept across
        // restarts), and listens on the host's loopback itself.
        .with_network("host")
        .with_copy_to(
            format!("{IMAGE_CONFIG_DIR}/pgbouncer.ini"),
            ini.into_bytes(),
        )
        .with_copy_to(
            format!("{IMAGE_CONFIG_DIR}/userlist.txt"),
            userlist.into_bytes(),
        )
        .with_cmd([format!("{IMAGE_CONFIG_DIR}/pgbouncer.ini")]);
    containers::finish(request, run_label)
}

fn start_process(
    port: u16,
    postgres: &Postgres,
    settings: &PgBouncerSettings,
    run_label: &str,
) -> Result<ProcessService, ServiceError> {
    let program =
        find_binary("pgbouncer", &["/usr/sbin/pgbouncer"]).ok_or(ServiceError::MissingBinary {
            service: SERVICE,
            binary: "pgbouncer".to_owned(),
            hint: "install it (apt-get install pgbouncer, or run ci/services.sh)",
        })?;
    // PgBouncer refuses to run as root.
    let who = run_as(SERVICE)?;
    let dir = service_dir(SERVICE, "poolproof-pgbouncer-", who)?;
    let (ini, userlist) = config_files(&dir.path().display().to_string(), port, postgres, settings);
    for (name, text) in [("pgbouncer.ini", ini), ("userlist.txt", userlist)] {
        write_private(&dir.path().join(name), &text)?;
        hand_over(SERVICE, &dir.path().join(name), who)?;
    }
    let spawn = Spawn {
        service: SERVICE,
        program,
        args: vec![OsString::from(dir.path().join("pgbouncer.ini"))],
        run_as: who,
        // SIGINT: PgBouncer's safe shutdown (waits for clients); SIGTERM drops them at once.
        stop_signal: Signal::SIGTERM,
        run_label: run_label.to_owned(),
    };
    ProcessService::start_in(spawn, dir)
}

/// Writes `text` to a new file readable by its owner only (it holds the password).
fn write_private(path: &Path, text: &str) -> Result<(), ServiceError> {
    let io = |e| ServiceError::io(SERVICE, format!("writing {}", path.display()), e);
    fs::write(path, text).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)
}

impl PgBouncer {
    /// Host port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.managed.port
    }

    /// Which provider runs it.
    pub fn provider(&self) -> Provider {
        self.managed.provider()
    }

    /// What it was started with.
    pub fn settings(&self) -> &PgBouncerSettings {
        &self.settings
    }

    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DB` through PgBouncer. Holds the password:
    /// never print it.
    pub fn url(&self) -> String {
        self.url_for(&self.database)
    }

    /// The admin console (`SHOW STATS`, `SHOW POOLS`), same user. Holds the password.
    pub fn admin_url(&self) -> String {
        self.url_for(ADMIN_DATABASE)
    }

    fn url_for(&self, database: &str) -> String {
        loopback_url(&self.user, &self.password, self.port(), database)
    }

    /// [`PgBouncer::url`] with the password replaced by `***`.
    pub fn url_redacted(&self) -> String {
        loopback_url(&self.user, "***", self.port(), &self.database)
    }

    /// Container id (containers provider).
    pub async fn container_id(&self) -> Option<String> {
        self.managed.container_id().await
    }

    /// Pid of the process (processes provider).
    pub async fn pid(&self) -> Option<u32> {
        self.managed.pid().await
    }

    /// Temp dir holding the ini, the auth file and the log (processes provider).
    pub async fn dir(&self) -> Option<std::path::PathBuf> {
        self.managed.dir().await
    }

    /// Removes the container or kills the process and removes its temp dir. Dropping does
    /// the same, without reporting errors.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        self.managed.shutdown().await
    }
}

impl std::fmt::Debug for PgBouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBouncer")
            .field("url", &self.url_redacted())
            .field("provider", &self.provider())
            .field("pool_mode", &self.settings.pool_mode)
            .field("default_pool_size", &self.settings.default_pool_size)
            .finish()
    }
}

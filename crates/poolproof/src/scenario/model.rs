//! The typed scenario model: what a scenario file says, after strict parsing and validation.
//! See docs/scenario-format.md for the YAML form; every field here is documented there too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::types::{Duration, Percent, Secret, Template, Threshold, ThresholdKind};

/// A whole scenario file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "poolproof scenario")]
pub struct Scenario {
    /// Name matching `[a-z0-9-]+`; reports go to `reports/<name>/<run-id>/`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"), length(max = 64))]
    pub name: String,
    /// One line saying what the scenario proves.
    #[serde(default)]
    pub description: String,
    /// Free labels (`smoke`, `ci`, …) used by `poolproof list`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where Postgres and Redis come from.
    #[serde(default)]
    pub services: Services,
    /// The app under test.
    #[serde(default)]
    pub app: App,
    /// Seed data sizes.
    #[serde(default)]
    pub fixtures: Fixtures,
    /// The load profile.
    pub load: Load,
    /// Fault timeline; offsets count from the start of measured load (after warm-up).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Alert silences created through the app's API during the run; offsets count from the
    /// start of measured load, like faults.
    #[serde(default)]
    pub silences: Vec<SilenceSpec>,
    /// The service-level agreements to check.
    #[serde(default)]
    pub slas: Vec<Sla>,
    /// Optional A/B variants; each is the app's env on top of `app.env`.
    #[serde(default)]
    pub arms: Vec<Arm>,
    /// Replicates per arm (>= 1), interleaved arm by arm.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub replicates: u32,
    /// How arms share the machine: `interleaved` (default: one arm after the other, the order
    /// rotating every replicate) or `concurrent` (every replicate starts all arms' apps at once
    /// and one load drives them together, users split evenly, so host noise hits all alike;
    /// ratio SLAs then pair the arms second by second).
    #[serde(default)]
    pub arms_mode: ArmsMode,
    /// With `arms_mode: concurrent`: the arms are states of the same running apps rather than
    /// separate processes. Every arm's apps start alike, and every period (`crossover: 5s`)
    /// each app group moves on to another arm's state (each arm once per cycle), switched at
    /// run time (pooled-app's `PUT /api/performance/monitoring`; arms may differ in
    /// `ENABLE_PERFORMANCE_MONITORING` only). Each process spends as long in every arm, so its own lifelong cost offset
    /// cancels between arms; every period's first second belongs to no arm.
    #[serde(default)]
    pub crossover: Option<Duration>,
    /// Where server-side metrics come from, one or more of `pooled-app` (its JSON monitoring
    /// API), `prometheus` (the app's `/metrics`, OpenTelemetry connection-pool names) and
    /// `postgres` (`pg_stat_database` / `pg_stat_activity`, whatever the app) and `pgbouncer`
    /// (its `SHOW POOLS` / `SHOW STATS`). Default: `[pooled-app]`, or `[prometheus]` when
    /// `app.command` runs another program; plus `pgbouncer` with `services.pgbouncer`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 4))]
    pub sources: Option<Vec<Source>>,
    /// What it runs against, as validation found it (not a YAML key).
    #[serde(skip)]
    #[schemars(skip)]
    pub target: super::target::Target,
}

/// `arms_mode:` — one arm at a time, or all arms side by side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArmsMode {
    /// One arm after the other within each replicate, the order rotating (AB, BA, ...).
    #[default]
    Interleaved,
    /// All arms' apps at once under one load, users split evenly over the arms.
    Concurrent,
}

impl fmt::Display for ArmsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interleaved => "interleaved",
            Self::Concurrent => "concurrent",
        })
    }
}

fn one() -> u32 {
    1
}

impl Scenario {
    /// The provider this scenario runs with once `services.provider` is resolved (`None` means
    /// auto: containers where a Docker engine answers, else processes).
    pub fn provider(&self) -> Option<Provider> {
        self.services.provider
    }
    /// Whether the scenario targets an already-deployed app.
    pub fn is_external(&self) -> bool {
        self.services.provider == Some(Provider::External)
    }
    /// The transaction with this name.
    pub fn transaction(&self, name: &str) -> Option<&Transaction> {
        self.load.transactions.iter().find(|t| t.name == name)
    }
    /// The arm with this name.
    pub fn arm(&self, name: &str) -> Option<&Arm> {
        self.arms.iter().find(|a| a.name == name)
    }
    /// Total time the load runs: ramp is part of warm-up accounting by the load engine;
    /// this is warm-up + measured duration.
    pub fn load_time(&self) -> std::time::Duration {
        self.load.warmup.get() + self.load.measured()
    }
    /// The server-side sources sampled: `sources:`, else the default for the app.
    pub fn sources(&self) -> Vec<Source> {
        match &self.sources {
            Some(list) => list.clone(),
            None => {
                let app = if self.app.command.is_some() {
                    Source::Prometheus
                } else {
                    Source::PooledApp
                };
                let mut list = vec![app];
                if self.services.pgbouncer.is_some() {
                    list.push(Source::Pgbouncer);
                }
                list
            }
        }
    }
    /// Whether the scenario samples `source`.
    pub fn samples(&self, source: Source) -> bool {
        self.sources().contains(&source)
    }
    /// How the app of `arm` (or the scenario's app without arms) is started: the arm's
    /// `command`, `port_env` and `ready` over `app`'s.
    pub fn launch(&self, arm: Option<&Arm>) -> Launch {
        let command = arm
            .and_then(|a| a.command.clone())
            .or_else(|| self.app.command.clone());
        let ready = arm
            .and_then(|a| a.ready.clone())
            .or_else(|| self.app.ready.clone())
            .unwrap_or_else(|| DEFAULT_READY.to_owned());
        match command {
            Some(argv) => Launch::Command {
                argv,
                port_env: arm
                    .and_then(|a| a.port_env.clone())
                    .or_else(|| self.app.port_env.clone())
                    .unwrap_or_else(|| DEFAULT_PORT_ENV.to_owned()),
                ready,
            },
            None => Launch::PooledApp { ready },
        }
    }
    /// Load time over all arms and replicates (what a run costs in load alone).
    pub fn total_load_time(&self) -> std::time::Duration {
        let arms = match self.arms_mode {
            ArmsMode::Interleaved => self.arms.len().max(1) as u32,
            ArmsMode::Concurrent => 1,
        };
        self.load_time() * arms * self.replicates
    }
}

/// `services:` — the provider and the images of Postgres and Redis.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// `containers` | `processes` | `external`; omitted → containers where a Docker engine
    /// answers, else processes.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// Postgres settings: the image (containers provider), or the monitoring URL (external).
    #[serde(default)]
    pub postgres: PostgresService,
    /// Redis settings (containers provider).
    #[serde(default)]
    pub redis: ServiceImage,
    /// An optional PgBouncer between the app instances and Postgres, started by the same
    /// provider: the instances' `DATABASE_URL` points at it; fixtures and the `postgres`
    /// source keep talking to Postgres directly.
    #[serde(default)]
    pub pgbouncer: Option<PgBouncerService>,
}

/// `services.pgbouncer:` — Debian's PgBouncer (1.18) in front of Postgres.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgBouncerService {
    /// `session`, `transaction` or `statement`. With `transaction`, pooled-app instances get
    /// `DATABASE_TRANSACTION_POOLING=true` (no named prepared statements); another
    /// `app.command` must do the equivalent itself (see docs/services.md).
    pub pool_mode: PgBouncerPoolMode,
    /// Server connections PgBouncer opens per database and user (1..=1000, default 20).
    #[serde(default = "default_pgbouncer_pool_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub default_pool_size: u32,
    /// Client connections PgBouncer accepts at once (1..=10000, default 1000).
    #[serde(default = "default_pgbouncer_clients")]
    #[schemars(range(min = 1, max = 10_000))]
    pub max_client_conn: u32,
    /// `name:tag` (containers provider); default from env (POOLPROOF_PGBOUNCER_IMAGE) or the
    /// local build `poolproof/pgbouncer:1.18`.
    #[serde(default)]
    pub image: Option<String>,
}

fn default_pgbouncer_pool_size() -> u32 {
    20
}
fn default_pgbouncer_clients() -> u32 {
    1000
}

/// PgBouncer's `pool_mode`: when a server connection goes back to its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PgBouncerPoolMode {
    /// When the client disconnects.
    Session,
    /// At the end of each transaction.
    Transaction,
    /// After each statement (multi-statement transactions are refused).
    Statement,
}

impl PgBouncerPoolMode {
    /// The name as scenarios and PgBouncer spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
            Self::Statement => "statement",
        }
    }
}

/// Where the services (and with `external`, the app) come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// testcontainers against a local Docker engine; local images, never pulled.
    Containers,
    /// The machine's own postgres and redis-server binaries, in temp dirs, on free ports.
    Processes,
    /// A deployed app at `app.url`; no services started, no faults.
    External,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Containers => "containers",
            Self::Processes => "processes",
            Self::External => "external",
        })
    }
}

/// `services.postgres:` — its image, or for the external provider how to watch it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresService {
    /// `name:tag`; default from env (POOLPROOF_POSTGRES_IMAGE) or built-in (containers provider).
    #[serde(default)]
    pub image: Option<String>,
    /// External provider with the `postgres` source: a `postgres://` URL of the deployed app's
    /// database for a monitoring (read-only) role; never printed.
    #[serde(default)]
    pub database_url: Option<Secret>,
}

/// A server-side metrics source (`sources:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Source {
    /// pooled-app's JSON monitoring API (`/api/performance/pool`, `/health/status`,
    /// `/metrics/realtime`).
    #[serde(rename = "pooled-app")]
    PooledApp,
    /// The app's Prometheus `/metrics` with the OpenTelemetry connection-pool metrics
    /// (`db_client_connection_count{db_client_connection_state}`, `_max`,
    /// `_pending_requests`, `_timeouts_total`, the `_wait_time` histogram in seconds).
    #[serde(rename = "prometheus")]
    Prometheus,
    /// The database itself, once a second: `pg_stat_database.sessions` (sessions opened)
    /// and `pg_stat_activity` (connections held).
    #[serde(rename = "postgres")]
    Postgres,
    /// PgBouncer's admin console once a second (`SHOW POOLS`: clients waiting, server
    /// connections; `SHOW STATS`: transactions and wait time); needs `services.pgbouncer`.
    #[serde(rename = "pgbouncer")]
    Pgbouncer,
}

impl Source {
    /// The name as scenarios write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PooledApp => "pooled-app",
            Self::Prometheus => "prometheus",
            Self::Postgres => "postgres",
            Self::Pgbouncer => "pgbouncer",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Readiness path when the scenario names none (pooled-app's).
pub const DEFAULT_READY: &str = "/readyz";
/// The variable carrying the port for `app.command` when the scenario names none.
pub const DEFAULT_PORT_ENV: &str = "PORT";
/// Where the `prometheus` source scrapes when `app.metrics_path` is not given.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// How one app (instance set) is started, resolved from `app` and an arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// pooled-app (`app.binary` or located), bound through `BIND_ADDR`.
    PooledApp {
        /// Readiness path.
        ready: String,
    },
    /// Any program: `argv`, its port in the variable `port_env`.
    Command {
        argv: Vec<String>,
        port_env: String,
        ready: String,
    },
}

impl Launch {
    /// The readiness path probed until it answers 200.
    pub fn ready(&self) -> &str {
        match self {
            Self::PooledApp { ready } | Self::Command { ready, .. } => ready,
        }
    }
    /// A short name for progress lines (`pooled-app`, or the program as the scenario gives it).
    pub fn name(&self) -> String {
        match self {
            Self::PooledApp { .. } => "pooled-app".to_owned(),
            Self::Command { argv, .. } => argv.first().cloned().unwrap_or_default(),
        }
    }
}

/// One service's image (containers provider).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceImage {
    /// `name:tag`; default from env (POOLPROOF_POSTGRES_IMAGE / POOLPROOF_REDIS_IMAGE) or built-in.
    #[serde(default)]
    pub image: Option<String>,
}

/// `app:` — the app under test.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Path of the pooled-app binary; default: locate or build it.
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// Any program to run instead of pooled-app, as argv (`[python, app.py]`); a first
    /// element with a `/` is a path from the current directory, else looked up in PATH. It
    /// gets `DATABASE_URL`, `REDIS_URL` and its port in `port_env`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub command: Option<Vec<String>>,
    /// With `command`: the environment variable that carries the port the program must listen
    /// on 127.0.0.1 (default `PORT`).
    #[serde(default)]
    pub port_env: Option<String>,
    /// Readiness probe: the path polled until it answers 200 (default `/readyz`).
    #[serde(default)]
    pub ready: Option<String>,
    /// Where the `prometheus` source scrapes the app (default `/metrics`).
    #[serde(default)]
    pub metrics_path: Option<String>,
    /// Number of app instances (1..=16).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 16))]
    pub instances: u32,
    /// Overrides of the app's environment (values are strings; numbers and booleans are
    /// written as text).
    #[serde(default)]
    pub env: EnvMap,
    /// Base URL of a deployed app (`external` provider only).
    #[serde(default)]
    pub url: Option<String>,
    /// Bearer token for the deployed app's performance API (`external` only; never printed).
    #[serde(default)]
    pub token: Option<Secret>,
    /// How long to wait for readiness (default 30s).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: Duration,
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for App {
    fn default() -> Self {
        Self {
            binary: None,
            command: None,
            port_env: None,
            ready: None,
            metrics_path: None,
            instances: 1,
            env: EnvMap::default(),
            url: None,
            token: None,
            ready_timeout: default_ready_timeout(),
        }
    }
}

/// Environment variables: keys `[A-Z_][A-Z0-9_]*`, string values; duplicate keys are errors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "BTreeMap<String, String>")]
pub struct EnvMap(pub BTreeMap<String, String>);

impl EnvMap {
    /// Iterates over (name, value) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
    /// The value of one variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A scalar env value written as text.
struct EnvValue(String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of environment variables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let valid = key
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                        && key
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                    if !valid {
                        return Err(de::Error::custom(format!(
                            "environment variable name {:?} must match [A-Z_][A-Z0-9_]*",
                            super::types::shorten(&key)
                        )));
                    }
                    let value: EnvValue = map.next_value()?;
                    if out.insert(key.clone(), value.0).is_some() {
                        return Err(de::Error::custom(format!("duplicate key {key}")));
                    }
                }
                Ok(EnvMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `fixtures:` — how much seed data the app's database gets.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Users to seed (default 1000, at most 1,000,000).
    #[serde(default = "default_fixture_users")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub users: u32,
    /// Buddy requests to seed (default 5000, at most 10,000,000).
    #[serde(default = "default_fixture_requests")]
    #[schemars(range(min = 0, max = 10_000_000))]
    pub buddy_requests: u32,
    /// SQL files (one path or a list, from the current directory) applied in order to the
    /// database before the app starts, for apps that do not create and seed their schema.
    #[serde(default)]
    pub sql: SqlFiles,
}

/// `fixtures.sql:` — one path or a list of paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "OneOrManyPaths")]
pub struct SqlFiles(pub Vec<PathBuf>);

/// The schema of [`SqlFiles`]: a path, or a list of paths.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrManyPaths {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for SqlFiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SqlFiles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path or a list of paths of SQL files")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SqlFiles, E> {
                Ok(SqlFiles(vec![PathBuf::from(v)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SqlFiles, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    out.push(PathBuf::from(p));
                }
                Ok(SqlFiles(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn default_fixture_users() -> u32 {
    1000
}
fn default_fixture_requests() -> u32 {
    5000
}

impl Default for Fixtures {
    fn default() -> Self {
        Self {
            users: default_fixture_users(),
            buddy_requests: default_fixture_requests(),
            sql: SqlFiles::default(),
        }
    }
}

/// `load:` — the goose load profile.
///
/// Two models: `closed` (default: `users` loop, each sending its next request when the last
/// completes, optionally paced by `rate_limit`) and `open` (requests start on a schedule,
/// `rate` or `stages`, whatever the server does, carried by at most `max_in_flight` users).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// `closed` (default) or `open`.
    #[serde(default)]
    pub model: LoadModel,
    /// Closed model: concurrent goose users (1..=10000; required there, refused in `open`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10_000))]
    pub users: Option<u32>,
    /// Closed model: time to start all users. Open model: the arrival rate ramps from 0 to
    /// its first rate over it. Default 0s.
    #[serde(default)]
    pub ramp: Duration,
    /// Load before measurement, excluded from SLAs (default 0s). Open model: at the first
    /// rate.
    #[serde(default)]
    pub warmup: Duration,
    /// Measured load time (> 0). Open model with `stages`: optional, the stages' sum (and if
    /// given, it must equal it).
    #[serde(default)]
    pub duration: Duration,
    /// Closed model: requests per second across all users (optional; > 0).
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 1_000_000))]
    pub rate_limit: Option<f64>,
    /// Open model: a constant arrival rate in requests per second (> 0). Either this or
    /// `stages`.
    #[serde(default)]
    #[schemars(range(min = 0.001, max = 100_000))]
    pub rate: Option<f64>,
    /// Open model: a ramping arrival rate; each stage goes linearly from the previous stage's
    /// rate (the first from its own) to its `rate` over its `for`; `for: 0s` is a step.
    /// Either this or `rate`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub stages: Option<Vec<Stage>>,
    /// Open model: how many requests may be in flight at once (the goose users that carry
    /// them, like k6's maxVUs; 1..=10000, default 100). A scheduled start that finds no free
    /// user waits for one, counted late (its latency counts from the scheduled time); one
    /// that waits longer than the request timeout (10 s) is dropped and counted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10_000))]
    pub max_in_flight: Option<u32>,
    /// Weighted transactions (at least one).
    #[schemars(length(min = 1, max = 100))]
    pub transactions: Vec<Transaction>,
    /// Where the load runs: by default one generator, in this process. More shards split
    /// it (`count`) on an `engine`; their measurements are merged exactly.
    #[serde(default)]
    pub generators: Option<Generators>,
}

/// `load.generators:` — the load split over generator shards (`poolproof generate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generators {
    /// How many shards share the load (1..=64, default 1). Open model: each takes every
    /// count-th scheduled start; closed model: the users and rate_limit are divided.
    #[serde(default = "one_generator")]
    #[schemars(range(min = 1, max = 64))]
    pub count: u32,
    /// Where they run (default `local`).
    #[serde(default)]
    pub engine: GeneratorEngine,
    /// How long the shards get to start and register before the load's timeline begins
    /// (default 3s local, 10s swarm, 60s kubernetes; 1s..10m).
    #[serde(default)]
    pub start_after: Option<Duration>,
    /// The host name or IP address shards reach this coordinator at (default 127.0.0.1:
    /// shards on this machine, or on its host network).
    #[serde(default)]
    pub advertise: Option<String>,
}

fn one_generator() -> u32 {
    1
}

/// `load.generators.engine:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorEngine {
    /// Processes of this binary on this machine.
    #[default]
    Local,
    /// A Docker Swarm replicated job on the host network, from an image built locally from
    /// this binary.
    Swarm,
    /// A Kubernetes Indexed Job (`poolproof generators render` prints it), applied with
    /// kubectl to the current context.
    Kubernetes,
}

impl GeneratorEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratorEngine::Local => "local",
            GeneratorEngine::Swarm => "swarm",
            GeneratorEngine::Kubernetes => "kubernetes",
        }
    }
}

impl std::str::FromStr for GeneratorEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(GeneratorEngine::Local),
            "swarm" => Ok(GeneratorEngine::Swarm),
            "kubernetes" => Ok(GeneratorEngine::Kubernetes),
            _ => Err(format!("`{s}` is not an engine (local, swarm, kubernetes)")),
        }
    }
}

/// `load.model:` — how requests are started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// A fixed set of users, each sending its next request when the last completes.
    #[default]
    Closed,
    /// Requests start on a schedule (`rate` or `stages`), independent of responses.
    Open,
}

impl fmt::Display for LoadModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
        })
    }
}

/// One stage of an open-model ramp.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The arrival rate reached at the end of the stage, requests per second (> 0).
    #[schemars(range(min = 0.001, max = 100_000))]
    pub rate: f64,
    /// How long the stage lasts (`0s`: a step to `rate`).
    #[serde(rename = "for")]
    pub duration: Duration,
}

/// Default `max_in_flight` of the open model.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;

impl Load {
    /// The measured load time: `duration`, or the stages' sum when it is not given.
    pub fn measured(&self) -> std::time::Duration {
        match &self.stages {
            Some(st) if self.duration.is_zero() => st.iter().map(|s| s.duration.get()).sum(),
            _ => self.duration.get(),
        }
    }
    /// Open-model users (`max_in_flight`, default 100); closed-model `users`.
    pub fn carriers(&self) -> u32 {
        match self.model {
            LoadModel::Open => self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            LoadModel::Closed => self.users.unwrap_or(1),
        }
    }
    /// Whether requests start on a schedule whose missed starts are counted: the open model,
    /// or a closed model paced by `rate_limit`.
    pub fn is_scheduled(&self) -> bool {
        self.model == LoadModel::Open || self.rate_limit.is_some()
    }
    /// The open model's stages over measured load as (start s, end s, from rps, to rps), a
    /// constant `rate` as one stage; empty for the closed model.
    pub fn stage_spans(&self) -> Vec<(f64, f64, f64, f64)> {
        if self.model != LoadModel::Open {
            return Vec::new();
        }
        if let Some(r) = self.rate {
            return vec![(0.0, self.measured().as_secs_f64(), r, r)];
        }
        let mut out = Vec::new();
        let mut t = 0.0;
        let mut prev = None;
        for s in self.stages.iter().flatten() {
            let from = prev.unwrap_or(s.rate);
            let end = t + s.duration.as_secs_f64();
            out.push((t, end, from, s.rate));
            t = end;
            prev = Some(s.rate);
        }
        out
    }
}

/// One weighted request kind of the load.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// Name `[a-z0-9_-]+`, unique; SLAs select it with `route:`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub name: String,
    /// Relative weight (1..=1000).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub weight: u32,
    /// HTTP method.
    #[serde(default)]
    pub method: Method,
    /// Path starting with `/`, with optional `{{rand:LO..HI}}` placeholders.
    pub path: Template,
    /// Request body (JSON), with optional placeholders.
    #[serde(default)]
    pub body: Option<Template>,
    /// Expected HTTP status (default 200); anything else counts as an error.
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u16,
}

fn default_status() -> u16 {
    200
}

/// HTTP methods a transaction may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Method {
    /// GET
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// POST
    #[serde(rename = "POST")]
    Post,
    /// PUT
    #[serde(rename = "PUT")]
    Put,
    /// PATCH
    #[serde(rename = "PATCH")]
    Patch,
    /// DELETE
    #[serde(rename = "DELETE")]
    Delete,
}

impl Method {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the fault timeline.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Start, as an offset from the start of measured load.
    pub at: Duration,
    /// How long the fault lasts (> 0); `at + for` must lie within `load.duration`.
    #[serde(rename = "for")]
    pub duration: Duration,
    /// What goes wrong.
    pub kind: FaultKind,
    /// Added latency per direction of Postgres traffic (`db_latency` only; required there).
    #[serde(default)]
    pub latency: Option<Duration>,
    /// HTTP status the notifier sink answers (`notifier_fail` only; 400..=599, default 500).
    #[serde(default)]
    #[schemars(range(min = 400, max = 599))]
    pub status: Option<u16>,
    /// Which notifier fails (`notifier_fail` / `notifier_down` only); omitted → both.
    #[serde(default)]
    pub target: Option<Channel>,
}

impl Fault {
    /// When the fault ends, as an offset from the start of measured load.
    pub fn end(&self) -> std::time::Duration {
        self.at.get() + self.duration.get()
    }
    /// The notifier status to answer with (`notifier_fail`), defaulting to 500.
    pub fn status_or_default(&self) -> u16 {
        self.status.unwrap_or(500)
    }
}

/// One alert silence: from `at`, the app sends nothing for `alert` (or for every alert) for
/// `for`; poolproof creates it with `POST /api/performance/alerts/silences` (`ends_at` = its
/// creation + `for`), so the app must have `PERFORMANCE_API_TOKEN` set.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// When it is created, as an offset from the start of measured load.
    pub at: Duration,
    /// How long it mutes (> 0).
    #[serde(rename = "for")]
    pub duration: Duration,
    /// The alert it mutes (an alert rule's id, or `<id>_no_data`); omitted → every alert.
    #[serde(default)]
    pub alert: Option<String>,
}

/// Kinds of fault the harness can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Latency added by the harness' TCP proxy between the app and Postgres (`latency:`).
    DbLatency,
    /// The proxy resets every app↔Postgres connection and refuses new ones.
    DbReset,
    /// `pg_terminate_backend` on the app's sessions at `at` (and again while it lasts).
    DbTerminateSessions,
    /// Postgres paused (SIGSTOP / docker pause), resumed at the end.
    PostgresPause,
    /// Postgres stopped, started again at the end.
    PostgresStop,
    /// Postgres restarted at `at`; `for` bounds how long the restart may take.
    PostgresRestart,
    /// Redis paused, resumed at the end.
    RedisPause,
    /// Redis stopped, started again at the end.
    RedisStop,
    /// Redis restarted at `at`.
    RedisRestart,
    /// The notifier sink answers `status:` (default 500).
    NotifierFail,
    /// The notifier sink refuses connections.
    NotifierDown,
}

impl FaultKind {
    /// The snake_case name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DbLatency => "db_latency",
            Self::DbReset => "db_reset",
            Self::DbTerminateSessions => "db_terminate_sessions",
            Self::PostgresPause => "postgres_pause",
            Self::PostgresStop => "postgres_stop",
            Self::PostgresRestart => "postgres_restart",
            Self::RedisPause => "redis_pause",
            Self::RedisStop => "redis_stop",
            Self::RedisRestart => "redis_restart",
            Self::NotifierFail => "notifier_fail",
            Self::NotifierDown => "notifier_down",
        }
    }
    /// Whether the fault concerns the notifier sink (so `target:` applies).
    pub fn is_notifier(self) -> bool {
        matches!(self, Self::NotifierFail | Self::NotifierDown)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Slack incoming webhook.
    Slack,
    /// Email through Resend's API.
    Email,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Slack => "slack",
            Self::Email => "email",
        })
    }
}

/// One SLA: `metric comparator threshold`, optionally per route, phase, alert or arms.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// What is measured.
    pub metric: Metric,
    /// How the measured value must compare with the threshold.
    pub comparator: Comparator,
    /// The limit, typed by the metric (checked at load time).
    pub threshold: Threshold,
    /// A transaction name; omitted → overall. Client-side latency, error rate, throughput and
    /// server-side p95 only.
    #[serde(default)]
    pub route: Option<String>,
    /// Part of the measured load the SLA looks at (default `load`: all of it).
    #[serde(default)]
    pub phase: Phase,
    /// `health_score` only: minimum (default) or mean over the phase.
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// Alert rule name (`alert_latency`, `alert_resolution`, optional for `duplicate_notifications`).
    #[serde(default)]
    pub alert: Option<String>,
    /// Channel (`alert_latency`, `alert_resolution`, `duplicate_notifications`,
    /// `notifications_while_inhibited`, `notifications_while_silenced`); omitted → any.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// `notifications_while_inhibited` only (required there): the alert whose firing should
    /// mute `alert` (e.g. the critical rule on the same metric).
    #[serde(default)]
    pub inhibited_by: Option<String>,
    /// Ratio metrics only: `[treatment, baseline]`; omitted → the first two arms.
    #[serde(default)]
    pub arms: Option<ArmPair>,
    /// Other metrics with arms: judge this arm (its last replicate); omitted → the first arm.
    #[serde(default)]
    pub arm: Option<String>,
    /// Ratio metrics only: decide on the paired bootstrap interval at this level (e.g. `95%`)
    /// instead of the point estimate: met when the whole interval meets the threshold, failed
    /// when none of it does, otherwise inconclusive (exit 4).
    #[serde(default)]
    pub confidence: Option<Percent>,
    /// Ratio metrics with a percentage threshold only: `[control, baseline]`, two arms that
    /// differ in nothing (an A/A pair), measured with the same metric in the same run. Their
    /// interval is the run's own noise floor: when it is wider than the threshold and the
    /// measured value lies within that width of the threshold, the verdict is inconclusive
    /// (exit 4), since noise alone could have moved it across.
    #[serde(default)]
    pub noise_floor: Option<ArmPair>,
    /// Latency metrics only: `corrected` (default: from each request's scheduled start, so
    /// queueing in the load generator counts) or `uncorrected` (service time, from the
    /// actual send). They differ only when requests start on a schedule.
    #[serde(default)]
    pub timing: Option<Timing>,
    /// Open model with `stages`: look at this stage only (1-based), e.g. latency at the one
    /// rate both arms carry.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub stage: Option<u32>,
    /// Stop the run as soon as this SLA's failure is certain (k6's `abortOnFail`): checked
    /// on the live figures during measured load against the most requests the planned load
    /// can still complete, never on a trend. `error_rate`, `latency_p50|p95|p99|max` with
    /// `<=` or `<`, phase `load`, on a scheduled load (open model, or `rate_limit`) without
    /// arms or generator shards. The run tears down as usual and fails (exit 1); the reports
    /// say when and why it stopped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
}

/// Which latency an SLA judges (wrk2's corrected and uncorrected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// From the scheduled start (the default).
    #[default]
    Corrected,
    /// From the actual send: the service time alone.
    Uncorrected,
}

impl Sla {
    /// A short label such as `latency_p95[profile] <= 50ms`, for reports and test-case names.
    pub fn label(&self) -> String {
        let mut s = self.metric.as_str().to_string();
        if let Some(r) = &self.route {
            s.push_str(&format!("[{r}]"));
        }
        if let Some(a) = &self.alert {
            s.push_str(&format!("[{a}]"));
        }
        if let Some(c) = &self.channel {
            s.push_str(&format!("[{c}]"));
        }
        if let Some(by) = &self.inhibited_by {
            s.push_str(&format!("[by {by}]"));
        }
        if self.phase != Phase::Load {
            s.push_str(&format!("@{}", self.phase));
        }
        if let Some(n) = self.stage {
            s.push_str(&format!("@stage{n}"));
        }
        if let Some(a) = &self.arm {
            s.push_str(&format!("{{{a}}}"));
        }
        if self.timing == Some(Timing::Uncorrected) {
            s.push_str("(uncorrected)");
        }
        format!("{s} {} {}", self.comparator, self.threshold)
    }
    /// The health-score aggregate, defaulting to `min`.
    pub fn aggregate_or_default(&self) -> Aggregate {
        self.aggregate.unwrap_or(Aggregate::Min)
    }
    /// (treatment, baseline) arm names for ratio metrics: the explicit pair, else the first two
    /// arms of the scenario.
    pub fn arm_pair<'a>(&'a self, scenario: &'a Scenario) -> Option<(&'a str, &'a str)> {
        match &self.arms {
            Some(p) => Some((p.treatment.as_str(), p.baseline.as_str())),
            None => match scenario.arms.as_slice() {
                [a, b, ..] => Some((a.name.as_str(), b.name.as_str())),
                _ => None,
            },
        }
    }
}

/// The metrics an SLA may check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Client-side median latency.
    LatencyP50,
    /// Client-side 95th percentile latency.
    LatencyP95,
    /// Client-side 99th percentile latency.
    LatencyP99,
    /// Client-side maximum latency.
    LatencyMax,
    /// Share of requests that failed (unexpected status or transport error).
    ErrorRate,
    /// Achieved requests per second.
    Throughput,
    /// 1 − connections opened / acquisitions.
    PoolEfficiency,
    /// In use / max connections (peak over the phase).
    PoolUtilization,
    /// 95th percentile of the pool's acquire wait.
    AcquireWaitP95,
    /// The app's composite health score (0–100), min or mean over the phase.
    HealthScore,
    /// Server-side p95 from the app's own metrics.
    ServerLatencyP95,
    /// Times the app switched its pool to fallback mode during the phase (its
    /// `fallback_activations` counter), summed over instances.
    FallbackActivations,
    /// Fault start → first delivery of the named alert.
    AlertLatency,
    /// Fault end → delivery of the named alert's resolution.
    AlertResolution,
    /// Notifications delivered more than once per alert transition.
    DuplicateNotifications,
    /// Firing notifications of `alert` delivered while `inhibited_by` was firing (between its
    /// firing and its resolution at the sink): 0 when inhibition held.
    NotificationsWhileInhibited,
    /// Firing notifications delivered while a scenario silence muted their alert: 0 when the
    /// silences held.
    NotificationsWhileSilenced,
    /// Fault end → p95 and error rate back within their SLAs.
    RecoveryTime,
    /// A/B: 1 − p95(treatment) / p95(baseline).
    P95Improvement,
    /// A/B: throughput(treatment) / throughput(baseline).
    CapacityRatio,
    /// A/B: 1 − connections opened per request (treatment / baseline), pool growth excluded.
    ConnectionOverheadReduction,
    /// A/B: 1 − throughput(treatment) / throughput(baseline).
    ThroughputLoss,
    /// A/B: app CPU per request (treatment) / app CPU per request (baseline) − 1, from the
    /// app processes' CPU time (/proc schedstat) over client-completed requests.
    CpuPerRequestIncrease,
    /// Scheduled starts that were dropped (never sent), as a share of all scheduled starts.
    DroppedRequests,
    /// Scheduled starts per second (what was offered; compare with `throughput`).
    OfferedRate,
    /// Open model: the highest stage rate at which every per-second latency, error and
    /// dropped-request SLA of the scenario holds in every second of the stage.
    MaxSustainedRate,
    /// Requests waiting for a pool connection, peak over the phase's samples (summed over
    /// instances per second).
    PendingRequests,
    /// Sessions the database opened over the phase / requests completed (`postgres` source).
    DbSessionsOpenedPerRequest,
    /// Most connections the database held at once over the phase (`postgres` source).
    DbConnectionsPeak,
    /// Most clients waiting in PgBouncer for a server connection at once (`SHOW POOLS`
    /// `cl_waiting`, `pgbouncer` source).
    PgbouncerClientsWaitingPeak,
    /// Most server connections PgBouncer held at once (`SHOW POOLS` `sv_*`, `pgbouncer`
    /// source).
    PgbouncerServerConnectionsPeak,
    /// Mean time a transaction waited in PgBouncer for a server connection over the phase
    /// (`SHOW STATS` total_wait_time / total_xact_count between the phase's first and last
    /// sample, `pgbouncer` source).
    PgbouncerAvgWait,
}

impl Metric {
    /// Every metric, in documentation order.
    pub const ALL: [Metric; 32] = [
        Self::LatencyP50,
        Self::LatencyP95,
        Self::LatencyP99,
        Self::LatencyMax,
        Self::ErrorRate,
        Self::Throughput,
        Self::PoolEfficiency,
        Self::PoolUtilization,
        Self::AcquireWaitP95,
        Self::HealthScore,
        Self::ServerLatencyP95,
        Self::FallbackActivations,
        Self::AlertLatency,
        Self::AlertResolution,
        Self::DuplicateNotifications,
        Self::NotificationsWhileInhibited,
        Self::NotificationsWhileSilenced,
        Self::RecoveryTime,
        Self::P95Improvement,
        Self::CapacityRatio,
        Self::ConnectionOverheadReduction,
        Self::ThroughputLoss,
        Self::CpuPerRequestIncrease,
        Self::DroppedRequests,
        Self::OfferedRate,
        Self::MaxSustainedRate,
        Self::PendingRequests,
        Self::DbSessionsOpenedPerRequest,
        Self::DbConnectionsPeak,
        Self::PgbouncerClientsWaitingPeak,
        Self::PgbouncerServerConnectionsPeak,
        Self::PgbouncerAvgWait,
    ];

    /// The snake_case name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LatencyP50 => "latency_p50",
            Self::LatencyP95 => "latency_p95",
            Self::LatencyP99 => "latency_p99",
            Self::LatencyMax => "latency_max",
            Self::ErrorRate => "error_rate",
            Self::Throughput => "throughput",
            Self::PoolEfficiency => "pool_efficiency",
            Self::PoolUtilization => "pool_utilization",
            Self::AcquireWaitP95 => "acquire_wait_p95",
            Self::HealthScore => "health_score",
            Self::ServerLatencyP95 => "server_latency_p95",
            Self::FallbackActivations => "fallback_activations",
            Self::AlertLatency => "alert_latency",
            Self::AlertResolution => "alert_resolution",
            Self::DuplicateNotifications => "duplicate_notifications",
            Self::NotificationsWhileInhibited => "notifications_while_inhibited",
            Self::NotificationsWhileSilenced => "notifications_while_silenced",
            Self::RecoveryTime => "recovery_time",
            Self::P95Improvement => "p95_improvement",
            Self::CapacityRatio => "capacity_ratio",
            Self::ConnectionOverheadReduction => "connection_overhead_reduction",
            Self::ThroughputLoss => "throughput_loss",
            Self::CpuPerRequestIncrease => "cpu_per_request_increase",
            Self::DroppedRequests => "dropped_requests",
            Self::OfferedRate => "offered_rate",
            Self::MaxSustainedRate => "max_sustained_rate",
            Self::PendingRequests => "pending_requests",
            Self::DbSessionsOpenedPerRequest => "db_sessions_opened_per_request",
            Self::DbConnectionsPeak => "db_connections_peak",
            Self::PgbouncerClientsWaitingPeak => "pgbouncer_clients_waiting_peak",
            Self::PgbouncerServerConnectionsPeak => "pgbouncer_server_connections_peak",
            Self::PgbouncerAvgWait => "pgbouncer_avg_wait",
        }
    }

    /// The threshold kinds this metric accepts.
    pub fn threshold_kinds(self) -> &'static [ThresholdKind] {
        use ThresholdKind as K;
        match self {
            Self::LatencyP50
            | Self::LatencyP95
            | Self::LatencyP99
            | Self::LatencyMax
            | Self::AcquireWaitP95
            | Self::ServerLatencyP95
            | Self::AlertLatency
            | Self::AlertResolution
            | Self::RecoveryTime
            | Self::PgbouncerAvgWait => &[K::Duration],
            Self::ErrorRate
            | Self::PoolEfficiency
            | Self::PoolUtilization
            | Self::CpuPerRequestIncrease
            | Self::DroppedRequests => &[K::Percent],
            Self::Throughput
            | Self::HealthScore
            | Self::DuplicateNotifications
            | Self::NotificationsWhileInhibited
            | Self::NotificationsWhileSilenced
            | Self::FallbackActivations
            | Self::OfferedRate
            | Self::MaxSustainedRate
            | Self::PendingRequests
            | Self::DbSessionsOpenedPerRequest
            | Self::DbConnectionsPeak
            | Self::PgbouncerClientsWaitingPeak
            | Self::PgbouncerServerConnectionsPeak => &[K::Number],
            Self::P95Improvement | Self::ConnectionOverheadReduction | Self::ThroughputLoss => {
                &[K::Percent, K::Ratio]
            }
            Self::CapacityRatio => &[K::Ratio, K::Percent],
        }
    }

    /// Whether `route:` may narrow this metric to one transaction.
    pub fn supports_route(self) -> bool {
        matches!(
            self,
            Self::LatencyP50
                | Self::LatencyP95
                | Self::LatencyP99
                | Self::LatencyMax
                | Self::ErrorRate
                | Self::Throughput
                | Self::ServerLatencyP95
                | Self::DroppedRequests
                | Self::OfferedRate
        )
    }

    /// Whether the metric is a client-side latency (`timing:` applies).
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Self::LatencyP50 | Self::LatencyP95 | Self::LatencyP99 | Self::LatencyMax
        )
    }

    /// Whether the metric needs requests started on a schedule (open model or `rate_limit`).
    pub fn needs_schedule(self) -> bool {
        matches!(self, Self::DroppedRequests | Self::OfferedRate)
    }

    /// Whether the metric is about alert notifications (`alert:` / `channel:` apply).
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            Self::AlertLatency
                | Self::AlertResolution
                | Self::DuplicateNotifications
                | Self::NotificationsWhileInhibited
                | Self::NotificationsWhileSilenced
        )
    }

    /// Whether the metric compares two arms (`arms:` applies; the scenario needs two arms).
    pub fn is_ratio(self) -> bool {
        matches!(
            self,
            Self::P95Improvement
                | Self::CapacityRatio
                | Self::ConnectionOverheadReduction
                | Self::ThroughputLoss
                | Self::CpuPerRequestIncrease
        )
    }

    /// Whether the metric is measured relative to a fault (the scenario needs faults).
    pub fn needs_fault(self) -> bool {
        matches!(
            self,
            Self::AlertLatency | Self::AlertResolution | Self::RecoveryTime
        )
    }

    /// Whether the metric comes from the app's monitoring endpoints (not the load generator).
    pub fn is_server_side(self) -> bool {
        matches!(
            self,
            Self::PoolEfficiency
                | Self::PoolUtilization
                | Self::AcquireWaitP95
                | Self::HealthScore
                | Self::ServerLatencyP95
                | Self::FallbackActivations
                | Self::PendingRequests
                | Self::DbSessionsOpenedPerRequest
                | Self::DbConnectionsPeak
                | Self::PgbouncerClientsWaitingPeak
                | Self::PgbouncerServerConnectionsPeak
                | Self::PgbouncerAvgWait
        )
    }

    /// The sources that can supply a server-side metric (empty for client-side ones); when
    /// several are sampled, the first in this order that has data is used.
    pub fn sources(self) -> &'static [Source] {
        match self {
            Self::PoolUtilization | Self::AcquireWaitP95 | Self::PendingRequests => {
                &[Source::PooledApp, Source::Prometheus]
            }
            Self::ServerLatencyP95 => &[Source::PooledApp, Source::Prometheus],
            Self::PoolEfficiency | Self::HealthScore | Self::FallbackActivations => {
                &[Source::PooledApp]
            }
            Self::DbSessionsOpenedPerRequest | Self::DbConnectionsPeak => &[Source::Postgres],
            Self::PgbouncerClientsWaitingPeak
            | Self::PgbouncerServerConnectionsPeak
            | Self::PgbouncerAvgWait => &[Source::Pgbouncer],
            _ => &[],
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<`, `<=`, `>`, `>=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparator {
    /// measured < threshold
    #[serde(rename = "<")]
    Lt,
    /// measured <= threshold
    #[serde(rename = "<=")]
    Le,
    /// measured > threshold
    #[serde(rename = ">")]
    Gt,
    /// measured >= threshold
    #[serde(rename = ">=")]
    Ge,
}

impl Comparator {
    /// Whether `measured <op> threshold` holds (NaN never holds).
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Self::Lt => measured < threshold,
            Self::Le => measured <= threshold,
            Self::Gt => measured > threshold,
            Self::Ge => measured >= threshold,
        }
    }
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the measured load an SLA looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// All of the measured load.
    #[default]
    Load,
    /// Before the first fault starts.
    Before,
    /// While any fault is active.
    During,
    /// After the last fault ends.
    After,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Load => "load",
            Self::Before => "before",
            Self::During => "during",
            Self::After => "after",
        })
    }
}

/// How a time series is reduced to one figure (`health_score`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The lowest sample.
    Min,
    /// The mean of the samples.
    Mean,
}

/// `[treatment, baseline]` arm names of a ratio SLA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "[String; 2]")]
pub struct ArmPair {
    /// The arm whose effect is measured (e.g. `pooled`).
    pub treatment: String,
    /// The arm it is compared against (e.g. `unpooled`).
    pub baseline: String,
}

impl<'de> Deserialize<'de> for ArmPair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArmPair;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("two arm names: [treatment, baseline]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArmPair, A::Error> {
                let err =
                    || de::Error::custom("expected exactly two arm names: [treatment, baseline]");
                let treatment: String = seq.next_element()?.ok_or_else(err)?;
                let baseline: String = seq.next_element()?.ok_or_else(err)?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(err());
                }
                if treatment == baseline {
                    return Err(de::Error::custom(format!(
                        "an arm cannot be compared with itself ({treatment})"
                    )));
                }
                Ok(ArmPair {
                    treatment,
                    baseline,
                })
            }
        }
        d.deserialize_seq(V)
    }
}

/// One A/B variant: the app's env on top of `app.env`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Name `[a-z0-9-]+`, unique.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub name: String,
    /// Environment overrides for this arm.
    #[serde(default)]
    pub env: EnvMap,
    /// This arm runs another program than `app.command` (or pooled-app), e.g. a second app
    /// or build to compare; argv as in `app.command`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub command: Option<Vec<String>>,
    /// The port variable of this arm's program (default: `app.port_env`, else `PORT`).
    #[serde(default)]
    pub port_env: Option<String>,
    /// This arm's readiness path (default: `app.ready`, else `/readyz`).
    #[serde(default)]
    pub ready: Option<String>,
}

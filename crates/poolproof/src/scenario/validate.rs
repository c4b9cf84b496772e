//! Semantic checks on a deserialized scenario: ranges, cross references (routes, arms, alerts),
//! the fault timeline against the load, and what the `external` provider forbids.

use std::collections::HashSet;

use super::locate::Seg;
use super::model::{
    ArmsMode, Fault, FaultKind, GeneratorEngine, Generators, Load, LoadModel, Metric, Provider,
    Scenario, SilenceSpec, Sla, Source,
};
use super::target::{ExternalApp, Target};
use super::types::Threshold;

/// Upper bounds that keep a typo from turning into a runaway run.
pub mod limits {
    /// `load.users`
    pub const MAX_USERS: u32 = 10_000;
    pub const MAX_GENERATORS: u32 = 64;
    /// `load.rate_limit` (requests per second)
    pub const MAX_RATE: f64 = 1_000_000.0;
    /// `load.rate` and `load.stages[].rate` (open model, requests per second): each start
    /// is a timer wake-up in one process; far beyond what one poolproof process sustains
    /// (about 10-20k/s on 2 cores), still a guard against a typo's extra zeros.
    pub const MAX_OPEN_RATE: f64 = 100_000.0;
    /// `load.stages`
    pub const MAX_STAGES: usize = 100;
    /// `app.instances`
    pub const MAX_INSTANCES: u32 = 16;
    /// `services.pgbouncer.default_pool_size` (server connections)
    pub const MAX_PGBOUNCER_POOL: u32 = 1000;
    /// `services.pgbouncer.max_client_conn`
    pub const MAX_PGBOUNCER_CLIENTS: u32 = 10_000;
    /// `replicates`
    pub const MAX_REPLICATES: u32 = 100;
    /// `arms`
    pub const MAX_ARMS: usize = 8;
    /// `load.transactions`
    pub const MAX_TRANSACTIONS: usize = 100;
    /// A transaction's `weight`
    pub const MAX_WEIGHT: u32 = 1000;
    /// `fixtures.users`
    pub const MAX_FIXTURE_USERS: u32 = 1_000_000;
    /// `fixtures.buddy_requests`
    pub const MAX_FIXTURE_REQUESTS: u32 = 10_000_000;
    /// `faults[].latency`
    pub const MAX_FAULT_LATENCY_SECS: u64 = 60;
    /// `app.ready_timeout`
    pub const MAX_READY_TIMEOUT_SECS: u64 = 600;
    /// `silences`
    pub const MAX_SILENCES: usize = 100;
    /// `app.command` / `arms[].command`: arguments, and bytes per argument
    pub const MAX_ARGS: usize = 64;
    pub const MAX_ARG_BYTES: usize = 4096;
    /// `fixtures.sql`: files, and bytes per file
    pub const MAX_SQL_FILES: usize = 16;
    pub const MAX_SQL_BYTES: u64 = 16 * 1024 * 1024;
    /// `slas[].confidence`, in percent: below 50 % an "interval" says little; 100 % has none.
    pub const MIN_CONFIDENCE: f64 = 50.0;
    pub const MAX_CONFIDENCE: f64 = 99.9;
}

/// One semantic problem: the field path and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where, as path segments from the document root.
    pub path: Vec<Seg>,
    /// What is wrong.
    pub message: String,
}

struct Ctx {
    path: Vec<Seg>,
}

impl Ctx {
    fn issue(&self, extra: &[Seg], message: impl Into<String>) -> Issue {
        let mut path = self.path.clone();
        path.extend_from_slice(extra);
        Issue {
            path,
            message: message.into(),
        }
    }
}

fn k(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

fn is_slug(s: &str, extra: &[char]) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
}

fn check<T: PartialOrd + std::fmt::Display + Copy>(
    v: T,
    lo: T,
    hi: T,
    path: &[Seg],
) -> Result<(), Issue> {
    if v < lo || v > hi {
        return Err(Issue {
            path: path.to_vec(),
            message: format!("must lie within {lo}..={hi}, got {v}"),
        });
    }
    Ok(())
}

/// Checks everything serde cannot; returns the first problem in document order of sections,
/// or what the scenario runs against.
pub fn validate(s: &Scenario) -> Result<Target, Issue> {
    use limits::*;
    let root = Ctx { path: vec![] };
    if s.name.is_empty() || s.name.len() > 64 || !is_slug(&s.name, &[]) {
        return Err(root.issue(
            &[k("name")],
            "a scenario name must match [a-z0-9-]+ (at most 64 characters); it names the report directory",
        ));
    }
    for (i, t) in s.tags.iter().enumerate() {
        if t.is_empty() || t.len() > 32 || !is_slug(t, &['_']) {
            return Err(root.issue(
                &[k("tags"), Seg::Index(i)],
                "a tag must match [a-z0-9_-]+ (at most 32 characters)",
            ));
        }
    }

    // services / app
    let external = s.services.provider == Some(Provider::External);
    if external {
        if s.services.postgres.image.is_some() {
            return Err(root.issue(
                &[k("services"), k("postgres"), k("image")],
                "the external provider starts no services: remove the image",
            ));
        }
        if s.services.redis.image.is_some() {
            return Err(root.issue(
                &[k("services"), k("redis"), k("image")],
                "the external provider starts no services: remove the image",
            ));
        }
    }
    check(
        s.app.instances,
        1,
        MAX_INSTANCES,
        &[k("app"), k("instances")],
    )?;
    let rt = s.app.ready_timeout.get();
    if rt.is_zero() || rt.as_secs() > MAX_READY_TIMEOUT_SECS {
        return Err(root.issue(
            &[k("app"), k("ready_timeout")],
            format!("must be more than 0s and at most {MAX_READY_TIMEOUT_SECS}s"),
        ));
    }
    match (&s.app.url, external) {
        (None, true) => {
            return Err(root.issue(&[k("services"), k("provider")], "the external provider needs app.url, the deployed app's base URL (e.g. url: ${POOLPROOF_APP_URL})"))
        }
        (Some(_), false) => {
            return Err(root.issue(&[k("app"), k("url")], "app.url is only for services.provider: external (poolproof starts the app itself otherwise)"))
        }
        (Some(url), true) => {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            let host = url.split("://").nth(1).unwrap_or("");
            if !scheme_ok || host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // The URL is not echoed: it may carry credentials.
                return Err(root.issue(&[k("app"), k("url")], "app.url must be an http:// or https:// URL with a host"));
            }
        }
        (None, false) => {}
    }
    if s.app.token.is_some() && !external {
        return Err(root.issue(
            &[k("app"), k("token")],
            "app.token is only for services.provider: external",
        ));
    }
    if external {
        if s.app.binary.is_some() {
            return Err(root.issue(
                &[k("app"), k("binary")],
                "the external provider runs no app binary: remove app.binary",
            ));
        }
        if s.app.instances != 1 {
            return Err(root.issue(
                &[k("app"), k("instances")],
                "the external provider starts no instances: remove app.instances",
            ));
        }
        if !s.app.env.is_empty() {
            return Err(root.issue(
                &[k("app"), k("env")],
                "the external provider cannot set the deployed app's environment: remove app.env",
            ));
        }
        if s.app.command.is_some() {
            return Err(root.issue(
                &[k("app"), k("command")],
                "the external provider starts no app: remove app.command",
            ));
        }
        if !s.fixtures.sql.0.is_empty() {
            return Err(root.issue(
                &[k("fixtures"), k("sql")],
                "the external provider starts no database to prepare: remove fixtures.sql",
            ));
        }
        if let Some(url) = &s.services.postgres.database_url {
            let u = url.expose();
            let ok = (u.starts_with("postgres://") || u.starts_with("postgresql://"))
                && !u.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                // Not echoed: it holds a password.
                return Err(root.issue(
                    &[k("services"), k("postgres"), k("database_url")],
                    "database_url must be a postgres:// URL",
                ));
            }
        }
    } else if s.services.postgres.database_url.is_some() {
        return Err(root.issue(
            &[k("services"), k("postgres"), k("database_url")],
            "services.postgres.database_url is for the external provider (poolproof knows the database it starts)",
        ));
    }
    check_pgbouncer(s, external)?;
    check_launch(
        &[k("app")],
        s.app.command.as_deref(),
        s.app.port_env.as_deref(),
        s.app.ready.as_deref(),
    )?;
    if s.app.command.is_some() && s.app.binary.is_some() {
        return Err(root.issue(
            &[k("app"), k("binary")],
            "app.binary is pooled-app's; with app.command give the program there instead",
        ));
    }
    if let Some(p) = &s.app.metrics_path {
        check_path(p, &[k("app"), k("metrics_path")])?;
    }

    // fixtures
    check(
        s.fixtures.users,
        1,
        MAX_FIXTURE_USERS,
        &[k("fixtures"), k("users")],
    )?;
    check(
        s.fixtures.buddy_requests,
        0,
        MAX_FIXTURE_REQUESTS,
        &[k("fixtures"), k("buddy_requests")],
    )?;

    check_sql_files(s)?;

    // load
    let l = &s.load;
    check_model(l)?;
    if let Some(g) = &l.generators {
        check_generators(s, g)?;
    }
    if l.measured().is_zero() {
        return Err(root.issue(&[k("load"), k("duration")], "must be more than 0s"));
    }
    if l.model == LoadModel::Closed && l.ramp.get() > l.warmup.get() + l.measured() {
        return Err(root.issue(
            &[k("load"), k("ramp")],
            format!(
                "ramp ({}) is longer than warmup + duration ({})",
                l.ramp,
                super::types::Duration::new(l.warmup.get() + l.measured())
            ),
        ));
    }
    if let Some(r) = l.rate_limit {
        if !r.is_finite() || r <= 0.0 || r > MAX_RATE {
            return Err(root.issue(
                &[k("load"), k("rate_limit")],
                format!("must be more than 0 and at most {MAX_RATE} requests/second, got {r}"),
            ));
        }
    }
    if l.transactions.is_empty() {
        return Err(root.issue(
            &[k("load"), k("transactions")],
            "at least one transaction is needed",
        ));
    }
    if l.transactions.len() > MAX_TRANSACTIONS {
        return Err(root.issue(
            &[k("load"), k("transactions")],
            format!("at most {MAX_TRANSACTIONS} transactions"),
        ));
    }
    let mut names = HashSet::new();
    for (i, t) in l.transactions.iter().enumerate() {
        let at = |f: &str| vec![k("load"), k("transactions"), Seg::Index(i), k(f)];
        if !is_slug(&t.name, &['_']) || t.name.len() > 64 {
            return Err(Issue {
                path: at("name"),
                message: "a transaction name must match [a-z0-9_-]+".into(),
            });
        }
        if !names.insert(t.name.as_str()) {
            return Err(Issue {
                path: at("name"),
                message: format!("duplicate transaction name {:?}", t.name),
            });
        }
        check(t.weight, 1, MAX_WEIGHT, &at("weight"))?;
        if !t.path.as_str().starts_with('/') {
            return Err(Issue {
                path: at("path"),
                message: "a path must start with \"/\"".into(),
            });
        }
        if t.path
            .as_str()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Issue {
                path: at("path"),
                message: "a path cannot contain spaces or control characters".into(),
            });
        }
        check(t.expect_status, 100, 599, &at("expect_status"))?;
    }

    // faults
    if external && !s.faults.is_empty() {
        return Err(root.issue(
            &[k("faults")],
            "faults need services that poolproof runs; the external provider targets a deployed app and refuses faults",
        ));
    }
    for (i, f) in s.faults.iter().enumerate() {
        check_fault(f, i, super::types::Duration::new(l.measured()))?;
    }

    // silences
    if !s.silences.is_empty() {
        if external {
            return Err(root.issue(
                &[k("silences")],
                "silences are checked at the webhook sink of an app poolproof starts; the external provider has none",
            ));
        }
        let token = |env: &super::model::EnvMap| {
            env.get("PERFORMANCE_API_TOKEN")
                .is_some_and(|t| !t.is_empty())
        };
        if s.app.command.is_some() || s.arms.iter().any(|a| a.command.is_some()) {
            return Err(root.issue(
                &[k("silences")],
                "silences are created through pooled-app's API; an app started by app.command (or an arm's command) has none",
            ));
        }
        if !token(&s.app.env) && (s.arms.is_empty() || !s.arms.iter().all(|a| token(&a.env))) {
            return Err(root.issue(
                &[k("silences")],
                "the app creates silences only behind its token: set app.env.PERFORMANCE_API_TOKEN",
            ));
        }
        if s.silences.len() > MAX_SILENCES {
            return Err(root.issue(&[k("silences")], format!("at most {MAX_SILENCES} silences")));
        }
    }
    for (i, sl) in s.silences.iter().enumerate() {
        check_silence(sl, i, super::types::Duration::new(l.measured()))?;
    }

    // arms
    if s.arms.len() == 1 {
        return Err(root.issue(
            &[k("arms")],
            "arms compare variants: give at least two, or none",
        ));
    }
    if s.arms.len() > MAX_ARMS {
        return Err(root.issue(&[k("arms")], format!("at most {MAX_ARMS} arms")));
    }
    if external && !s.arms.is_empty() {
        return Err(root.issue(
            &[k("arms")],
            "arms set the app's environment, which the external provider cannot do",
        ));
    }
    let mut arm_names = HashSet::new();
    for (i, a) in s.arms.iter().enumerate() {
        let at = vec![k("arms"), Seg::Index(i), k("name")];
        if !is_slug(&a.name, &['_']) || a.name.len() > 64 {
            return Err(Issue {
                path: at,
                message: "an arm name must match [a-z0-9_-]+".into(),
            });
        }
        if !arm_names.insert(a.name.as_str()) {
            return Err(Issue {
                path: at,
                message: format!("duplicate arm name {:?}", a.name),
            });
        }
        let arm_path = [k("arms"), Seg::Index(i)];
        check_launch(
            &arm_path,
            a.command.as_deref(),
            a.port_env.as_deref(),
            a.ready.as_deref(),
        )?;
        if a.port_env.is_some() && a.command.is_none() && s.app.command.is_none() {
            return Err(Issue {
                path: vec![k("arms"), Seg::Index(i), k("port_env")],
                message: "port_env goes with command (pooled-app binds BIND_ADDR)".into(),
            });
        }
    }
    check(s.replicates, 1, MAX_REPLICATES, &[k("replicates")])?;
    if s.arms_mode == ArmsMode::Concurrent {
        check_concurrent(s)?;
    }
    if let Some(period) = s.crossover {
        check_crossover(s, period)?;
    }

    check_sources(s, external)?;

    // slas
    for (i, sla) in s.slas.iter().enumerate() {
        check_sla(s, sla, i)?;
    }
    Ok(match (&s.app.url, external) {
        (Some(url), true) => Target::External(ExternalApp {
            url: url.trim_end_matches('/').to_owned(),
            token: s.app.token.clone().filter(|t| !t.is_empty()),
            monitor_database_url: s.services.postgres.database_url.clone(),
        }),
        _ => Target::Managed,
    })
}

/// `load.generators`: a shard count each shard can carry (at least one user or in-flight
/// request each), a start delay within reason, arms one at a time, and an address that is a
/// host, not a URL.
pub(crate) fn check_generators(s: &Scenario, g: &Generators) -> Result<(), Issue> {
    use limits::*;
    let at = |f: &str| vec![k("load"), k("generators"), k(f)];
    check(g.count, 1, MAX_GENERATORS, &at("count"))?;
    let carriers = s.load.carriers();
    if g.count > carriers {
        let field = match s.load.model {
            LoadModel::Open => "max_in_flight",
            LoadModel::Closed => "users",
        };
        return Err(Issue {
            path: at("count"),
            message: format!(
                "{} shards need at least one of the load's {field} each, which is {carriers}",
                g.count
            ),
        });
    }
    if let Some(d) = g.start_after {
        if d.get() < std::time::Duration::from_secs(1)
            || d.get() > std::time::Duration::from_secs(600)
        {
            return Err(Issue {
                path: at("start_after"),
                message: format!("must lie within 1s..=10m, got {d}"),
            });
        }
    }
    if let Some(a) = &g.advertise {
        let valid = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !valid {
            return Err(Issue {
                path: at("advertise"),
                message: format!("`{a}` is not a host name or IP address"),
            });
        }
    }
    if s.arms_mode == ArmsMode::Concurrent && (g.count > 1 || g.engine != GeneratorEngine::Local) {
        return Err(Issue {
            path: at("count"),
            message: "sharded generators drive one arm at a time: use arms_mode: interleaved"
                .into(),
        });
    }
    Ok(())
}

/// The variable a crossover switches at run time (pooled-app's `PUT /api/performance/monitoring`).
pub const CROSSOVER_VARIABLE: &str = "ENABLE_PERFORMANCE_MONITORING";

/// `crossover:`: concurrent arms of pooled-app that differ in what it can switch at run time
/// (monitoring on or off) and nothing else, whole-second periods that leave a second of each
/// measured, and measured load of whole cycles (every group in every arm's state alike).
fn check_crossover(s: &Scenario, period: crate::scenario::types::Duration) -> Result<(), Issue> {
    let at = vec![k("crossover")];
    let fail = |message: String| {
        Err(Issue {
            path: vec![k("crossover")],
            message,
        })
    };
    if s.arms_mode != ArmsMode::Concurrent {
        return fail(
            "crossover switches the states of apps running side by side: use arms_mode: concurrent"
                .into(),
        );
    }
    let p = period.get();
    if p.subsec_nanos() != 0 || p.as_secs() < 2 {
        return fail(format!(
            "a crossover period is whole seconds, at least 2s (its first second is left out), got {period}"
        ));
    }
    if s.app.command.is_some() {
        return Err(Issue {
            path: vec![k("app"), k("command")],
            message: format!("crossover switches pooled-app's monitoring at run time ({CROSSOVER_VARIABLE}): it cannot switch another program"),
        });
    }
    for (i, arm) in s.arms.iter().enumerate() {
        let here = |key: &str| vec![k("arms"), Seg::Index(i), k(key)];
        if arm.command.is_some() {
            return Err(Issue {
                path: here("command"),
                message:
                    "with crossover every arm is a state of the same app: remove the arm's command"
                        .into(),
            });
        }
        if let Some(other) = arm.env.0.keys().find(|v| *v != CROSSOVER_VARIABLE) {
            return Err(Issue {
                path: vec![k("arms"), Seg::Index(i), k("env"), k(other)],
                message: format!("with crossover the arms differ only in {CROSSOVER_VARIABLE}, which is switched at run time; put {other} in app.env"),
            });
        }
        match arm.env.0.get(CROSSOVER_VARIABLE).map(String::as_str) {
            Some("true" | "false") => {}
            Some(v) => {
                return Err(Issue {
                    path: vec![k("arms"), Seg::Index(i), k("env"), k(CROSSOVER_VARIABLE)],
                    message: format!("with crossover this is the arm's state: true or false, got {v:?}"),
                })
            }
            None => {
                return Err(Issue {
                    path: here("env"),
                    message: format!("with crossover each arm is a state: set {CROSSOVER_VARIABLE}: \"true\" or \"false\""),
                })
            }
        }
    }
    let cycle = p.as_secs() * s.arms.len() as u64;
    let measured = s.load.duration.get();
    if cycle == 0 || measured.subsec_nanos() != 0 || !measured.as_secs().is_multiple_of(cycle) {
        return Err(Issue {
            path: at,
            message: format!(
                "{} arms x {period}: a cycle takes {cycle}s, and load.duration ({}) must be a whole number of cycles, so that every app spends as long in each arm",
                s.arms.len(),
                s.load.duration
            ),
        });
    }
    Ok(())
}

/// `arms_mode: concurrent`: arms to run side by side, users that split evenly over every
/// arm's instances, and no faults (a fault would hit every arm at once and tell nothing
/// apart).
fn check_concurrent(s: &Scenario) -> Result<(), Issue> {
    let at = vec![k("arms_mode")];
    if s.arms.len() < 2 {
        return Err(Issue {
            path: at,
            message: "concurrent runs arms side by side: give at least two arms".into(),
        });
    }
    if !s.faults.is_empty() {
        return Err(Issue {
            path: at,
            message: "concurrent arms share Postgres and Redis, so a fault would hit every arm at once: use arms_mode: interleaved with faults".into(),
        });
    }
    if !s.silences.is_empty() {
        return Err(Issue {
            path: at,
            message: "concurrent arms share Redis, where silences live, so a silence would mute every arm at once: use arms_mode: interleaved with silences".into(),
        });
    }
    if s.load.model == LoadModel::Open {
        return Err(Issue {
            path: vec![k("load"), k("model")],
            message: "the open model does not run arms side by side yet (one schedule would favour the faster arm): use arms_mode: interleaved".into(),
        });
    }
    let apps = s.arms.len() as u32 * s.app.instances;
    let users = s.load.users.unwrap_or(0);
    if !users.is_multiple_of(apps) {
        return Err(Issue {
            path: vec![k("load"), k("users")],
            message: format!(
                "with arms_mode: concurrent the users split evenly over {apps} apps ({} arms x {} instances): use a multiple of {apps}, got {}",
                s.arms.len(),
                s.app.instances,
                users
            ),
        });
    }
    Ok(())
}

/// The load model's own fields: `users` (and `rate_limit`) for closed, `rate` or `stages`
/// and `max_in_flight` for open, never the other model's.
fn check_model(l: &Load) -> Result<(), Issue> {
    use limits::*;
    let at = |f: &str| vec![k("load"), k(f)];
    let rate_ok = |r: f64| r.is_finite() && r > 0.0 && r <= MAX_OPEN_RATE;
    let rate_msg = |r: f64| {
        format!("an arrival rate must be more than 0 and at most {MAX_OPEN_RATE} requests/second, got {r}")
    };
    match l.model {
        LoadModel::Closed => {
            for (field, set) in [
                ("rate", l.rate.is_some()),
                ("stages", l.stages.is_some()),
                ("max_in_flight", l.max_in_flight.is_some()),
            ] {
                if set {
                    return Err(Issue {
                        path: at(field),
                        message: format!("{field} applies to model: open (the closed model has users and an optional rate_limit); add model: open"),
                    });
                }
            }
            let Some(users) = l.users else {
                return Err(Issue {
                    path: vec![k("load")],
                    message: "the closed model needs users: (or model: open with rate: or stages:)"
                        .into(),
                });
            };
            check(users, 1, MAX_USERS, &at("users"))?;
        }
        LoadModel::Open => {
            if l.users.is_some() {
                return Err(Issue {
                    path: at("users"),
                    message: "users applies to the closed model; the open model starts requests at rate: and carries them with at most max_in_flight: users".into(),
                });
            }
            if l.rate_limit.is_some() {
                return Err(Issue {
                    path: at("rate_limit"),
                    message: "rate_limit applies to the closed model; the open model's rate is rate: (or stages:)".into(),
                });
            }
            match (l.rate, &l.stages) {
                (Some(_), Some(_)) => {
                    return Err(Issue {
                        path: at("stages"),
                        message: "give rate: (constant) or stages: (ramping), not both".into(),
                    })
                }
                (None, None) => {
                    return Err(Issue {
                        path: at("model"),
                        message: "the open model needs rate: (requests per second) or stages:"
                            .into(),
                    })
                }
                (Some(r), None) if !rate_ok(r) => {
                    return Err(Issue {
                        path: at("rate"),
                        message: rate_msg(r),
                    })
                }
                (Some(_), None) => {
                    if l.duration.is_zero() {
                        return Err(Issue {
                            path: at("duration"),
                            message: "must be more than 0s".into(),
                        });
                    }
                }
                (None, Some(stages)) => {
                    if stages.is_empty() {
                        return Err(Issue {
                            path: at("stages"),
                            message: "at least one stage is needed: [{rate: N, for: 30s}, ...]"
                                .into(),
                        });
                    }
                    if stages.len() > MAX_STAGES {
                        return Err(Issue {
                            path: at("stages"),
                            message: format!("at most {MAX_STAGES} stages"),
                        });
                    }
                    for (i, st) in stages.iter().enumerate() {
                        if !rate_ok(st.rate) {
                            return Err(Issue {
                                path: vec![k("load"), k("stages"), Seg::Index(i), k("rate")],
                                message: rate_msg(st.rate),
                            });
                        }
                    }
                    let sum: std::time::Duration = stages.iter().map(|s| s.duration.get()).sum();
                    if sum.is_zero() {
                        return Err(Issue {
                            path: at("stages"),
                            message: "the stages last 0s in all: give them a for:".into(),
                        });
                    }
                    if !l.duration.is_zero() && l.duration.get() != sum {
                        return Err(Issue {
                            path: at("duration"),
                            message: format!(
                                "the stages last {} but duration is {}: omit duration (it is the stages' sum) or make them agree",
                                super::types::Duration::new(sum),
                                l.duration
                            ),
                        });
                    }
                }
            }
            if let Some(m) = l.max_in_flight {
                check(m, 1, MAX_USERS, &at("max_in_flight"))?;
            }
        }
    }
    Ok(())
}

fn check_fault(f: &Fault, i: usize, load: super::types::Duration) -> Result<(), Issue> {
    let at = |field: &str| vec![k("faults"), Seg::Index(i), k(field)];
    if f.duration.is_zero() {
        return Err(Issue {
            path: at("for"),
            message: "a fault must last more than 0s".into(),
        });
    }
    if f.end() > load.get() {
        return Err(Issue {
            path: at("at"),
            message: format!(
                "the fault ends at {} (at {} + for {}), after the measured load ends at {}",
                super::types::Duration::new(f.end()),
                f.at,
                f.duration,
                load
            ),
        });
    }
    match (f.kind, f.latency) {
        (FaultKind::DbLatency, None) => {
            return Err(Issue {
                path: vec![k("faults"), Seg::Index(i)],
                message: "db_latency needs latency: (e.g. latency: 2500ms)".into(),
            })
        }
        (FaultKind::DbLatency, Some(d))
            if d.is_zero() || d.get().as_secs() >= limits::MAX_FAULT_LATENCY_SECS =>
        {
            return Err(Issue {
                path: at("latency"),
                message: format!(
                    "latency must be more than 0s and less than {}s",
                    limits::MAX_FAULT_LATENCY_SECS
                ),
            })
        }
        (kind, Some(_)) if kind != FaultKind::DbLatency => {
            return Err(Issue {
                path: at("latency"),
                message: format!("latency applies to db_latency only, not {kind}"),
            })
        }
        _ => {}
    }
    if let Some(st) = f.status {
        if f.kind != FaultKind::NotifierFail {
            return Err(Issue {
                path: at("status"),
                message: format!("status applies to notifier_fail only, not {}", f.kind),
            });
        }
        check(st, 400, 599, &at("status"))?;
    }
    if f.target.is_some() && !f.kind.is_notifier() {
        return Err(Issue {
            path: at("target"),
            message: format!(
                "target applies to notifier_fail and notifier_down only, not {}",
                f.kind
            ),
        });
    }
    Ok(())
}

/// An alert id as the app writes them: a-z 0-9 _ - (at most 128).
fn alert_id_ok(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 128
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_silence(sl: &SilenceSpec, i: usize, load: super::types::Duration) -> Result<(), Issue> {
    let at = |field: &str| vec![k("silences"), Seg::Index(i), k(field)];
    if sl.duration.is_zero() {
        return Err(Issue {
            path: at("for"),
            message: "a silence must last more than 0s".into(),
        });
    }
    if sl.at.get() >= load.get() {
        return Err(Issue {
            path: at("at"),
            message: format!(
                "the silence starts at {}, when the measured load ({load}) is over",
                sl.at
            ),
        });
    }
    if sl.alert.as_deref().is_some_and(|a| !alert_id_ok(a)) {
        return Err(Issue {
            path: at("alert"),
            message: "an alert name must match [A-Za-z0-9_-]+".into(),
        });
    }
    Ok(())
}

fn describe(t: &Threshold) -> String {
    match t {
        Threshold::Duration(d) => d.to_string(),
        Threshold::Percent(p) => p.to_string(),
        Threshold::Number(n) => n.to_string(),
        Threshold::Ratio(r) => format!("x{r}"),
    }
}

fn check_sla(s: &Scenario, sla: &Sla, i: usize) -> Result<(), Issue> {
    let at = |field: &str| vec![k("slas"), Seg::Index(i), k(field)];
    let m = sla.metric;
    let kinds = m.threshold_kinds();
    if !kinds.contains(&sla.threshold.kind()) {
        let want = kinds
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(Issue {
            path: at("threshold"),
            message: format!("{m} takes {want}, got {}", describe(&sla.threshold)),
        });
    }
    match (m, sla.threshold) {
        (Metric::HealthScore, Threshold::Number(n)) if n > 100.0 => {
            return Err(Issue {
                path: at("threshold"),
                message: format!("health_score lies within 0..=100, got {n}"),
            })
        }
        (
            Metric::DuplicateNotifications
            | Metric::FallbackActivations
            | Metric::NotificationsWhileInhibited
            | Metric::NotificationsWhileSilenced,
            Threshold::Number(n),
        ) if n.fract() != 0.0 || n < 0.0 => {
            return Err(Issue {
                path: at("threshold"),
                message: format!("{m} is a count, got {n}"),
            })
        }
        (
            Metric::Throughput | Metric::OfferedRate | Metric::MaxSustainedRate,
            Threshold::Number(n),
        ) if n > limits::MAX_RATE => {
            return Err(Issue {
                path: at("threshold"),
                message: format!(
                    "{m} above {} rps cannot be reached here, got {n}",
                    limits::MAX_RATE
                ),
            })
        }
        _ => {}
    }
    if let Some(route) = &sla.route {
        if !m.supports_route() {
            return Err(Issue {
                path: at("route"),
                message: format!("{m} is not measured per route; remove route"),
            });
        }
        if s.transaction(route).is_none() {
            let known = s
                .load
                .transactions
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Issue {
                path: at("route"),
                message: format!(
                    "unknown route {:?}: a route names a transaction ({known})",
                    super::types::shorten(route)
                ),
            });
        }
    }
    let sources = s.sources();
    if !m.sources().is_empty() && !m.sources().iter().any(|src| sources.contains(src)) {
        let want = m
            .sources()
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        let have = sources
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Issue {
            path: at("metric"),
            message: format!(
                "{m} comes from the {want} source, but the scenario samples [{have}]: add it to sources"
            ),
        });
    }
    if let Some(arm) = &sla.arm {
        if m.is_ratio() {
            return Err(Issue {
                path: at("arm"),
                message: format!("{m} compares two arms: use arms: [treatment, baseline]"),
            });
        }
        if s.arm(arm).is_none() {
            return Err(unknown_arm(s, arm, at("arm")));
        }
    }
    if sla.timing.is_some() && !m.is_latency() {
        return Err(Issue {
            path: at("timing"),
            message: format!(
                "timing applies to latency_p50, latency_p95, latency_p99 and latency_max only, not {m}"
            ),
        });
    }
    if m.needs_schedule() && !s.load.is_scheduled() {
        return Err(Issue {
            path: at("metric"),
            message: format!(
                "{m} counts scheduled starts: use model: open, or a closed model with rate_limit"
            ),
        });
    }
    if m == Metric::MaxSustainedRate {
        if s.load.model != LoadModel::Open {
            return Err(Issue {
                path: at("metric"),
                message: "max_sustained_rate steps through arrival rates: use model: open with rate: or stages:".into(),
            });
        }
        if sla.phase != super::model::Phase::Load || sla.stage.is_some() {
            return Err(Issue {
                path: at("metric"),
                message: "max_sustained_rate looks at every stage of the whole load: remove phase and stage".into(),
            });
        }
    }
    if let Some(n) = sla.stage {
        let stages = s.load.stages.as_ref().map_or(0, Vec::len);
        if stages == 0 {
            return Err(Issue {
                path: at("stage"),
                message: "stage selects one of load.stages (model: open with stages:), but there are none".into(),
            });
        }
        if n == 0 || n as usize > stages {
            return Err(Issue {
                path: at("stage"),
                message: format!("stage is 1-based and there are {stages} stages, got {n}"),
            });
        }
        if !(m.supports_route() || m.is_ratio()) || m.is_server_side() {
            return Err(Issue {
                path: at("stage"),
                message: format!("stage applies to client-side and ratio metrics only, not {m}"),
            });
        }
    }
    if sla.aggregate.is_some() && m != Metric::HealthScore {
        return Err(Issue {
            path: at("aggregate"),
            message: format!("aggregate applies to health_score only, not {m}"),
        });
    }
    if sla.alert.is_some() && !m.is_alert() {
        return Err(Issue { path: at("alert"), message: format!("alert applies to alert metrics only (alert_latency, alert_resolution, duplicate_notifications, notifications_while_inhibited, notifications_while_silenced), not {m}") });
    }
    if sla.channel.is_some() && !m.is_alert() {
        return Err(Issue { path: at("channel"), message: format!("channel applies to alert metrics only (alert_latency, alert_resolution, duplicate_notifications, notifications_while_inhibited, notifications_while_silenced), not {m}") });
    }
    for (field, v) in [("alert", &sla.alert), ("inhibited_by", &sla.inhibited_by)] {
        if v.as_deref().is_some_and(|a| !alert_id_ok(a)) {
            return Err(Issue {
                path: at(field),
                message: format!("an {field} name must match [A-Za-z0-9_-]+"),
            });
        }
    }
    if sla.inhibited_by.is_some() && m != Metric::NotificationsWhileInhibited {
        return Err(Issue {
            path: at("inhibited_by"),
            message: format!("inhibited_by applies to notifications_while_inhibited only, not {m}"),
        });
    }
    if m == Metric::NotificationsWhileInhibited {
        if sla.alert.is_none() || sla.inhibited_by.is_none() {
            return Err(Issue {
                path: vec![k("slas"), Seg::Index(i)],
                message: "notifications_while_inhibited needs alert: (the muted alert, e.g. request_latency_warning) and inhibited_by: (the alert that mutes it, e.g. request_latency_critical)".into(),
            });
        }
        if sla.alert == sla.inhibited_by {
            return Err(Issue {
                path: at("inhibited_by"),
                message: "an alert does not inhibit itself: name another alert".into(),
            });
        }
    }
    if m == Metric::NotificationsWhileSilenced && s.silences.is_empty() {
        return Err(Issue {
            path: at("metric"),
            message: "notifications_while_silenced is measured over the scenario's silences, but it has none".into(),
        });
    }
    if matches!(m, Metric::AlertLatency | Metric::AlertResolution) && sla.alert.is_none() {
        return Err(Issue {
            path: vec![k("slas"), Seg::Index(i)],
            message: format!(
                "{m} needs alert: the alert rule's name (e.g. high_request_latency_p95_critical)"
            ),
        });
    }
    if m.needs_fault() && s.faults.is_empty() {
        return Err(Issue {
            path: at("metric"),
            message: format!("{m} is measured from a fault, but the scenario has no faults"),
        });
    }
    if sla.phase != super::model::Phase::Load && s.faults.is_empty() {
        return Err(Issue {
            path: at("phase"),
            message: format!(
                "phase {} is relative to faults, but the scenario has no faults",
                sla.phase
            ),
        });
    }
    if m.is_ratio() {
        if s.arms.len() < 2 {
            return Err(Issue {
                path: at("metric"),
                message: format!("{m} compares two arms, but the scenario defines no arms"),
            });
        }
        if let Some(pair) = &sla.arms {
            for name in [&pair.treatment, &pair.baseline] {
                if s.arm(name).is_none() {
                    return Err(unknown_arm(s, name, at("arms")));
                }
            }
        }
    } else if sla.arms.is_some() {
        return Err(Issue {
            path: at("arms"),
            message: format!("arms applies to ratio metrics only, not {m}"),
        });
    }
    if let Some(pair) = &sla.noise_floor {
        if !m.is_ratio() || !matches!(sla.threshold, Threshold::Percent(_)) {
            return Err(Issue {
                path: at("noise_floor"),
                message: format!(
                    "noise_floor applies to ratio metrics with a percentage threshold only, not {m} {}",
                    sla.threshold
                ),
            });
        }
        for name in [&pair.treatment, &pair.baseline] {
            if s.arm(name).is_none() {
                return Err(unknown_arm(s, name, at("noise_floor")));
            }
        }
        if s.replicates < 2 && s.arms_mode != ArmsMode::Concurrent {
            return Err(Issue {
                path: at("noise_floor"),
                message: "a noise floor is an interval, which needs at least two pairs: set replicates: 2 or more (or arms_mode: concurrent, which pairs seconds)".into(),
            });
        }
    }
    if sla.abort_on_fail {
        check_abort(s, sla, i)?;
    }
    if let Some(c) = sla.confidence {
        if !m.is_ratio() {
            return Err(Issue {
                path: at("confidence"),
                message: format!("confidence applies to ratio metrics only, not {m}"),
            });
        }
        if !(limits::MIN_CONFIDENCE..=limits::MAX_CONFIDENCE).contains(&c.percent()) {
            return Err(Issue {
                path: at("confidence"),
                message: format!(
                    "a confidence level lies within {}%..{}%, got {c}",
                    limits::MIN_CONFIDENCE,
                    limits::MAX_CONFIDENCE
                ),
            });
        }
        if s.replicates < 2 && s.arms_mode != ArmsMode::Concurrent {
            return Err(Issue {
                path: at("confidence"),
                message: "an interval needs at least two pairs: set replicates: 2 or more (or arms_mode: concurrent, which pairs seconds)".into(),
            });
        }
    }
    Ok(())
}

/// `abort_on_fail: true`: only where the run can know during the load that the SLA's verdict
/// is already lost whatever comes next. That takes a final figure the live figures bound
/// (error counts, latency counts against the threshold), an upper limit (`<=`, `<`), the
/// whole measured load, a known most-requests total (a schedule), one series watched in this
/// process (no arms, no shards). A/B ratios, server-side and alert metrics are judged only
/// at the end.
fn check_abort(s: &Scenario, sla: &Sla, i: usize) -> Result<(), Issue> {
    let path = vec![k("slas"), Seg::Index(i), k("abort_on_fail")];
    let fail = |why: String| {
        Err(Issue {
            path: path.clone(),
            message: why,
        })
    };
    let m = sla.metric;
    if !(m == Metric::ErrorRate || m.is_latency()) {
        return fail(format!(
            "abort_on_fail applies to error_rate and latency_p50|p95|p99|max only: {m} is judged only at the end of the run"
        ));
    }
    if !matches!(
        sla.comparator,
        super::model::Comparator::Le | super::model::Comparator::Lt
    ) {
        return fail(format!(
            "abort_on_fail needs an upper limit (<= or <): a {m} {} can still be reached until the end",
            sla.comparator
        ));
    }
    if sla.phase != super::model::Phase::Load || sla.stage.is_some() {
        return fail("abort_on_fail judges the whole measured load: remove phase and stage".into());
    }
    if !s.load.is_scheduled() {
        return fail("abort_on_fail needs a planned total of requests: use model: open, or a closed model with rate_limit".into());
    }
    if !s.arms.is_empty() {
        return fail(
            "abort_on_fail stops a single-arm run: A/B arms are compared only at the end".into(),
        );
    }
    if s.load
        .generators
        .as_ref()
        .is_some_and(|g| g.count > 1 || g.engine != GeneratorEngine::Local)
    {
        return fail(
            "abort_on_fail watches the load in this process: remove load.generators".into(),
        );
    }
    Ok(())
}

/// An SLA's arm name (at `path`) that the scenario does not define: names the ones it does.
fn unknown_arm(s: &Scenario, name: &str, path: Vec<Seg>) -> Issue {
    if s.arms.is_empty() {
        return Issue {
            path,
            message: "arm selects one of the scenario's arms, but it defines none".to_owned(),
        };
    }
    let known = s
        .arms
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Issue {
        path,
        message: format!(
            "unknown arm {:?} (arms: {known})",
            super::types::shorten(name)
        ),
    }
}

/// `command`, `port_env` and `ready` of `app` or of an arm (at `base`).
fn check_launch(
    base: &[Seg],
    command: Option<&[String]>,
    port_env: Option<&str>,
    ready: Option<&str>,
) -> Result<(), Issue> {
    use limits::*;
    let at = |f: &str| {
        let mut p = base.to_vec();
        p.push(k(f));
        p
    };
    if let Some(argv) = command {
        if argv.is_empty() {
            return Err(Issue {
                path: at("command"),
                message: "give the program and its arguments: [program, arg, ...]".into(),
            });
        }
        if argv.len() > MAX_ARGS {
            return Err(Issue {
                path: at("command"),
                message: format!("at most {MAX_ARGS} arguments"),
            });
        }
        for (i, a) in argv.iter().enumerate() {
            let mut path = at("command");
            path.push(Seg::Index(i));
            if a.len() > MAX_ARG_BYTES || a.contains('\0') {
                return Err(Issue {
                    path,
                    message: format!(
                        "an argument has at most {MAX_ARG_BYTES} bytes and no NUL character"
                    ),
                });
            }
            if i == 0 && a.trim().is_empty() {
                return Err(Issue {
                    path,
                    message: "the program is empty".into(),
                });
            }
        }
        let program = &argv[0];
        if program.contains('/') {
            let p = std::path::Path::new(program);
            if !p.is_file() {
                let mut path = at("command");
                path.push(Seg::Index(0));
                return Err(Issue {
                    path,
                    message: format!(
                        "no such program {:?} (a path is taken from the current directory)",
                        super::types::shorten(program)
                    ),
                });
            }
        }
    }
    if let Some(name) = port_env {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid || name.len() > 128 {
            return Err(Issue {
                path: at("port_env"),
                message: "an environment variable name must match [A-Z_][A-Z0-9_]*".into(),
            });
        }
        if matches!(name, "DATABASE_URL" | "REDIS_URL" | "PATH" | "HOME") {
            return Err(Issue {
                path: at("port_env"),
                message: format!("{name} is set by poolproof for another purpose"),
            });
        }
        if command.is_none() && base.len() == 1 {
            return Err(Issue {
                path: at("port_env"),
                message: "port_env goes with command (pooled-app binds BIND_ADDR)".into(),
            });
        }
    }
    if let Some(r) = ready {
        check_path(r, &at("ready"))?;
    }
    Ok(())
}

/// An HTTP path poolproof requests itself (`ready`, `metrics_path`).
fn check_path(p: &str, path: &[Seg]) -> Result<(), Issue> {
    if !p.starts_with('/')
        || p.len() > 1024
        || p.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Issue {
            path: path.to_vec(),
            message: "a path must start with \"/\" and hold no spaces or control characters".into(),
        });
    }
    Ok(())
}

/// `fixtures.sql`: files that exist (from the current directory), few and not huge.
fn check_sql_files(s: &Scenario) -> Result<(), Issue> {
    use limits::*;
    let files = &s.fixtures.sql.0;
    if files.len() > MAX_SQL_FILES {
        return Err(Issue {
            path: vec![k("fixtures"), k("sql")],
            message: format!("at most {MAX_SQL_FILES} SQL files"),
        });
    }
    for (i, f) in files.iter().enumerate() {
        let path = if matches!(s.fixtures.sql.0.len(), 1) {
            vec![k("fixtures"), k("sql")]
        } else {
            vec![k("fixtures"), k("sql"), Seg::Index(i)]
        };
        let shown = super::types::shorten(&f.display().to_string());
        match std::fs::metadata(f) {
            Ok(m) if m.is_file() && m.len() <= MAX_SQL_BYTES => {}
            Ok(m) if m.is_file() => {
                return Err(Issue {
                    path,
                    message: format!(
                        "{shown:?} has {} bytes; SQL fixtures are limited to {MAX_SQL_BYTES}",
                        m.len()
                    ),
                })
            }
            _ => {
                return Err(Issue {
                    path,
                    message: format!(
                        "no such SQL file {shown:?} (paths are taken from the current directory)"
                    ),
                })
            }
        }
    }
    Ok(())
}

/// `services.pgbouncer:` — sizes in range; only where poolproof starts the services.
fn check_pgbouncer(s: &Scenario, external: bool) -> Result<(), Issue> {
    use limits::*;
    let Some(pgb) = &s.services.pgbouncer else {
        return Ok(());
    };
    let at = |field: &str| vec![k("services"), k("pgbouncer"), k(field)];
    if external {
        return Err(Issue {
            path: vec![k("services"), k("pgbouncer")],
            message: "the external provider starts no services: remove services.pgbouncer".into(),
        });
    }
    check(
        pgb.default_pool_size,
        1,
        MAX_PGBOUNCER_POOL,
        &at("default_pool_size"),
    )?;
    check(
        pgb.max_client_conn,
        1,
        MAX_PGBOUNCER_CLIENTS,
        &at("max_client_conn"),
    )?;
    if let Some(image) = &pgb.image {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            return Err(Issue {
                path: at("image"),
                message: "an image must be name:tag without spaces".into(),
            });
        }
    }
    Ok(())
}

/// `sources:` — no repeats; `postgres` needs a database to watch and arms it can tell apart.
fn check_sources(s: &Scenario, external: bool) -> Result<(), Issue> {
    let Some(list) = &s.sources else {
        return Ok(());
    };
    if list.is_empty() {
        return Err(Issue {
            path: vec![k("sources")],
            message: "give at least one source (pooled-app, prometheus, postgres, pgbouncer) or omit sources"
                .into(),
        });
    }
    let mut seen = HashSet::new();
    for (i, src) in list.iter().enumerate() {
        if !seen.insert(*src) {
            return Err(Issue {
                path: vec![k("sources"), Seg::Index(i)],
                message: format!("{src} is listed twice"),
            });
        }
        if *src == Source::Pgbouncer && s.services.pgbouncer.is_none() {
            return Err(Issue {
                path: vec![k("sources"), Seg::Index(i)],
                message: "the pgbouncer source needs services.pgbouncer (a PgBouncer that poolproof starts)".into(),
            });
        }
        if *src == Source::Pgbouncer && s.arms_mode == ArmsMode::Concurrent {
            return Err(Issue {
                path: vec![k("sources"), Seg::Index(i)],
                message: "concurrent arms share one PgBouncer, whose pools cannot tell them apart: use arms_mode: interleaved with the pgbouncer source".into(),
            });
        }
        if *src == Source::Postgres {
            if external && s.services.postgres.database_url.is_none() {
                return Err(Issue {
                    path: vec![k("sources"), Seg::Index(i)],
                    message: "the postgres source of a deployed app needs services.postgres.database_url (a monitoring role's URL, e.g. ${POOLPROOF_MONITOR_DATABASE_URL})".into(),
                });
            }
            if s.arms_mode == ArmsMode::Concurrent {
                return Err(Issue {
                    path: vec![k("sources"), Seg::Index(i)],
                    message: "concurrent arms share one database, whose session counter cannot tell them apart: use arms_mode: interleaved with the postgres source".into(),
                });
            }
        }
    }
    Ok(())
}

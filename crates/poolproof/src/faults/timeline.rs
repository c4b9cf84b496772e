//! The fault timeline executor: runs a scenario's faults at their offsets from the start
//! of measured load, against the services, the Postgres proxy and the webhook sink, and
//! records when each fault really began and ended.
//!
//! Timing rule: a lasting fault (latency, pause, stop, refusal, failing notifier) begins
//! when the action has taken effect and ends when the undo has; a one-shot fault (reset
//! without a duration, session termination, restart without a duration) begins just before
//! the action and ends once it returned. Every fault is undone when the timeline is
//! finished early (load stopped, Ctrl-C), so nothing stays paused or slowed.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::observe::FaultEvent;
use crate::scenario;
use crate::sink::{Channel, WebhookSink};
use poolproof_services::proxy::{Direction, TcpProxy};

/// A started service the timeline can act on (implemented for the services crate's handles).
pub trait ServiceControl: Send + Sync {
    fn pause(&self) -> BoxFuture<'_, Result<(), String>>;
    fn unpause(&self) -> BoxFuture<'_, Result<(), String>>;
    fn stop(&self) -> BoxFuture<'_, Result<(), String>>;
    fn start(&self) -> BoxFuture<'_, Result<(), String>>;
    fn restart(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Which service a service fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Redis => "redis",
        }
    }
}

/// What is done to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceOp {
    Pause,
    Stop,
    Restart,
}

/// One kind of fault, with its typed parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Each Postgres→app chunk is delayed by this much (every query takes at least it).
    DbLatency(Duration),
    /// Open app↔Postgres connections are reset; new ones are refused for the duration.
    DbReset,
    /// `pg_terminate_backend` on every session of the app's database.
    DbTerminateSessions,
    Service(Service, ServiceOp),
    /// The webhook sink answers this status on one channel (or both).
    NotifierFail(StatusCode, Option<Channel>),
    /// The webhook sink's listener for one channel (or both) is closed.
    NotifierDown(Option<Channel>),
}

impl FaultAction {
    /// The scenario's name for this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::DbLatency(_) => "db_latency",
            FaultAction::DbReset => "db_reset",
            FaultAction::DbTerminateSessions => "db_terminate_sessions",
            FaultAction::Service(Service::Postgres, ServiceOp::Pause) => "postgres_pause",
            FaultAction::Service(Service::Postgres, ServiceOp::Stop) => "postgres_stop",
            FaultAction::Service(Service::Postgres, ServiceOp::Restart) => "postgres_restart",
            FaultAction::Service(Service::Redis, ServiceOp::Pause) => "redis_pause",
            FaultAction::Service(Service::Redis, ServiceOp::Stop) => "redis_stop",
            FaultAction::Service(Service::Redis, ServiceOp::Restart) => "redis_restart",
            FaultAction::NotifierFail(..) => "notifier_fail",
            FaultAction::NotifierDown(_) => "notifier_down",
        }
    }

    fn target(&self) -> &'static str {
        match self {
            FaultAction::DbLatency(_)
            | FaultAction::DbReset
            | FaultAction::DbTerminateSessions
            | FaultAction::Service(Service::Postgres, _) => "postgres",
            FaultAction::Service(Service::Redis, _) => "redis",
            FaultAction::NotifierFail(_, Some(Channel::Slack))
            | FaultAction::NotifierDown(Some(Channel::Slack)) => "slack",
            FaultAction::NotifierFail(_, Some(Channel::Email))
            | FaultAction::NotifierDown(Some(Channel::Email)) => "email",
            FaultAction::NotifierFail(_, None) | FaultAction::NotifierDown(None) => "notifier",
        }
    }

    /// Whether the fault routes the app's database traffic through the proxy.
    pub fn needs_proxy(&self) -> bool {
        matches!(self, FaultAction::DbLatency(_) | FaultAction::DbReset)
    }
}

/// A fault as planned: its offset from the start of measured load, duration and action.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFault {
    pub at: Duration,
    /// `None`: a one-shot action (or, for lasting kinds, until the timeline is finished).
    /// For a restart it bounds how long the restart may take.
    pub duration: Option<Duration>,
    pub action: FaultAction,
}

impl From<&scenario::model::Fault> for PlannedFault {
    fn from(f: &scenario::model::Fault) -> Self {
        use scenario::model::FaultKind as K;
        let channel = f.target.map(|c| match c {
            scenario::model::Channel::Slack => Channel::Slack,
            scenario::model::Channel::Email => Channel::Email,
        });
        let action = match f.kind {
            // Validation guarantees a latency for db_latency; zero would be a no-op, not a panic.
            K::DbLatency => FaultAction::DbLatency(f.latency.map(|d| d.get()).unwrap_or_default()),
            K::DbReset => FaultAction::DbReset,
            K::DbTerminateSessions => FaultAction::DbTerminateSessions,
            K::PostgresPause => FaultAction::Service(Service::Postgres, ServiceOp::Pause),
            K::PostgresStop => FaultAction::Service(Service::Postgres, ServiceOp::Stop),
            K::PostgresRestart => FaultAction::Service(Service::Postgres, ServiceOp::Restart),
            K::RedisPause => FaultAction::Service(Service::Redis, ServiceOp::Pause),
            K::RedisStop => FaultAction::Service(Service::Redis, ServiceOp::Stop),
            K::RedisRestart => FaultAction::Service(Service::Redis, ServiceOp::Restart),
            K::NotifierFail => FaultAction::NotifierFail(
                StatusCode::from_u16(f.status_or_default())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                channel,
            ),
            K::NotifierDown => FaultAction::NotifierDown(channel),
        };
        PlannedFault {
            at: f.at.get(),
            duration: Some(f.duration.get()),
            action,
        }
    }
}

/// What the timeline can act on; only what the plan needs has to be present.
#[derive(Default, Clone)]
pub struct FaultTargets {
    pub proxy: Option<Arc<TcpProxy>>,
    pub sink: Option<Arc<WebhookSink>>,
    pub postgres: Option<Arc<dyn ServiceControl>>,
    pub redis: Option<Arc<dyn ServiceControl>>,
    /// A direct (not proxied) superuser URL for session termination; never printed.
    pub postgres_admin_url: Option<String>,
    /// The app's database, whose sessions `db_terminate_sessions` ends.
    pub database: Option<String>,
}

/// A plan that cannot run against the given targets.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimelineError {
    #[error("faults[{index}] ({kind}): needs {what}, which this run does not have")]
    MissingTarget {
        index: usize,
        kind: &'static str,
        what: &'static str,
    },
}

/// Checks that every fault has what it acts on, before load starts.
pub fn check(plan: &[PlannedFault], t: &FaultTargets) -> Result<(), TimelineError> {
    for (index, f) in plan.iter().enumerate() {
        let kind = f.action.kind();
        let missing = |what| TimelineError::MissingTarget { index, kind, what };
        match &f.action {
            FaultAction::DbLatency(_) | FaultAction::DbReset if t.proxy.is_none() => {
                return Err(missing("the Postgres proxy"))
            }
            FaultAction::DbTerminateSessions
                if t.postgres_admin_url.is_none() || t.database.is_none() =>
            {
                return Err(missing("a direct Postgres connection"))
            }
            FaultAction::Service(Service::Postgres, _) if t.postgres.is_none() => {
                return Err(missing("a controllable Postgres (not external)"))
            }
            FaultAction::Service(Service::Redis, _) if t.redis.is_none() => {
                return Err(missing("a controllable Redis (not external)"))
            }
            FaultAction::NotifierFail(..) | FaultAction::NotifierDown(_) if t.sink.is_none() => {
                return Err(missing("the webhook sink"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// How one planned fault went.
#[derive(Debug, Clone)]
pub struct FaultOutcome {
    /// Index in the plan.
    pub index: usize,
    /// The fault as it happened; `None` if it never began (finished early, or the action failed).
    pub event: Option<FaultEvent>,
    /// Extra fact, e.g. how many sessions were terminated.
    pub detail: Option<String>,
    /// The action or its undo failed (an infrastructure failure).
    pub error: Option<String>,
}

/// A running timeline.
pub struct Timeline {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<FaultOutcome>>,
}

impl Timeline {
    /// Schedules every fault relative to `load_start` (which may lie in the future).
    pub fn start(plan: Vec<PlannedFault>, targets: FaultTargets, load_start: Instant) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let targets = Arc::new(targets);
        let tasks = plan
            .into_iter()
            .enumerate()
            .map(|(index, f)| {
                tokio::spawn(run_fault(
                    index,
                    f,
                    targets.clone(),
                    load_start,
                    stop_rx.clone(),
                ))
            })
            .collect();
        Timeline { stop, tasks }
    }

    /// Waits for every fault to run its course.
    pub async fn wait(self) -> Vec<FaultOutcome> {
        let Timeline { stop, tasks } = self;
        let out = collect(tasks).await;
        drop(stop);
        out
    }

    /// Ends every active fault now (undoing it), skips those not yet begun, and reports.
    pub async fn finish(self) -> Vec<FaultOutcome> {
        let _ = self.stop.send(true);
        collect(self.tasks).await
    }
}

async fn collect(tasks: Vec<JoinHandle<FaultOutcome>>) -> Vec<FaultOutcome> {
    let mut out = Vec::with_capacity(tasks.len());
    for (index, t) in tasks.into_iter().enumerate() {
        out.push(t.await.unwrap_or_else(|e| FaultOutcome {
            index,
            event: None,
            detail: None,
            error: Some(format!("fault task failed: {e}")),
        }));
    }
    out
}

fn offset(load_start: Instant) -> f64 {
    let now = Instant::now();
    if now >= load_start {
        (now - load_start).as_secs_f64()
    } else {
        -(load_start - now).as_secs_f64()
    }
}

/// Resolves when `stop` becomes true (or its sender is gone without stopping: never).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sleeps `d` (or forever with `None`) unless stopped first.
async fn hold(duration: Option<Duration>, stop: &mut watch::Receiver<bool>) {
    match duration {
        Some(d) => tokio::select! {
            _ = tokio::time::sleep(d) => {},
            _ = stopped(stop) => {},
        },
        None => stopped(stop).await,
    }
}

async fn run_fault(
    index: usize,
    f: PlannedFault,
    t: Arc<FaultTargets>,
    load_start: Instant,
    mut stop: watch::Receiver<bool>,
) -> FaultOutcome {
    let mut out = FaultOutcome {
        index,
        event: None,
        detail: None,
        error: None,
    };
    tokio::select! {
        _ = tokio::time::sleep_until(load_start + f.at) => {},
        _ = stopped(&mut stop) => return out,
    }
    let mut event = FaultEvent {
        kind: f.action.kind().to_string(),
        target: Some(f.action.target().to_string()),
        planned_at: f.at.as_secs_f64(),
        start: offset(load_start),
        end: None,
    };
    let result = act(&f, &t, load_start, &mut stop, &mut event).await;
    match result {
        Ok(detail) => out.detail = detail,
        Err(e) => out.error = Some(format!("{}: {e}", f.action.kind())),
    }
    // A fault whose action failed before it took effect did not happen.
    if out.error.is_none() || event.end.is_some() {
        out.event = Some(event);
    }
    out
}

/// Applies the fault, holds it, undoes it; fills `event.start`/`event.end`.
async fn act(
    f: &PlannedFault,
    t: &FaultTargets,
    load_start: Instant,
    stop: &mut watch::Receiver<bool>,
    ev: &mut FaultEvent,
) -> Result<Option<String>, String> {
    let missing = || "its target is missing (check() was not run)".to_string();
    match &f.action {
        FaultAction::DbLatency(l) => {
            let p = t.proxy.as_ref().ok_or_else(missing)?;
            p.set_latency(Direction::ServerToClient, *l);
            ev.start = offset(load_start);
            hold(f.duration, stop).await;
            p.set_latency(Direction::ServerToClient, Duration::ZERO);
            ev.end = Some(offset(load_start));
            Ok(None)
        }
        FaultAction::DbReset => {
            let p = t.proxy.as_ref().ok_or_else(missing)?;
            let before = p.stats().reset;
            match f.duration {
                Some(d) => {
                    p.set_refusing(true);
                    p.reset_all();
                    ev.start = offset(load_start);
                    hold(Some(d), stop).await;
                    p.set_refusing(false);
                }
                None => p.reset_all(),
            }
            ev.end = Some(offset(load_start));
            // Resets happen asynchronously per connection; give them a moment to count.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Some(format!(
                "{} connections reset",
                p.stats().reset.saturating_sub(before)
            )))
        }
        FaultAction::DbTerminateSessions => {
            let url = t.postgres_admin_url.as_deref().ok_or_else(missing)?;
            let db = t.database.as_deref().ok_or_else(missing)?;
            // At `at`, then again every TERMINATE_EVERY while the fault lasts, so sessions
            // the app reopens are cut too.
            let until = f.duration.map(|d| Instant::now() + d);
            let mut total = terminate_sessions(url, db).await?;
            let mut rounds = 1;
            while let Some(until) = until {
                let next = Instant::now() + TERMINATE_EVERY;
                if next >= until {
                    hold(Some(until.saturating_duration_since(Instant::now())), stop).await;
                    break;
                }
                hold(Some(TERMINATE_EVERY), stop).await;
                if *stop.borrow() {
                    break;
                }
                total += terminate_sessions(url, db).await?;
                rounds += 1;
            }
            ev.end = Some(offset(load_start));
            Ok(Some(format!(
                "{total} sessions terminated in {rounds} rounds"
            )))
        }
        FaultAction::Service(svc, op) => {
            let s = match svc {
                Service::Postgres => t.postgres.as_ref(),
                Service::Redis => t.redis.as_ref(),
            }
            .ok_or_else(missing)?;
            match (op, f.duration) {
                (ServiceOp::Pause, d) => {
                    s.pause().await?;
                    ev.start = offset(load_start);
                    hold(d, stop).await;
                    s.unpause().await?;
                }
                (ServiceOp::Stop, d) => {
                    s.stop().await?;
                    ev.start = offset(load_start);
                    hold(d, stop).await;
                    s.start().await?;
                }
                // The fault spans the restart itself; `for` bounds how long it may take.
                (ServiceOp::Restart, d) => {
                    let bound = d.unwrap_or(Duration::from_secs(60));
                    tokio::time::timeout(bound, s.restart())
                        .await
                        .map_err(|_| format!("restart took longer than {bound:?}"))??;
                }
            }
            ev.end = Some(offset(load_start));
            Ok(None)
        }
        FaultAction::NotifierFail(status, channel) => {
            let sink = t.sink.as_ref().ok_or_else(missing)?;
            sink.fail(*status, *channel, None);
            ev.start = offset(load_start);
            hold(f.duration, stop).await;
            sink.recover();
            ev.end = Some(offset(load_start));
            Ok(None)
        }
        FaultAction::NotifierDown(channel) => {
            let sink = t.sink.as_ref().ok_or_else(missing)?;
            sink.down(*channel, None).await;
            ev.start = offset(load_start);
            hold(f.duration, stop).await;
            sink.up(*channel).await.map_err(|e| e.to_string())?;
            ev.end = Some(offset(load_start));
            Ok(None)
        }
    }
}

const TERMINATE_EVERY: Duration = Duration::from_millis(500);

/// Ends every other session of `database` through a direct connection; returns how many.
async fn terminate_sessions(admin_url: &str, database: &str) -> Result<i64, String> {
    use sqlx::Connection;
    // The URL carries a password: errors are reported without it.
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("cannot connect to Postgres directly: {}", redact_sqlx(&e)))?;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend') t",
    )
    .bind(database)
    .fetch_one(&mut conn)
    .await
    .map_err(|e| format!("pg_terminate_backend failed: {}", redact_sqlx(&e)))?;
    let _ = conn.close().await;
    Ok(n)
}

/// sqlx errors name hosts and databases but not passwords; keep only the message kind.
fn redact_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(_) => "TLS error".into(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        other => other.to_string(),
    }
}

//! Runs one goose attack for a [`LoadPlan`] (one at a time per process) and returns the
//! client series it measured.

use super::handle::LoadHandle;
use super::plan::{LoadPlan, TransactionPlan};
use super::recorder::Recorder;
use super::schedule::LATE_TOLERANCE;
use crate::observe::GeneratorLag;
use crate::observe::SlotFate;
use crate::observe::{ClientSeries, ErrorKind, Window};
use goose::config::GooseConfiguration;
use goose::goose::{GooseRequest, GooseUser, Scenario, Transaction, TransactionResult};
use goose::GooseAttack;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// goose keeps global state (killswitch, logger, Ctrl-C handler): one attack at a time.
static ATTACK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load plan: {0}")]
    InvalidPlan(String),
    #[error("load generator failed: {0}")]
    Goose(String),
    /// A generator shard of a sharded run failed (the message names it).
    #[error("{0}")]
    Shard(String),
}

/// What an attack measured.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub client: ClientSeries,
    /// Ramp and warm-up, `[-(ramp + warmup), 0)`.
    pub warmup: Window,
    /// Measured load, `[0, duration)`, shorter if the attack was stopped early.
    pub load: Window,
    /// Ctrl-C stopped the attack.
    pub interrupted: bool,
    /// Per target group (see [`Attack::grouped`]), in group order; empty for a single group
    /// (then `client` is that group's series).
    pub by_group: Vec<ClientSeries>,
    /// Every request completed, in or out of the measured window.
    pub completed_requests: u64,
    /// How late the generator itself started requests it had a free user for, over
    /// measured load (open model; closed model with a rate limit).
    pub generator: GeneratorLag,
}

/// A prepared attack: take its [`LoadHandle`] for progress and the fault timeline, then `run`.
pub struct Attack {
    plan: LoadPlan,
    rec: Arc<Recorder>,
    /// The series group of each target (index = target).
    groups: Vec<usize>,
}

impl Attack {
    /// One attack whose targets all record into one client series.
    pub fn new(plan: LoadPlan) -> Result<Attack, LoadError> {
        let groups = vec![0; plan.targets.len()];
        Attack::grouped(plan, groups)
    }

    /// One attack over all targets (users spread round-robin over them, in target order)
    /// whose requests are recorded into one client series per group: `groups[i]` is the group
    /// of target `i` (e.g. its arm when arms run concurrently). Groups are numbered 0..n.
    pub fn grouped(plan: LoadPlan, groups: Vec<usize>) -> Result<Attack, LoadError> {
        plan.validate().map_err(LoadError::InvalidPlan)?;
        if groups.len() != plan.targets.len() {
            return Err(LoadError::InvalidPlan(format!(
                "{} target groups for {} targets",
                groups.len(),
                plan.targets.len()
            )));
        }
        let n = groups.iter().max().map_or(1, |g| g + 1);
        if plan.open.is_some() && n > 1 {
            // One schedule feeds whichever user is free: a slower group would get fewer starts.
            return Err(LoadError::InvalidPlan(
                "the open model drives one target group (arms run one at a time)".into(),
            ));
        }
        if (0..n).any(|g| !groups.contains(&g)) {
            return Err(LoadError::InvalidPlan(
                "target groups must be numbered 0..n without gaps".into(),
            ));
        }
        let weights: Vec<usize> = plan.transactions.iter().map(|t| t.weight).collect();
        let rec = Arc::new(Recorder::new(
            plan.route_names(),
            &weights,
            plan.ramp,
            plan.warmup,
            plan.duration,
            plan.rate_limit,
            plan.open.as_ref(),
            plan.shard,
            plan.request_timeout,
            plan.bearer_token.clone(),
            n,
        ));
        Ok(Attack { plan, rec, groups })
    }

    /// Starts the attack's timeline (the start of its ramp) at `origin` rather than at its
    /// first request: generator shards share one origin, so their schedules interleave.
    pub fn start_at(&self, origin: Instant) {
        self.rec.set_origin(origin);
    }

    pub fn handle(&self) -> LoadHandle {
        LoadHandle {
            rec: self.rec.clone(),
        }
    }

    /// Runs the attack to the end of the measured window (or until stopped).
    pub async fn run(self) -> Result<LoadOutcome, LoadError> {
        let _guard = ATTACK_LOCK.lock().await;
        // Our handler first, so goose's (which exits on a second Ctrl-C) is never installed.
        let interrupts_before = crate::interrupt::count();
        if let Err(e) = crate::interrupt::install() {
            tracing::warn!("{e}");
        }
        super::install_log_bridge();
        let attack = self.build()?;
        let rec = self.rec.clone();
        let timer = tokio::spawn(stop_at_end_of_window(rec.clone()));
        let result = attack.execute().await;
        timer.abort();
        rec.finished.store(true, Ordering::SeqCst);
        let interrupted = crate::interrupt::count() > interrupts_before;
        if interrupted {
            // The handler triggered the killswitch; keep the measured window honest.
            let _ = rec.stop_at.set(Instant::now());
        }
        rec.drop_unclaimed();
        if let Err(e) = result {
            return Err(LoadError::Goose(e.to_string()));
        }
        let mut series = rec.take_series();
        let (client, by_group) = if series.len() == 1 {
            (series.pop().unwrap_or_default(), Vec::new())
        } else {
            let mut all = ClientSeries::new(self.plan.route_names());
            for s in &series {
                all.merge(s);
            }
            (all, series)
        };
        Ok(LoadOutcome {
            load: rec.load_window(),
            warmup: rec.warmup_window(),
            client,
            by_group,
            interrupted,
            completed_requests: rec.completed.load(Ordering::Relaxed),
            generator: rec.generator_lag(),
        })
    }

    fn configuration(&self) -> GooseConfiguration {
        let p = &self.plan;
        let mut c = GooseConfiguration::default();
        c.users = Some(p.users);
        // A rate rather than --increase-time: it allows one user and sub-second ramps. The
        // open model starts every user at once: its ramp is the arrival rate's.
        let rate = if p.ramp.is_zero() || p.open.is_some() {
            1_000_000.0
        } else {
            (p.users as f64 / p.ramp.as_secs_f64()).max(0.001)
        };
        c.increase_rate = Some(format!("{rate:.6}"));
        // goose counts run time from when all users have started, in whole seconds; the
        // window timer stops the attack at the exact end, this is only the backstop. The ramp
        // counts too: the open model starts every user at once, before its rate's ramp, and a
        // generator shard starts goose half a second before the timeline's origin; without it
        // the backstop ended shards' loads 0.2 s early (62 of 4,500 starts dropped).
        let secs = (p.ramp + p.warmup + p.duration).as_secs_f64().ceil() as u64 + 2;
        c.run_time = Some(secs.to_string());
        // The rate limit is ours (Recorder::pace), not goose's throttle: see Pacer.
        c.timeout = Some(format!("{:.3}", p.request_timeout.as_secs_f64()));
        // Silence and speed: no console metrics, no reports, no controllers, and no goose
        // metrics aggregation (we record our own histograms).
        c.quiet = 1;
        c.no_print_metrics = true;
        c.no_error_summary = true;
        c.no_metrics = true;
        c.no_telnet = true;
        c.no_gzip = true;
        c
    }

    fn build(&self) -> Result<GooseAttack, LoadError> {
        let goose_err = |e: goose::GooseError| LoadError::Goose(e.to_string());
        let mut attack =
            GooseAttack::initialize_with_config(self.configuration()).map_err(goose_err)?;
        for (i, target) in self.plan.targets.iter().enumerate() {
            let mut scenario = Scenario::new(&format!("instance{i}"))
                .set_host(target)
                .register_transaction(client_setup(self.plan.request_timeout));
            let group = self.groups.get(i).copied().unwrap_or(0);
            if self.plan.open.is_some() {
                // One transaction that takes the next scheduled start, whatever its route.
                scenario = scenario.register_transaction(
                    open_transaction(self.plan.transactions.clone(), self.rec.clone(), group)
                        .map_err(goose_err)?,
                );
                attack = attack.register_scenario(scenario);
                continue;
            }
            for tx in &self.plan.transactions {
                scenario = scenario.register_transaction(
                    goose_transaction(tx.clone(), self.rec.clone(), group).map_err(goose_err)?,
                );
            }
            attack = attack.register_scenario(scenario);
        }
        Ok(attack)
    }
}

/// How long a user keeps an idle connection to the app: below common server keep-alive
/// timeouts (pooled-app's `HTTP_IDLE_TIMEOUT_MS` 5 s, Node's 5 s), so the client drops an idle
/// connection before the server closes it. Otherwise a request can go out on a connection the
/// server is closing at that moment and fail as a transport error that is the generator's
/// doing (reqwest keeps idle connections 90 s by default).
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Runs once per user before its first request: its HTTP client, as goose's own but with
/// [`CLIENT_IDLE_TIMEOUT`].
fn client_setup(request_timeout: Duration) -> Transaction {
    let f: goose::goose::TransactionFunction = Arc::new(move |user: &mut GooseUser| {
        Box::pin(async move {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("poolproof/", env!("CARGO_PKG_VERSION")))
                .timeout(request_timeout)
                .pool_idle_timeout(CLIENT_IDLE_TIMEOUT);
            user.set_client_builder(builder).await.map_err(Box::new)?;
            Ok(())
        })
    });
    Transaction::new(f).set_name("client").set_on_start()
}

async fn stop_at_end_of_window(rec: Arc<Recorder>) {
    loop {
        if let Some(start) = rec.measure_start() {
            let end = start + rec.duration;
            tokio::time::sleep_until(end.into()).await;
            rec.stop(end, "poolproof: measured load complete");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn goose_transaction(
    tx: TransactionPlan,
    rec: Arc<Recorder>,
    group: usize,
) -> Result<Transaction, goose::GooseError> {
    let name = tx.name.clone();
    let weight = tx.weight;
    let tx = Arc::new(tx);
    let f: goose::goose::TransactionFunction = Arc::new(move |user: &mut GooseUser| {
        let tx = tx.clone();
        let rec = rec.clone();
        Box::pin(async move {
            rec.mark_origin();
            if rec.stopping.load(Ordering::Relaxed) {
                // goose is shutting users down; don't add load it would not measure.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Ok(());
            }
            let scheduled = rec.pace(group, &tx.name).await;
            one_request(user, &tx, &rec, group, scheduled).await
        })
    });
    Transaction::new(f).set_name(&name).set_weight(weight)
}

fn open_transaction(
    txs: Vec<TransactionPlan>,
    rec: Arc<Recorder>,
    group: usize,
) -> Result<Transaction, goose::GooseError> {
    let txs = Arc::new(txs);
    let f: goose::goose::TransactionFunction = Arc::new(move |user: &mut GooseUser| {
        let txs = txs.clone();
        let rec = rec.clone();
        Box::pin(async move { open_start(user, &txs, &rec, group).await })
    });
    Ok(Transaction::new(f).set_name("open"))
}

/// Open model: takes the next scheduled start no user has taken, drops the ones no user took
/// within the drop horizon (counted), waits for its time and sends it. A user that takes a
/// start already due is a start that found no free user: its latency counts from the
/// scheduled time.
async fn open_start(
    user: &mut GooseUser,
    txs: &[TransactionPlan],
    rec: &Recorder,
    group: usize,
) -> TransactionResult {
    rec.mark_origin();
    let Some(schedule) = rec.schedule.as_ref() else {
        return Ok(());
    };
    loop {
        if rec.stopping.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(());
        }
        let i = rec.next_slot.fetch_add(1, Ordering::SeqCst);
        let (Some(t), Some(route)) = (schedule.time(i), txs.get(schedule.route(i))) else {
            // The schedule is over: idle until the window timer stops the attack.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(());
        };
        let Some(at) = rec.instant_at(t) else {
            return Ok(());
        };
        let now = Instant::now();
        if now > at + rec.drop_after {
            rec.record_slot(group, &route.name, t, SlotFate::Dropped);
            continue;
        }
        let start = if now < at {
            tokio::time::sleep_until(at.into()).await;
            let woke = Instant::now();
            rec.note_lag(t, woke.saturating_duration_since(at));
            // A start the user was waiting for counts from when its timer fired, as oha's
            // `--latency-correction` does: the timer's own lateness is the generator's lag
            // (noted above, and over its limit the run is inconclusive), not the server's.
            woke
        } else {
            // No user was free at its time: the wait for one is queueing the server caused.
            at
        };
        let fate = if Instant::now() > at + LATE_TOLERANCE {
            SlotFate::Late
        } else {
            SlotFate::OnTime
        };
        rec.record_slot(group, &route.name, t, fate);
        return one_request(user, route, rec, group, Some(start)).await;
    }
}

/// Sends one request and records it. Uncorrected latency (service time) = goose's own timing
/// from the start of the request to the response headers (µs) plus the time to read the
/// body. Corrected latency adds how late the request was sent after `scheduled`, its
/// intended start, when it had one: queueing in the generator counts (wrk2, oha's
/// `--latency-correction`).
async fn one_request(
    user: &mut GooseUser,
    tx: &TransactionPlan,
    rec: &Recorder,
    group: usize,
    scheduled: Option<Instant>,
) -> TransactionResult {
    let (path, body) = {
        let mut rng = rand::thread_rng();
        (
            tx.path.expand(&mut rng),
            tx.body.as_ref().map(|b| b.expand(&mut rng)),
        )
    };
    let method = tx.method.goose();
    let mut builder = user.get_request_builder(&method, &path)?;
    if let Some(body) = body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    if let Some(token) = &rec.bearer_token {
        builder = builder.bearer_auth(token);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path.as_str())
        .name(tx.name.as_str())
        .expect_status_code(tx.expect_status)
        .set_request_builder(builder)
        .build();
    let queued = scheduled.map_or(Duration::ZERO, |s| {
        Instant::now().saturating_duration_since(s)
    });
    // Err only for a request that could not be built (goose throttle is off): nothing was sent.
    let response = user.request(request).await?;
    let to_headers = Duration::from_micros(response.request.response_time_micros());
    let (latency, error) = match response.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body_started = Instant::now();
            match resp.bytes().await {
                Ok(_) => {
                    let service = to_headers + body_started.elapsed();
                    let error = (status != tx.expect_status).then_some(ErrorKind::Status(status));
                    (Some((queued + service, service)), error)
                }
                Err(e) if e.is_timeout() => (None, Some(ErrorKind::Timeout)),
                Err(_) => (None, Some(ErrorKind::Transport)),
            }
        }
        Err(e) if e.is_timeout() => (None, Some(ErrorKind::Timeout)),
        Err(_) => (None, Some(ErrorKind::Transport)),
    };
    rec.record(group, &tx.name, Instant::now(), latency, error);
    Ok(())
}

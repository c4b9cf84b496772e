//! The alert loop: every `ALERT_EVAL_INTERVAL_MS` evaluates the rules against the collector's
//! fresh windows, reads the mutes in force (silences, alerts firing on other instances) when an
//! alert fires, claims each transition across instances, and hands notifications to the
//! dispatcher. It also keeps what `/alerts/active` shows and is the API's way to the silences.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use super::coord::{Claim, Coordinator, EpisodeFlag};
use super::dispatch::{DispatchStatus, Dispatcher, SuppressedBy};
use super::engine::{
    AlertDef, AlertState, Condition, Engine, Event, MetricSource, Mute, Mutes, Notice, Transition,
};
use super::message::Notification;
use super::rules::{Metric, Rule, RuleSet};
use super::silences::{Silence, SilenceStore, StoreError};
use crate::clock::{second_aligned_interval, unix_ms};
use crate::metrics::collector::{MetricsCollector, WindowStats};

/// The collector as a metric source, with each window computed once per evaluation.
pub struct CollectorSource<'a> {
    collector: &'a MetricsCollector,
    cache: Mutex<Vec<(u64, WindowStats)>>,
}

impl<'a> CollectorSource<'a> {
    pub fn new(collector: &'a MetricsCollector) -> Self {
        CollectorSource {
            collector,
            cache: Mutex::new(Vec::new()),
        }
    }
    fn stats(&self, secs: u64) -> WindowStats {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = c.iter().find(|(w, _)| *w == secs) {
            return *s;
        }
        let s = self.collector.window(secs);
        c.push((secs, s));
        s
    }
}

impl MetricSource for CollectorSource<'_> {
    fn value(&self, metric: Metric, window_secs: u64, min_requests: u64) -> Option<f64> {
        let s = self.stats(window_secs);
        match metric {
            Metric::RequestP95 | Metric::RequestP99 | Metric::ErrorRate
                if s.requests < min_requests.max(1) =>
            {
                None
            }
            Metric::RequestP95 => Some(s.latency.p95_ms),
            Metric::RequestP99 => Some(s.latency.p99_ms),
            Metric::ErrorRate => Some(s.error_rate_percent),
            Metric::DbQueryP95 => s.db_p95_ms,
            Metric::DbQueryMax => s.db_max_ms,
        }
    }
}

/// One row of `/alerts/active`.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveAlert {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub state: &'static str,
    /// `threshold` (value >= threshold) or `no_data` (no value for `threshold` seconds).
    pub condition: Condition,
    pub metric: &'static str,
    pub value: Option<f64>,
    pub threshold: f64,
    pub unit: &'static str,
    pub window_seconds: u64,
    pub since_ms: u64,
    /// Its firing notification did not go out (cooldown or a mute).
    pub notification_suppressed: bool,
    /// What mutes it now: `inhibited by <alert>` or `silenced by <silence id>`.
    pub muted_by: Option<String>,
    /// keep_firing_for is running: the condition has been false since then.
    pub clear_since_ms: Option<u64>,
}

/// A transition as remembered for the API.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionRecord {
    pub rule_id: String,
    pub transition: &'static str,
    pub at_ms: u64,
    pub value: Option<f64>,
    /// sent | skipped:<why> | suppressed | inhibited | silenced | disabled | queue_full
    pub outcome: String,
    /// Why it was held back, e.g. `inhibited by request_latency_critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A firing a mute had held back, sent when the mute ended.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertsView {
    pub alerts_enabled: bool,
    pub evaluation_interval_ms: u64,
    pub rules: usize,
    pub active: Vec<ActiveAlert>,
    pub firing: usize,
    pub pending: usize,
    /// Silences in force (as last read).
    pub silences: Vec<serde_json::Value>,
    pub recent_transitions: Vec<TransitionRecord>,
    pub notifications: DispatchStatus,
}

struct State {
    engine: Engine,
    recent: VecDeque<TransitionRecord>,
    /// Rules whose current firing this instance sent without Redis (coordination unreachable):
    /// no shared episode exists for them, so this instance owes the matching resolution itself.
    uncoordinated: HashMap<String, u64>,
    /// The silences last read from the store (kept while Redis does not answer).
    silences: Vec<Silence>,
}

/// Shared handle for the API and health monitor.
#[derive(Clone)]
pub struct Alerts {
    state: Arc<Mutex<State>>,
    dispatcher: Dispatcher,
    silences: SilenceStore,
    interval: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alerts {
    /// Starts the evaluation loop.
    pub fn start(
        rules: RuleSet,
        collector: MetricsCollector,
        coord: Option<Coordinator>,
        silences: SilenceStore,
        dispatcher: Dispatcher,
        interval: Duration,
    ) -> (Alerts, JoinHandle<()>) {
        let state = Arc::new(Mutex::new(State {
            engine: Engine::new(rules),
            recent: VecDeque::new(),
            uncoordinated: HashMap::new(),
            silences: Vec::new(),
        }));
        let a = Alerts {
            state,
            dispatcher,
            silences,
            interval,
        };
        let h = tokio::spawn(run(a.clone(), collector, coord));
        (a, h)
    }

    pub fn view(&self) -> AlertsView {
        let st = lock(&self.state);
        let mut active = Vec::new();
        let e = &st.engine;
        for (i, (def, s)) in e.alerts().iter().zip(e.status()).enumerate() {
            let r = e.rule_of(i);
            let (since, suppressed, clear) = match &s.state {
                AlertState::Pending { since_ms } => (*since_ms, false, None),
                AlertState::Firing {
                    since_ms,
                    notice,
                    clear_since_ms,
                } => (*since_ms, notice.suppressed(), *clear_since_ms),
                _ => continue,
            };
            let (threshold, unit) = match def.condition {
                Condition::Threshold => (r.threshold.0, r.metric.unit()),
                Condition::NoData => (r.no_data.map_or(0.0, |d| d.0.as_secs_f64()), "s"),
            };
            active.push(ActiveAlert {
                id: def.id.clone(),
                title: def.title(r),
                severity: r.severity.to_string(),
                state: s.state.name(),
                condition: def.condition,
                metric: r.metric.name(),
                value: s.value,
                threshold,
                unit,
                window_seconds: r.window_secs(),
                since_ms: since,
                notification_suppressed: suppressed,
                muted_by: s.muted.as_ref().map(Mute::reason),
                clear_since_ms: clear,
            });
        }
        // Firing first, most severe first.
        active.sort_by(|a, b| {
            (b.state == "firing", &b.severity).cmp(&(a.state == "firing", &a.severity))
        });
        let now = unix_ms();
        AlertsView {
            alerts_enabled: self.dispatcher.enabled(),
            evaluation_interval_ms: self.interval.as_millis() as u64,
            rules: e.rules().len(),
            firing: active.iter().filter(|a| a.state == "firing").count(),
            pending: active.iter().filter(|a| a.state == "pending").count(),
            active,
            silences: st
                .silences
                .iter()
                .filter(|s| s.active(now))
                .map(Silence::view)
                .collect(),
            recent_transitions: st.recent.iter().rev().cloned().collect(),
            notifications: self.dispatcher.status(),
        }
    }

    pub fn dispatch_status(&self) -> DispatchStatus {
        self.dispatcher.status()
    }

    /// Warning and critical thresholds of the request-latency and error-rate rules (health scoring).
    pub fn thresholds(&self, metric: Metric) -> Vec<(String, f64)> {
        let st = lock(&self.state);
        st.engine
            .rules()
            .iter()
            .filter(|r| r.metric == metric)
            .map(|r| (r.severity.to_string(), r.threshold.0))
            .collect()
    }

    /// Every alert id the rules raise (what a silence may name).
    pub fn alert_ids(&self) -> Vec<String> {
        let st = lock(&self.state);
        st.engine.alerts().iter().map(|d| d.id.clone()).collect()
    }

    /// Where silences are kept (`redis` or `memory`).
    pub fn silence_source(&self) -> &'static str {
        self.silences.source()
    }

    /// Stores a silence; this instance honours it from its next evaluation, the others once
    /// they read the store (their next evaluation).
    pub async fn add_silence(&self, s: Silence) -> Result<(), StoreError> {
        self.silences.add(&s, unix_ms()).await?;
        let mut st = lock(&self.state);
        st.silences.retain(|x| x.id != s.id);
        st.silences.push(s);
        Ok(())
    }

    /// [`Alerts::view`] with the silences read from the store first (kept as they were when it
    /// does not answer): evaluation reads them only while an alert fires, so a reader asks.
    pub async fn view_with_fresh_silences(&self) -> AlertsView {
        if let Ok(s) = self.silences.list(unix_ms()).await {
            lock(&self.state).silences = s;
        }
        self.view()
    }

    /// The silences in force, from the store.
    pub async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.silences.list(unix_ms()).await
    }

    /// Ends a silence now; `false` when there was none with that id.
    pub async fn remove_silence(&self, id: &str) -> Result<bool, StoreError> {
        let found = self.silences.remove(id).await?;
        lock(&self.state).silences.retain(|s| s.id != id);
        Ok(found)
    }
}

/// Reads what mutes notifications this evaluation: the silences (the last ones read when the
/// store does not answer) and the alerts with an episode open on any instance.
async fn read_mutes(
    a: &Alerts,
    coord: Option<&Coordinator>,
    ids: &[String],
    now: u64,
) -> (Vec<Silence>, HashSet<String>) {
    let firing = async {
        match coord {
            Some(c) => c.firing_anywhere(ids).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "alerts firing elsewhere unknown; local view only");
                HashSet::new()
            }),
            None => HashSet::new(),
        }
    };
    let (silences, firing) = tokio::join!(a.silences.list(now), firing);
    let mut st = lock(&a.state);
    match silences {
        Ok(s) => st.silences = s,
        Err(e) => {
            tracing::debug!(error = %e, "silences not read; keeping the last ones");
            st.silences.retain(|s| s.active(now));
        }
    }
    (st.silences.clone(), firing)
}

async fn run(a: Alerts, collector: MetricsCollector, coord: Option<Coordinator>) {
    // On the second boundaries, where the collector finishes its second: one wake-up for both.
    let mut tick = second_aligned_interval(a.interval, tokio::time::MissedTickBehavior::Delay);
    let ids = a.alert_ids();
    loop {
        tick.tick().await;
        // Paused monitoring (PUT /api/performance/monitoring) pauses evaluation with it: the
        // collector finishes no seconds then, and an unmonitored app evaluates nothing.
        if !collector.active() {
            continue;
        }
        let now = unix_ms();
        let steps = {
            let src = CollectorSource::new(&collector);
            lock(&a.state).engine.advance(now, &src)
        };
        // Mutes only matter to an alert firing now; most seconds none is, and their read is
        // two Redis round trips (issue 18: monitoring's own cost).
        let (silences, elsewhere) = if steps.need_mutes() {
            read_mutes(&a, coord.as_ref(), &ids, now).await
        } else {
            (Vec::new(), HashSet::new())
        };
        let (events, firing, defs, rules) = {
            let mut st = lock(&a.state);
            let mutes = Mutes {
                silences: &silences,
                firing_elsewhere: &elsewhere,
            };
            let ev = st.engine.settle(now, steps, mutes);
            let firing: Vec<String> = st
                .engine
                .alerts()
                .iter()
                .zip(st.engine.status())
                .filter(|(_, s)| s.state.is_firing())
                .map(|(d, _)| d.id.clone())
                .collect();
            (
                ev,
                firing,
                st.engine.alerts().to_vec(),
                st.engine.rules().to_vec(),
            )
        };
        if let Some(c) = &coord {
            if let Err(e) = c.heartbeat(&firing, now).await {
                tracing::debug!(error = %e, "alert heartbeat skipped");
            }
        }
        for ev in events {
            let def = &defs[ev.alert];
            let rule = &rules[def.rule];
            let (outcome, reason) = handle(&a, &collector, coord.as_ref(), rule, def, &ev).await;
            tracing::info!(alert = %ev.alert_id, transition = ev.transition.name(), late = ev.late, value = ev.value, outcome = %outcome, reason = reason.as_deref().unwrap_or(""), "alert transition");
            let mut st = lock(&a.state);
            st.recent.push_back(TransitionRecord {
                rule_id: ev.alert_id.clone(),
                transition: ev.transition.name(),
                at_ms: ev.at_ms,
                value: ev.value,
                outcome,
                reason,
                late: ev.late,
            });
            while st.recent.len() > 100 {
                st.recent.pop_front();
            }
        }
    }
}

/// The counter and outcome word of a held-back notification.
fn held_back(notice: &Notice) -> (SuppressedBy, &'static str) {
    match notice {
        Notice::Muted(Mute::Silenced(_)) => (SuppressedBy::Silence, "silenced"),
        Notice::Muted(_) => (SuppressedBy::Inhibition, "inhibited"),
        Notice::Cooldown | Notice::Send => (SuppressedBy::Cooldown, "suppressed"),
    }
}

fn reason_of(notice: &Notice) -> Option<String> {
    match notice {
        Notice::Send => None,
        Notice::Cooldown => Some("cooldown".into()),
        Notice::Muted(m) => Some(m.reason()),
    }
}

fn flag_of(notice: &Notice) -> EpisodeFlag {
    match notice {
        Notice::Send => EpisodeFlag::Sent,
        Notice::Cooldown => EpisodeFlag::Cooldown,
        Notice::Muted(_) => EpisodeFlag::Muted,
    }
}

/// Claims, and sends or holds back, one event; returns the outcome and why it was held back.
async fn handle(
    a: &Alerts,
    collector: &MetricsCollector,
    coord: Option<&Coordinator>,
    rule: &Rule,
    def: &AlertDef,
    ev: &Event,
) -> (String, Option<String>) {
    let skipped = |notice: &Notice| {
        let (by, word) = held_back(notice);
        a.dispatcher.note_suppressed(by);
        (format!("skipped:{word}"), reason_of(notice))
    };
    // A reminder a mute holds back never reaches coordination.
    if ev.transition == Transition::Reminder && ev.notice.suppressed() {
        return skipped(&ev.notice);
    }
    let claim = match (coord, ev.transition) {
        (Some(c), Transition::Firing) if ev.late => {
            c.release(&ev.alert_id, ev.at_ms, rule.cooldown.0).await
        }
        (Some(c), Transition::Firing) => {
            c.fire(&ev.alert_id, ev.at_ms, rule.cooldown.0, flag_of(&ev.notice))
                .await
        }
        (Some(c), Transition::Resolved) => c.resolve(&ev.alert_id, ev.at_ms).await,
        (Some(c), Transition::Reminder) => c.remind(&ev.alert_id, ev.seq).await,
        (None, _) if ev.notice.suppressed() => return skipped(&ev.notice),
        (None, _) => Ok(Claim::Send(ev.fired_ms)),
    };
    // A firing sent while Redis was away has no shared episode: its resolution (and reminders)
    // come from this instance, under the episode key its firing used, whatever Redis says now.
    let owed = match ev.transition {
        Transition::Firing => {
            lock(&a.state).uncoordinated.remove(&ev.alert_id);
            None
        }
        Transition::Resolved => lock(&a.state).uncoordinated.remove(&ev.alert_id),
        Transition::Reminder => lock(&a.state).uncoordinated.get(&ev.alert_id).copied(),
    };
    let claim = match (owed, claim) {
        (Some(start), Ok(Claim::Skip(_) | Claim::Joined(_)) | Err(_)) => Ok(Claim::Send(start)),
        (_, c) => c,
    };
    let episode = match claim {
        Ok(Claim::Send(start)) => start,
        Ok(Claim::Joined(flag)) => {
            // Another instance opened the episode: its decision on the firing is the one that
            // holds (this instance releases a muted one once no mute holds here).
            let shared = match flag {
                EpisodeFlag::Sent => Notice::Send,
                EpisodeFlag::Cooldown => Notice::Cooldown,
                EpisodeFlag::Muted => Notice::Muted(Mute::Elsewhere),
            };
            lock(&a.state).engine.adopt_shared_notice(ev.alert, shared);
            return ("skipped:joined".into(), None);
        }
        Ok(Claim::Skip(why @ ("suppressed" | "muted"))) => {
            // The episode's decision holds; when this instance had decided to send, the shared
            // cooldown or another instance's mute kept it back.
            let notice = match (ev.notice.suppressed(), why) {
                (true, _) => ev.notice.clone(),
                (false, "muted") => Notice::Muted(Mute::Elsewhere),
                (false, _) => Notice::Cooldown,
            };
            return skipped(&notice);
        }
        Ok(Claim::Skip(why)) => return (format!("skipped:{why}"), None),
        Err(e) => {
            // Redis unavailable: better a possible duplicate than a lost alert.
            tracing::warn!(error = %e, alert = %ev.alert_id, "alert coordination unavailable; sending from this instance");
            if ev.notice.suppressed() {
                let (by, word) = held_back(&ev.notice);
                a.dispatcher.note_suppressed(by);
                return (word.into(), reason_of(&ev.notice));
            }
            if ev.transition == Transition::Firing {
                lock(&a.state)
                    .uncoordinated
                    .insert(ev.alert_id.clone(), ev.fired_ms);
            }
            ev.fired_ms
        }
    };
    if !a.dispatcher.enabled() {
        return ("disabled".into(), None);
    }
    let key = match ev.transition {
        Transition::Reminder => format!("{}:reminder-{}:{}", ev.alert_id, ev.seq, episode),
        t => format!("{}:{}:{}", ev.alert_id, t.name(), episode),
    };
    let n = Notification::new(
        rule,
        def,
        ev.transition,
        ev.value,
        episode,
        ev.at_ms,
        collector.instance(),
        key,
    );
    if a.dispatcher.enqueue(n) {
        ("sent".into(), None)
    } else {
        ("queue_full".into(), None)
    }
}

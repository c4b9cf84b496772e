//! The alert loop: every `ALERT_EVAL_INTERVAL_MS` evaluates the rules against the collector's
//! fresh windows, claims each transition across instances, and hands notifications to the
//! dispatcher. It also keeps what `/alerts/active` shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use super::coord::{Claim, Coordinator};
use super::dispatch::{DispatchStatus, Dispatcher};
use super::engine::{AlertState, Engine, Event, MetricSource, Transition};
use super::message::Notification;
use super::rules::{Metric, Rule};
use crate::clock::unix_ms;
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
    pub metric: &'static str,
    pub value: Option<f64>,
    pub threshold: f64,
    pub unit: &'static str,
    pub window_seconds: u64,
    pub since_ms: u64,
    pub notification_suppressed: bool,
}

/// A transition as remembered for the API.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionRecord {
    pub rule_id: String,
    pub transition: &'static str,
    pub at_ms: u64,
    pub value: Option<f64>,
    /// sent | skipped:<why> | suppressed | disabled | queue_full
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertsView {
    pub alerts_enabled: bool,
    pub evaluation_interval_ms: u64,
    pub rules: usize,
    pub active: Vec<ActiveAlert>,
    pub firing: usize,
    pub pending: usize,
    pub recent_transitions: Vec<TransitionRecord>,
    pub notifications: DispatchStatus,
}

struct State {
    engine: Engine,
    recent: VecDeque<TransitionRecord>,
    /// Rules whose current firing this instance sent without Redis (coordination unreachable):
    /// no shared episode exists for them, so this instance owes the matching resolution itself.
    uncoordinated: std::collections::HashMap<String, u64>,
}

/// Shared handle for the API and health monitor.
#[derive(Clone)]
pub struct Alerts {
    state: Arc<Mutex<State>>,
    dispatcher: Dispatcher,
    interval: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alerts {
    /// Starts the evaluation loop.
    pub fn start(
        rules: Vec<Rule>,
        collector: MetricsCollector,
        coord: Option<Coordinator>,
        dispatcher: Dispatcher,
        interval: Duration,
    ) -> (Alerts, JoinHandle<()>) {
        let state = Arc::new(Mutex::new(State {
            engine: Engine::new(rules),
            recent: VecDeque::new(),
            uncoordinated: std::collections::HashMap::new(),
        }));
        let a = Alerts {
            state,
            dispatcher,
            interval,
        };
        let h = tokio::spawn(run(a.clone(), collector, coord));
        (a, h)
    }

    pub fn view(&self) -> AlertsView {
        let st = lock(&self.state);
        let mut active = Vec::new();
        for (r, s) in st.engine.rules().iter().zip(st.engine.status()) {
            let (since, suppressed) = match s.state {
                AlertState::Pending { since_ms } => (since_ms, false),
                AlertState::Firing {
                    since_ms,
                    suppressed,
                } => (since_ms, suppressed),
                _ => continue,
            };
            active.push(ActiveAlert {
                id: r.id.0.clone(),
                title: r.title(),
                severity: r.severity.to_string(),
                state: s.state.name(),
                metric: r.metric.name(),
                value: s.value,
                threshold: r.threshold.0,
                unit: r.metric.unit(),
                window_seconds: r.window_secs(),
                since_ms: since,
                notification_suppressed: suppressed,
            });
        }
        // Firing first, most severe first.
        active.sort_by(|a, b| {
            (b.state == "firing", &b.severity).cmp(&(a.state == "firing", &a.severity))
        });
        AlertsView {
            alerts_enabled: self.dispatcher.enabled(),
            evaluation_interval_ms: self.interval.as_millis() as u64,
            rules: st.engine.rules().len(),
            firing: active.iter().filter(|a| a.state == "firing").count(),
            pending: active.iter().filter(|a| a.state == "pending").count(),
            active,
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
}

async fn run(a: Alerts, collector: MetricsCollector, coord: Option<Coordinator>) {
    let mut tick = tokio::time::interval(a.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = unix_ms();
        let (events, firing, rules): (Vec<Event>, Vec<String>, Vec<Rule>) = {
            let src = CollectorSource::new(&collector);
            let mut st = lock(&a.state);
            let ev = st.engine.evaluate(now, &src);
            let firing = st
                .engine
                .rules()
                .iter()
                .zip(st.engine.status())
                .filter(|(_, s)| matches!(s.state, AlertState::Firing { .. }))
                .map(|(r, _)| r.id.0.clone())
                .collect();
            (ev, firing, st.engine.rules().to_vec())
        };
        if let Some(c) = &coord {
            if let Err(e) = c.heartbeat(&firing, now).await {
                tracing::debug!(error = %e, "alert heartbeat skipped");
            }
        }
        for ev in events {
            let rule = &rules[ev.rule];
            let outcome = handle(&a, &collector, coord.as_ref(), rule, &ev).await;
            tracing::info!(alert = %ev.rule_id, transition = ev.transition.name(), value = ev.value, outcome = %outcome, "alert transition");
            let mut st = lock(&a.state);
            st.recent.push_back(TransitionRecord {
                rule_id: ev.rule_id.clone(),
                transition: ev.transition.name(),
                at_ms: ev.at_ms,
                value: ev.value,
                outcome,
            });
            while st.recent.len() > 100 {
                st.recent.pop_front();
            }
        }
    }
}

async fn handle(
    a: &Alerts,
    collector: &MetricsCollector,
    coord: Option<&Coordinator>,
    rule: &Rule,
    ev: &Event,
) -> String {
    let claim = match (coord, ev.transition) {
        (Some(c), Transition::Firing) => {
            c.fire(&ev.rule_id, ev.at_ms, rule.cooldown.0, ev.suppressed)
                .await
        }
        (Some(c), Transition::Resolved) => c.resolve(&ev.rule_id, ev.at_ms).await,
        (Some(c), Transition::Reminder) => c.remind(&ev.rule_id, ev.seq).await,
        (None, _) => Ok(if ev.suppressed {
            Claim::Skip("suppressed")
        } else {
            Claim::Send(ev.fired_ms)
        }),
    };
    // A firing sent while Redis was away has no shared episode: its resolution (and reminders)
    // come from this instance, under the episode key its firing used, whatever Redis says now.
    let owed = match ev.transition {
        Transition::Firing => {
            lock(&a.state).uncoordinated.remove(&ev.rule_id);
            None
        }
        Transition::Resolved => lock(&a.state).uncoordinated.remove(&ev.rule_id),
        Transition::Reminder => lock(&a.state).uncoordinated.get(&ev.rule_id).copied(),
    };
    let claim = match (owed, claim) {
        (Some(start), Ok(Claim::Skip(_)) | Err(_)) => Ok(Claim::Send(start)),
        (_, c) => c,
    };
    let episode = match claim {
        Ok(Claim::Send(start)) => start,
        Ok(Claim::Skip(why)) => {
            if why == "suppressed" {
                a.dispatcher.note_suppressed();
            }
            return format!("skipped:{why}");
        }
        Err(e) => {
            // Redis unavailable: better a possible duplicate than a lost alert.
            tracing::warn!(error = %e, alert = %ev.rule_id, "alert coordination unavailable; sending from this instance");
            if ev.suppressed {
                a.dispatcher.note_suppressed();
                return "suppressed".into();
            }
            if ev.transition == Transition::Firing {
                lock(&a.state)
                    .uncoordinated
                    .insert(ev.rule_id.clone(), ev.fired_ms);
            }
            ev.fired_ms
        }
    };
    if !a.dispatcher.enabled() {
        return "disabled".into();
    }
    let key = match ev.transition {
        Transition::Reminder => format!("{}:reminder-{}:{}", ev.rule_id, ev.seq, episode),
        t => format!("{}:{}:{}", ev.rule_id, t.name(), episode),
    };
    let n = Notification::new(
        rule,
        ev.transition,
        ev.value,
        episode,
        ev.at_ms,
        collector.instance(),
        key,
    );
    if a.dispatcher.enqueue(n) {
        "sent".into()
    } else {
        "queue_full".into()
    }
}

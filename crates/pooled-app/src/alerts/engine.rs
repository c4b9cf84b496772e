//! The alert engine: a pure state machine per alert (inactive → pending → firing → resolved),
//! driven by an injected clock, a metric source and the mutes in force (firing alerts that
//! inhibit others, silences), deciding which notifications are due (firing, a firing held back
//! by a mute that has ended, resolution, reminders) and which the cooldown or a mute holds back.
//! Each rule is one alert; a rule with `no_data` adds a second, raised when its metric has had no
//! value for that long. No I/O, no sleeping.

use std::collections::HashSet;

use serde::Serialize;

use super::rules::{InhibitRule, Label, Metric, Rule, RuleSet};
use super::silences::Silence;

/// Where the engine reads a rule's value: `None` means no data (never a breach).
pub trait MetricSource {
    fn value(&self, metric: Metric, window_secs: u64, min_requests: u64) -> Option<f64>;
}

/// What, besides the metrics, decides whether a notification goes out.
#[derive(Debug, Clone, Copy)]
pub struct Mutes<'a> {
    /// Silences in force (expired ones are ignored).
    pub silences: &'a [Silence],
    /// Alerts firing on other instances (their shared episode exists): they inhibit here too.
    pub firing_elsewhere: &'a HashSet<String>,
}

/// Why a notification is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum Mute {
    /// A firing alert of an inhibit rule's source severity (its id).
    Inhibited(String),
    /// A silence (its id).
    Silenced(String),
    /// Another instance opened the episode muted; the reason is its own.
    Elsewhere,
}

impl Mute {
    pub fn reason(&self) -> String {
        match self {
            Mute::Inhibited(by) => format!("inhibited by {by}"),
            Mute::Silenced(id) => format!("silenced by {id}"),
            Mute::Elsewhere => "muted by another instance".into(),
        }
    }
}

/// What became of a notification the engine decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    Send,
    /// The cooldown keeps it back (a firing less than `cooldown` after the last one sent).
    Cooldown,
    Muted(Mute),
}

impl Notice {
    pub fn suppressed(&self) -> bool {
        *self != Notice::Send
    }
}

/// An alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    Inactive,
    /// Condition true since `since_ms`, waiting for `for`.
    Pending {
        since_ms: u64,
    },
    /// Fired at `since_ms`; `notice` says whether its firing notification went out.
    /// `clear_since_ms`: the condition has been false since then (keep_firing_for running).
    Firing {
        since_ms: u64,
        notice: Notice,
        clear_since_ms: Option<u64>,
    },
    /// Resolved at `at_ms` after firing since `fired_ms`.
    Resolved {
        at_ms: u64,
        fired_ms: u64,
    },
}

impl AlertState {
    pub fn name(&self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending { .. } => "pending",
            AlertState::Firing { .. } => "firing",
            AlertState::Resolved { .. } => "resolved",
        }
    }
    pub fn is_firing(&self) -> bool {
        matches!(self, AlertState::Firing { .. })
    }
}

/// Notification kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Firing,
    Resolved,
    /// Still firing: a reminder (exponential backoff from the cooldown).
    Reminder,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
            Transition::Reminder => "reminder",
        }
    }
}

/// What an alert watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The rule's `value >= threshold`.
    Threshold,
    /// The rule's metric has had no value for `no_data`.
    NoData,
}

/// One alert: a rule's threshold, or its no-data watch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDef {
    pub id: String,
    /// Index of its rule.
    pub rule: usize,
    pub condition: Condition,
}

impl AlertDef {
    /// The alerts of a rule set, in rule order (each rule, then its no-data alert).
    pub fn of(rules: &[Rule]) -> Vec<AlertDef> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            out.push(AlertDef {
                id: r.id.0.clone(),
                rule: i,
                condition: Condition::Threshold,
            });
            if r.no_data.is_some() {
                out.push(AlertDef {
                    id: r.no_data_id(),
                    rule: i,
                    condition: Condition::NoData,
                });
            }
        }
        out
    }

    /// The one-line title notifications carry.
    pub fn title(&self, rule: &Rule) -> String {
        match self.condition {
            Condition::Threshold => rule.title(),
            Condition::NoData => format!(
                "No data: {} has had no value for {} s (rule {})",
                rule.metric.name(),
                rule.no_data.map_or(0, |d| d.0.as_secs()),
                rule.id
            ),
        }
    }
}

/// A notification the engine wants sent (or reports as held back).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Index into [`Engine::alerts`].
    pub alert: usize,
    pub alert_id: String,
    pub transition: Transition,
    pub at_ms: u64,
    /// Start of the firing episode (part of the idempotency key).
    pub fired_ms: u64,
    pub value: Option<f64>,
    pub notice: Notice,
    /// A firing that a mute held back, due now that the mute has ended (same episode).
    pub late: bool,
    /// Reminder number (0 for firing/resolved).
    pub seq: u32,
}

/// Bookkeeping per alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    pub state: AlertState,
    pub value: Option<f64>,
    pub last_eval_ms: u64,
    /// Last firing notification actually sent (the cooldown's reference).
    pub last_notified_ms: Option<u64>,
    pub reminders: u32,
    pub next_reminder_ms: Option<u64>,
    /// Notifications held back (cooldown or mute).
    pub suppressed_total: u64,
    /// The mute in force at the last evaluation (firing alerts only).
    pub muted: Option<Mute>,
    /// Last evaluation with a value (no-data alerts count from it; from the first evaluation
    /// until a value is seen).
    #[serde(skip)]
    last_value_ms: Option<u64>,
}

/// Reminders back off exponentially up to this gap.
pub const MAX_REMINDER_GAP_MS: u64 = 24 * 3600 * 1000;

pub struct Engine {
    rules: Vec<Rule>,
    inhibit: Vec<InhibitRule>,
    alerts: Vec<AlertDef>,
    status: Vec<AlertStatus>,
}

/// What [`Engine::advance`] decided for every alert before mutes are known.
pub struct Steps {
    steps: Vec<Step>,
    /// Per alert: firing after this evaluation (already, or fired in it).
    firing_now: Vec<bool>,
}

impl Steps {
    /// Mutes (silences, alerts firing elsewhere) decide something only for an alert firing now:
    /// otherwise the evaluation needs no read of them (two Redis round trips a second saved).
    pub fn need_mutes(&self) -> bool {
        self.firing_now.iter().any(|f| *f)
    }
}

/// What one evaluation decided for one alert before mutes are known.
enum Step {
    None,
    Fired,
    Resolved { fired_ms: u64, notice: Notice },
    Firing,
}

impl Engine {
    pub fn new(set: RuleSet) -> Engine {
        let alerts = AlertDef::of(&set.rules);
        let status = alerts
            .iter()
            .map(|_| AlertStatus {
                state: AlertState::Inactive,
                value: None,
                last_eval_ms: 0,
                last_notified_ms: None,
                reminders: 0,
                next_reminder_ms: None,
                suppressed_total: 0,
                muted: None,
                last_value_ms: None,
            })
            .collect();
        Engine {
            rules: set.rules,
            inhibit: set.inhibit,
            alerts,
            status,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn alerts(&self) -> &[AlertDef] {
        &self.alerts
    }

    pub fn status(&self) -> &[AlertStatus] {
        &self.status
    }

    /// The rule an alert belongs to.
    pub fn rule_of(&self, alert: usize) -> &Rule {
        &self.rules[self.alerts[alert].rule]
    }

    /// Another instance's claim on this alert's episode (what coordination answered when this
    /// instance joined it): the shared episode's notice replaces the local one, so a firing that
    /// instance muted is released here once no mute holds here, and one already sent is not.
    pub fn adopt_shared_notice(&mut self, alert: usize, shared: Notice) {
        let Some(cooldown_ms) = self
            .alerts
            .get(alert)
            .map(|d| ms(self.rules[d.rule].cooldown.0))
        else {
            return;
        };
        let st = &mut self.status[alert];
        let AlertState::Firing {
            since_ms, notice, ..
        } = &mut st.state
        else {
            return;
        };
        // Same kind of decision (a local mute reason says more than "muted elsewhere").
        if std::mem::discriminant(notice) == std::mem::discriminant(&shared) {
            return;
        }
        st.next_reminder_ms = None;
        if shared == Notice::Send {
            // Sent elsewhere: reminders are claimed per episode, so this instance may send them.
            st.last_notified_ms = Some(*since_ms);
            st.next_reminder_ms = (cooldown_ms > 0).then(|| *since_ms + cooldown_ms);
        }
        *notice = shared;
    }

    /// Evaluates every alert at `now_ms`; returns the notifications due (held-back ones flagged).
    pub fn evaluate(
        &mut self,
        now_ms: u64,
        src: &dyn MetricSource,
        mutes: Mutes<'_>,
    ) -> Vec<Event> {
        let steps = self.advance(now_ms, src);
        self.settle(now_ms, steps, mutes)
    }

    /// [`Engine::evaluate`]'s first half: every alert's condition and state change at `now_ms`.
    /// Mutes are read only when [`Steps::need_mutes`] says so, then [`Engine::settle`] finishes.
    pub fn advance(&mut self, now_ms: u64, src: &dyn MetricSource) -> Steps {
        // 1. Conditions and state changes.
        let mut steps = Vec::with_capacity(self.alerts.len());
        for (i, def) in self.alerts.iter().enumerate() {
            let rule = &self.rules[def.rule];
            let st = &mut self.status[i];
            let value = src.value(rule.metric, rule.window_secs(), rule.min_requests);
            st.last_eval_ms = now_ms;
            if value.is_some() || st.last_value_ms.is_none() {
                st.last_value_ms = Some(now_ms);
            }
            let (breach, for_ms, keep_ms) = match def.condition {
                Condition::Threshold => {
                    st.value = value;
                    (
                        value.is_some_and(|v| v >= rule.threshold.0),
                        ms(rule.for_.0),
                        ms(rule.keep_firing_for.0),
                    )
                }
                Condition::NoData => {
                    st.value = None;
                    let quiet = now_ms.saturating_sub(st.last_value_ms.unwrap_or(now_ms));
                    let limit = rule.no_data.map_or(u64::MAX, |d| ms(d.0));
                    (value.is_none() && quiet >= limit, 0, 0)
                }
            };
            let step = match (&mut st.state, breach) {
                (AlertState::Inactive | AlertState::Resolved { .. }, true) => {
                    if for_ms == 0 {
                        Step::Fired
                    } else {
                        st.state = AlertState::Pending { since_ms: now_ms };
                        Step::None
                    }
                }
                (AlertState::Pending { since_ms }, true) => {
                    if now_ms.saturating_sub(*since_ms) >= for_ms {
                        Step::Fired
                    } else {
                        Step::None
                    }
                }
                (AlertState::Pending { .. }, false) => {
                    st.state = AlertState::Inactive;
                    Step::None
                }
                (AlertState::Firing { clear_since_ms, .. }, true) => {
                    *clear_since_ms = None;
                    Step::Firing
                }
                (
                    AlertState::Firing {
                        since_ms,
                        notice,
                        clear_since_ms,
                    },
                    false,
                ) => {
                    let clear = *clear_since_ms.get_or_insert(now_ms);
                    if now_ms.saturating_sub(clear) >= keep_ms {
                        let step = Step::Resolved {
                            fired_ms: *since_ms,
                            notice: notice.clone(),
                        };
                        st.state = AlertState::Resolved {
                            at_ms: now_ms,
                            fired_ms: *since_ms,
                        };
                        st.next_reminder_ms = None;
                        step
                    } else {
                        Step::Firing
                    }
                }
                (AlertState::Inactive | AlertState::Resolved { .. }, false) => Step::None,
            };
            steps.push(step);
        }
        let firing_now = self
            .status
            .iter()
            .zip(&steps)
            .map(|(s, step)| s.state.is_firing() || matches!(step, Step::Fired))
            .collect();
        Steps { steps, firing_now }
    }

    /// [`Engine::evaluate`]'s second half: the notifications due after [`Engine::advance`],
    /// given the mutes in force.
    pub fn settle(&mut self, now_ms: u64, steps: Steps, mutes: Mutes<'_>) -> Vec<Event> {
        let Steps { steps, firing_now } = steps;
        // 2. Mutes, once every alert's state is known (a critical firing in this very evaluation
        //    inhibits a warning firing with it).
        let muted: Vec<Option<Mute>> = (0..self.alerts.len())
            .map(|i| self.mute_of(i, now_ms, &firing_now, &mutes))
            .collect();

        // 3. Notifications.
        let mut out = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let def = &self.alerts[i];
            let rule = &self.rules[def.rule];
            let cooldown_ms = ms(rule.cooldown.0);
            let st = &mut self.status[i];
            let mute = muted[i].clone();
            st.muted = if firing_now[i] { mute.clone() } else { None };
            let value = st.value;
            let event = |transition, fired_ms, notice: Notice, late, seq| Event {
                alert: i,
                alert_id: def.id.clone(),
                transition,
                at_ms: now_ms,
                fired_ms,
                value,
                notice,
                late,
                seq,
            };
            match step {
                Step::None => {}
                Step::Fired => {
                    // Cooldown: a rule that fired and was notified less than `cooldown` ago
                    // fires silently (whatever mutes say: nothing is owed later).
                    let notice = if st
                        .last_notified_ms
                        .is_some_and(|t| now_ms.saturating_sub(t) < cooldown_ms)
                    {
                        Notice::Cooldown
                    } else if let Some(m) = mute {
                        Notice::Muted(m)
                    } else {
                        Notice::Send
                    };
                    st.reminders = 0;
                    st.next_reminder_ms = None;
                    if notice == Notice::Send {
                        st.last_notified_ms = Some(now_ms);
                        st.next_reminder_ms = (cooldown_ms > 0).then(|| now_ms + cooldown_ms);
                    } else {
                        st.suppressed_total += 1;
                    }
                    st.state = AlertState::Firing {
                        since_ms: now_ms,
                        notice: notice.clone(),
                        clear_since_ms: None,
                    };
                    out.push(event(Transition::Firing, now_ms, notice, false, 0));
                }
                Step::Resolved { fired_ms, notice } => {
                    // The resolution goes out when the firing did, whatever mutes say now: a
                    // receiver told "firing" must hear "resolved".
                    if notice.suppressed() {
                        st.suppressed_total += 1;
                    }
                    out.push(event(Transition::Resolved, fired_ms, notice, false, 0));
                }
                Step::Firing => {
                    let AlertState::Firing {
                        since_ms,
                        notice,
                        clear_since_ms,
                    } = &mut st.state
                    else {
                        continue;
                    };
                    let since_ms = *since_ms;
                    let in_grace = clear_since_ms.is_some();
                    match (notice.clone(), mute) {
                        // The mute that held the firing back has ended: send it now — unless
                        // the condition is already over and only keep_firing_for holds the
                        // alert (it would be a firing announcing something that has passed).
                        (Notice::Muted(_), None) if in_grace => {}
                        (Notice::Muted(_), None) => {
                            *notice = Notice::Send;
                            st.last_notified_ms = Some(now_ms);
                            st.reminders = 0;
                            st.next_reminder_ms = (cooldown_ms > 0).then(|| now_ms + cooldown_ms);
                            out.push(event(Transition::Firing, since_ms, Notice::Send, true, 0));
                        }
                        (Notice::Send, mute) => {
                            if st.next_reminder_ms.is_some_and(|d| now_ms >= d) {
                                st.reminders += 1;
                                let gap = cooldown_ms
                                    .saturating_mul(1 << st.reminders.min(20))
                                    .min(MAX_REMINDER_GAP_MS);
                                st.next_reminder_ms = Some(now_ms + gap.max(1));
                                let notice = match mute {
                                    Some(m) => {
                                        st.suppressed_total += 1;
                                        Notice::Muted(m)
                                    }
                                    None => Notice::Send,
                                };
                                out.push(event(
                                    Transition::Reminder,
                                    since_ms,
                                    notice,
                                    false,
                                    st.reminders,
                                ));
                            }
                        }
                        // Still muted (the reason may have changed), or cooldown-silent.
                        (Notice::Muted(_), Some(m)) => *notice = Notice::Muted(m),
                        (Notice::Cooldown, _) => {}
                    }
                }
            }
        }
        out
    }

    /// The mute holding alert `i` back at `now_ms`, if any: an inhibiting alert firing here or
    /// elsewhere, else a silence.
    fn mute_of(
        &self,
        i: usize,
        now_ms: u64,
        firing_now: &[bool],
        mutes: &Mutes<'_>,
    ) -> Option<Mute> {
        let target = &self.alerts[i];
        let t_rule = &self.rules[target.rule];
        for ir in &self.inhibit {
            if ir.target_severity != t_rule.severity {
                continue;
            }
            for (j, source) in self.alerts.iter().enumerate() {
                if j == i {
                    continue;
                }
                let s_rule = &self.rules[source.rule];
                if s_rule.severity != ir.source_severity
                    || !ir.equal.iter().all(|l| same(*l, s_rule, t_rule))
                {
                    continue;
                }
                if firing_now[j] || mutes.firing_elsewhere.contains(&source.id) {
                    return Some(Mute::Inhibited(source.id.clone()));
                }
            }
        }
        mutes
            .silences
            .iter()
            .find(|s| s.mutes(&target.id, now_ms))
            .map(|s| Mute::Silenced(s.id.clone()))
    }
}

fn same(label: Label, a: &Rule, b: &Rule) -> bool {
    match label {
        Label::Metric => a.metric == b.metric,
    }
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    //! Rule unit tests in the style of `promtool test rules`: an input series per metric (one
    //! sample per evaluation interval, `_` = no data, `AxN` = A repeated N times) and the expected
    //! alert state and notifications at given evaluation times.
    use super::*;
    use crate::alerts::rules::parse_rules;
    use std::collections::HashMap;

    struct Series {
        interval_ms: u64,
        now_ms: std::cell::Cell<u64>,
        values: HashMap<Metric, Vec<Option<f64>>>,
    }

    fn expand(s: &str) -> Vec<Option<f64>> {
        let mut out = Vec::new();
        for tok in s.split_whitespace() {
            let (v, n) = tok
                .split_once('x')
                .map_or((tok, 1), |(v, n)| (v, n.parse().unwrap()));
            let v = if v == "_" {
                None
            } else {
                Some(v.parse::<f64>().unwrap())
            };
            out.extend(std::iter::repeat_n(v, n));
        }
        out
    }

    /// A request-p95 series, one value a second from t = 0 (`expand`'s notation).
    fn p95_each_second(pattern: &str) -> Series {
        Series {
            interval_ms: 1000,
            now_ms: std::cell::Cell::new(0),
            values: [(Metric::RequestP95, expand(pattern))]
                .into_iter()
                .collect(),
        }
    }

    impl MetricSource for Series {
        fn value(&self, metric: Metric, _w: u64, _m: u64) -> Option<f64> {
            let i = (self.now_ms.get() / self.interval_ms) as usize;
            self.values
                .get(&metric)
                .and_then(|v| v.get(i).copied().flatten())
        }
    }

    /// Runs the engine over the series, evaluating every interval from t=0; returns the first
    /// alert's states and every event.
    fn run(
        rules: &str,
        series: &[(Metric, &str)],
        interval_ms: u64,
        until_ms: u64,
    ) -> (Vec<(u64, &'static str)>, Vec<Event>) {
        let (states, events) = run_with(rules, series, interval_ms, until_ms, &[], &[]);
        (states.into_iter().map(|(t, s)| (t, s[0])).collect(), events)
    }

    /// [`run`] with silences and alerts firing on other instances; states of every alert.
    fn run_with(
        rules: &str,
        series: &[(Metric, &str)],
        interval_ms: u64,
        until_ms: u64,
        silences: &[Silence],
        elsewhere: &[&str],
    ) -> (Vec<(u64, Vec<&'static str>)>, Vec<Event>) {
        let rules = parse_rules(rules, "test.yaml").unwrap();
        let mut e = Engine::new(rules);
        let src = Series {
            interval_ms,
            now_ms: std::cell::Cell::new(0),
            values: series.iter().map(|(m, s)| (*m, expand(s))).collect(),
        };
        let elsewhere: HashSet<String> = elsewhere.iter().map(|s| s.to_string()).collect();
        let mut states = Vec::new();
        let mut events = Vec::new();
        let mut t = 0;
        while t <= until_ms {
            src.now_ms.set(t);
            events.extend(e.evaluate(
                t,
                &src,
                Mutes {
                    silences,
                    firing_elsewhere: &elsewhere,
                },
            ));
            states.push((t, e.status().iter().map(|s| s.state.name()).collect()));
            t += interval_ms;
        }
        (states, events)
    }

    fn state_at(states: &[(u64, &'static str)], t: u64) -> &'static str {
        states.iter().find(|(x, _)| *x == t).unwrap().1
    }

    const P95_RULE: &str = "rules:\n  - id: lat\n    metric: request_p95\n    threshold: 1000\n    window: 10s\n    for: 3s\n    severity: warning\n    cooldown: 60s\n";

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        // 5 s normal, 10 s breach, then normal again.
        let (states, events) = run(
            P95_RULE,
            &[(Metric::RequestP95, "200x5 1500x10 300x10")],
            1000,
            24_000,
        );
        assert_eq!(state_at(&states, 4000), "inactive");
        assert_eq!(state_at(&states, 5000), "pending");
        assert_eq!(state_at(&states, 7000), "pending");
        assert_eq!(state_at(&states, 8000), "firing"); // breach at 5 s + for 3 s
        assert_eq!(state_at(&states, 14_000), "firing");
        assert_eq!(state_at(&states, 15_000), "resolved");
        assert_eq!(state_at(&states, 24_000), "resolved");
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.at_ms, e.transition, e.notice.suppressed()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (8000, Transition::Firing, false),
                (15_000, Transition::Resolved, false)
            ]
        );
        assert_eq!(events[1].fired_ms, 8000);
    }

    #[test]
    fn a_short_spike_never_fires_and_missing_data_is_no_breach() {
        let (states, events) = run(
            P95_RULE,
            &[(Metric::RequestP95, "200x2 5000x2 _x5 5000 200x3")],
            1000,
            12_000,
        );
        assert!(events.is_empty());
        assert_eq!(state_at(&states, 2000), "pending");
        assert_eq!(state_at(&states, 4000), "inactive");
        assert_eq!(state_at(&states, 9000), "pending");
        assert_eq!(state_at(&states, 10_000), "inactive");
    }

    #[test]
    fn threshold_is_inclusive() {
        let (_, events) = run(
            &P95_RULE.replace("for: 3s", "for: 0s"),
            &[(Metric::RequestP95, "999 1000")],
            1000,
            1000,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].at_ms, 1000);
    }

    #[test]
    fn cooldown_suppresses_a_refire_and_its_resolution() {
        // Fires at 3 s, resolves at 6 s, fires again at 10 s (within the 60 s cooldown: suppressed),
        // resolves at 13 s (suppressed too), fires again at 70 s (cooldown over: sent).
        let rules = P95_RULE.replace("for: 3s", "for: 0s");
        let (_, events) = run(
            &rules,
            &[(Metric::RequestP95, "0x3 2000x3 0x4 2000x3 0x57 2000x2 0")],
            1000,
            73_000,
        );
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.at_ms / 1000, e.transition.name(), e.notice.suppressed()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "firing", false),
                (6, "resolved", false),
                (10, "firing", true),
                (13, "resolved", true),
                (70, "firing", false),
                (72, "resolved", false),
            ]
        );
    }

    #[test]
    fn reminders_back_off_exponentially_while_firing() {
        // cooldown 10 s: reminders at +10 s, then +20 s, then +40 s after that.
        let rules = P95_RULE
            .replace("for: 3s", "for: 0s")
            .replace("cooldown: 60s", "cooldown: 10s");
        let (_, events) = run(&rules, &[(Metric::RequestP95, "5000x100")], 1000, 99_000);
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.at_ms / 1000, e.transition.name(), e.seq))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "firing", 0),
                (10, "reminder", 1),
                (30, "reminder", 2),
                (70, "reminder", 3)
            ]
        );
    }

    #[test]
    fn several_rules_each_follow_their_own_metric() {
        let rules = format!(
            "{P95_RULE}  - id: err\n    metric: error_rate\n    threshold: 5\n    window: 10s\n    for: 1s\n    severity: critical\n    cooldown: 5m\n"
        );
        let (_, events) = run(
            &rules,
            &[
                (Metric::RequestP95, "100x20"),
                (Metric::ErrorRate, "0x2 12x5 1x3"),
            ],
            1000,
            10_000,
        );
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.at_ms / 1000, e.alert_id.as_str(), e.transition.name()))
            .collect();
        assert_eq!(got, vec![(3, "err", "firing"), (7, "err", "resolved")]);
    }

    #[test]
    fn evaluation_interval_bounds_detection_delay() {
        // Breach starts at 2.5 s; evaluations every 500 ms; `for` 2 s → fires at 4.5 s, i.e. within
        // for + one interval of the breach start.
        let (_, events) = run(
            P95_RULE.replace("for: 3s", "for: 2s").as_str(),
            &[(Metric::RequestP95, "0x5 3000x20")],
            500,
            10_000,
        );
        assert_eq!(events[0].transition, Transition::Firing);
        assert!(events[0].at_ms <= 2500 + 2000 + 500, "{}", events[0].at_ms);
    }

    /// (second, alert, transition, what became of it) of each event.
    fn brief(events: &[Event]) -> Vec<(u64, String, &'static str, String)> {
        events
            .iter()
            .map(|e| {
                let what = match &e.notice {
                    Notice::Send if e.late => "sent late".to_string(),
                    Notice::Send => "sent".to_string(),
                    Notice::Cooldown => "cooldown".to_string(),
                    Notice::Muted(m) => m.reason(),
                };
                (
                    e.at_ms / 1000,
                    e.alert_id.clone(),
                    e.transition.name(),
                    what,
                )
            })
            .collect()
    }

    fn b(t: u64, id: &str, tr: &'static str, what: &str) -> (u64, String, &'static str, String) {
        (t, id.to_string(), tr, what.to_string())
    }

    /// A critical and a warning rule on request p95 (the report's pair, `for` 1 s).
    const PAIR: &str = "rules:\n  - id: crit\n    metric: request_p95\n    threshold: 2000\n    window: 5s\n    for: 1s\n    severity: critical\n    cooldown: 10m\n  - id: warn\n    metric: request_p95\n    threshold: 1000\n    window: 5s\n    for: 1s\n    severity: warning\n    cooldown: 10m\n";

    #[test]
    fn a_firing_critical_inhibits_the_warning_on_the_same_metric() {
        // 2500 ms from 2 s to 8 s: both fire at 3 s, the warning muted; then 1500 ms (only the
        // warning's condition) from 8 s: the critical resolves at 8 s and the warning, still
        // firing, goes out at 8 s after it; it resolves at 11 s.
        let (_, events) = run_with(
            PAIR,
            &[(Metric::RequestP95, "100x2 2500x6 1500x3 100x3")],
            1000,
            13_000,
            &[],
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(3, "crit", "firing", "sent"),
                b(3, "warn", "firing", "inhibited by crit"),
                b(8, "crit", "resolved", "sent"),
                b(8, "warn", "firing", "sent late"),
                b(11, "warn", "resolved", "sent"),
            ]
        );
        // The late firing keeps its episode's start (idempotency key).
        assert_eq!(events[3].fired_ms, 3000);
    }

    #[test]
    fn a_muted_alert_kept_firing_after_its_condition_is_not_sent_when_the_mute_ends() {
        // The warning keeps firing 3 s after its condition; the critical resolves at once when
        // both conditions end at 4 s: the warning is not released in its grace period.
        let rules = PAIR.replace(
            "severity: warning\n    cooldown: 10m\n",
            "severity: warning\n    cooldown: 10m\n    keep_firing_for: 3s\n",
        );
        let (_, events) = run_with(
            &rules,
            &[(Metric::RequestP95, "100 2500x3 100x5")],
            1000,
            8_000,
            &[],
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(2, "crit", "firing", "sent"),
                b(2, "warn", "firing", "inhibited by crit"),
                b(4, "crit", "resolved", "sent"),
                b(7, "warn", "resolved", "inhibited by crit"),
            ]
        );
    }

    #[test]
    fn an_inhibited_warning_that_resolves_first_sends_nothing() {
        let (_, events) = run_with(
            PAIR,
            &[(Metric::RequestP95, "100x2 2500x4 100x4")],
            1000,
            9_000,
            &[],
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(3, "crit", "firing", "sent"),
                b(3, "warn", "firing", "inhibited by crit"),
                b(6, "crit", "resolved", "sent"),
                b(6, "warn", "resolved", "inhibited by crit"),
            ]
        );
    }

    #[test]
    fn inhibition_follows_the_inhibit_rules() {
        // No inhibition at all: both are sent.
        let none = format!("{PAIR}inhibit_rules: []\n");
        let (_, events) = run_with(
            &none,
            &[(Metric::RequestP95, "2500x3")],
            1000,
            2000,
            &[],
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(1, "crit", "firing", "sent"),
                b(1, "warn", "firing", "sent")
            ]
        );
        // `equal: [metric]`: a critical on another metric does not inhibit.
        let other = PAIR.replacen("metric: request_p95", "metric: db_query_max", 1);
        let (_, events) = run_with(
            &other,
            &[
                (Metric::RequestP95, "2500x3"),
                (Metric::DbQueryMax, "2500x3"),
            ],
            1000,
            2000,
            &[],
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(1, "crit", "firing", "sent"),
                b(1, "warn", "firing", "sent")
            ]
        );
        // Without `equal`, any critical inhibits any warning.
        let any = format!(
            "{other}inhibit_rules:\n  - source_severity: critical\n    target_severity: warning\n"
        );
        let (_, events) = run_with(
            &any,
            &[
                (Metric::RequestP95, "2500x3"),
                (Metric::DbQueryMax, "2500x3"),
            ],
            1000,
            2000,
            &[],
            &[],
        );
        assert_eq!(
            events[1].notice,
            Notice::Muted(Mute::Inhibited("crit".into()))
        );
    }

    #[test]
    fn a_critical_firing_on_another_instance_inhibits_here() {
        let (_, events) = run_with(
            PAIR,
            &[(Metric::RequestP95, "1500x4 100")],
            1000,
            4000,
            &[],
            &["crit"],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(1, "warn", "firing", "inhibited by crit"),
                b(4, "warn", "resolved", "inhibited by crit"),
            ]
        );
    }

    fn silence(id: &str, alert: Option<&str>, ends_at_ms: u64) -> Silence {
        Silence {
            id: id.into(),
            alert: alert.map(str::to_owned),
            ends_at_ms,
            created_at_ms: 0,
            comment: String::new(),
        }
    }

    #[test]
    fn a_silence_holds_the_firing_back_until_it_ends() {
        // The critical breaches from 1 s; silenced until 5 s: its firing goes out at 5 s. The
        // warning stays inhibited by the (silenced, still firing) critical throughout.
        let s = [silence("s1", Some("crit"), 5000)];
        let (_, events) = run_with(
            PAIR,
            &[(Metric::RequestP95, "100 2500x8 100")],
            1000,
            9_000,
            &s,
            &[],
        );
        assert_eq!(
            brief(&events),
            vec![
                b(2, "crit", "firing", "silenced by s1"),
                b(2, "warn", "firing", "inhibited by crit"),
                b(5, "crit", "firing", "sent late"),
                b(9, "crit", "resolved", "sent"),
                b(9, "warn", "resolved", "inhibited by crit"),
            ]
        );
        // A silence of every alert, ending after the breach: nothing at all is sent.
        let all = [silence("s2", None, 60_000)];
        let (_, events) = run_with(
            PAIR,
            &[(Metric::RequestP95, "100 2500x3 100")],
            1000,
            6_000,
            &all,
            &[],
        );
        assert!(events.iter().all(|e| e.notice.suppressed()), "{events:?}");
        assert_eq!(events.len(), 4);
    }

    #[test]
    fn reminders_are_held_back_while_muted() {
        // Fires at 0 s under a silence that ends at 25 s: released then; the reminder follows a
        // cooldown (10 s) after the release.
        let rules = P95_RULE
            .replace("for: 3s", "for: 0s")
            .replace("cooldown: 60s", "cooldown: 10s");
        let (_, events) = run_with(
            &rules,
            &[(Metric::RequestP95, "5000x40")],
            1000,
            35_000,
            &[silence("s", Some("lat"), 25_000)],
            &[],
        );
        let got: Vec<_> = brief(&events)
            .into_iter()
            .map(|(t, _, tr, w)| (t, tr, w))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "firing", "silenced by s".to_string()),
                (25, "firing", "sent late".to_string()),
                (35, "reminder", "sent".to_string()),
            ]
        );
    }

    #[test]
    fn keep_firing_for_rides_out_a_flap() {
        // Breach 0-3 s, a 2 s dip, breach again 5-7 s, then normal: with keep_firing_for 3s the
        // dip does not resolve; the resolution comes 3 s after the last breach.
        let rules = P95_RULE
            .replace("for: 3s", "for: 0s")
            .replace("cooldown: 60s", "cooldown: 60s\n    keep_firing_for: 3s");
        let (states, events) = run(
            &rules,
            &[(Metric::RequestP95, "5000x3 100x2 5000x2 100x6")],
            1000,
            12_000,
        );
        assert_eq!(state_at(&states, 4000), "firing");
        assert_eq!(state_at(&states, 9000), "firing");
        assert_eq!(state_at(&states, 10_000), "resolved");
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.at_ms / 1000, e.transition))
            .collect();
        assert_eq!(
            got,
            vec![(0, Transition::Firing), (10, Transition::Resolved)]
        );
        // Without it the dip resolves and the relapse is a second (cooldown-held) firing.
        let (_, events) = run(
            &rules.replace("\n    keep_firing_for: 3s", ""),
            &[(Metric::RequestP95, "5000x3 100x2 5000x2 100x6")],
            1000,
            12_000,
        );
        assert_eq!(events.len(), 4);
    }

    #[test]
    fn no_data_for_long_enough_raises_its_own_alert() {
        let rules = P95_RULE.replace("cooldown: 60s", "cooldown: 60s\n    no_data: 4s");
        // Values for 3 s, then none for 6 s, then values again.
        let (states, events) = run_with(
            &rules,
            &[(Metric::RequestP95, "100x3 _x6 100x2")],
            1000,
            10_000,
            &[],
            &[],
        );
        assert_eq!(states[5].1, vec!["inactive", "inactive"]);
        assert_eq!(states[6].1, vec!["inactive", "firing"]);
        assert_eq!(
            brief(&events),
            vec![
                b(6, "lat_no_data", "firing", "sent"),
                b(9, "lat_no_data", "resolved", "sent"),
            ]
        );
        // From start-up: no value ever counts from the first evaluation.
        let (_, events) = run(&rules, &[(Metric::RequestP95, "_x6")], 1000, 5000);
        assert_eq!(brief(&events), vec![b(4, "lat_no_data", "firing", "sent")]);
    }

    #[test]
    fn mutes_are_asked_for_only_while_an_alert_fires() {
        let mut e = Engine::new(parse_rules(PAIR, "t").unwrap());
        // Under the thresholds for 2 s, over them for 2 s, then under again until resolved.
        let src = p95_each_second("10x2 1500x2 10x8");
        let none = HashSet::new();
        let mutes = Mutes {
            silences: &[],
            firing_elsewhere: &none,
        };
        let mut asked = Vec::new();
        for t in 1..=12u64 {
            src.now_ms.set(t * 1000);
            let steps = e.advance(t * 1000, &src);
            let firing = e.status().iter().any(|s| s.state.is_firing());
            asked.push(steps.need_mutes());
            let events = e.settle(t * 1000, steps, mutes);
            // Asked exactly when an alert fires after this evaluation (fired in it or before).
            let firing_now = firing || events.iter().any(|ev| ev.transition == Transition::Firing);
            assert_eq!(asked[t as usize - 1], firing_now, "at {t} s: {asked:?}");
        }
        assert!(
            !asked[0] && asked.iter().any(|a| *a) && !asked[11],
            "{asked:?}"
        );
    }

    #[test]
    fn a_shared_episode_muted_elsewhere_is_released_here() {
        let rules = parse_rules(PAIR, "t").unwrap();
        let mut e = Engine::new(rules);
        let src = p95_each_second("1500x5");
        let none = HashSet::new();
        let mutes = Mutes {
            silences: &[],
            firing_elsewhere: &none,
        };
        let ev = e.evaluate(1000, &src, mutes);
        let ev2 = e.evaluate(2000, &src, mutes);
        let fired: Vec<_> = ev.iter().chain(&ev2).collect();
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].notice, Notice::Send);
        // Coordination says another instance opened the episode muted: this one adopts that and
        // releases it at its next evaluation, as no mute holds here.
        let warn = fired[0].alert;
        e.adopt_shared_notice(warn, Notice::Muted(Mute::Elsewhere));
        let ev3 = e.evaluate(3000, &src, mutes);
        assert_eq!(brief(&ev3), vec![b(3, "warn", "firing", "sent late")]);
    }
}

//! The alert engine: a pure state machine per rule (inactive → pending → firing → resolved),
//! driven by an injected clock and a metric source, deciding which notifications are due
//! (firing, resolution, reminders) and which the cooldown suppresses. No I/O, no sleeping.

use serde::Serialize;

use super::rules::{Metric, Rule};

/// Where the engine reads a rule's value: `None` means no data (never a breach).
pub trait MetricSource {
    fn value(&self, metric: Metric, window_secs: u64, min_requests: u64) -> Option<f64>;
}

/// A rule's state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertState {
    Inactive,
    /// Condition true since `since_ms`, waiting for `for`.
    Pending {
        since_ms: u64,
    },
    /// Fired at `since_ms`; `suppressed` when the cooldown kept its notification back.
    Firing {
        since_ms: u64,
        suppressed: bool,
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

/// A notification the engine wants sent (or reports as suppressed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub rule: usize,
    pub rule_id: String,
    pub transition: Transition,
    pub at_ms: u64,
    /// Start of the firing episode (part of the idempotency key).
    pub fired_ms: u64,
    pub value: Option<f64>,
    pub suppressed: bool,
    /// Reminder number (0 for firing/resolved).
    pub seq: u32,
}

/// Bookkeeping per rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    pub state: AlertState,
    pub value: Option<f64>,
    pub last_eval_ms: u64,
    /// Last firing notification actually sent (the cooldown's reference).
    pub last_notified_ms: Option<u64>,
    pub reminders: u32,
    pub next_reminder_ms: Option<u64>,
    pub suppressed_total: u64,
}

/// Reminders back off exponentially up to this gap.
pub const MAX_REMINDER_GAP_MS: u64 = 24 * 3600 * 1000;

pub struct Engine {
    rules: Vec<Rule>,
    status: Vec<RuleStatus>,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        let status = rules
            .iter()
            .map(|_| RuleStatus {
                state: AlertState::Inactive,
                value: None,
                last_eval_ms: 0,
                last_notified_ms: None,
                reminders: 0,
                next_reminder_ms: None,
                suppressed_total: 0,
            })
            .collect();
        Engine { rules, status }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn status(&self) -> &[RuleStatus] {
        &self.status
    }

    /// Evaluates every rule at `now_ms`; returns the notifications due (suppressed ones flagged).
    pub fn evaluate(&mut self, now_ms: u64, src: &dyn MetricSource) -> Vec<Event> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let st = &mut self.status[i];
            let value = src.value(rule.metric, rule.window_secs(), rule.min_requests);
            let breach = value.is_some_and(|v| v >= rule.threshold.0);
            st.value = value;
            st.last_eval_ms = now_ms;
            let for_ms = rule.for_.0.as_millis() as u64;
            let cooldown_ms = rule.cooldown.0.as_millis() as u64;
            let event = |transition, fired_ms, suppressed, seq| Event {
                rule: i,
                rule_id: rule.id.0.clone(),
                transition,
                at_ms: now_ms,
                fired_ms,
                value,
                suppressed,
                seq,
            };
            match (st.state, breach) {
                (AlertState::Inactive | AlertState::Resolved { .. }, true) => {
                    if for_ms == 0 {
                        out.push(fire(st, now_ms, cooldown_ms, &event));
                    } else {
                        st.state = AlertState::Pending { since_ms: now_ms };
                    }
                }
                (AlertState::Pending { since_ms }, true) => {
                    if now_ms.saturating_sub(since_ms) >= for_ms {
                        out.push(fire(st, now_ms, cooldown_ms, &event));
                    }
                }
                (AlertState::Pending { .. }, false) => st.state = AlertState::Inactive,
                (
                    AlertState::Firing {
                        since_ms,
                        suppressed,
                    },
                    true,
                ) => {
                    if let Some(due) = st.next_reminder_ms {
                        if now_ms >= due && !suppressed {
                            st.reminders += 1;
                            let gap = cooldown_ms
                                .saturating_mul(1 << st.reminders.min(20))
                                .min(MAX_REMINDER_GAP_MS);
                            st.next_reminder_ms = Some(now_ms + gap.max(1));
                            out.push(event(Transition::Reminder, since_ms, false, st.reminders));
                        }
                    }
                }
                (
                    AlertState::Firing {
                        since_ms,
                        suppressed,
                    },
                    false,
                ) => {
                    st.state = AlertState::Resolved {
                        at_ms: now_ms,
                        fired_ms: since_ms,
                    };
                    st.next_reminder_ms = None;
                    if suppressed {
                        st.suppressed_total += 1;
                    }
                    out.push(event(Transition::Resolved, since_ms, suppressed, 0));
                }
                (AlertState::Inactive | AlertState::Resolved { .. }, false) => {}
            }
        }
        out
    }
}

fn fire(
    st: &mut RuleStatus,
    now_ms: u64,
    cooldown_ms: u64,
    event: &dyn Fn(Transition, u64, bool, u32) -> Event,
) -> Event {
    // Cooldown: a rule that fired and was notified less than `cooldown` ago fires silently.
    let suppressed = st
        .last_notified_ms
        .is_some_and(|t| now_ms.saturating_sub(t) < cooldown_ms);
    st.state = AlertState::Firing {
        since_ms: now_ms,
        suppressed,
    };
    st.reminders = 0;
    if suppressed {
        st.suppressed_total += 1;
        st.next_reminder_ms = None;
    } else {
        st.last_notified_ms = Some(now_ms);
        st.next_reminder_ms = (cooldown_ms > 0).then(|| now_ms + cooldown_ms);
    }
    event(Transition::Firing, now_ms, suppressed, 0)
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

    impl MetricSource for Series {
        fn value(&self, metric: Metric, _w: u64, _m: u64) -> Option<f64> {
            let i = (self.now_ms.get() / self.interval_ms) as usize;
            self.values
                .get(&metric)
                .and_then(|v| v.get(i).copied().flatten())
        }
    }

    /// Runs the engine over the series, evaluating every interval from t=0; returns states and
    /// events per evaluation time.
    fn run(
        rules: &str,
        series: &[(Metric, &str)],
        interval_ms: u64,
        until_ms: u64,
    ) -> (Vec<(u64, &'static str)>, Vec<Event>) {
        let rules = parse_rules(rules, "test.yaml").unwrap();
        let mut e = Engine::new(rules);
        let src = Series {
            interval_ms,
            now_ms: std::cell::Cell::new(0),
            values: series.iter().map(|(m, s)| (*m, expand(s))).collect(),
        };
        let mut states = Vec::new();
        let mut events = Vec::new();
        let mut t = 0;
        while t <= until_ms {
            src.now_ms.set(t);
            events.extend(e.evaluate(t, &src));
            states.push((t, e.status()[0].state.name()));
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
            .map(|e| (e.at_ms, e.transition, e.suppressed))
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
            .map(|e| (e.at_ms / 1000, e.transition.name(), e.suppressed))
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
            .map(|e| (e.at_ms / 1000, e.rule_id.as_str(), e.transition.name()))
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
}

//! `crossover:` — the arms of a concurrent run as states of the same processes.
//!
//! Two processes that differ in nothing differ in CPU per request by 1-3 % for as long as they
//! live (docs/benchmarks.md, "the noise floor"), so arms that are separate processes carry that
//! offset into every comparison. Here every arm's apps start alike (monitoring built), and each
//! app group takes every arm's state in turn, one period at a time (forward and backward
//! through the arms in alternate cycles, see [`Schedule`]), switched at run time through
//! pooled-app's `PUT /api/performance/monitoring`. Each group spends as long in each
//! arm's state, so a process's own offset lands in every arm alike and cancels in their ratio;
//! in every second each arm is still held by exactly one group, so the arms stay paired second
//! by second as in any concurrent run.
//!
//! After the load, [`regroup`] turns each group's per-second observations into each arm's:
//! a second belongs to the arm whose state its group was in. Every period's first second (the
//! one a switch happens in) and any second a switch was still under way in belong to no arm.

use std::time::{Duration, Instant};

use crate::observe::{AppCpuSample, ClientSeries, Observations, Window};

/// How long one switch request may take before the run is abandoned.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Which arm's state each group is in, period by period.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    /// Period length in whole seconds (scenario validation: >= 2).
    pub(super) period_s: i64,
    pub(super) arms: usize,
}

impl Schedule {
    pub(super) fn new(period: Duration, arms: usize) -> Schedule {
        Schedule {
            period_s: period.as_secs().max(1) as i64,
            arms: arms.max(1),
        }
    }

    /// The period second `t` lies in; ramp and warm-up (negative `t`) count as period 0.
    fn period_of(&self, t: i64) -> i64 {
        t.max(0) / self.period_s
    }

    /// How many arms on from its first arm every group is in period `period`. Periods come in
    /// cycles of `arms`, in each of which every group holds every arm once. Even cycles step
    /// forward through the arms and odd ones backward, so that each arm follows each other
    /// arm about equally often: whatever a state leaves behind into the next period (a second
    /// of stale work, warm or cold caches) does not always land on the same arm.
    fn step(&self, period: i64) -> usize {
        let p = period.max(0) as usize;
        let (cycle, j) = (p / self.arms, p % self.arms);
        if cycle % 2 == 0 {
            j
        } else {
            (self.arms - j) % self.arms
        }
    }

    /// The arm whose state group `group` is in during period `period` (group g starts as arm g).
    pub(super) fn arm_of(&self, group: usize, period: i64) -> usize {
        (group + self.step(period)) % self.arms
    }

    /// The group holding arm `arm` during period `period`.
    fn group_of(&self, arm: usize, period: i64) -> usize {
        (arm + self.arms - self.step(period)) % self.arms
    }
}

/// One switch as it happened: period `period` began at `period * period_s` seconds of
/// measured load, and every app had answered the switch `done_at` seconds in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Switch {
    pub(crate) period: i64,
    pub(crate) done_at: f64,
}

/// The switches of one replicate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Switches {
    pub(crate) period_s: i64,
    pub(crate) done: Vec<Switch>,
}

impl Switches {
    /// The switches of a schedule with periods of `period_s` seconds, none made yet.
    pub(super) fn new(period_s: i64) -> Switches {
        Switches {
            period_s,
            done: Vec::new(),
        }
    }

    /// Seconds that belong to no arm: every period's first (the second a switch falls in; the
    /// first period's too, so that every period gives each arm as many seconds), any second a
    /// switch was still under way in, and, when the load was cut short, every second after
    /// the last period whose switch was made.
    fn transitional(&self, t: i64) -> bool {
        let period_s = self.period_s.max(1);
        if t >= 0 && t % period_s == 0 {
            return true;
        }
        let last = self.done.iter().map(|s| s.period).max().unwrap_or(0);
        if t >= (last + 1) * period_s {
            return true;
        }
        self.done.iter().any(|s| {
            let first = s.period * self.period_s;
            let last = (s.done_at.floor() as i64).max(first);
            (first..=last).contains(&t)
        })
    }

    /// How long after its period began the slowest switch was done, seconds.
    pub(crate) fn max_lag_s(&self) -> Option<f64> {
        self.done
            .iter()
            .map(|s| s.done_at - (s.period * self.period_s) as f64)
            .max_by(f64::total_cmp)
    }
}

/// Every app's switch: its base URL and bearer token, by group.
pub(super) struct Switcher {
    pub(super) client: reqwest::Client,
    /// Per group, its instances' base URLs.
    pub(super) groups: Vec<Vec<String>>,
    pub(super) tokens: Vec<Option<String>>,
    /// Per arm, whether its state has monitoring on.
    pub(super) monitoring: Vec<bool>,
    pub(super) schedule: Schedule,
}

impl Switcher {
    /// Puts every group into its state for `period`.
    pub(super) async fn apply(&self, period: i64) -> Result<(), String> {
        let calls = self.groups.iter().enumerate().flat_map(|(g, urls)| {
            let on = self.monitoring[self.schedule.arm_of(g, period)];
            let token = self.tokens.get(g).cloned().flatten();
            urls.iter()
                .map(move |u| self.switch_one(u.clone(), token.clone(), on))
        });
        futures::future::try_join_all(calls).await.map(|_| ())
    }

    async fn switch_one(
        &self,
        base: String,
        token: Option<String>,
        on: bool,
    ) -> Result<(), String> {
        let url = format!("{base}/api/performance/monitoring");
        let mut req = self
            .client
            .put(&url)
            .timeout(SWITCH_TIMEOUT)
            .json(&serde_json::json!({ "enabled": on }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("PUT {url}: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(format!("PUT {url}: {status}: {body}"))
    }

    /// Switches at every period boundary of measured load (`origin` is its start), noting each
    /// one in `log` once every app has answered, and returns when the last period has begun.
    /// The log outlives the task, so a run cut short keeps the switches that happened.
    pub(super) async fn run(
        &self,
        origin: Instant,
        measured: Duration,
        log: &std::sync::Mutex<Switches>,
    ) -> Result<(), String> {
        let period = Duration::from_secs(self.schedule.period_s as u64);
        let mut k: u32 = 1;
        while period * k < measured {
            tokio::time::sleep_until((origin + period * k).into()).await;
            self.apply(i64::from(k)).await?;
            let done = Switch {
                period: i64::from(k),
                done_at: origin.elapsed().as_secs_f64(),
            };
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .done
                .push(done);
            k += 1;
        }
        Ok(())
    }
}

/// Each arm's observations from each group's: every second of a group goes to the arm whose
/// state the group was in (see the module doc). Groups are in arm order (group g started as
/// arm g); what is not per second (windows, alerts, generator figures) is kept per group.
pub(super) fn regroup(
    groups: Vec<Observations>,
    schedule: &Schedule,
    switches: &Switches,
) -> Vec<Observations> {
    let arm_at = |group: usize, t: i64| -> Option<usize> {
        (t < 0 || !switches.transitional(t)).then(|| schedule.arm_of(group, schedule.period_of(t)))
    };
    let mut arms: Vec<Observations> = groups
        .iter()
        .map(|g| Observations {
            client: ClientSeries::new(g.client.routes.clone()),
            server: Vec::new(),
            db: Vec::new(),
            pgbouncer: Vec::new(),
            app_cpu: Vec::new(),
            gaps: Vec::new(),
            ..g.clone()
        })
        .collect();
    for (g, obs) in groups.iter().enumerate() {
        for (t, bucket) in &obs.client.buckets {
            if let Some(a) = arm_at(g, *t).filter(|a| *a < arms.len()) {
                arms[a].client.buckets.insert(*t, bucket.clone());
            }
        }
        let second = |t: f64| t.floor() as i64;
        for s in &obs.server {
            if let Some(a) = arm_at(g, second(s.t)).filter(|a| *a < arms.len()) {
                arms[a].server.push(s.clone());
            }
        }
        for s in &obs.db {
            if let Some(a) = arm_at(g, second(s.t)).filter(|a| *a < arms.len()) {
                arms[a].db.push(s.clone());
            }
        }
        for s in &obs.pgbouncer {
            if let Some(a) = arm_at(g, second(s.t)).filter(|a| *a < arms.len()) {
                arms[a].pgbouncer.push(s.clone());
            }
        }
    }
    // App CPU: cumulative per arm, second by second from the group that held the arm; a
    // second that belongs to no arm (or lacks a sample) adds nothing, and its requests are
    // not in the arm's client series either.
    let end = groups.first().map_or(0, |g| g.load.end.ceil() as i64);
    let gaps: Vec<Window> = (0..end)
        .filter(|t| switches.transitional(*t))
        .map(|t| Window::new(t as f64, (t + 1) as f64))
        .collect();
    for (a, arm) in arms.iter_mut().enumerate() {
        arm.gaps = gaps.clone();
        let mut total = 0u64;
        arm.app_cpu.push(AppCpuSample { t: 0.0, cpu_ns: 0 });
        for t in 0..end {
            let g = schedule.group_of(a, schedule.period_of(t));
            if !switches.transitional(t) {
                let w = [Window::new(t as f64, t as f64 + 1.0)];
                if let Some(c) = groups.get(g).and_then(|o| o.app_cpu_in(&w)) {
                    total += c.cpu_ns;
                }
            }
            arm.app_cpu.push(AppCpuSample {
                t: (t + 1) as f64,
                cpu_ns: total,
            });
        }
    }
    arms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule::new(Duration::from_secs(2), 3)
    }

    #[test]
    fn every_group_holds_every_arm_for_one_period_in_each_cycle() {
        let s = schedule();
        for period in 0..6 {
            let mut held: Vec<usize> = (0..3).map(|g| s.arm_of(g, period)).collect();
            held.sort_unstable();
            assert_eq!(held, [0, 1, 2], "period {period}");
            for arm in 0..3 {
                assert_eq!(s.arm_of(s.group_of(arm, period), period), arm);
            }
        }
        let two_cycles: Vec<usize> = (0..6).map(|p| s.arm_of(1, p)).collect();
        assert_eq!(two_cycles, [1, 2, 0, 1, 0, 2], "forward, then backward");
        assert_eq!(s.arm_of(2, -5), 2, "warm-up belongs to period 0");
    }

    /// Over four cycles, the holder of each arm came from each other arm's state 5 or 6
    /// times of 11: no arm always inherits the same predecessor.
    #[test]
    fn each_arm_follows_each_other_arm_about_equally_often() {
        let s = schedule();
        for arm in 0..3 {
            let mut from = [0usize; 3];
            for period in 1..12 {
                from[s.arm_of(s.group_of(arm, period), period - 1)] += 1;
            }
            assert_eq!(from[arm], 0, "a group never holds one arm twice in a row");
            let mut counts: Vec<usize> = from.iter().copied().filter(|n| *n > 0).collect();
            counts.sort_unstable();
            assert_eq!(counts, [5, 6], "arm {arm}: {from:?}");
        }
    }

    #[test]
    fn a_switch_covers_its_first_second_and_any_it_ran_into() {
        let sw = Switches {
            period_s: 2,
            done: vec![
                Switch {
                    period: 1,
                    done_at: 2.01,
                },
                Switch {
                    period: 2,
                    done_at: 5.2,
                },
            ],
        };
        let covered: Vec<i64> = (0..8).filter(|t| sw.transitional(*t)).collect();
        assert_eq!(
            covered,
            [0, 2, 4, 5, 6, 7],
            "period 3 never began: 6 and 7 too"
        );
        assert!(
            !sw.transitional(-1),
            "warm-up seconds are not measured anyway"
        );
        assert!((sw.max_lag_s().unwrap() - 1.2).abs() < 1e-9);
    }

    /// Three groups whose processes differ: group g spends (1 + g/10) ms of CPU per request,
    /// and the arm with monitoring (arm 0) costs 2 % more. Regrouped, every arm has had every
    /// group equally often, so the arms' CPU per request differs by the 2 % alone.
    #[test]
    fn regrouped_arms_cancel_a_process_offset() {
        let s = schedule();
        let (end, rps) = (12i64, 100u64);
        let switches = Switches {
            period_s: 2,
            done: (1..6)
                .map(|k| Switch {
                    period: k,
                    done_at: (2 * k) as f64 + 0.01,
                })
                .collect(),
        };
        let groups: Vec<Observations> = (0..3)
            .map(|g| {
                let mut o = Observations {
                    client: ClientSeries::new(vec!["r".into()]),
                    load: Window::new(0.0, end as f64),
                    ..Default::default()
                };
                let mut cpu = 0u64;
                o.app_cpu.push(AppCpuSample { t: 0.0, cpu_ns: 0 });
                for t in 0..end {
                    let monitored = s.arm_of(g, s.period_of(t)) == 0;
                    let per_request =
                        1_000_000.0 * (1.0 + g as f64 / 10.0) * if monitored { 1.02 } else { 1.0 };
                    for _ in 0..rps {
                        o.client
                            .record("r", t as f64 + 0.5, Some(Duration::from_millis(1)), None);
                    }
                    cpu += (per_request * rps as f64) as u64;
                    o.app_cpu.push(AppCpuSample {
                        t: (t + 1) as f64,
                        cpu_ns: cpu,
                    });
                }
                o
            })
            .collect();
        let arms = regroup(groups, &s, &switches);
        let load = [Window::new(0.0, end as f64)];
        let per_request: Vec<f64> = arms
            .iter()
            .map(|a| a.app_cpu_in(&load).unwrap().us_per_request().unwrap())
            .collect();
        // Seconds 1, 3, 5, ...: every period's first second belongs to no arm, and the load
        // phase leaves it out.
        for a in &arms {
            assert_eq!(a.client.window(&load, None).requests, 6 * rps);
            let phase = a.windows(crate::observe::PhaseKind::Load);
            assert_eq!(phase.len(), 6);
            assert_eq!(phase.iter().map(Window::duration).sum::<f64>(), 6.0);
            assert_eq!(a.app_cpu_in(&phase), a.app_cpu_in(&load));
        }
        assert!(
            (per_request[0] / per_request[1] - 1.02).abs() < 1e-3,
            "{per_request:?}"
        );
        assert!(
            (per_request[2] / per_request[1] - 1.0).abs() < 1e-3,
            "{per_request:?}"
        );
    }
}

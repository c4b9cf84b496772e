//! The live watch of `abort_on_fail` SLAs during one arm's load: twice a second it checks
//! the measured load so far against each SLA's certainty rule (`crate::sla::abort`) and, at
//! the first SLA whose failure is certain, stops the load. The run then ends as usual (app
//! stopped, services torn down, reports written) with that SLA failed and the stop recorded.

use crate::load::LoadHandle;
use crate::sla::abort::AbortRule;
use crate::sla::EarlyStop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the live figures are checked: often enough that a lost run stops within a
/// second, rarely enough that merging the seconds so far costs the generator nothing.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// A running watch.
pub(super) struct Watch {
    task: tokio::task::JoinHandle<Option<EarlyStop>>,
    over: Arc<AtomicBool>,
}

impl Watch {
    /// Starts watching `handle`'s load for `rules`; `None` when there is nothing to watch.
    pub(super) fn start(handle: LoadHandle, rules: Vec<AbortRule>) -> Option<Watch> {
        if rules.is_empty() {
            return None;
        }
        let over = Arc::new(AtomicBool::new(false));
        let done = over.clone();
        let planned_s = handle.measured_duration().as_secs_f64();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if done.load(Ordering::SeqCst) {
                    return None;
                }
                let Some(now) = handle.elapsed_s() else {
                    continue;
                };
                if now < 0.0 {
                    continue;
                }
                if now >= planned_s {
                    // The load is over as planned: nothing left to stop.
                    return None;
                }
                let hit = handle
                    .with_series(|s| {
                        rules
                            .iter()
                            .find_map(|r| r.check(s, now).map(|(m, why)| (r, m, why)))
                    })
                    .flatten();
                if let Some((rule, measured, reason)) = hit {
                    handle.stop_because(&format!(
                        "abort_on_fail: {} can no longer be met",
                        rule.label
                    ));
                    let at_s = handle.elapsed_s().unwrap_or(now).clamp(0.0, planned_s);
                    return Some(EarlyStop {
                        sla: rule.label.clone(),
                        sla_index: rule.index,
                        at_s,
                        planned_s,
                        measured,
                        reason,
                    });
                }
            }
        });
        Some(Watch { task, over })
    }

    /// Ends the watch once the load has returned: the early stop, if it made one.
    pub(super) async fn finish(self) -> Option<EarlyStop> {
        self.over.store(true, Ordering::SeqCst);
        self.task.await.ok().flatten()
    }
}

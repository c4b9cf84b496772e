//! Wall-clock time as Unix seconds and milliseconds: the timestamps metrics buckets, alerts and
//! health records carry, and that every instance of a deployment agrees on.

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A Tokio interval of `period` whose ticks fall on wall-clock second boundaries, the first at the
/// next one. Every periodic task of the app (the collector's second, alert evaluation, health
/// checks) ticks on these boundaries: instances' buckets line up, and the tasks share one
/// wake-up a second instead of one each (issue 18: monitoring's fixed cost was mostly
/// wake-ups and round trips, not computation).
pub fn second_aligned_interval(
    period: std::time::Duration,
    missed: tokio::time::MissedTickBehavior,
) -> tokio::time::Interval {
    let to_boundary = std::time::Duration::from_millis(1000 - unix_ms() % 1000);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + to_boundary, period);
    tick.set_missed_tick_behavior(missed);
    tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn aligned_ticks_fall_on_wall_clock_second_boundaries() {
        let mut tick = second_aligned_interval(
            std::time::Duration::from_secs(1),
            tokio::time::MissedTickBehavior::Delay,
        );
        for _ in 0..2 {
            // The tick's own deadline on the wall clock: how late the task ran (a busy machine)
            // does not enter, only where the timer was set.
            let deadline = tick.tick().await;
            let (wall_ms, now) = (unix_ms(), tokio::time::Instant::now());
            let at_ms = wall_ms - now.duration_since(deadline).as_millis() as u64;
            let off_boundary = (at_ms % 1000).min(1000 - at_ms % 1000);
            assert!(
                off_boundary <= 20,
                "tick set {} ms into the second",
                at_ms % 1000
            );
        }
    }
}

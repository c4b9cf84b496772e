//! CPU time of the app processes under test, from /proc: the sum over a process's threads of
//! the first field of `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU, kept by the
//! scheduler at nanosecond resolution, unlike utime/stime's 10 ms ticks), read at every whole
//! second of the measured load window so that any span of whole seconds has its CPU time.

use crate::load::LoadHandle;
use crate::observe::AppCpuSample;
use std::time::Duration;

/// Nanoseconds the process `pid` (all its threads) has run on a CPU; `None` when /proc has
/// no such process or cannot be read.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        // A thread that exits between listing and reading has left nothing to add.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += parse_schedstat_run_ns(&text)?;
    }
    Some(total)
}

/// The first field of a schedstat line: time spent on the CPU, ns.
fn parse_schedstat_run_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The summed CPU time of several processes (one arm's app instances); `None` if any of
/// them cannot be read (a partial sum would read as a drop in CPU).
pub fn processes_cpu_ns(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| process_cpu_ns(*p)).sum()
}

/// Samples the CPU time of each group of processes (one group per arm) at the start of
/// measured load, at every whole second of it and at its end; returns one series per group
/// (offsets in seconds from the start of measured load). Ends early when `stop` fires (the
/// attack is over).
async fn sample_load_window(
    handle: LoadHandle,
    groups: Vec<Vec<u32>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Vec<AppCpuSample>> {
    let mut out: Vec<Vec<AppCpuSample>> = vec![Vec::new(); groups.len()];
    let sample = |out: &mut Vec<Vec<AppCpuSample>>, t: f64| {
        for (series, pids) in out.iter_mut().zip(&groups) {
            if let Some(cpu_ns) = processes_cpu_ns(pids) {
                series.push(AppCpuSample { t, cpu_ns });
            }
        }
    };
    let work = async {
        let Some(start) = handle.wait_measure_start().await else {
            return;
        };
        let duration = handle.measured_duration();
        let mut ticks: Vec<Duration> = (0..=duration.as_secs()).map(Duration::from_secs).collect();
        if duration.subsec_nanos() > 0 {
            ticks.push(duration);
        }
        for tick in ticks {
            tokio::time::sleep_until((start + tick).into()).await;
            // The actual offset: on a busy host the wake-up may be late (the same for every
            // group, read together); readers match samples to second boundaries within a
            // tolerance.
            sample(&mut out, start.elapsed().as_secs_f64());
        }
    };
    tokio::select! {
        () = work => {}
        _ = stop => {}
    }
    out
}

/// [`sample_load_window`] running in its own task until [`LoadWindowSampler::finish`].
pub struct LoadWindowSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Vec<AppCpuSample>>>,
}

impl LoadWindowSampler {
    pub fn start(handle: LoadHandle, groups: Vec<Vec<u32>>) -> LoadWindowSampler {
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        LoadWindowSampler {
            stop,
            task: tokio::spawn(sample_load_window(handle, groups, stop_rx)),
        }
    }

    /// Stops sampling (the attack is over); one series per group.
    pub async fn finish(self) -> Result<Vec<Vec<AppCpuSample>>, tokio::task::JoinError> {
        let _ = self.stop.send(());
        self.task.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_its_threads() {
        assert_eq!(parse_schedstat_run_ns("123456 789 10\n"), Some(123_456));
        assert_eq!(parse_schedstat_run_ns(""), None);
        let me = std::process::id();
        let a = process_cpu_ns(me).expect("own schedstat");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let b = process_cpu_ns(me).expect("own schedstat");
        // 30 ms of spinning is at least a few ms on a CPU even on a crowded host.
        assert!(b >= a + 3_000_000, "{a} -> {b}");
        assert_eq!(processes_cpu_ns(&[]), None);
        assert_eq!(process_cpu_ns(u32::MAX), None);
    }
}

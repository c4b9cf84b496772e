//! The load generator's own CPU: how much the poolproof process used over a span
//! (getrusage), and how contended the host's CPUs were meanwhile (Linux PSI). The regression
//! gate's noise check reads them to tell a saturated load generator from a slower app.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::host::available_cores;

/// CPU time a process used over a wall-clock span, on a host with `cores` logical CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuUsage {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Wall-clock seconds of the span.
    pub wall_seconds: f64,
    /// Logical CPUs available to the process.
    pub cores: u32,
    /// Host CPU contention over the span: the share of wall time in which some runnable task
    /// on the host waited for a CPU (Linux PSI, /proc/pressure/cpu `some`), 0..=1. Recorded
    /// and gated (`compare::GateConfig::max_host_cpu_pressure`). Absent where the kernel has no PSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_pressure: Option<f64>,
}

impl CpuUsage {
    /// Average number of cores kept busy (1.0 = one full core).
    pub fn busy_cores(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.cpu_seconds / self.wall_seconds
        } else {
            0.0
        }
    }

    /// Share of the whole host's CPU capacity (wall time × cores), 0..=1.
    pub fn host_share(&self) -> f64 {
        self.busy_cores() / f64::from(self.cores.max(1))
    }
}

/// Measures the CPU time of the current process over a span (getrusage(RUSAGE_SELF)).
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    cpu_start: f64,
    wall_start: Instant,
    pressure_start: Option<u64>,
}

/// Microseconds, since boot, during which some runnable task on the host waited for a CPU
/// (the `some total=` of /proc/pressure/cpu); `None` without PSI.
pub fn host_cpu_pressure_micros() -> Option<u64> {
    parse_pressure_some_total(&std::fs::read_to_string("/proc/pressure/cpu").ok()?)
}

fn parse_pressure_some_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// User + system CPU seconds of this process so far; `None` if the kernel refuses.
pub fn process_cpu_seconds() -> Option<f64> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we own; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0 means the kernel filled the struct (and it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(tv(ru.ru_utime) + tv(ru.ru_stime))
}

impl CpuMeter {
    /// Starts measuring now; `None` if the process CPU time cannot be read.
    pub fn start() -> Option<Self> {
        Some(Self {
            cpu_start: process_cpu_seconds()?,
            wall_start: Instant::now(),
            pressure_start: host_cpu_pressure_micros(),
        })
    }

    /// CPU used since `start`.
    pub fn finish(&self) -> Option<CpuUsage> {
        let cpu = process_cpu_seconds()? - self.cpu_start;
        let wall = self.wall_start.elapsed().as_secs_f64();
        let pressure = match (self.pressure_start, host_cpu_pressure_micros()) {
            (Some(a), Some(b)) if wall > 0.0 => {
                Some((b.saturating_sub(a) as f64 / 1e6 / wall).clamp(0.0, 1.0))
            }
            _ => None,
        };
        Some(CpuUsage {
            cpu_seconds: cpu.max(0.0),
            wall_seconds: wall,
            cores: available_cores(),
            host_cpu_pressure: pressure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_total_is_read_from_the_some_line() {
        let text = "some avg10=74.09 avg60=81.00 avg300=40.04 total=6305931718\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_pressure_some_total(text), Some(6_305_931_718));
        assert_eq!(parse_pressure_some_total("full total=5\n"), None);
        assert_eq!(parse_pressure_some_total("some total=x\n"), None);
    }

    #[test]
    fn meter_sees_cpu_burned_by_this_thread() {
        let Some(meter) = CpuMeter::start() else {
            panic!("getrusage failed on this host");
        };
        // Burn roughly 200 ms of CPU.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let u = meter.finish().unwrap_or_else(|| panic!("getrusage failed"));
        assert!(u.wall_seconds >= 0.2);
        // On a contended host this thread may get less than the full wall time, but not zero.
        assert!(u.cpu_seconds > 0.02, "{u:?}");
        assert!(u.busy_cores() <= f64::from(u.cores) + 0.05, "{u:?}");
    }
}

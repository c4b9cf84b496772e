//! Noise self-check: how noisy the host was (replicate spread per metric) and whether the
//! load generator itself was CPU-bound, plus the meter that measures the latter.
//!
//! Saturation rule: the load generator is saturated in a replicate when the poolproof
//! process kept ≥ 0.9 cores busy on average during the measured phase (CPU time / wall time).
//! Why one core and not the whole host: goose funnels every request's metrics through a single
//! aggregating task, and the app and the databases share the host; a client near one full
//! core no longer issues requests on schedule, so its latencies include its own queueing.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::metric::Metric;
use super::summary::{CpuUsage, ReplicateSummary};
use super::verdict::{GateConfig, SideStats};

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

/// Logical CPUs available to this process.
pub fn available_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
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

/// Identifies a replicate in messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicateId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    pub index: u32,
}

impl std::fmt::Display for ReplicateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.arm {
            Some(a) => write!(f, "{a} #{}", self.index),
            None => write!(f, "#{}", self.index),
        }
    }
}

/// The host noise of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseSummary {
    pub replicates: usize,
    /// Spread per arm ("" for single-arm) and metric: sd / max(mean, min effect).
    pub cv: BTreeMap<String, BTreeMap<Metric, f64>>,
    /// Metrics whose spread exceeds the erratic limit ("arm/metric" or "metric").
    pub too_wide: Vec<String>,
    /// Highest load-generator CPU over the replicates, in busy cores and as host share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_generator_busy_cores_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_generator_host_share_max: Option<f64>,
    /// Replicates where the load generator was saturated.
    pub saturated: Vec<ReplicateId>,
    /// Highest host CPU pressure over the replicates (share of time some task waited for a
    /// CPU; reported, not gated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_pressure_max: Option<f64>,
}

impl NoiseSummary {
    pub fn is_saturated(&self) -> bool {
        !self.saturated.is_empty()
    }
}

/// Groups replicates by arm (None first), keeping replicate order.
pub(crate) fn by_arm(
    reps: &[ReplicateSummary],
) -> BTreeMap<Option<String>, Vec<&ReplicateSummary>> {
    let mut m: BTreeMap<Option<String>, Vec<&ReplicateSummary>> = BTreeMap::new();
    for r in reps {
        m.entry(r.arm.clone()).or_default().push(r);
    }
    m
}

/// Computes the noise summary of one run's replicates.
pub fn noise_summary(reps: &[ReplicateSummary], cfg: &GateConfig) -> NoiseSummary {
    let mut cv = BTreeMap::new();
    let mut too_wide = Vec::new();
    for (arm, rs) in by_arm(reps) {
        let mut per = BTreeMap::new();
        for m in Metric::ALL {
            let vals: Vec<f64> = rs.iter().filter_map(|r| m.value(r)).collect();
            if vals.len() < 2 {
                continue;
            }
            let s = SideStats::of(&vals, m.default_min_effect());
            if s.cv > cfg.erratic_cv {
                too_wide.push(match &arm {
                    Some(a) => format!("{a}/{m}"),
                    None => m.name().to_string(),
                });
            }
            per.insert(m, s.cv);
        }
        cv.insert(arm.unwrap_or_default(), per);
    }
    let cpu: Vec<(&ReplicateSummary, CpuUsage)> = reps
        .iter()
        .filter_map(|r| r.load_generator.map(|c| (r, c)))
        .collect();
    let max = |f: fn(&CpuUsage) -> f64| {
        cpu.iter()
            .map(|(_, c)| f(c))
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    };
    let saturated = cpu
        .iter()
        .filter(|(_, c)| c.busy_cores() >= cfg.saturation_busy_cores)
        .map(|(r, _)| ReplicateId {
            arm: r.arm.clone(),
            index: r.index,
        })
        .collect();
    NoiseSummary {
        replicates: reps.len(),
        cv,
        too_wide,
        load_generator_busy_cores_max: max(CpuUsage::busy_cores),
        load_generator_host_share_max: max(CpuUsage::host_share),
        saturated,
        host_cpu_pressure_max: cpu
            .iter()
            .filter_map(|(_, c)| c.host_cpu_pressure)
            .reduce(f64::max),
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

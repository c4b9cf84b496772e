//! The machine a run happens on: its facts, read once from /proc, as the report header shows
//! them and as baselines record them, and which of them differ between two runs (the
//! regression gate warns when BASE and NEW ran on different hosts).
//!
//! One type, two records on disk, both kept as they were: report.json's `host` names the
//! machine (`hostname`, `os`, `arch`, `cpus`, `memory_mib`); a baseline, which is committed to
//! a repository, keeps the hostname only as a hash (`hostname_hash`, `cpu_model`, `cores`,
//! `memory_bytes`, `kernel`, `os`; see [`baseline_record`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MIB: u64 = 1024 * 1024;

/// Facts about a machine. Text facts that are unknown are empty (or "unknown" in older
/// records), numbers 0; unknown facts are never compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The hostname in clear; empty where a record kept only its hash.
    pub hostname: String,
    /// FNV-1a 64 of the hostname, hex, as a record kept it (baselines); empty where the
    /// hostname itself is known. Read it through [`HostFacts::hostname_id`].
    pub hostname_hash: String,
    pub os: String,
    pub arch: String,
    /// Logical CPUs available to this process.
    pub cpus: u32,
    pub memory_bytes: u64,
    pub cpu_model: String,
    pub kernel: String,
}

/// FNV-1a 64 of `s`, hex.
fn fnv1a(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    format!("{h:016x}")
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Logical CPUs available to this process.
pub fn available_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

impl HostFacts {
    /// The facts of the current host; what cannot be read stays unknown.
    pub fn collect() -> Self {
        let hostname = read_trim("/proc/sys/kernel/hostname")
            .or_else(|| read_trim("/etc/hostname"))
            .unwrap_or_default();
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        Self {
            hostname_hash: String::new(),
            hostname,
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: available_cores(),
            memory_bytes,
            cpu_model,
            kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        }
    }

    /// What tells hosts apart without naming them: the recorded hash, else FNV-1a 64 of the
    /// hostname (hex); empty when neither is known.
    pub fn hostname_id(&self) -> String {
        if !self.hostname_hash.is_empty() {
            self.hostname_hash.clone()
        } else if !self.hostname.is_empty() {
            fnv1a(&self.hostname)
        } else {
            String::new()
        }
    }

    /// Total memory in MiB, when known.
    pub fn memory_mib(&self) -> Option<u64> {
        (self.memory_bytes > 0).then_some(self.memory_bytes / MIB)
    }

    /// Fills the facts this one lacks from `other` (same host, fuller record): a report header
    /// has no CPU model or kernel.
    pub fn complete_from(&mut self, other: &HostFacts) {
        let fill = |a: &mut String, b: &String| {
            if a.is_empty() || a == "unknown" {
                a.clone_from(b);
            }
        };
        if self.hostname_id().is_empty() {
            self.hostname_hash = other.hostname_id();
        }
        fill(&mut self.cpu_model, &other.cpu_model);
        fill(&mut self.kernel, &other.kernel);
        fill(&mut self.os, &other.os);
        if self.cpus == 0 {
            self.cpus = other.cpus;
        }
        if self.memory_bytes == 0 {
            self.memory_bytes = other.memory_bytes;
        }
    }

    /// Names of the facts that differ ("hostname", "cpu_model", "cores", ...); facts unknown
    /// on either side are skipped. Memory within 5 % counts as equal: the same machine reports
    /// slightly different totals across kernels.
    pub fn differences(&self, other: &HostFacts) -> Vec<&'static str> {
        let known =
            |a: &str, b: &str| !a.is_empty() && a != "unknown" && !b.is_empty() && b != "unknown";
        let mut d = Vec::new();
        let (a, b) = (self.hostname_id(), other.hostname_id());
        if known(&a, &b) && a != b {
            d.push("hostname");
        }
        if known(&self.cpu_model, &other.cpu_model) && self.cpu_model != other.cpu_model {
            d.push("cpu_model");
        }
        if self.cpus > 0 && other.cpus > 0 && self.cpus != other.cpus {
            d.push("cores");
        }
        let (a, b) = (self.memory_bytes as f64, other.memory_bytes as f64);
        if a > 0.0 && b > 0.0 && (a - b).abs() > 0.05 * a.max(b) {
            d.push("memory");
        }
        if known(&self.kernel, &other.kernel) && self.kernel != other.kernel {
            d.push("kernel");
        }
        if known(&self.os, &other.os) && self.os != other.os {
            d.push("os");
        }
        d
    }
}

/// report.json's `host`, as written.
#[derive(Serialize)]
struct ReportHeader<'a> {
    hostname: &'a str,
    os: &'a str,
    arch: &'a str,
    cpus: u32,
    memory_mib: Option<u64>,
}

impl Serialize for HostFacts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReportHeader {
            hostname: &self.hostname,
            os: &self.os,
            arch: &self.arch,
            cpus: self.cpus,
            memory_mib: self.memory_mib(),
        }
        .serialize(s)
    }
}

/// A `host` object as read from report.json: the header's fields, or a baseline's, whichever
/// it has (a hand-written or older report may hold either). Facts it lacks stay unknown.
#[derive(Deserialize)]
struct AnyHostRecord {
    hostname: Option<String>,
    hostname_hash: Option<String>,
    os: Option<String>,
    arch: Option<String>,
    cores: Option<u64>,
    cpus: Option<u64>,
    memory_bytes: Option<u64>,
    memory_mib: Option<u64>,
    cpu_model: Option<String>,
    kernel: Option<String>,
}

impl<'de> Deserialize<'de> for HostFacts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = AnyHostRecord::deserialize(d)?;
        Ok(HostFacts {
            hostname: r.hostname.unwrap_or_default(),
            hostname_hash: r.hostname_hash.unwrap_or_default(),
            os: r.os.unwrap_or_default(),
            arch: r.arch.unwrap_or_default(),
            cpus: r.cores.or(r.cpus).unwrap_or(0) as u32,
            memory_bytes: r
                .memory_bytes
                .or_else(|| r.memory_mib.map(|m| m * MIB))
                .unwrap_or(0),
            cpu_model: r.cpu_model.unwrap_or_default(),
            kernel: r.kernel.unwrap_or_default(),
        })
    }
}

/// A baseline's `host` record (`#[serde(with = "baseline_record")]`): the hostname only as
/// its hash, because baselines are committed to repositories.
pub mod baseline_record {
    use super::HostFacts;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Record {
        hostname_hash: String,
        cpu_model: String,
        cores: u32,
        memory_bytes: u64,
        kernel: String,
        os: String,
    }

    pub fn serialize<S: Serializer>(h: &HostFacts, s: S) -> Result<S::Ok, S::Error> {
        Record {
            hostname_hash: h.hostname_id(),
            cpu_model: h.cpu_model.clone(),
            cores: h.cpus,
            memory_bytes: h.memory_bytes,
            kernel: h.kernel.clone(),
            os: h.os.clone(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HostFacts, D::Error> {
        let r = Record::deserialize(d)?;
        Ok(HostFacts {
            hostname: String::new(),
            hostname_hash: r.hostname_hash,
            os: r.os,
            arch: String::new(),
            cpus: r.cores,
            memory_bytes: r.memory_bytes,
            cpu_model: r.cpu_model,
            kernel: r.kernel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_host_and_hides_the_hostname_in_baselines() {
        let h = HostFacts::collect();
        assert!(h.cpus >= 1);
        assert_eq!(h.hostname_id().len(), 16);
        assert!(h.differences(&h).is_empty());
        let mut out = Vec::new();
        baseline_record::serialize(&h, &mut serde_json::Serializer::new(&mut out))
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_default();
        if !h.hostname.is_empty() {
            assert!(!text.contains(&format!("\"{}\"", h.hostname)), "{text}");
        }
        let back = baseline_record::deserialize(&mut serde_json::Deserializer::from_str(&text))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(back.differences(&h).is_empty());
    }

    #[test]
    fn differences_name_the_fields() {
        let a = HostFacts::collect();
        let mut b = a.clone();
        b.cpus += 2;
        b.cpu_model = "Other CPU".into();
        assert_eq!(a.differences(&b), vec!["cpu_model", "cores"]);
    }

    #[test]
    fn the_report_header_round_trips_and_compares_with_this_host() {
        let here = HostFacts::collect();
        let v = serde_json::to_value(&here).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                "arch".to_string(),
                "cpus".into(),
                "hostname".into(),
                "memory_mib".into(),
                "os".into()
            ])
        );
        let h: HostFacts = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.hostname_id(), here.hostname_id());
        assert!(h.cpu_model.is_empty());
        assert!(
            h.differences(&here).is_empty(),
            "{:?}",
            h.differences(&here)
        );
        let other: HostFacts = serde_json::from_value(
            serde_json::json!({"hostname": "elsewhere", "cpus": here.cpus + 1}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.differences(&here), vec!["hostname", "cores"]);
    }
}

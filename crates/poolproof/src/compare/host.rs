//! Facts about the machine a run happened on, so comparisons across hosts can say so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Host facts recorded with a baseline. The hostname is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// FNV-1a 64 of the hostname, hex: tells hosts apart without naming them.
    pub hostname_hash: String,
    pub cpu_model: String,
    pub cores: u32,
    pub memory_bytes: u64,
    pub kernel: String,
    pub os: String,
}

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

impl HostFacts {
    /// Collects the facts of the current host; unknown fields read "unknown" / 0.
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
            hostname_hash: fnv1a(&hostname),
            cpu_model,
            cores: super::noise::available_cores(),
            memory_bytes,
            kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            os: std::env::consts::OS.to_string(),
        }
    }

    /// Reads host facts from a report.json `host` object, whichever shape it has: this
    /// struct's, or the report header's (`hostname`, `cpus`, `memory_mib`). The hostname is
    /// hashed on the way in. Facts it lacks stay unknown ("" / 0) and are not compared.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        Self {
            hostname_hash: s("hostname_hash")
                .or_else(|| s("hostname").filter(|h| !h.is_empty()).map(|h| fnv1a(&h)))
                .unwrap_or_default(),
            cpu_model: s("cpu_model").unwrap_or_default(),
            cores: n("cores").or_else(|| n("cpus")).unwrap_or(0) as u32,
            memory_bytes: n("memory_bytes")
                .or_else(|| n("memory_mib").map(|m| m * 1024 * 1024))
                .unwrap_or(0),
            kernel: s("kernel").unwrap_or_default(),
            os: s("os").unwrap_or_default(),
        }
    }

    /// Fills the facts this one lacks from `other` (same host, fuller record).
    pub fn complete_from(&mut self, other: &HostFacts) {
        let fill = |a: &mut String, b: &String| {
            if a.is_empty() || a == "unknown" {
                a.clone_from(b);
            }
        };
        fill(&mut self.hostname_hash, &other.hostname_hash);
        fill(&mut self.cpu_model, &other.cpu_model);
        fill(&mut self.kernel, &other.kernel);
        fill(&mut self.os, &other.os);
        if self.cores == 0 {
            self.cores = other.cores;
        }
        if self.memory_bytes == 0 {
            self.memory_bytes = other.memory_bytes;
        }
    }

    /// Names of the facts that differ ("hostname", "cpu_model", ...); facts unknown on either
    /// side are skipped. Memory within 5 % counts as equal: the same machine reports slightly
    /// different totals across kernels.
    pub fn differences(&self, other: &HostFacts) -> Vec<&'static str> {
        let known =
            |a: &str, b: &str| !a.is_empty() && a != "unknown" && !b.is_empty() && b != "unknown";
        let mut d = Vec::new();
        if known(&self.hostname_hash, &other.hostname_hash)
            && self.hostname_hash != other.hostname_hash
        {
            d.push("hostname");
        }
        if known(&self.cpu_model, &other.cpu_model) && self.cpu_model != other.cpu_model {
            d.push("cpu_model");
        }
        if self.cores > 0 && other.cores > 0 && self.cores != other.cores {
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

/// Tool versions recorded with a baseline.
pub fn tool_versions() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("poolproof".into(), env!("CARGO_PKG_VERSION").into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_host_and_hides_the_hostname() {
        let h = HostFacts::collect();
        assert!(h.cores >= 1);
        assert_eq!(h.hostname_hash.len(), 16);
        let name = read_trim("/proc/sys/kernel/hostname").unwrap_or_default();
        if !name.is_empty() {
            assert!(!h.hostname_hash.contains(&name));
        }
        assert!(h.differences(&h).is_empty());
    }

    #[test]
    fn differences_name_the_fields() {
        let a = HostFacts::collect();
        let mut b = a.clone();
        b.cores += 2;
        b.cpu_model = "Other CPU".into();
        assert_eq!(a.differences(&b), vec!["cpu_model", "cores"]);
    }

    #[test]
    fn reads_the_report_header_shape_and_skips_unknown_facts() {
        let here = HostFacts::collect();
        let name = read_trim("/proc/sys/kernel/hostname").unwrap_or_default();
        let v = serde_json::json!({
            "hostname": name, "os": "linux", "arch": "x86_64",
            "cpus": here.cores, "memory_mib": here.memory_bytes / (1024 * 1024),
        });
        let h = HostFacts::from_json(&v);
        assert_eq!(h.hostname_hash, here.hostname_hash);
        assert!(h.cpu_model.is_empty());
        assert!(
            h.differences(&here).is_empty(),
            "{:?}",
            h.differences(&here)
        );
        let other = HostFacts::from_json(
            &serde_json::json!({"hostname": "elsewhere", "cpus": here.cores + 1}),
        );
        assert_eq!(other.differences(&here), vec!["hostname", "cores"]);
    }
}

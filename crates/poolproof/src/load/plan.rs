//! What to run: targets, users, timeline, rate limit and weighted transactions (typed, validated).

use super::template::Template;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl HttpMethod {
    pub(crate) fn goose(self) -> goose::goose::GooseMethod {
        use goose::goose::GooseMethod as G;
        match self {
            HttpMethod::Get => G::Get,
            HttpMethod::Post => G::Post,
            HttpMethod::Put => G::Put,
            HttpMethod::Patch => G::Patch,
            HttpMethod::Delete => G::Delete,
            HttpMethod::Head => G::Head,
        }
    }

    /// The method's name, as [`HttpMethod::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
        }
    }

    /// Parses an HTTP method name (case-insensitive).
    pub fn parse(s: &str) -> Option<HttpMethod> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            "HEAD" => HttpMethod::Head,
            _ => return None,
        })
    }
}

/// One weighted transaction: a single request whose status must equal `expect_status`.
#[derive(Debug, Clone)]
pub struct TransactionPlan {
    /// Route name used in reports and SLAs.
    pub name: String,
    /// Relative frequency (>= 1).
    pub weight: usize,
    pub method: HttpMethod,
    pub path: Template,
    /// Sent as `application/json` when present.
    pub body: Option<Template>,
    pub expect_status: u16,
}

/// One piece of an open-model arrival rate: linear from `from` to `to` requests per second
/// over `[start, end)`, in seconds from the start of measured load (negative: ramp and
/// warm-up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSegment {
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
}

/// The open model's arrival schedule: consecutive rate segments from the start of the ramp
/// to the end of measured load.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPlan {
    pub segments: Vec<RateSegment>,
}

/// A complete load plan.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Base URLs of the app instances (e.g. `http://127.0.0.1:41234`); users are spread
    /// over them round-robin.
    pub targets: Vec<String>,
    /// Concurrent users (closed model: each sends its next request when the last completes;
    /// open model: the most requests in flight at once).
    pub users: usize,
    /// Time to start all users.
    pub ramp: Duration,
    /// Load after the ramp that is not measured.
    pub warmup: Duration,
    /// Measured load time.
    pub duration: Duration,
    /// Closed model: requests per second across all users, if capped.
    pub rate_limit: Option<f64>,
    /// Open model: the arrival schedule (then `rate_limit` is unused and `ramp` is part of
    /// the schedule rather than a user ramp).
    pub open: Option<OpenPlan>,
    pub transactions: Vec<TransactionPlan>,
    /// Per-request timeout; a request without a response by then counts as a timeout error.
    pub request_timeout: Duration,
    /// Sent as `Authorization: Bearer` on every request (external targets). Never logged.
    pub bearer_token: Option<String>,
    /// This plan is one generator shard's share of a larger one (see [`LoadPlan::shard`]).
    pub shard: Option<ShardOf>,
}

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardOf {
    pub index: u32,
    pub count: u32,
}

impl LoadPlan {
    /// Checks the invariants goose needs, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("load: no target URL".into());
        }
        for t in &self.targets {
            if !(t.starts_with("http://") || t.starts_with("https://")) {
                return Err(format!("load: target `{t}` is not an http(s) URL"));
            }
        }
        if self.users == 0 {
            return Err("load.users: must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("load.duration: must be greater than zero".into());
        }
        if self.rate_limit.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err("load.rate_limit: must be more than 0".into());
        }
        if let Some(s) = self.shard {
            if s.count == 0 || s.index >= s.count {
                return Err(format!("shard {} of {}: no such shard", s.index, s.count));
            }
        }
        if let Some(open) = &self.open {
            if open.segments.is_empty() {
                return Err("load.stages: at least one stage is needed".into());
            }
            for s in &open.segments {
                let rate_ok = |r: f64| r.is_finite() && r >= 0.0;
                if !(rate_ok(s.from) && rate_ok(s.to)) || s.from + s.to <= 0.0 || s.end < s.start {
                    return Err(format!(
                        "load: invalid arrival segment {s:?} (rates must be positive)"
                    ));
                }
            }
        }
        if self.transactions.is_empty() {
            return Err("load.transactions: at least one transaction is needed".into());
        }
        for (i, t) in self.transactions.iter().enumerate() {
            if t.weight == 0 {
                return Err(format!("load.transactions[{i}].weight: must be at least 1"));
            }
            if !(100..=599).contains(&t.expect_status) {
                return Err(format!(
                    "load.transactions[{i}].expect_status: not an HTTP status"
                ));
            }
        }
        if self.request_timeout.is_zero() {
            return Err("load: request timeout must be greater than zero".into());
        }
        Ok(())
    }

    /// Shard `index` of `count`'s share: the open model's schedule slots `index`,
    /// `index + count`, … (the shards' union is exactly the whole schedule, interleaved),
    /// the closed model's users and rate limit divided (the first shards take the
    /// remainder's users). `count` 1 is the whole plan.
    pub fn shard(mut self, index: u32, count: u32) -> LoadPlan {
        if count <= 1 {
            return self;
        }
        let (n, i) = (count as usize, index as usize);
        self.users = (self.users / n + usize::from(i < self.users % n)).max(1);
        self.rate_limit = self.rate_limit.map(|r| r / f64::from(count));
        self.shard = Some(ShardOf { index, count });
        self
    }

    /// Transaction names in plan order.
    pub fn route_names(&self) -> Vec<String> {
        self.transactions.iter().map(|t| t.name.clone()).collect()
    }

    /// The most requests (of transaction `route`, or of all) this plan can complete within
    /// measured load, whatever the server does (requests count by completion time): one per
    /// user in flight when measured load began, plus what is sent after that. `None` for a
    /// closed model without a rate limit, whose total depends on the server's speed, and for
    /// an unknown route.
    ///
    /// Open model: a start a user takes late may be one scheduled before measured load, but
    /// never one older than the drop horizon (the request timeout): every start scheduled in
    /// `[-request_timeout, duration)` is counted, per route. Closed model with a rate limit:
    /// paced slots lie 1/rate apart, and a user that claims late takes one old slot and skips
    /// the rest, so at most ⌊(duration + late tolerance) · rate⌋ + 2; its slots do not say
    /// which transaction a user runs, so a route's bound there is the whole plan's.
    pub fn max_measured_requests(&self, route: Option<&str>) -> Option<u64> {
        let index = match route {
            Some(r) => Some(self.transactions.iter().position(|t| t.name == r)?),
            None => None,
        };
        let in_flight = self.users as u64;
        let duration = self.duration.as_secs_f64();
        if let Some(open) = &self.open {
            let weights: Vec<usize> = self.transactions.iter().map(|t| t.weight).collect();
            let mut schedule = super::Schedule::new(&open.segments, &weights);
            if let Some(s) = self.shard {
                schedule = schedule.sharded(s.index, s.count);
            }
            let horizon = -self.request_timeout.as_secs_f64();
            return Some(schedule.starts_within(horizon, duration, index) + in_flight);
        }
        let rate = self.rate_limit?;
        let span = duration + super::LATE_TOLERANCE.as_secs_f64();
        Some((span * rate).floor() as u64 + 2 + in_flight)
    }
}

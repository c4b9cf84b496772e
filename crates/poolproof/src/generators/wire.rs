//! What crosses the wire between the coordinator and its generator shards: the plan a shard
//! runs, its heartbeats, and its result, with every per-second, per-route HDR histogram
//! serialized losslessly (V2 + deflate, base64) so the coordinator merges them exactly.

use crate::load::{HttpMethod, LoadPlan, OpenPlan, RateSegment, Template, TransactionPlan};
use crate::observe::{ClientSeries, ErrorKind, LatencyHistogram, RouteSecond, SecondBucket};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The header carrying the run's key; every coordinator endpoint requires it.
pub const KEY_HEADER: &str = "x-poolproof-run-key";

/// A shard's answer to `hello`: its index and the coordinator's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    pub shard: u32,
    pub count: u32,
    /// The coordinator's wall clock when it answered, ns since the Unix epoch.
    pub now_unix_ns: i128,
}

/// A shard introducing itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The index the engine gave it (Kubernetes' `JOB_COMPLETION_INDEX`); else the
    /// coordinator assigns the next free one.
    pub requested: Option<u32>,
    /// Where it runs (host name, container id), for messages and reports.
    pub name: String,
}

/// The coordinator's clock, for the shard's offset estimate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clock {
    pub now_unix_ns: i128,
}

/// The load one shard runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardPlan {
    pub shard: u32,
    pub count: u32,
    /// The instant the shard's timeline starts (start of the ramp), coordinator clock, ns
    /// since the Unix epoch.
    pub origin_unix_ns: i128,
    pub targets: Vec<String>,
    /// The whole run's users (closed) or in-flight cap (open); the shard takes its share.
    pub users: usize,
    pub ramp_ms: u64,
    pub warmup_ms: u64,
    pub duration_ms: u64,
    pub rate_limit: Option<f64>,
    pub open: Option<Vec<[f64; 4]>>,
    pub transactions: Vec<WireTransaction>,
    pub request_timeout_ms: u64,
    /// External targets' bearer token (the run key guards this endpoint). Never logged.
    pub bearer_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireTransaction {
    pub name: String,
    pub weight: usize,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub expect_status: u16,
}

impl ShardPlan {
    /// The plan shard `shard` of `count` runs, whose timeline starts at `origin_unix_ns`.
    pub fn of(plan: &LoadPlan, shard: u32, count: u32, origin_unix_ns: i128) -> ShardPlan {
        ShardPlan {
            shard,
            count,
            origin_unix_ns,
            targets: plan.targets.clone(),
            users: plan.users,
            ramp_ms: plan.ramp.as_millis() as u64,
            warmup_ms: plan.warmup.as_millis() as u64,
            duration_ms: plan.duration.as_millis() as u64,
            rate_limit: plan.rate_limit,
            open: plan.open.as_ref().map(|o| {
                o.segments
                    .iter()
                    .map(|s| [s.start, s.end, s.from, s.to])
                    .collect()
            }),
            transactions: plan
                .transactions
                .iter()
                .map(|t| WireTransaction {
                    name: t.name.clone(),
                    weight: t.weight,
                    method: t.method.as_str().to_string(),
                    path: t.path.source().to_string(),
                    body: t.body.as_ref().map(|b| b.source().to_string()),
                    expect_status: t.expect_status,
                })
                .collect(),
            request_timeout_ms: plan.request_timeout.as_millis() as u64,
            bearer_token: plan.bearer_token.clone(),
        }
    }

    /// This shard's own load plan: the whole plan, sliced to its share.
    pub fn load_plan(&self) -> Result<LoadPlan, String> {
        let mut transactions = Vec::with_capacity(self.transactions.len());
        for (i, t) in self.transactions.iter().enumerate() {
            let at = |f: &str| format!("transactions[{i}].{f}");
            transactions.push(TransactionPlan {
                name: t.name.clone(),
                weight: t.weight,
                method: HttpMethod::parse(&t.method).ok_or_else(|| at("method"))?,
                path: Template::parse(&t.path).map_err(|e| format!("{}: {e}", at("path")))?,
                body: match &t.body {
                    Some(b) => {
                        Some(Template::parse(b).map_err(|e| format!("{}: {e}", at("body")))?)
                    }
                    None => None,
                },
                expect_status: t.expect_status,
            });
        }
        Ok(LoadPlan {
            targets: self.targets.clone(),
            users: self.users,
            ramp: Duration::from_millis(self.ramp_ms),
            warmup: Duration::from_millis(self.warmup_ms),
            duration: Duration::from_millis(self.duration_ms),
            rate_limit: self.rate_limit,
            open: self.open.as_ref().map(|segs| OpenPlan {
                segments: segs
                    .iter()
                    .map(|[start, end, from, to]| RateSegment {
                        start: *start,
                        end: *end,
                        from: *from,
                        to: *to,
                    })
                    .collect(),
            }),
            transactions,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            bearer_token: self.bearer_token.clone(),
            shard: None,
        }
        .shard(self.shard, self.count))
    }
}

/// A shard's live figures, sent once a second; the answer tells it whether to stop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    pub completed: u64,
    pub errors: u64,
    /// Requests completed in the shard's last complete second.
    pub rps: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub stop: bool,
}

/// What a shard measured, sent once when its load ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardResult {
    pub shard: u32,
    pub name: String,
    pub series: WireSeries,
    /// The generator's lag histogram (µs) over measured load, and how many starts were late.
    pub lag: String,
    pub lag_late: u64,
    pub completed: u64,
    /// End of the shard's measured window (seconds from the start of measured load).
    pub load_end_s: f64,
    pub interrupted: bool,
    /// CPU seconds the shard process used over its run, and the wall seconds of that span.
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    /// The shard's clock minus the coordinator's (ms), estimated from the exchange with the
    /// shortest round trip, and that round trip.
    pub clock_offset_ms: f64,
    pub clock_rtt_ms: f64,
}

/// A [`ClientSeries`] with its histograms serialized.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireSeries {
    pub routes: Vec<String>,
    pub seconds: Vec<WireSecond>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSecond {
    pub t: i64,
    pub routes: Vec<WireRoute>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRoute {
    pub name: String,
    pub latency: String,
    pub service: String,
    pub requests: u64,
    /// Error label (status code, `timeout`, `transport`) and count.
    pub errors: Vec<(String, u64)>,
    pub scheduled: u64,
    pub late: u64,
    pub dropped: u64,
}

/// A malformed histogram or error label in a shard's result.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

/// Serializes a histogram (V2 + deflate, base64).
pub fn encode_histogram(h: &LatencyHistogram) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail for I/O; a histogram too large to encode is not one
    // this recorder makes (auto-resized µs values).
    if V2DeflateSerializer::new()
        .serialize(h.inner(), &mut bytes)
        .is_err()
    {
        bytes.clear();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The histogram [`encode_histogram`] wrote.
pub fn decode_histogram(s: &str) -> Result<LatencyHistogram, WireError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| WireError(format!("histogram: not base64: {e}")))?;
    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| WireError(format!("histogram: {e:?}")))?;
    let mut out = LatencyHistogram::new();
    out.merge_raw(&h);
    Ok(out)
}

fn error_kind(label: &str) -> Result<ErrorKind, WireError> {
    match label {
        "timeout" => Ok(ErrorKind::Timeout),
        "transport" => Ok(ErrorKind::Transport),
        s => s
            .parse()
            .map(ErrorKind::Status)
            .map_err(|_| WireError(format!("unknown error label `{s}`"))),
    }
}

impl WireSeries {
    pub fn of(series: &ClientSeries) -> WireSeries {
        WireSeries {
            routes: series.routes.clone(),
            seconds: series
                .buckets
                .values()
                .map(|b| WireSecond {
                    t: b.t,
                    routes: b
                        .routes
                        .iter()
                        .map(|(name, rs)| WireRoute {
                            name: name.clone(),
                            latency: encode_histogram(&rs.latency),
                            service: encode_histogram(&rs.service),
                            requests: rs.requests,
                            errors: rs.errors.iter().map(|(k, n)| (k.label(), *n)).collect(),
                            scheduled: rs.scheduled,
                            late: rs.late,
                            dropped: rs.dropped,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn decode(&self) -> Result<ClientSeries, WireError> {
        let mut out = ClientSeries::new(self.routes.clone());
        for s in &self.seconds {
            let mut routes = BTreeMap::new();
            for r in &s.routes {
                let mut errors = BTreeMap::new();
                for (label, n) in &r.errors {
                    *errors.entry(error_kind(label)?).or_insert(0) += n;
                }
                routes.insert(
                    r.name.clone(),
                    RouteSecond {
                        latency: decode_histogram(&r.latency)?,
                        service: decode_histogram(&r.service)?,
                        requests: r.requests,
                        errors,
                        scheduled: r.scheduled,
                        late: r.late,
                        dropped: r.dropped,
                    },
                );
            }
            out.buckets.insert(s.t, SecondBucket { t: s.t, routes });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_survives_the_wire_exactly() {
        let mut s = ClientSeries::new(vec!["a".into(), "b".into()]);
        for i in 0..5000u64 {
            let route = if i % 3 == 0 { "a" } else { "b" };
            let t = (i % 7) as f64 - 1.5;
            let lat = Duration::from_micros(200 + (i * 7919) % 90_000);
            let err = (i % 97 == 0).then_some(ErrorKind::Status(503));
            s.record_timed(route, t, Some((lat * 2, lat)), err);
            if i % 211 == 0 {
                s.record_timed(route, t, None, Some(ErrorKind::Timeout));
            }
            s.record_slot(route, t, crate::observe::SlotFate::Late);
        }
        let json = serde_json::to_string(&WireSeries::of(&s)).unwrap();
        let back: WireSeries = serde_json::from_str(&json).unwrap();
        let back = back.decode().unwrap();
        assert_eq!(back.routes, s.routes);
        assert_eq!(back.buckets.len(), s.buckets.len());
        let all = [crate::observe::Window::new(-10.0, 10.0)];
        for route in [None, Some("a"), Some("b")] {
            let (x, y) = (s.window(&all, route), back.window(&all, route));
            assert_eq!(x.requests, y.requests);
            assert_eq!(x.errors, y.errors);
            assert_eq!((x.scheduled, x.late), (y.scheduled, y.late));
            assert_eq!(x.latency.count(), y.latency.count());
            for q in [0.5, 0.95, 0.99, 1.0] {
                assert_eq!(x.latency.quantile_us(q), y.latency.quantile_us(q));
                assert_eq!(x.service.quantile_us(q), y.service.quantile_us(q));
            }
        }
    }

    #[test]
    fn a_corrupt_histogram_or_label_is_an_error_not_a_panic() {
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
        assert!(error_kind("teapot").is_err());
        assert_eq!(error_kind("418").unwrap(), ErrorKind::Status(418));
    }
}

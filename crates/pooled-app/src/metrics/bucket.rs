//! Time buckets: everything the collector knows about one second (or one merged minute) —
//! counts, errors and HDR histograms overall, per route and per query kind — in a live form that
//! records cheaply and a compact encoded form that is kept in memory and written to Redis.

use std::collections::BTreeMap;

use super::histogram::{self, Hist, HistError, Latency};

/// A bucket being filled (the current second, or a minute being rolled up).
pub struct LiveBucket {
    pub start: u64,
    pub span: u32,
    pub overall: Hist,
    pub errors: u64,
    pub routes: BTreeMap<String, LiveRoute>,
    pub db: BTreeMap<String, Hist>,
}

/// One route's part of a live bucket.
pub struct LiveRoute {
    pub hist: Hist,
    pub errors: u64,
}

impl LiveBucket {
    pub fn new(start: u64, span: u32) -> LiveBucket {
        LiveBucket {
            start,
            span,
            overall: histogram::new_hist(),
            errors: 0,
            routes: BTreeMap::new(),
            db: BTreeMap::new(),
        }
    }

    /// Records one request. `app_traffic` is false for the monitoring endpoints themselves: they
    /// get their own route entry but stay out of the overall figures the alerts and SLAs read.
    pub fn record(&mut self, route: &str, us: u64, error: bool, app_traffic: bool) {
        let (r, overall) = self.route_and_overall(route);
        histogram::record(&mut r.hist, us);
        r.errors += u64::from(error);
        if app_traffic {
            histogram::record(overall, us);
            self.errors += u64::from(error);
        }
    }

    /// The entry of `route` (made empty when the bucket has none yet) and the overall
    /// histogram, for the collector's drain to record a batch of the route's samples into.
    pub fn route_and_overall(&mut self, route: &str) -> (&mut LiveRoute, &mut Hist) {
        // One key allocation per route and drain, not per sample.
        let entry = self
            .routes
            .entry(route.to_owned())
            .or_insert_with(|| LiveRoute {
                hist: histogram::new_hist(),
                errors: 0,
            });
        (entry, &mut self.overall)
    }

    /// Adds an encoded bucket into this one (minute roll-up, cross-instance merge).
    pub fn absorb(&mut self, b: &Bucket) -> Result<(), HistError> {
        histogram::merge_encoded(&mut self.overall, &b.overall)?;
        self.errors += b.errors;
        for r in &b.routes {
            let e = self
                .routes
                .entry(r.key.clone())
                .or_insert_with(|| LiveRoute {
                    hist: histogram::new_hist(),
                    errors: 0,
                });
            histogram::merge_encoded(&mut e.hist, &r.hist)?;
            e.errors += r.errors;
        }
        for (kind, bytes) in &b.db {
            let e = self
                .db
                .entry(kind.clone())
                .or_insert_with(histogram::new_hist);
            histogram::merge_encoded(e, bytes)?;
        }
        Ok(())
    }

    /// Adds another live bucket into this one.
    pub fn absorb_live(&mut self, b: &LiveBucket) {
        self.absorb_live_totals(b);
        for (k, r) in &b.routes {
            let e = self.routes.entry(k.clone()).or_insert_with(|| LiveRoute {
                hist: histogram::new_hist(),
                errors: 0,
            });
            histogram::merge(&mut e.hist, &r.hist);
            e.errors += r.errors;
        }
    }

    /// Adds another live bucket's totals and query times into this one, not its routes.
    pub fn absorb_live_totals(&mut self, b: &LiveBucket) {
        histogram::merge(&mut self.overall, &b.overall);
        self.errors += b.errors;
        for (kind, h) in &b.db {
            histogram::merge(
                self.db
                    .entry(kind.clone())
                    .or_insert_with(histogram::new_hist),
                h,
            );
        }
    }

    /// The compact, immutable form.
    pub fn finish(&self) -> Bucket {
        Bucket {
            start: self.start,
            span: self.span,
            count: self.overall.len(),
            errors: self.errors,
            latency: Latency::of(&self.overall),
            overall: histogram::encode(&self.overall),
            routes: self
                .routes
                .iter()
                .map(|(k, r)| RouteEntry {
                    key: k.clone(),
                    count: r.hist.len(),
                    errors: r.errors,
                    hist: histogram::encode(&r.hist),
                })
                .collect(),
            db: self
                .db
                .iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(k, h)| (k.clone(), histogram::encode(h)))
                .collect(),
        }
    }
}

/// A finished bucket: counts, the percentiles of its own requests, and the encoded histograms
/// that let any number of buckets be merged exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Unix seconds at the start of the bucket.
    pub start: u64,
    /// Length in seconds (1 for a second, 60 for a minute roll-up).
    pub span: u32,
    pub count: u64,
    pub errors: u64,
    pub latency: Latency,
    pub overall: Vec<u8>,
    pub routes: Vec<RouteEntry>,
    pub db: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEntry {
    pub key: String,
    pub count: u64,
    pub errors: u64,
    pub hist: Vec<u8>,
}

/// Errors decoding a stored bucket.
#[derive(Debug, thiserror::Error)]
#[error("corrupt metrics bucket: {0}")]
pub struct CodecError(&'static str);

const MAGIC: u8 = 0xB1;

impl Bucket {
    /// Binary encoding (self-describing enough to reject foreign data).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64 + self.overall.len() + self.routes.len() * 64);
        w.push(MAGIC);
        put_u64(&mut w, self.start);
        put_u64(&mut w, u64::from(self.span));
        put_u64(&mut w, self.count);
        put_u64(&mut w, self.errors);
        for v in [
            self.latency.p50_ms,
            self.latency.p95_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.latency.mean_ms,
        ] {
            put_u64(&mut w, v.to_bits());
        }
        put_bytes(&mut w, &self.overall);
        put_u64(&mut w, self.routes.len() as u64);
        for r in &self.routes {
            put_bytes(&mut w, r.key.as_bytes());
            put_u64(&mut w, r.count);
            put_u64(&mut w, r.errors);
            put_bytes(&mut w, &r.hist);
        }
        put_u64(&mut w, self.db.len() as u64);
        for (k, h) in &self.db {
            put_bytes(&mut w, k.as_bytes());
            put_bytes(&mut w, h);
        }
        w
    }

    pub fn decode(mut b: &[u8]) -> Result<Bucket, CodecError> {
        let r = &mut b;
        if take(r, 1)? != [MAGIC] {
            return Err(CodecError("bad magic"));
        }
        let start = get_u64(r)?;
        let span = u32::try_from(get_u64(r)?).map_err(|_| CodecError("span"))?;
        let count = get_u64(r)?;
        let errors = get_u64(r)?;
        let mut f = [0f64; 5];
        for v in &mut f {
            *v = f64::from_bits(get_u64(r)?);
        }
        let latency = Latency {
            count,
            p50_ms: f[0],
            p95_ms: f[1],
            p99_ms: f[2],
            max_ms: f[3],
            mean_ms: f[4],
        };
        let overall = get_bytes(r)?.to_vec();
        let n = get_u64(r)?;
        let mut routes = Vec::new();
        for _ in 0..n.min(10_000) {
            let key = String::from_utf8(get_bytes(r)?.to_vec()).map_err(|_| CodecError("route"))?;
            let count = get_u64(r)?;
            let errors = get_u64(r)?;
            let hist = get_bytes(r)?.to_vec();
            routes.push(RouteEntry {
                key,
                count,
                errors,
                hist,
            });
        }
        let n = get_u64(r)?;
        let mut db = Vec::new();
        for _ in 0..n.min(100) {
            let k = String::from_utf8(get_bytes(r)?.to_vec()).map_err(|_| CodecError("kind"))?;
            db.push((k, get_bytes(r)?.to_vec()));
        }
        Ok(Bucket {
            start,
            span,
            count,
            errors,
            latency,
            overall,
            routes,
            db,
        })
    }
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u64(w, b.len() as u64);
    w.extend_from_slice(b);
}
fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], CodecError> {
    if r.len() < n {
        return Err(CodecError("truncated"));
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Ok(a)
}
fn get_u64(r: &mut &[u8]) -> Result<u64, CodecError> {
    let b = take(r, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}
fn get_bytes<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], CodecError> {
    let n = usize::try_from(get_u64(r)?).map_err(|_| CodecError("length"))?;
    take(r, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_round_trips_and_rejects_garbage() {
        let mut live = LiveBucket::new(1_700_000_000, 1);
        live.record("GET /api/users/{id}", 1200, false, true);
        live.record("POST /api/buddy/respond", 5300, true, true);
        live.record("GET /api/performance/metrics/realtime", 300, false, false);
        let mut q = histogram::new_hist();
        histogram::record(&mut q, 420);
        live.db.insert("SELECT".into(), q);
        let b = live.finish();
        assert_eq!(b.count, 2);
        assert_eq!(b.errors, 1);
        assert_eq!(b.routes.len(), 3);
        let back = Bucket::decode(&b.encode()).unwrap();
        assert_eq!(back, b);
        assert!(Bucket::decode(&[]).is_err());
        assert!(Bucket::decode(&b.encode()[..20]).is_err());
        assert!(Bucket::decode(&[7, 1, 2]).is_err());
    }

    #[test]
    fn minute_roll_up_is_exact() {
        let mut minute = LiveBucket::new(60, 60);
        let mut all = histogram::new_hist();
        for s in 0..60u64 {
            let mut sec = LiveBucket::new(60 + s, 1);
            for i in 0..(s * 3 + 1) {
                let v = 200 + (i * 37 + s * 1000) % 90_000;
                sec.record("GET /x", v, i % 10 == 0, true);
                histogram::record(&mut all, v);
            }
            minute
                .absorb(&Bucket::decode(&sec.finish().encode()).unwrap())
                .unwrap();
        }
        let m = minute.finish();
        assert_eq!(m.latency, Latency::of(&all));
        assert_eq!(m.routes[0].count, all.len());
    }
}

//! The `prometheus` source: an app's `/metrics` in the Prometheus text exposition format, read
//! for the OpenTelemetry connection-pool metrics (semantic conventions `db.client.connection.*`
//! as Prometheus names them) and the HTTP server duration histogram. Any app that exposes these
//! names gets pool utilization, pending requests, acquire wait and server latency SLAs.
//!
//! Names read (every pool of an instance summed; a unit suffix `_seconds` is accepted where
//! exporters add one):
//! - `db_client_connection_count{db_client_connection_state="used"|"idle"}`
//! - `db_client_connection_max`
//! - `db_client_connection_pending_requests`
//! - `db_client_connection_timeouts_total`
//! - `db_client_connection_wait_time[_seconds]_bucket{le}` (seconds)
//! - `http_server_request_duration_seconds_bucket{http_request_method, http_route, le}`

use crate::observe::{OtelPool, PromHistogram};
use std::collections::BTreeMap;

/// Connections in use: `db_client_connection_count` with state `used`.
pub const COUNT: &str = "db_client_connection_count";
pub const MAX: &str = "db_client_connection_max";
pub const PENDING: &str = "db_client_connection_pending_requests";
pub const TIMEOUTS: &str = "db_client_connection_timeouts_total";
/// The acquire-wait histogram, as named by the conventions and with the unit suffix.
pub const WAIT_TIME: [&str; 2] = [
    "db_client_connection_wait_time",
    "db_client_connection_wait_time_seconds",
];
pub const HTTP_DURATION: &str = "http_server_request_duration_seconds";

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Line {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses exposition text; malformed lines are skipped (one bad line must not hide the rest),
/// comments and `# EOF` ignored.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(r)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().ok()?,
    };
    Some(Line {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` → the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((out, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((key, value));
        s = &s[end + 1..];
    }
}

/// The pool figures of one scrape (`None` fields: the app does not expose that name).
pub fn otel_pool(lines: &[Line]) -> OtelPool {
    let sum = |name: &str, pred: &dyn Fn(&Line) -> bool| -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for l in lines.iter().filter(|l| l.name == name && pred(l)) {
            found = true;
            total += l.value;
        }
        found.then_some(total)
    };
    let state = |l: &Line| {
        l.label("db_client_connection_state")
            .or_else(|| l.label("state"))
            .map(str::to_owned)
    };
    let wait = WAIT_TIME
        .iter()
        .find_map(|base| histogram(lines, base, &|_| true));
    OtelPool {
        used: sum(COUNT, &|l| state(l).as_deref() == Some("used")),
        idle: sum(COUNT, &|l| state(l).as_deref() == Some("idle")),
        max: sum(MAX, &|_| true),
        pending: sum(PENDING, &|_| true),
        timeouts: sum(TIMEOUTS, &|_| true)
            .or_else(|| sum("db_client_connection_timeouts", &|_| true)),
        wait,
    }
}

/// The HTTP server duration histograms by route (`METHOD /route`, or the bare route when the
/// method label is missing), in seconds.
pub fn http_routes(lines: &[Line]) -> BTreeMap<String, PromHistogram> {
    let bucket = format!("{HTTP_DURATION}_bucket");
    let mut keys: Vec<String> = lines
        .iter()
        .filter(|l| l.name == bucket)
        .map(route_key)
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let h = histogram(lines, HTTP_DURATION, &|l| route_key(l) == key)?;
            Some((key, h))
        })
        .collect()
}

fn route_key(l: &Line) -> String {
    let route = l.label("http_route").unwrap_or("");
    match l.label("http_request_method") {
        Some(m) => format!("{m} {route}"),
        None => route.to_owned(),
    }
}

/// The cumulative buckets of histogram `base` over the lines `pred` keeps (summed per `le`:
/// series that differ in other labels, such as pool names or status codes, add up).
fn histogram(lines: &[Line], base: &str, pred: &dyn Fn(&Line) -> bool) -> Option<PromHistogram> {
    let bucket = format!("{base}_bucket");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.name == bucket && pred(l)) {
        let Some(le) = l.label("le").and_then(parse_le) else {
            continue;
        };
        // Keyed by the bit pattern of a non-negative float: orders like the float itself.
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += l.value;
    }
    if by_le.is_empty() {
        return None;
    }
    let total = |suffix: &str| {
        let name = format!("{base}{suffix}");
        lines
            .iter()
            .filter(|l| l.name == name && pred(l))
            .map(|l| l.value)
            .sum::<f64>()
    };
    Some(PromHistogram {
        buckets: by_le.into_values().collect(),
        count: total("_count"),
        sum: total("_sum"),
    })
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        v => v.parse::<f64>().ok().filter(|x| *x >= 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP db_client_connection_count Connections by state.
# TYPE db_client_connection_count gauge
db_client_connection_count{db_client_connection_pool_name="main",db_client_connection_state="used"} 3
db_client_connection_count{db_client_connection_pool_name="main",db_client_connection_state="idle"} 17
db_client_connection_max{db_client_connection_pool_name="main"} 20
db_client_connection_pending_requests{db_client_connection_pool_name="main"} 0
db_client_connection_timeouts_total{db_client_connection_pool_name="main"} 2
db_client_connection_timeouts_created{db_client_connection_pool_name="main"} 1.7e9
db_client_connection_wait_time_seconds_bucket{db_client_connection_pool_name="main",le="0.001"} 90
db_client_connection_wait_time_seconds_bucket{db_client_connection_pool_name="main",le="0.01"} 99
db_client_connection_wait_time_seconds_bucket{db_client_connection_pool_name="main",le="+Inf"} 100
db_client_connection_wait_time_seconds_count{db_client_connection_pool_name="main"} 100
db_client_connection_wait_time_seconds_sum{db_client_connection_pool_name="main"} 0.25
http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="200",le="0.005"} 10
http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="200",le="+Inf"} 12
http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="404",le="0.005"} 1
http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="404",le="+Inf"} 1
http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="200"} 12
weird{a="x\"y, z}"} 1 1700000000
not a line
"#;

    #[test]
    fn parses_labels_escapes_and_special_values() {
        let lines = parse(TEXT);
        let weird = lines.iter().find(|l| l.name == "weird").unwrap();
        assert_eq!(
            weird.labels,
            vec![("a".to_string(), "x\"y, z}".to_string())]
        );
        assert_eq!(weird.value, 1.0);
        assert!(lines
            .iter()
            .any(|l| l.value.is_infinite() || l.label("le") == Some("+Inf")));
        assert!(!lines.iter().any(|l| l.name == "not"));
    }

    #[test]
    fn reads_the_otel_pool_names() {
        let pool = otel_pool(&parse(TEXT));
        assert_eq!(pool.used, Some(3.0));
        assert_eq!(pool.idle, Some(17.0));
        assert_eq!(pool.max, Some(20.0));
        assert_eq!(pool.pending, Some(0.0));
        assert_eq!(pool.timeouts, Some(2.0));
        let wait = pool.wait.unwrap();
        assert_eq!(
            wait.buckets,
            vec![(0.001, 90.0), (0.01, 99.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!((wait.count, wait.sum), (100.0, 0.25));
        let none = otel_pool(&parse("other_metric 1\n"));
        assert_eq!(none, OtelPool::default());
    }

    #[test]
    fn http_histograms_add_up_status_codes_per_route() {
        let routes = http_routes(&parse(TEXT));
        let h = &routes["GET /api/users/{id}"];
        assert_eq!(h.buckets, vec![(0.005, 11.0), (f64::INFINITY, 13.0)]);
    }
}

//! The server-side sampler: every second, read each app instance's server-side sources and the
//! database, and keep the answers as time series. Sources (`sources:` of the scenario):
//! [`pooled_app`] (its JSON monitoring API), [`prometheus`] (the app's `/metrics`, OpenTelemetry
//! pool names), [`postgres`] (the database's own counters) and [`pgbouncer`] (its admin
//! console), the last two once per tick, not per instance. A failed fetch is recorded as a gap (with the reason), never as an error of the
//! run.

pub mod pgbouncer;
pub mod pooled_app;
pub mod postgres;
pub mod prometheus;

pub use pooled_app::{HEALTH, POOL, REALTIME};

use crate::observe::{DbSample, OtelPool, PgbouncerSample, PromHistogram, ServerSample};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What to sample, resolved from the scenario for one set of instances.
#[derive(Clone, Default)]
pub struct SourceSet {
    /// pooled-app's JSON API.
    pub pooled_app: bool,
    /// The path of the app's Prometheus endpoint (`prometheus` source).
    pub prometheus: Option<String>,
    /// The database to watch (`postgres` source): a URL with its password, never printed.
    pub postgres: Option<String>,
    /// PgBouncer's admin console (`pgbouncer` source).
    pub pgbouncer: Option<PgbouncerTarget>,
}

/// Where the `pgbouncer` source reads: the admin console's URL (with the password, never
/// printed) and the database whose pools count.
#[derive(Clone)]
pub struct PgbouncerTarget {
    pub admin_url: String,
    pub database: String,
}

impl std::fmt::Debug for SourceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSet")
            .field("pooled_app", &self.pooled_app)
            .field("prometheus", &self.prometheus)
            .field("postgres", &self.postgres.as_ref().map(|_| "***"))
            .field("pgbouncer", &self.pgbouncer.as_ref().map(|t| &t.database))
            .finish()
    }
}

/// One endpoint's answer, or why there is none.
#[derive(Debug, Clone)]
pub enum Fetched {
    Json(Value),
    Gap(String),
}

impl Fetched {
    pub fn json(&self) -> Option<&Value> {
        match self {
            Fetched::Json(v) => Some(v),
            Fetched::Gap(_) => None,
        }
    }
}

/// One scrape of an app's Prometheus endpoint, read for the names poolproof uses.
#[derive(Debug, Clone)]
pub enum Scraped {
    Metrics {
        pool: OtelPool,
        http: BTreeMap<String, PromHistogram>,
    },
    Gap(String),
}

/// One sampling tick for one instance; a source that is not sampled is `None`.
#[derive(Debug, Clone)]
pub struct RawSample {
    /// When the sample was taken (converted to an offset from the start of measured load,
    /// which is only known once load runs, by [`RawSample::to_server_sample`]).
    pub at: Instant,
    /// 0-based instance index.
    pub instance: usize,
    pub pool: Option<Fetched>,
    pub health: Option<Fetched>,
    pub realtime: Option<Fetched>,
    pub metrics: Option<Scraped>,
}

/// What a sampler collected: per instance and tick, and the database's per tick.
#[derive(Debug, Default)]
pub struct Sampled {
    pub app: Vec<RawSample>,
    pub db: Vec<(Instant, DbSample)>,
    pub pgbouncer: Vec<(Instant, PgbouncerSample)>,
}

impl Sampled {
    /// The instances' samples with times as offsets from `origin`.
    pub fn server(&self, origin: Instant) -> Vec<ServerSample> {
        self.app
            .iter()
            .map(|s| s.to_server_sample(origin))
            .collect()
    }
    /// PgBouncer's samples with times as offsets from `origin`.
    pub fn pgbouncer(&self, origin: Instant) -> Vec<PgbouncerSample> {
        self.pgbouncer
            .iter()
            .map(|(at, s)| PgbouncerSample {
                t: offset_secs(origin, *at),
                ..s.clone()
            })
            .collect()
    }
    /// The database's samples with times as offsets from `origin`.
    pub fn db(&self, origin: Instant) -> Vec<DbSample> {
        self.db
            .iter()
            .map(|(at, s)| DbSample {
                t: offset_secs(origin, *at),
                ..s.clone()
            })
            .collect()
    }
}

/// A running sampler; [`Sampler::stop`] ends it and returns the series.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Sampled>,
}

impl Sampler {
    /// Starts sampling `bases` (instance base URLs) and the database of `sources` every
    /// `interval`.
    pub fn start(
        client: reqwest::Client,
        bases: Vec<String>,
        token: Option<String>,
        interval: Duration,
        sources: SourceSet,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut out = Sampled::default();
            let mut monitor = match sources.postgres.as_deref().map(postgres::DbMonitor::new) {
                Some(Ok(mut m)) => {
                    // A failure shows in the first samples' gaps.
                    let _ = m.connect(interval.max(Duration::from_secs(2))).await;
                    Some(m)
                }
                Some(Err(e)) => {
                    out.db.push((
                        Instant::now(),
                        DbSample {
                            error: Some(e),
                            ..DbSample::default()
                        },
                    ));
                    None
                }
                None => None,
            };
            let mut bouncer = match &sources.pgbouncer {
                Some(target) => {
                    match pgbouncer::PgbouncerMonitor::new(&target.admin_url, &target.database) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            out.pgbouncer.push((
                                Instant::now(),
                                PgbouncerSample {
                                    error: Some(e),
                                    ..PgbouncerSample::default()
                                },
                            ));
                            None
                        }
                    }
                }
                None => None,
            };
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let at = Instant::now();
                let fetches = bases.iter().enumerate().map(|(instance, base)| {
                    let client = &client;
                    let token = token.as_deref();
                    let sources = &sources;
                    let endpoint = Endpoint {
                        client,
                        base,
                        token,
                        timeout: interval,
                    };
                    async move {
                        let pooled = async {
                            if sources.pooled_app {
                                Some(pooled_app::fetch_all(endpoint).await)
                            } else {
                                None
                            }
                        };
                        let scrape = async {
                            match &sources.prometheus {
                                Some(path) => Some(scrape(endpoint, path).await),
                                None => None,
                            }
                        };
                        let (pooled, metrics) = tokio::join!(pooled, scrape);
                        let (pool, health, realtime) = match pooled {
                            Some((p, h, r)) => (Some(p), Some(h), Some(r)),
                            None => (None, None, None),
                        };
                        RawSample {
                            at,
                            instance,
                            pool,
                            health,
                            realtime,
                            metrics,
                        }
                    }
                });
                let db = async {
                    match monitor.as_mut() {
                        Some(m) => Some(m.sample(interval).await),
                        None => None,
                    }
                };
                let pools = async {
                    match bouncer.as_mut() {
                        Some(m) => Some(m.sample(interval).await),
                        None => None,
                    }
                };
                let (samples, db, pools) =
                    tokio::join!(futures::future::join_all(fetches), db, pools);
                out.app.extend(samples);
                if let Some(d) = db {
                    out.db.push((at, d));
                }
                if let Some(p) = pools {
                    out.pgbouncer.push((at, p));
                }
            }
            if let Some(m) = monitor {
                m.close().await;
            }
            if let Some(m) = bouncer {
                m.close().await;
            }
            out
        });
        Self { stop, task }
    }

    /// Stops sampling and returns every sample taken, in time order.
    pub async fn stop(self) -> Sampled {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// `now - origin` in seconds, negative when `now` is before `origin`.
pub fn offset_secs(origin: Instant, now: Instant) -> f64 {
    match now.checked_duration_since(origin) {
        Some(d) => d.as_secs_f64(),
        None => -(origin.duration_since(now).as_secs_f64()),
    }
}

impl RawSample {
    /// The sample in the report's terms, its time an offset from `origin` (the start of
    /// measured load).
    pub fn to_server_sample(&self, origin: Instant) -> ServerSample {
        let mut sample = ServerSample {
            t: offset_secs(origin, self.at),
            instance: self.instance,
            ..ServerSample::default()
        };
        pooled_app::fill(self, &mut sample);
        match &self.metrics {
            Some(Scraped::Metrics { pool, http }) => {
                sample.otel = Some(pool.clone());
                sample.http = http.clone();
            }
            Some(Scraped::Gap(reason)) => sample.errors.push(reason.clone()),
            None => {}
        }
        sample
    }
}

/// One scrape of `path`, parsed for the OpenTelemetry pool and HTTP names.
async fn scrape(endpoint: Endpoint<'_>, path: &str) -> Scraped {
    match endpoint.get(path, &[]).await {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body);
            let lines = prometheus::parse(&text);
            Scraped::Metrics {
                pool: prometheus::otel_pool(&lines),
                http: prometheus::http_routes(&lines),
            }
        }
        Err(gap) => Scraped::Gap(gap),
    }
}

/// Largest body a source may answer with (a /metrics page is a few hundred KiB at most).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One app instance as the sampler reads it: its base URL, the bearer token (external apps)
/// and how long one GET may take (the sampling interval).
#[derive(Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub token: Option<&'a str>,
    pub timeout: Duration,
}

impl Endpoint<'_> {
    /// GET `base` + `path`: the body of a 2xx answer (or of a status in `also`), else a short
    /// reason prefixed with the path.
    pub(crate) async fn get(&self, path: &str, also: &[u16]) -> Result<Vec<u8>, String> {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(self.timeout);
        if let Some(token) = self.token {
            req = req.bearer_auth(token);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(format!("{path}: timed out")),
            Err(e) if e.is_connect() => return Err(format!("{path}: connection refused")),
            Err(_) => return Err(format!("{path}: request failed")),
        };
        let status = resp.status();
        if !(status.is_success() || also.contains(&status.as_u16())) {
            return Err(format!("{path}: HTTP {}", status.as_u16()));
        }
        match resp.bytes().await {
            Ok(b) if b.len() <= MAX_BODY => Ok(b.to_vec()),
            Ok(_) => Err(format!("{path}: body larger than {MAX_BODY} bytes")),
            Err(_) => Err(format!("{path}: body cut short")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::Json;

    fn authorized(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer t0ken")
    }

    /// A real HTTP server standing in for an app instance: pool answers (with the token), health
    /// answers 503 with a body, realtime fails with 500.
    async fn serve() -> (String, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .route(
                POOL,
                get(|h: HeaderMap| async move {
                    if authorized(&h) {
                        Ok(Json(serde_json::json!({"size": 5, "in_use": 1, "acquire_wait": {"p95_us": 1500}})))
                    } else {
                        Err(StatusCode::UNAUTHORIZED)
                    }
                }),
            )
            .route(
                HEALTH,
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(serde_json::json!({"composite_score": 12})),
                    )
                }),
            )
            .route(
                REALTIME,
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route(
                "/metrics",
                get(|| async {
                    "db_client_connection_count{db_client_connection_state=\"used\"} 4\ndb_client_connection_max 8\n"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (base, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_every_interval_and_records_gaps() {
        let (base, server) = serve().await;
        // Load starts 1 s from now: the first samples are warm-up, with negative times.
        let origin = Instant::now() + Duration::from_secs(1);
        let client = reqwest::Client::new();
        let sampler = Sampler::start(
            client,
            vec![base.clone(), "http://127.0.0.1:9".into()],
            Some("t0ken".into()),
            Duration::from_millis(100),
            SourceSet {
                pooled_app: true,
                prometheus: Some("/metrics".into()),
                postgres: None,
                pgbouncer: None,
            },
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        server.abort();
        let _ = server.await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let samples = sampler.stop().await.app;

        let live: Vec<_> = samples.iter().filter(|s| s.instance == 0).collect();
        assert!(live.len() >= 5, "expected >= 5 ticks, got {}", live.len());
        let first = live[0];
        assert_eq!(
            first
                .pool
                .as_ref()
                .and_then(|f| f.json())
                .and_then(|v| v["in_use"].as_u64()),
            Some(1)
        );
        assert_eq!(
            first
                .health
                .as_ref()
                .and_then(Fetched::json)
                .and_then(|v| v["composite_score"].as_u64()),
            Some(12)
        );
        assert!(matches!(&first.realtime, Some(Fetched::Gap(r)) if r.contains("HTTP 500")));
        // After the server went away, the samples are gaps, not a crash.
        let last = live[live.len() - 1];
        assert!(
            matches!(&last.pool, Some(Fetched::Gap(_))),
            "{:?}",
            last.pool
        );
        assert!(
            matches!(&last.metrics, Some(Scraped::Gap(_))),
            "{:?}",
            last.metrics
        );
        // The unreachable instance is sampled too, as gaps.
        assert!(samples
            .iter()
            .any(|s| s.instance == 1 && matches!(s.pool, Some(Fetched::Gap(_)))));
        assert!(samples.windows(2).all(|w| w[0].at <= w[1].at));
        let server = first.to_server_sample(origin);
        assert!(server.t < -0.5, "warm-up sample at {}", server.t);
        assert_eq!(
            server
                .pool
                .as_ref()
                .map(|p| (p.in_use, p.acquire_wait_p95_ms)),
            Some((1, 1.5))
        );
        assert_eq!(server.health_score, Some(12.0));
        assert_eq!(server.server_p95_ms, None);
        assert_eq!(server.errors.len(), 1, "{:?}", server.errors);
        let otel = server.otel.expect("the /metrics scrape");
        assert_eq!(
            (otel.used, otel.max, otel.pending),
            (Some(4.0), Some(8.0), None)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_token_the_protected_endpoint_is_a_gap() {
        let (base, server) = serve().await;
        let sampler = Sampler::start(
            reqwest::Client::new(),
            vec![base],
            None,
            Duration::from_millis(100),
            SourceSet {
                pooled_app: true,
                ..SourceSet::default()
            },
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let samples = sampler.stop().await.app;
        server.abort();
        assert!(matches!(&samples[0].pool, Some(Fetched::Gap(r)) if r.contains("HTTP 401")));
        // Sources that are not sampled stay unasked.
        assert!(samples[0].metrics.is_none());
    }
}

//! A real Prometheus (Debian's `prometheus`, `ci/ensure-promtool.sh`) scraping two pooled-app
//! instances that share Postgres and Redis, under load, every second, with the token and the
//! rules of `deploy/prometheus/`. Its
//! `histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket[30s])))`
//! must agree with the app's own merged p95 of both instances over the same 30 s
//! (`/api/performance/metrics/realtime?scope=cluster&window=30`) within the bucket resolution:
//! the bucket of `/metrics` around the app's value (see [`agreement`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pooled_app::exposition::buckets::bucket_around;
use serde_json::Value;

use crate::support::app::{TestApp, API_TOKEN};
use crate::support::load::Load;
use crate::support::services::both as services;
use crate::support::{ensure, workspace_root};

/// A Prometheus server in a temp dir on a free loopback port, killed and removed on drop
/// (also on a panic), and by the kernel if the test process dies first.
struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts `bin` scraping `targets` (host:port) every second with the bearer `token`,
    /// evaluating deploy/prometheus/rules.yml.
    async fn start(bin: &Path, targets: &[String], token: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let rules = workspace_root().join("deploy/prometheus/rules.yml");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{}'\n\
             scrape_configs:\n  - job_name: pooled-app\n    authorization:\n      type: Bearer\n      credentials_file: '{}'\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            token_file.display(),
            list.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill Prometheus when the
        // thread that started it (the test's) goes away, so no server outlives a killed test.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start prometheus");
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let c = reqwest::Client::new();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = c.get(format!("{}/-/ready", p.base)).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < end, "prometheus not ready:\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query at `time` (Unix seconds); the result vector.
    async fn query(&self, q: &str, time: f64) -> Vec<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.base),
            &[("query", q), ("time", &format!("{time:.3}"))],
        )
        .unwrap();
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(v["status"], "success", "{q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of a query that must return one sample.
    async fn scalar(&self, q: &str, time: f64) -> f64 {
        let r = self.query(q, time).await;
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0]["value"][1].as_str().unwrap().parse().unwrap()
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The resolution of the comparison. Prometheus estimates a quantile inside the bucket that
/// holds its rank, so with the same requests its p95 lies in the bucket `(lo, hi]` of
/// `/metrics` that holds the app's exact p95. Two things can move the rank across a bucket
/// edge: the app's HDR value reads up to 1 % above the true one, and the two 30 s windows are
/// cut at different instants (Prometheus at its scrapes, ≤ 1 s apart; the app at whole
/// seconds) and Prometheus's includes the monitoring routes (its own scrapes). So where the
/// app's value is within 5 % of an edge, the buckets on both sides of that edge are allowed.
/// Returns the allowed interval.
fn agreement(app_p95_s: f64) -> (f64, f64) {
    let (lo, hi) = bucket_around(app_p95_s);
    let lo = if lo > 0.0 && app_p95_s <= lo * 1.05 {
        bucket_around(lo).0
    } else {
        lo
    };
    let hi = if app_p95_s >= hi * 0.95 {
        bucket_around(hi * 1.0001).1
    } else {
        hi
    };
    (lo, hi)
}

#[test]
fn agreement_interval_is_the_bucket_or_its_neighbours_near_an_edge() {
    assert_eq!(agreement(0.0042), (0.003, 0.005));
    assert_eq!(agreement(0.0049), (0.003, 0.0075));
    assert_eq!(agreement(0.00305), (0.002, 0.005));
    assert_eq!(agreement(0.00005), (0.0, 0.0001));
}

const APP_ROUTES: &str =
    r#"http_route!~"/api/performance/.*|/metrics|/healthz|/readyz|/dashboard.*""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_p95_over_two_instances_matches_the_apps_merged_p95() {
    let promtool = ensure("ensure-promtool.sh");
    let bin: PathBuf = promtool.with_file_name("prometheus");
    let (pg, redis) = services().await;
    let a = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[
            ("PERFORMANCE_API_TOKEN", API_TOKEN.into()),
            ("INSTANCE_ID", "prom-a".into()),
        ],
    )
    .await;
    let b = TestApp::start_ready(
        &pg.url(),
        &redis.url(),
        &[
            ("PERFORMANCE_API_TOKEN", API_TOKEN.into()),
            ("INSTANCE_ID", "prom-b".into()),
        ],
    )
    .await;
    let targets: Vec<String> = [&a, &b]
        .iter()
        .map(|x| x.base.trim_start_matches("http://").to_owned())
        .collect();
    let prom = Prometheus::start(&bin, &targets, API_TOKEN).await;
    let load = Load::start(&[a.base.clone(), b.base.clone()], 6);

    // Both targets up (the token works), then 35 s of load so the 30 s windows are full.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let up = prom.query("up{job=\"pooled-app\"} == 1", now_unix()).await;
        if up.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < end,
            "targets not up: {up:?}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(35)).await;

    // Cut both windows at the same whole second T, once that second has reached Redis.
    let t = now_unix().ceil();
    tokio::time::sleep(Duration::from_secs_f64(t - now_unix() + 0.4)).await;
    let (code, cl) = a
        .get("/api/performance/metrics/realtime?scope=cluster&window=30")
        .await;
    assert_eq!(code, 200, "{cl}");
    // The app cut its window at its own clock's second: Prometheus cuts at the same one (the
    // request may have reached the app after T on a busy host).
    let t = cl["timestamp"].as_f64().unwrap();
    let mut instances: Vec<&str> = cl["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, ["prom-a", "prom-b"]);
    let prom_p95 = prom
        .scalar(
            "histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket[30s])))",
            t,
        )
        .await;
    let prom_p95_app = prom
        .scalar(
            &format!("histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{{{APP_ROUTES}}}[30s])))"),
            t,
        )
        .await;
    let prom_requests = prom
        .scalar(
            &format!(
                "sum(increase(http_server_request_duration_seconds_count{{{APP_ROUTES}}}[30s]))"
            ),
            t,
        )
        .await;
    let per_instance = prom
        .query(
            &format!("sum by (instance) (increase(http_server_request_duration_seconds_count{{{APP_ROUTES}}}[30s]))"),
            t,
        )
        .await;
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0);

    let app_p95 = cl["p95_ms"].as_f64().unwrap() / 1000.0;
    let app_requests = cl["requests"].as_u64().unwrap();
    let (lo, hi) = agreement(app_p95);
    let (blo, bhi) = bucket_around(app_p95);
    println!(
        "real prometheus: {ok} requests over both instances; window 30 s ending {t}: app merged p95 {:.3} ms over {app_requests} requests, bucket ({:.3}, {:.3}] ms, allowed [{:.3}, {:.3}] ms; \
         prometheus p95 {:.3} ms (all routes), {:.3} ms (app routes), {prom_requests:.0} requests (app routes; per instance {})",
        app_p95 * 1e3,
        blo * 1e3,
        bhi * 1e3,
        lo * 1e3,
        hi * 1e3,
        prom_p95 * 1e3,
        prom_p95_app * 1e3,
        per_instance
            .iter()
            .map(|r| format!("{} {}", r["metric"]["instance"], r["value"][1]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(app_requests > 1000, "too little load to compare: {cl}");
    assert!(
        (lo..=hi).contains(&prom_p95),
        "Prometheus p95 {prom_p95} s outside [{lo}, {hi}] around the app's merged p95 {app_p95} s"
    );
    // Both instances were scraped, and Prometheus saw (about) the app's requests: its
    // increase() extrapolates to the window's edges, which are cut ≤ 1 s apart.
    assert_eq!(per_instance.len(), 2, "{per_instance:?}");
    let ratio = prom_requests / app_requests as f64;
    assert!(
        (0.93..=1.07).contains(&ratio),
        "Prometheus counted {prom_requests} app requests in 30 s, the app {app_requests}"
    );

    // The shipped rules work on the real exposition: every rule evaluates without error, the
    // per-route p95 is recorded, the db rules' `le` matchers find the bucket edges, and
    // nothing alerts under this load.
    let rules: Value = reqwest::get(format!("{}/api/v1/rules", prom.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut evaluated = 0;
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
            evaluated += 1;
        }
    }
    assert_eq!(evaluated, 14);
    let now = now_unix();
    let routes = prom
        .query(
            "job_route:http_server_request_duration_seconds:p95_1m{http_route=\"/api/users/{id}\"}",
            now,
        )
        .await;
    assert_eq!(routes.len(), 1, "{routes:?}");
    for le in ["2|2\\\\.0", "0\\\\.5"] {
        let n = prom
            .query(
                &format!("db_client_operation_duration_seconds_bucket{{le=~\"{le}\"}}"),
                now,
            )
            .await;
        assert!(!n.is_empty(), "no bucket matches le=~{le}");
    }
    let alerts = prom.query("ALERTS", now).await;
    assert!(alerts.is_empty(), "alerts under normal load: {alerts:?}");

    let mut out = std::io::stdout();
    let _ = writeln!(out, "prometheus log:\n{}", prom.log());
    drop(prom);
    a.stop().await;
    b.stop().await;
}

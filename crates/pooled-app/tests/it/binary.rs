//! The real `pooled-app` binary against real Postgres and Redis: it serves, writes one JSON log line per
//! request with the report's field names and no secret, and exits 0 on SIGTERM after a graceful shutdown.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::services;

/// Kills the child if the test fails before it exits.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_logs_json_and_stops_on_sigterm() {
    let (pg, redis) = services::both().await;
    let password = pg.password().to_string();
    assert!(!password.is_empty());
    let bind = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_pooled-app"))
        .env_clear()
        .env("DATABASE_URL", pg.url())
        .env("REDIS_URL", redis.url())
        .env("BIND_ADDR", &bind)
        .env("SEED_USERS", "2000")
        .env("SEED_BUDDY_REQUESTS", "5000")
        .env("RESEND_API_KEY", "re_test_secret_key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pooled-app");
    let mut guard = Guard(Some(child));

    let http = reqwest::Client::new();
    let base = format!("http://{bind}");
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pooled-app never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .post(format!("{base}/api/buddy/respond"))
        .json(&serde_json::json!({"request_id": 3, "accept": true}))
        .send()
        .await
        .expect("respond");
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/api/users/77"))
        .send()
        .await
        .expect("user");
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/no/such/path"))
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), 404);

    let Some(child) = guard.0.as_mut() else {
        unreachable!()
    };
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "exit status {status:?}");

    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    for secret in [password.as_str(), "re_test_secret_key"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret leaked into the output"
        );
    }
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "pooled_app::request")
        .collect();
    let respond = requests
        .iter()
        .find(|l| l["path"] == "/api/buddy/respond")
        .expect("a log line for the respond");
    assert_eq!(respond["method"], "POST");
    assert_eq!(respond["status_code"], 200);
    assert!(
        // Its one statement, plus the profile read of a cold cache.
        respond["database_queries"].as_u64().unwrap_or(0) >= 1,
        "{respond}"
    );
    assert_eq!(
        respond["cache_hits"].as_u64().unwrap_or(9) + respond["cache_misses"].as_u64().unwrap_or(9),
        2,
        "{respond}"
    );
    assert!(
        respond["duration_ms"].as_f64().unwrap_or(-1.0) > 0.0,
        "{respond}"
    );
    assert!(
        respond["response_bytes"].as_u64().unwrap_or(0) > 0,
        "{respond}"
    );
    assert!(
        requests.iter().any(|l| l["path"] == "/api/users/{id}"),
        "no line for the user route"
    );
    let unmatched = requests
        .iter()
        .find(|l| l["status_code"] == 404)
        .expect("the 404 line");
    assert_eq!(
        unmatched["path"], "unmatched",
        "raw paths must not become labels"
    );
    assert!(lines
        .iter()
        .any(|l| l["message"] == "shutdown signal received"));

    services::ok("shutdown Postgres", pg.shutdown().await);
    services::ok("shutdown Redis", redis.shutdown().await);
}

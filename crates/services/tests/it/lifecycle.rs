//! Both providers against the real binaries and images: they start and answer, pause and
//! unpause, stop/start and restart on the same port (Postgres keeps its data), and leave no
//! container, process, pid file or temp dir behind after shutdown or drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use poolproof_services::{
    start_both, start_postgres, start_redis, Options, Postgres, Provider, Redis,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// True when containers can be tested here. Where CI has set the engine up
/// (`POOLPROOF_EXPECT_CONTAINERS`), their absence is a failure, not a skip.
async fn containers_available() -> bool {
    let defaults = Options::default();
    let images = [defaults.postgres_image, defaults.redis_image];
    let present = poolproof_services::engine_answers().await
        && images.iter().all(|image| {
            Command::new("docker")
                .args(["image", "inspect", image])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !present {
        assert!(
            std::env::var_os("POOLPROOF_EXPECT_CONTAINERS").is_none(),
            "POOLPROOF_EXPECT_CONTAINERS is set but no engine or no local images"
        );
        eprintln!("SKIP: no Docker engine or images (run ci/services.sh)");
    }
    present
}

fn options(provider: Provider) -> Options {
    Options::default().with_provider(provider)
}

/// Runs SQL through psql (a real client session); `Err` carries psql's error.
fn psql(pg: &Postgres, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args([
            "-U",
            pg.user(),
            "-d",
            pg.database(),
            "-X",
            "-A",
            "-t",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", pg.password())
        .env("PGCONNECT_TIMEOUT", "2")
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// A psql session kept open: statements go down its stdin, result lines come back on a channel.
struct Session {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Session {
    fn open(pg: &Postgres) -> Session {
        let mut child = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
            .args(["-U", pg.user(), "-d", pg.database(), "-X", "-A", "-t"])
            .env("PGPASSWORD", pg.password())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("psql starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            stdin,
            lines,
        }
    }

    /// Sends `sql`; its first result line, if one arrives within `wait`.
    fn query(&mut self, sql: &str, wait: Duration) -> Option<String> {
        use std::io::Write;
        writeln!(self.stdin, "{sql};").expect("psql takes input");
        self.stdin.flush().expect("psql takes input");
        self.lines.recv_timeout(wait).ok()
    }

    /// The next result line (of a statement sent earlier).
    fn next(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One RESP command over raw TCP with a 2 s limit; the reply's first line.
async fn redis_cmd(port: u16, args: &[&str]) -> Result<String, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let mut message = format!("*{}\r\n", args.len());
        for arg in args {
            message.push_str(&format!("${}\r\n{}\r\n", arg.len(), arg));
        }
        stream
            .write_all(message.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = vec![0u8; 512];
        let n = stream.read(&mut reply).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&reply[..n]).into_owned();
        Ok(text.lines().next().unwrap_or_default().to_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| "no answer within 2s".to_owned())?
}

fn docker_ps(label: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=poolproof.run={label}"),
        ])
        .output()
        .expect("docker ps runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; its state field says Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

fn pid_files_of(label: &str) -> Vec<PathBuf> {
    let dir = poolproof_services::state_dir().join("pids");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    std::fs::read_to_string(p)
                        .is_ok_and(|text| text.lines().any(|l| l == format!("run={label}")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where the service's remains would be, to check after it is gone.
struct Traces {
    label: String,
    container: Option<String>,
    pid: Option<u32>,
    /// The service process's children (Postgres's are in sessions of their own).
    children: Vec<u32>,
    dir: Option<PathBuf>,
}

/// Pids whose parent is `pid`, from /proc.
fn children_of(pid: Option<u32>) -> Vec<u32> {
    let Some(pid) = pid else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                            == Some(pid.to_string().as_str())
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Traces {
    async fn of_postgres(pg: &Postgres, label: &str) -> Traces {
        let pid = pg.pid().await;
        Traces {
            label: label.to_owned(),
            container: pg.container_id().await,
            pid,
            children: children_of(pid),
            dir: pg.dir().await,
        }
    }

    async fn of_redis(redis: &Redis, label: &str) -> Traces {
        let pid = redis.pid().await;
        Traces {
            label: label.to_owned(),
            container: redis.container_id().await,
            pid,
            children: children_of(pid),
            dir: redis.dir().await,
        }
    }

    fn assert_present(&self, provider: Provider) {
        match provider {
            Provider::Containers => {
                let id = self.container.as_deref().expect("a container id");
                assert!(docker_ps(&self.label)
                    .iter()
                    .any(|c| id.starts_with(c.as_str())));
            }
            Provider::Processes => {
                assert!(alive(self.pid.expect("a pid")));
                assert!(self.dir.as_ref().expect("a temp dir").is_dir());
                assert!(!pid_files_of(&self.label).is_empty());
            }
        }
    }

    fn assert_gone(&self) {
        assert_eq!(docker_ps_if_engine(&self.label), Vec::<String>::new());
        if let Some(pid) = self.pid {
            assert!(!alive(pid), "process {pid} still alive");
        }
        for child in &self.children {
            assert!(
                !alive(*child),
                "child {child} of {:?} still alive",
                self.pid
            );
        }
        if let Some(dir) = &self.dir {
            assert!(!dir.exists(), "{} still exists", dir.display());
        }
        assert_eq!(pid_files_of(&self.label), Vec::<PathBuf>::new());
    }
}

fn docker_ps_if_engine(label: &str) -> Vec<String> {
    let engine = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if engine {
        docker_ps(label)
    } else {
        Vec::new()
    }
}

async fn postgres_lifecycle(provider: Provider) {
    let options = options(provider);
    let pg = start_postgres(&options).await.expect("postgres starts");
    assert_eq!(pg.provider(), provider);
    let port = pg.port();
    assert_eq!(
        pg.url(),
        format!(
            "postgres://poolproof:{}@127.0.0.1:{port}/poolproof",
            pg.password()
        )
    );
    assert!(!pg.url_redacted().contains(pg.password()));
    assert!(!format!("{pg:?}").contains(pg.password()));
    let traces = Traces::of_postgres(&pg, &options.run_label).await;
    traces.assert_present(provider);

    assert_eq!(psql(&pg, "SELECT 40 + 2").as_deref(), Ok("42"));
    psql(
        &pg,
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    )
    .expect("DDL runs");
    // The server runs as a non-root user and takes the test settings.
    assert_eq!(psql(&pg, "SHOW fsync").as_deref(), Ok("off"));
    assert_eq!(psql(&pg, "SHOW max_connections").as_deref(), Ok("200"));

    let mut open = Session::open(&pg);
    assert_eq!(
        open.query("SELECT 41", Duration::from_secs(10)).as_deref(),
        Some("41")
    );
    pg.pause().await.expect("pause");
    assert!(
        psql(&pg, "SELECT 1").is_err(),
        "a paused server must not answer"
    );
    // Nor on a connection opened before the pause (its backend must be stopped too).
    assert_eq!(
        open.query("SELECT 42", Duration::from_millis(1500)),
        None,
        "a paused server answered on an open connection"
    );
    pg.unpause().await.expect("unpause");
    assert_eq!(psql(&pg, "SELECT 1").as_deref(), Ok("1"));
    assert_eq!(open.next(Duration::from_secs(10)).as_deref(), Some("42"));
    drop(open);

    pg.stop().await.expect("stop");
    let refused = psql(&pg, "SELECT 1").expect_err("a stopped server must not answer");
    assert!(!refused.is_empty());
    pg.start().await.expect("start");
    assert_eq!(pg.port(), port);
    assert_eq!(
        psql(&pg, "SELECT x FROM kept").as_deref(),
        Ok("7"),
        "data kept"
    );

    pg.restart().await.expect("restart");
    assert_eq!(pg.port(), port);
    assert_eq!(psql(&pg, "SELECT x FROM kept").as_deref(), Ok("7"));

    pg.shutdown().await.expect("shutdown");
    traces.assert_gone();
}

async fn redis_lifecycle(provider: Provider) {
    let options = options(provider);
    let redis = start_redis(&options).await.expect("redis starts");
    assert_eq!(redis.provider(), provider);
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
    let traces = Traces::of_redis(&redis, &options.run_label).await;
    traces.assert_present(provider);

    assert_eq!(redis_cmd(port, &["PING"]).await.as_deref(), Ok("+PONG"));
    assert_eq!(
        redis_cmd(port, &["SET", "k", "v"]).await.as_deref(),
        Ok("+OK")
    );
    assert_eq!(redis_cmd(port, &["GET", "k"]).await.as_deref(), Ok("$1"));

    redis.pause().await.expect("pause");
    assert!(
        redis_cmd(port, &["PING"]).await.is_err(),
        "paused redis must not answer"
    );
    redis.unpause().await.expect("unpause");
    assert_eq!(redis_cmd(port, &["PING"]).await.as_deref(), Ok("+PONG"));

    redis.stop().await.expect("stop");
    assert!(redis_cmd(port, &["PING"]).await.is_err());
    redis.start().await.expect("start");
    assert_eq!(redis.port(), port);
    assert_eq!(redis_cmd(port, &["PING"]).await.as_deref(), Ok("+PONG"));
    redis.restart().await.expect("restart");
    assert_eq!(redis_cmd(port, &["PING"]).await.as_deref(), Ok("+PONG"));

    redis.shutdown().await.expect("shutdown");
    traces.assert_gone();
}

async fn drop_cleans_up(provider: Provider) {
    let options = options(provider);
    let (pg, redis) = start_both(&options).await.expect("both start");
    assert_eq!(psql(&pg, "SELECT 1").as_deref(), Ok("1"));
    assert_eq!(
        redis_cmd(redis.port(), &["PING"]).await.as_deref(),
        Ok("+PONG")
    );
    let pg_traces = Traces::of_postgres(&pg, &options.run_label).await;
    let redis_traces = Traces::of_redis(&redis, &options.run_label).await;
    pg_traces.assert_present(provider);
    redis_traces.assert_present(provider);
    if provider == Provider::Processes {
        assert!(!pg_traces.children.is_empty(), "postgres runs children");
    }
    // Paused services must go too, children included.
    pg.pause().await.expect("pause");
    drop(pg);
    drop(redis);
    pg_traces.assert_gone();
    redis_traces.assert_gone();
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_postgres_lifecycle() {
    postgres_lifecycle(Provider::Processes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_redis_lifecycle() {
    redis_lifecycle(Provider::Processes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_drop_cleans_up() {
    drop_cleans_up(Provider::Processes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_postgres_lifecycle() {
    if containers_available().await {
        postgres_lifecycle(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_redis_lifecycle() {
    if containers_available().await {
        redis_lifecycle(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_drop_cleans_up() {
    if containers_available().await {
        drop_cleans_up(Provider::Containers).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn drop_cleans_up_on_a_current_thread_runtime() {
    // #[tokio::test]'s default flavor: container removal on drop must work there too.
    let provider = if containers_available().await {
        Provider::Containers
    } else {
        Provider::Processes
    };
    drop_cleans_up(provider).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_provider_prefers_containers_when_available() {
    let expected = if containers_available().await {
        Provider::Containers
    } else {
        Provider::Processes
    };
    let mut options = Options {
        provider: None,
        ..Options::default()
    };
    assert_eq!(
        poolproof_services::resolve_provider(&options).await,
        expected
    );
    // Images that do not exist locally: never a pull, processes instead.
    options.postgres_image = "poolproof/no-such-image:0".to_owned();
    assert_eq!(
        poolproof_services::resolve_provider(&options).await,
        Provider::Processes
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_is_a_clear_error() {
    if !containers_available().await {
        return;
    }
    let mut options = options(Provider::Containers);
    options.redis_image = "poolproof/no-such-image:0".to_owned();
    let err = start_redis(&options).await.expect_err("no such image");
    let text = err.to_string();
    assert!(text.contains("poolproof/no-such-image:0"), "{text}");
    assert!(text.contains("ci/build-images.sh"), "{text}");
    assert_eq!(docker_ps(&options.run_label), Vec::<String>::new());
}

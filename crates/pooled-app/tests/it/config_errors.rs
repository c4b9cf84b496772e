//! Every bad configuration value is rejected with one line naming the variable and the expected form;
//! the real binary prints that line on stderr and exits with code 2 before binding its port.

use std::process::Command;

use pooled_app::config::Config;

const DB: &str = "postgres://app:pw@127.0.0.1:5432/app";

/// (variable, bad value, the exact error line).
const CASES: &[(&str, &str, &str)] = &[
    (
        "DATABASE_URL",
        "mysql://u@h/db",
        r#"invalid DATABASE_URL="mysql://u@h/db": expected a postgres:// URL"#,
    ),
    (
        "DATABASE_URL",
        "not a url",
        r#"invalid DATABASE_URL="[redacted]": expected a postgres:// URL"#,
    ),
    (
        "DATABASE_MIGRATION_URL",
        "mysql://u:pw@h/db",
        r#"invalid DATABASE_MIGRATION_URL="mysql://u:***@h/db": expected a postgres:// URL"#,
    ),
    (
        "DATABASE_PREPARED_STATEMENTS",
        "sometimes",
        r#"invalid DATABASE_PREPARED_STATEMENTS="sometimes": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "REDIS_URL",
        "http://127.0.0.1:6379",
        r#"invalid REDIS_URL="http://127.0.0.1:6379": expected a redis:// URL"#,
    ),
    (
        "BIND_ADDR",
        "localhost",
        r#"invalid BIND_ADDR="localhost": expected an IP address and port, e.g. 127.0.0.1:8000"#,
    ),
    (
        "BIND_ADDR",
        "127.0.0.1:99999",
        r#"invalid BIND_ADDR="127.0.0.1:99999": expected an IP address and port, e.g. 127.0.0.1:8000"#,
    ),
    (
        "ENABLE_CONNECTION_POOLING",
        "maybe",
        r#"invalid ENABLE_CONNECTION_POOLING="maybe": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "DATABASE_POOL_SIZE",
        "abc",
        r#"invalid DATABASE_POOL_SIZE="abc": expected an integer 1..=1000"#,
    ),
    (
        "DATABASE_POOL_SIZE",
        "0",
        r#"invalid DATABASE_POOL_SIZE="0": expected an integer 1..=1000"#,
    ),
    (
        "DATABASE_POOL_SIZE",
        "-3",
        r#"invalid DATABASE_POOL_SIZE="-3": expected an integer 1..=1000"#,
    ),
    (
        "DATABASE_POOL_MIN",
        "25",
        r#"invalid DATABASE_POOL_MIN="25": expected an integer 0..=DATABASE_POOL_SIZE (20)"#,
    ),
    (
        "DATABASE_POOL_MIN",
        "x",
        r#"invalid DATABASE_POOL_MIN="x": expected an integer 0..=1000"#,
    ),
    (
        "DATABASE_ACQUIRE_TIMEOUT_MS",
        "0",
        r#"invalid DATABASE_ACQUIRE_TIMEOUT_MS="0": expected an integer 1..=600000"#,
    ),
    (
        "DATABASE_CONNECT_TIMEOUT_MS",
        "1.5",
        r#"invalid DATABASE_CONNECT_TIMEOUT_MS="1.5": expected an integer 1..=600000"#,
    ),
    (
        "DATABASE_FALLBACK_AFTER_ERRORS",
        "0",
        r#"invalid DATABASE_FALLBACK_AFTER_ERRORS="0": expected an integer 1..=1000000"#,
    ),
    (
        "DATABASE_FALLBACK_MAX_CONNECTIONS",
        "0",
        r#"invalid DATABASE_FALLBACK_MAX_CONNECTIONS="0": expected an integer 1..=1000"#,
    ),
    (
        "HTTP_HEADER_TIMEOUT_MS",
        "10s",
        r#"invalid HTTP_HEADER_TIMEOUT_MS="10s": expected an integer 1..=3600000"#,
    ),
    (
        "HTTP_IDLE_TIMEOUT_MS",
        "0",
        r#"invalid HTTP_IDLE_TIMEOUT_MS="0": expected an integer 1..=3600000"#,
    ),
    (
        "HTTP_BODY_TIMEOUT_MS",
        "-5",
        r#"invalid HTTP_BODY_TIMEOUT_MS="-5": expected an integer 1..=3600000"#,
    ),
    (
        "HTTP_REQUEST_TIMEOUT_MS",
        "forever",
        r#"invalid HTTP_REQUEST_TIMEOUT_MS="forever": expected an integer 1..=3600000"#,
    ),
    (
        "HTTP_MAX_CONNECTIONS",
        "0",
        r#"invalid HTTP_MAX_CONNECTIONS="0": expected an integer 1..=1000000"#,
    ),
    (
        "HTTP_MAX_BODY_BYTES",
        "2GB",
        r#"invalid HTTP_MAX_BODY_BYTES="2GB": expected an integer 1..=1073741824"#,
    ),
    (
        "DATABASE_IDLE_PING_MS",
        "soon",
        r#"invalid DATABASE_IDLE_PING_MS="soon": expected an integer 0..=86400000"#,
    ),
    (
        "ENABLE_PERFORMANCE_MONITORING",
        "2",
        r#"invalid ENABLE_PERFORMANCE_MONITORING="2": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "ENABLE_PERFORMANCE_ALERTS",
        "enabled",
        r#"invalid ENABLE_PERFORMANCE_ALERTS="enabled": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "METRICS_RETENTION_HOURS",
        "0",
        r#"invalid METRICS_RETENTION_HOURS="0": expected an integer 1..=8760"#,
    ),
    (
        "METRICS_RETENTION_HOURS",
        "24h",
        r#"invalid METRICS_RETENTION_HOURS="24h": expected an integer 1..=8760"#,
    ),
    (
        "PERFORMANCE_ALERT_EMAIL",
        "admin",
        r#"invalid PERFORMANCE_ALERT_EMAIL="admin": expected an e-mail address, e.g. ops@example.com"#,
    ),
    (
        "PERFORMANCE_ALERT_EMAIL",
        "a@b.com,c@d.com",
        r#"invalid PERFORMANCE_ALERT_EMAIL="a@b.com,c@d.com": expected an e-mail address, e.g. ops@example.com"#,
    ),
    (
        "PERFORMANCE_ALERT_EMAIL_FROM",
        "Alerts <nobody>",
        r#"invalid PERFORMANCE_ALERT_EMAIL_FROM="Alerts <nobody>": expected an e-mail address or `Name <address>`, e.g. Alerts <alerts@example.com>"#,
    ),
    (
        "INSTANCE_ID",
        "app 1",
        r#"invalid INSTANCE_ID="app 1": expected 1 to 64 characters of A-Z a-z 0-9 . _ -, e.g. app-1"#,
    ),
    (
        "SLACK_WEBHOOK_URL",
        "hooks.slack.com/T0/B0/secretpart",
        r#"invalid SLACK_WEBHOOK_URL=[redacted]: expected an http:// or https:// URL"#,
    ),
    (
        "RESEND_API_URL",
        "ftp://api.resend.com",
        r#"invalid RESEND_API_URL="ftp://api.resend.com": expected an http:// or https:// URL"#,
    ),
    (
        "ALERT_EVAL_INTERVAL_MS",
        "5",
        r#"invalid ALERT_EVAL_INTERVAL_MS="5": expected an integer 10..=3600000"#,
    ),
    (
        "ALERT_ROUTE_CRITICAL",
        "pager",
        r#"invalid ALERT_ROUTE_CRITICAL="pager": expected a comma-separated list of slack, email (or none)"#,
    ),
    (
        "ALERT_ROUTE_WARNING",
        "slack;email",
        r#"invalid ALERT_ROUTE_WARNING="slack;email": expected a comma-separated list of slack, email (or none)"#,
    ),
    (
        "ALERT_ROUTE_INFO",
        "slack,,email",
        r#"invalid ALERT_ROUTE_INFO="slack,,email": expected a comma-separated list of slack, email (or none)"#,
    ),
    (
        "PERFORMANCE_API_TOKEN",
        "has space",
        r#"invalid PERFORMANCE_API_TOKEN=[redacted]: expected printable ASCII without spaces"#,
    ),
    (
        "LOG_REQUESTS",
        "loud",
        r#"invalid LOG_REQUESTS="loud": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "CACHE_TTL_SECS",
        "0",
        r#"invalid CACHE_TTL_SECS="0": expected an integer 1..=2592000"#,
    ),
    (
        "CACHE_TIMEOUT_MS",
        "fast",
        r#"invalid CACHE_TIMEOUT_MS="fast": expected an integer 1..=60000"#,
    ),
    (
        "RUN_MIGRATIONS",
        "sometimes",
        r#"invalid RUN_MIGRATIONS="sometimes": expected a boolean (true/false, 1/0, yes/no, on/off)"#,
    ),
    (
        "SEED_USERS",
        "1",
        r#"invalid SEED_USERS="1": expected an integer 2..=10000000"#,
    ),
    (
        "SEED_BUDDY_REQUESTS",
        "many",
        r#"invalid SEED_BUDDY_REQUESTS="many": expected an integer 1..=100000000"#,
    ),
];

#[test]
fn every_bad_value_is_rejected_with_its_line() {
    for (var, value, expected) in CASES {
        let vars = vec![("DATABASE_URL", DB), (var, value)];
        match Config::from_vars(vars) {
            Ok(_) => panic!("{var}={value:?} was accepted"),
            Err(e) => {
                assert_eq!(e.var(), *var, "{var}={value:?}");
                assert_eq!(e.to_string(), *expected, "{var}={value:?}");
            }
        }
    }
}

#[test]
fn missing_database_url_is_named() {
    let e = Config::from_vars(Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing DATABASE_URL: expected a postgres:// URL"
    );
}

#[test]
fn every_spec_variable_is_covered_by_a_case_or_free_text() {
    // Free-form values (any text is valid): a path, and the API key.
    let free = ["ALERT_RULES_FILE", "RESEND_API_KEY"];
    for var in pooled_app::config::VARIABLES {
        assert!(
            free.contains(var) || CASES.iter().any(|(v, _, _)| v == var),
            "{var} has no bad-value case"
        );
    }
}

#[test]
fn secrets_are_not_echoed() {
    let e = Config::from_vars([("DATABASE_URL", "mysql://user:hunter2@db/app")]).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("***"), "{e}");
}

/// The binary: one line on stderr, exit code 2, nothing on stdout; the port stays free.
#[test]
fn binary_exits_2_with_one_line() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let bind = format!("127.0.0.1:{port}");
    for (var, value, expected) in CASES {
        let out = Command::new(env!("CARGO_BIN_EXE_pooled-app"))
            .env_clear()
            .env("DATABASE_URL", DB)
            .env("BIND_ADDR", &bind)
            .env(var, value)
            .output()
            .expect("run pooled-app");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value:?}: {stderr}");
        assert_eq!(
            stderr,
            format!("pooled-app: {expected}\n"),
            "{var}={value:?}"
        );
        assert!(out.stdout.is_empty(), "{var}={value:?} wrote to stdout");
    }
    // Nothing was left listening on the port.
    assert!(std::net::TcpListener::bind(&bind).is_ok());

    let out = Command::new(env!("CARGO_BIN_EXE_pooled-app"))
        .arg("--bogus")
        .env_clear()
        .output()
        .expect("run pooled-app");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

//! Configuration: every setting of SPEC §3 read once from environment variables into typed values.
//!
//! Parsing takes an iterator of `(name, value)` pairs so tests never touch the process environment.
//! An empty value counts as unset. A bad value yields one [`ConfigError`] line naming the variable and the
//! expected form; secrets (URL passwords, keys, tokens) are never echoed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

/// A value that must never appear in output: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The real value, for the one place that needs it (a connection, an HTTP header).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A URL that may carry a password: `Debug`/`Display` show it with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    raw: String,
    shown: String,
}

impl SecretUrl {
    fn new(raw: String) -> Self {
        let shown = redact_url(&raw);
        Self { raw, shown }
    }
    /// The URL with its password, for the connection only.
    pub fn expose(&self) -> &str {
        &self.raw
    }
    /// The URL with the password masked, safe to log.
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Masks the password (and any query string, which may hold one) of a URL; unparsable text is hidden whole.
pub fn redact_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(url) if url.password().is_none() && url.query().is_none() => raw.to_string(),
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            if url.query().is_some() {
                url.set_query(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "[redacted]".to_string(),
    }
}

/// One bad setting; its `Display` is the single line printed before exiting with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing {var}: expected {expected}")]
    Missing { var: &'static str, expected: String },
    #[error("invalid {var}={shown}: expected {expected}")]
    Invalid {
        var: &'static str,
        /// The offending value, quoted, or `[redacted]` for secrets.
        shown: String,
        expected: String,
    },
}

impl ConfigError {
    /// The variable this error is about.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Missing { var, .. } | ConfigError::Invalid { var, .. } => var,
        }
    }
}

/// Every setting of the app, typed. Built by [`Config::from_vars`] or [`Config::from_env`].
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` (required): postgres:// URL.
    pub database_url: SecretUrl,
    /// `DATABASE_MIGRATION_URL` (`DATABASE_URL`): where migrations and the seed run, on one
    /// connection of their own. Behind a transaction-pooling PgBouncer it must be Postgres
    /// itself: the migrator's advisory lock is a session lock.
    pub migration_url: Option<SecretUrl>,
    /// `DATABASE_PREPARED_STATEMENTS` (true): false sends every statement as one simple query
    /// with its parameters as literals, for a transaction-pooling PgBouncer (< 1.21), which
    /// may hand a statement's Parse and its Bind to different server connections.
    pub prepared_statements: bool,
    /// `REDIS_URL`: redis:// URL; unset means no cache (every lookup is a miss).
    pub redis_url: Option<SecretUrl>,
    /// `BIND_ADDR` (127.0.0.1:8000).
    pub bind_addr: SocketAddr,
    /// `ENABLE_CONNECTION_POOLING` (true): false opens a new connection per request.
    pub pooling: bool,
    /// `DATABASE_POOL_SIZE` (20): pool maximum, 1..=1000.
    pub pool_size: u32,
    /// `DATABASE_POOL_MIN` (5): connections kept open, 0..=pool size.
    pub pool_min: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_MS` (2000): longest wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// `DATABASE_CONNECT_TIMEOUT_MS` (2000): first timeout of a direct connect (fallback doubles it per retry).
    pub connect_timeout: Duration,
    /// `DATABASE_FALLBACK_AFTER_ERRORS` (3): consecutive acquire failures that switch to fallback mode.
    pub fallback_after_errors: u32,
    /// `DATABASE_FALLBACK_MAX_CONNECTIONS` (the pool size): direct connections open at once in
    /// fallback mode, 1..=1000, so that fallback never opens more than the pool would have.
    pub fallback_max_connections: u32,
    /// `DATABASE_IDLE_PING_MS` (1000): a pooled connection idle longer than this is pinged before use.
    pub idle_ping_after: Duration,
    /// `HTTP_*`: the server's timeouts, connection cap and body limit.
    pub http: crate::server::HttpLimits,
    /// `ENABLE_PERFORMANCE_MONITORING` (true).
    pub monitoring_enabled: bool,
    /// `ENABLE_PERFORMANCE_ALERTS` (true).
    pub alerts_enabled: bool,
    /// `METRICS_RETENTION_HOURS` (24), 1..=8760.
    pub metrics_retention: Duration,
    /// `PERFORMANCE_ALERT_EMAIL`: recipient of alert e-mails.
    pub alert_email: Option<String>,
    /// `PERFORMANCE_ALERT_EMAIL_FROM` ([`DEFAULT_ALERT_EMAIL_FROM`]): sender of alert e-mails,
    /// `addr@domain` or `Name <addr@domain>` (Resend only accepts a verified domain).
    pub alert_email_from: String,
    /// `INSTANCE_ID` (`<pid>-<8 hex>`): this instance's name in Redis keys, the multi-instance
    /// views, alert coordination and notifications; 1..=64 of `A-Z a-z 0-9 . _ -`, unique per
    /// instance.
    pub instance_id: Option<String>,
    /// `SLACK_WEBHOOK_URL`: the webhook URL is itself a credential.
    pub slack_webhook_url: Option<Secret<String>>,
    /// `RESEND_API_KEY`.
    pub resend_api_key: Option<Secret<String>>,
    /// `RESEND_API_URL` (https://api.resend.com).
    pub resend_api_url: String,
    /// `ALERT_RULES_FILE`: YAML rules; unset means the six default rules.
    pub alert_rules_file: Option<PathBuf>,
    /// `ALERT_EVAL_INTERVAL_MS` (1000), 10..=3_600_000.
    pub alert_eval_interval: Duration,
    /// `ALERT_ROUTE_CRITICAL` (`slack,email`), `ALERT_ROUTE_WARNING` (`slack`),
    /// `ALERT_ROUTE_INFO` (`slack`): the channels each severity's notifications go to.
    pub alert_routes: crate::alerts::routes::Routes,
    /// `PERFORMANCE_API_TOKEN`: bearer token for `/api/performance/*` and `/metrics`.
    pub api_token: Option<Secret<String>>,
    /// `LOG_REQUESTS` (true): one JSON log line per request.
    pub log_requests: bool,
    /// `CACHE_TTL_SECS` (300): lifetime of a cached profile.
    pub cache_ttl: Duration,
    /// `CACHE_TIMEOUT_MS` (50): longest a request waits on Redis before counting a miss.
    pub cache_timeout: Duration,
    /// `RUN_MIGRATIONS` (true): apply the embedded migrations and seed at start-up.
    pub run_migrations: bool,
    /// `SEED_USERS` (5000): users created when the tables are empty.
    pub seed_users: u32,
    /// `SEED_BUDDY_REQUESTS` (20000): buddy requests created when the tables are empty.
    pub seed_buddy_requests: u32,
}

/// Sender of alert e-mails when `PERFORMANCE_ALERT_EMAIL_FROM` is unset.
pub const DEFAULT_ALERT_EMAIL_FROM: &str = "pooled-app alerts <alerts@pooled-app.local>";

/// `user@host.tld` without spaces or commas (one address).
fn email_address_ok(v: &str) -> bool {
    v.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
    }) && !v.chars().any(|c| c.is_whitespace() || c == ',')
}

/// Names of every variable read, for documentation and `--help`.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_MIGRATION_URL",
    "DATABASE_PREPARED_STATEMENTS",
    "REDIS_URL",
    "BIND_ADDR",
    "ENABLE_CONNECTION_POOLING",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_MIN",
    "DATABASE_ACQUIRE_TIMEOUT_MS",
    "DATABASE_CONNECT_TIMEOUT_MS",
    "DATABASE_FALLBACK_AFTER_ERRORS",
    "DATABASE_FALLBACK_MAX_CONNECTIONS",
    "DATABASE_IDLE_PING_MS",
    "HTTP_HEADER_TIMEOUT_MS",
    "HTTP_IDLE_TIMEOUT_MS",
    "HTTP_BODY_TIMEOUT_MS",
    "HTTP_REQUEST_TIMEOUT_MS",
    "HTTP_MAX_CONNECTIONS",
    "HTTP_MAX_BODY_BYTES",
    "ENABLE_PERFORMANCE_MONITORING",
    "ENABLE_PERFORMANCE_ALERTS",
    "METRICS_RETENTION_HOURS",
    "PERFORMANCE_ALERT_EMAIL",
    "PERFORMANCE_ALERT_EMAIL_FROM",
    "INSTANCE_ID",
    "SLACK_WEBHOOK_URL",
    "RESEND_API_KEY",
    "RESEND_API_URL",
    "ALERT_RULES_FILE",
    "ALERT_EVAL_INTERVAL_MS",
    "ALERT_ROUTE_CRITICAL",
    "ALERT_ROUTE_WARNING",
    "ALERT_ROUTE_INFO",
    "PERFORMANCE_API_TOKEN",
    "LOG_REQUESTS",
    "CACHE_TTL_SECS",
    "CACHE_TIMEOUT_MS",
    "RUN_MIGRATIONS",
    "SEED_USERS",
    "SEED_BUDDY_REQUESTS",
];

struct Vars(HashMap<String, String>);

impl Vars {
    /// A `postgres://` URL if set (its password never echoed in the error).
    fn postgres_url(&self, var: &'static str) -> Result<Option<SecretUrl>, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(None);
        };
        let ok = (v.starts_with("postgres://") || v.starts_with("postgresql://"))
            && PgConnectOptions::from_str(v).is_ok();
        if !ok {
            return Err(ConfigError::Invalid {
                var,
                shown: format!("{:?}", redact_url(v)),
                expected: "a postgres:// URL".into(),
            });
        }
        Ok(Some(SecretUrl::new(v.to_string())))
    }

    /// The value if set and non-empty.
    fn get(&self, var: &str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            var,
            shown: format!("{value:?}"),
            expected: expected.into(),
        }
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(default);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(Self::invalid(
                var,
                v,
                "a boolean (true/false, 1/0, yes/no, on/off)",
            )),
        }
    }

    fn int(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(default);
        };
        match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Self::invalid(var, v, format!("an integer {min}..={max}"))),
        }
    }

    fn u32(&self, var: &'static str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        // Bounds are u32, so the value fits.
        self.int(var, default.into(), min.into(), max.into())
            .map(|n| n as u32)
    }

    fn millis(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.int(var, default, min, max).map(Duration::from_millis)
    }

    /// A severity's channels (`slack,email`, `slack`, `email`, `none`).
    fn route(
        &self,
        var: &'static str,
        default: crate::alerts::routes::Route,
    ) -> Result<crate::alerts::routes::Route, ConfigError> {
        use crate::alerts::routes::{Route, ROUTE_FORM};
        let Some(v) = self.get(var) else {
            return Ok(default);
        };
        Route::parse(v).ok_or_else(|| Self::invalid(var, v, ROUTE_FORM))
    }

    fn secret(&self, var: &'static str) -> Option<Secret<String>> {
        self.get(var).map(|v| Secret::new(v.to_string()))
    }

    /// An http(s) URL; `secret` hides the value in the error.
    fn http_url(&self, var: &'static str, secret: bool) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(None);
        };
        match reqwest::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(Some(v.to_string()))
            }
            _ => Err(ConfigError::Invalid {
                var,
                shown: if secret {
                    "[redacted]".into()
                } else {
                    format!("{v:?}")
                },
                expected: "an http:// or https:// URL".into(),
            }),
        }
    }
}

impl Config {
    /// Reads the process environment (see [`Config::from_vars`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    /// Parses the settings from `(name, value)` pairs; unknown names are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );

        let database_url = match vars.postgres_url("DATABASE_URL")? {
            Some(url) => url,
            None => {
                return Err(ConfigError::Missing {
                    var: "DATABASE_URL",
                    expected: "a postgres:// URL".into(),
                })
            }
        };
        let migration_url = vars.postgres_url("DATABASE_MIGRATION_URL")?;
        let prepared_statements = vars.bool("DATABASE_PREPARED_STATEMENTS", true)?;

        let redis_url = match vars.get("REDIS_URL") {
            None => None,
            Some(v) => {
                let ok = (v.starts_with("redis://") || v.starts_with("rediss://"))
                    && redis::Client::open(v).is_ok();
                if !ok {
                    return Err(ConfigError::Invalid {
                        var: "REDIS_URL",
                        shown: format!("{:?}", redact_url(v)),
                        expected: "a redis:// URL".into(),
                    });
                }
                Some(SecretUrl::new(v.to_string()))
            }
        };

        let bind_addr = match vars.get("BIND_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
            Some(v) => v.trim().parse().map_err(|_| {
                Vars::invalid(
                    "BIND_ADDR",
                    v,
                    "an IP address and port, e.g. 127.0.0.1:8000",
                )
            })?,
        };

        let pooling = vars.bool("ENABLE_CONNECTION_POOLING", true)?;
        let pool_size = vars.u32("DATABASE_POOL_SIZE", 20, 1, 1000)?;
        let pool_min = vars.u32("DATABASE_POOL_MIN", 5.min(pool_size), 0, 1000)?;
        if pool_min > pool_size {
            return Err(Vars::invalid(
                "DATABASE_POOL_MIN",
                vars.get("DATABASE_POOL_MIN").unwrap_or_default(),
                format!("an integer 0..=DATABASE_POOL_SIZE ({pool_size})"),
            ));
        }
        let acquire_timeout = vars.millis("DATABASE_ACQUIRE_TIMEOUT_MS", 2000, 1, 600_000)?;
        let connect_timeout = vars.millis("DATABASE_CONNECT_TIMEOUT_MS", 2000, 1, 600_000)?;
        let fallback_after_errors = vars.u32("DATABASE_FALLBACK_AFTER_ERRORS", 3, 1, 1_000_000)?;
        let fallback_max_connections =
            vars.u32("DATABASE_FALLBACK_MAX_CONNECTIONS", pool_size, 1, 1000)?;
        let idle_ping_after = vars.millis("DATABASE_IDLE_PING_MS", 1000, 0, 86_400_000)?;
        let http = crate::server::HttpLimits {
            header_timeout: vars.millis("HTTP_HEADER_TIMEOUT_MS", 10_000, 1, 3_600_000)?,
            idle_timeout: vars.millis("HTTP_IDLE_TIMEOUT_MS", 5_000, 1, 3_600_000)?,
            body_timeout: vars.millis("HTTP_BODY_TIMEOUT_MS", 10_000, 1, 3_600_000)?,
            request_timeout: vars.millis("HTTP_REQUEST_TIMEOUT_MS", 30_000, 1, 3_600_000)?,
            max_connections: vars.int("HTTP_MAX_CONNECTIONS", 10_000, 1, 1_000_000)? as usize,
            max_body_bytes: vars.int("HTTP_MAX_BODY_BYTES", 65_536, 1, 1 << 30)? as usize,
        };

        let monitoring_enabled = vars.bool("ENABLE_PERFORMANCE_MONITORING", true)?;
        let alerts_enabled = vars.bool("ENABLE_PERFORMANCE_ALERTS", true)?;
        let metrics_retention =
            Duration::from_secs(3600 * vars.int("METRICS_RETENTION_HOURS", 24, 1, 8760)?);

        let alert_email = match vars.get("PERFORMANCE_ALERT_EMAIL") {
            None => None,
            Some(v) => {
                let v = v.trim();
                if !email_address_ok(v) {
                    return Err(Vars::invalid(
                        "PERFORMANCE_ALERT_EMAIL",
                        v,
                        "an e-mail address, e.g. ops@example.com",
                    ));
                }
                Some(v.to_string())
            }
        };
        let alert_email_from = match vars.get("PERFORMANCE_ALERT_EMAIL_FROM") {
            None => DEFAULT_ALERT_EMAIL_FROM.to_string(),
            Some(v) => {
                let v = v.trim();
                // `Name <addr>` or a bare address.
                let addr = match v.strip_suffix('>').and_then(|x| x.rsplit_once('<')) {
                    Some((name, addr)) if !name.contains(['<', '>', '"']) => addr,
                    Some(_) => "",
                    None => v,
                };
                if !email_address_ok(addr) || v.chars().any(char::is_control) {
                    return Err(Vars::invalid(
                        "PERFORMANCE_ALERT_EMAIL_FROM",
                        v,
                        "an e-mail address or `Name <address>`, e.g. Alerts <alerts@example.com>",
                    ));
                }
                v.to_string()
            }
        };
        let instance_id = match vars.get("INSTANCE_ID") {
            None => None,
            Some(v) => {
                let ok = v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                if !ok {
                    return Err(Vars::invalid(
                        "INSTANCE_ID",
                        v,
                        "1 to 64 characters of A-Z a-z 0-9 . _ -, e.g. app-1",
                    ));
                }
                Some(v.to_string())
            }
        };
        let slack_webhook_url = vars.http_url("SLACK_WEBHOOK_URL", true)?.map(Secret::new);
        let resend_api_key = vars.secret("RESEND_API_KEY");
        let resend_api_url = vars
            .http_url("RESEND_API_URL", false)?
            .unwrap_or_else(|| "https://api.resend.com".to_string())
            .trim_end_matches('/')
            .to_string();
        let alert_rules_file = vars.get("ALERT_RULES_FILE").map(PathBuf::from);
        let alert_eval_interval = vars.millis("ALERT_EVAL_INTERVAL_MS", 1000, 10, 3_600_000)?;
        let alert_routes = {
            let d = crate::alerts::routes::Routes::default();
            crate::alerts::routes::Routes {
                critical: vars.route("ALERT_ROUTE_CRITICAL", d.critical)?,
                warning: vars.route("ALERT_ROUTE_WARNING", d.warning)?,
                info: vars.route("ALERT_ROUTE_INFO", d.info)?,
            }
        };
        let api_token = match vars.get("PERFORMANCE_API_TOKEN") {
            None => None,
            Some(v) if v.chars().all(|c| c.is_ascii_graphic()) => Some(Secret::new(v.to_string())),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "PERFORMANCE_API_TOKEN",
                    shown: "[redacted]".into(),
                    expected: "printable ASCII without spaces".into(),
                })
            }
        };

        let log_requests = vars.bool("LOG_REQUESTS", true)?;
        let cache_ttl = Duration::from_secs(vars.int("CACHE_TTL_SECS", 300, 1, 86_400 * 30)?);
        let cache_timeout = vars.millis("CACHE_TIMEOUT_MS", 50, 1, 60_000)?;
        let run_migrations = vars.bool("RUN_MIGRATIONS", true)?;
        let seed_users = vars.u32("SEED_USERS", 5000, 2, 10_000_000)?;
        let seed_buddy_requests = vars.u32("SEED_BUDDY_REQUESTS", 20_000, 1, 100_000_000)?;

        Ok(Config {
            database_url,
            migration_url,
            prepared_statements,
            redis_url,
            bind_addr,
            pooling,
            pool_size,
            pool_min,
            acquire_timeout,
            connect_timeout,
            fallback_after_errors,
            fallback_max_connections,
            idle_ping_after,
            http,
            monitoring_enabled,
            alerts_enabled,
            metrics_retention,
            alert_email,
            alert_email_from,
            instance_id,
            slack_webhook_url,
            resend_api_key,
            resend_api_url,
            alert_rules_file,
            alert_eval_interval,
            alert_routes,
            api_token,
            log_requests,
            cache_ttl,
            cache_timeout,
            run_migrations,
            seed_users,
            seed_buddy_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("DATABASE_URL", "postgres://app:s3cret@127.0.0.1:5432/app")]
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8000");
        assert!(c.pooling && c.monitoring_enabled && c.alerts_enabled && c.log_requests);
        assert_eq!((c.pool_size, c.pool_min), (20, 5));
        assert_eq!(c.metrics_retention, Duration::from_secs(24 * 3600));
        assert_eq!(c.alert_eval_interval, Duration::from_millis(1000));
        assert_eq!(c.resend_api_url, "https://api.resend.com");
        assert!(c.redis_url.is_none() && c.api_token.is_none());
        assert_eq!(c.fallback_max_connections, c.pool_size);
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.max_connections, 10_000);
    }

    #[test]
    fn alert_routes_default_by_severity_and_parse() {
        use crate::alerts::routes::Route;
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(
            (
                c.alert_routes.critical,
                c.alert_routes.warning,
                c.alert_routes.info
            ),
            (Route::BOTH, Route::SLACK, Route::SLACK)
        );
        let mut v = base();
        v.push(("ALERT_ROUTE_WARNING", "slack,email"));
        v.push(("ALERT_ROUTE_INFO", "none"));
        let c = Config::from_vars(v).unwrap();
        assert_eq!(c.alert_routes.warning, Route::BOTH);
        assert_eq!(c.alert_routes.info, Route::default());
    }

    #[test]
    fn fallback_cap_follows_the_pool_size() {
        let mut v = base();
        v.push(("DATABASE_POOL_SIZE", "7"));
        assert_eq!(Config::from_vars(v).unwrap().fallback_max_connections, 7);
    }

    #[test]
    fn bad_http_limits_name_the_variable() {
        for (var, value, expected) in [
            ("HTTP_HEADER_TIMEOUT_MS", "0", "an integer 1..=3600000"),
            ("HTTP_IDLE_TIMEOUT_MS", "5s", "an integer 1..=3600000"),
            ("HTTP_BODY_TIMEOUT_MS", "-1", "an integer 1..=3600000"),
            (
                "HTTP_REQUEST_TIMEOUT_MS",
                "99999999999",
                "an integer 1..=3600000",
            ),
            ("HTTP_MAX_CONNECTIONS", "0", "an integer 1..=1000000"),
            ("HTTP_MAX_BODY_BYTES", "lots", "an integer 1..=1073741824"),
            (
                "DATABASE_FALLBACK_MAX_CONNECTIONS",
                "0",
                "an integer 1..=1000",
            ),
        ] {
            let mut v = base();
            v.push((var, value));
            let e = Config::from_vars(v).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid {var}={value:?}: expected {expected}")
            );
        }
    }

    #[test]
    fn secrets_never_print() {
        let mut v = base();
        v.push(("RESEND_API_KEY", "re_abc123"));
        v.push(("PERFORMANCE_API_TOKEN", "tok-xyz"));
        v.push((
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.test/T000/B000/XXXX",
        ));
        let c = Config::from_vars(v).unwrap();
        let shown = format!("{c:?}");
        for secret in ["s3cret", "re_abc123", "tok-xyz", "XXXX"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert_eq!(
            c.database_url.expose(),
            "postgres://app:s3cret@127.0.0.1:5432/app"
        );
        assert_eq!(
            c.database_url.to_string(),
            "postgres://app:***@127.0.0.1:5432/app"
        );
    }

    #[test]
    fn bad_pool_size_names_the_variable() {
        let mut v = base();
        v.push(("DATABASE_POOL_SIZE", "abc"));
        let e = Config::from_vars(v).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid DATABASE_POOL_SIZE="abc": expected an integer 1..=1000"#
        );
    }

    #[test]
    fn bad_database_url_hides_password() {
        let e = Config::from_vars([("DATABASE_URL", "mysql://u:hunter2@h/db")]).unwrap_err();
        assert_eq!(e.var(), "DATABASE_URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn statements_and_migration_url_for_a_transaction_pooler() {
        let c = Config::from_vars(base()).unwrap();
        assert!(c.prepared_statements && c.migration_url.is_none());
        let mut v = base();
        v.push(("DATABASE_PREPARED_STATEMENTS", "false"));
        v.push((
            "DATABASE_MIGRATION_URL",
            "postgres://app:s3cret@127.0.0.1:5433/app",
        ));
        let c = Config::from_vars(v).unwrap();
        assert!(!c.prepared_statements);
        assert_eq!(
            c.migration_url.as_ref().map(SecretUrl::redacted),
            Some("postgres://app:***@127.0.0.1:5433/app")
        );
        let mut v = base();
        v.push(("DATABASE_PREPARED_STATEMENTS", "sometimes"));
        assert_eq!(
            Config::from_vars(v).unwrap_err().to_string(),
            r#"invalid DATABASE_PREPARED_STATEMENTS="sometimes": expected a boolean (true/false, 1/0, yes/no, on/off)"#
        );
        let mut v = base();
        v.push(("DATABASE_MIGRATION_URL", "mysql://u:hunter2@h/db"));
        let e = Config::from_vars(v).unwrap_err();
        assert_eq!(e.var(), "DATABASE_MIGRATION_URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn empty_means_unset() {
        let mut v = base();
        v.push(("DATABASE_POOL_SIZE", ""));
        v.push(("SLACK_WEBHOOK_URL", ""));
        let c = Config::from_vars(v).unwrap();
        assert_eq!(c.pool_size, 20);
        assert!(c.slack_webhook_url.is_none());
    }
}

//! The environment of one app instance: service URLs from the provider, its bind address,
//! fixture sizes, the webhook sink's URLs, pooled-app's settings for a PgBouncer in between, then the scenario's `app.env` and the arm's env on top
//! (later layers win, so a scenario can override anything the harness sets).

use std::collections::BTreeMap;

/// Where the harness's notifier sink listens, when a run has one.
#[derive(Debug, Clone)]
pub struct SinkUrls {
    pub slack: String,
    pub resend: String,
}

/// pooled-app behind PgBouncer: where it migrates, and whether statements may be prepared.
#[derive(Debug, Clone, Copy)]
pub struct BehindPgbouncer<'a> {
    /// Postgres itself (`DATABASE_MIGRATION_URL`): the migrator's advisory lock is a session
    /// lock, which transaction pooling would leave behind on a server connection.
    pub postgres_url: &'a str,
    /// Transaction or statement pooling: `DATABASE_PREPARED_STATEMENTS=false`, since PgBouncer
    /// 1.18 may send a statement's Parse and its Bind to different server connections.
    pub per_transaction: bool,
}

/// Inputs of an instance's environment.
#[derive(Debug, Clone, Default)]
pub struct EnvInputs<'a> {
    pub database_url: &'a str,
    pub redis_url: Option<&'a str>,
    pub port: u16,
    pub seed_users: u32,
    pub seed_buddy_requests: u32,
    pub sink: Option<&'a SinkUrls>,
    /// pooled-app with `DATABASE_URL` at PgBouncer.
    pub pgbouncer: Option<BehindPgbouncer<'a>>,
    pub scenario_env: Option<&'a BTreeMap<String, String>>,
    pub arm_env: Option<&'a BTreeMap<String, String>>,
}

/// Builds the variables for one instance.
pub fn instance_env(i: &EnvInputs<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("DATABASE_URL", i.database_url.to_owned());
    if let Some(redis) = i.redis_url {
        set("REDIS_URL", redis.to_owned());
    }
    set("BIND_ADDR", format!("127.0.0.1:{}", i.port));
    set("SEED_USERS", i.seed_users.to_string());
    set("SEED_BUDDY_REQUESTS", i.seed_buddy_requests.to_string());
    if let Some(sink) = i.sink {
        set("SLACK_WEBHOOK_URL", sink.slack.clone());
        set("RESEND_API_URL", sink.resend.clone());
        // The sink accepts any key; a fixed placeholder keeps real keys out of test runs.
        set("RESEND_API_KEY", "re_poolproof_sink".to_owned());
        set(
            "PERFORMANCE_ALERT_EMAIL",
            "alerts@poolproof.invalid".to_owned(),
        );
    }
    if let Some(behind) = i.pgbouncer {
        set("DATABASE_MIGRATION_URL", behind.postgres_url.to_owned());
        if behind.per_transaction {
            set("DATABASE_PREPARED_STATEMENTS", "false".to_owned());
        }
    }
    for layer in [i.scenario_env, i.arm_env].into_iter().flatten() {
        for (k, v) in layer {
            env.insert(k.clone(), v.clone());
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_the_sink_is_wired() {
        let sink = SinkUrls {
            slack: "http://127.0.0.1:4000/slack".into(),
            resend: "http://127.0.0.1:4000".into(),
        };
        let scenario = BTreeMap::from([
            ("DATABASE_POOL_SIZE".to_owned(), "8".to_owned()),
            ("ENABLE_CONNECTION_POOLING".to_owned(), "true".to_owned()),
        ]);
        let arm = BTreeMap::from([("ENABLE_CONNECTION_POOLING".to_owned(), "false".to_owned())]);
        let env = instance_env(&EnvInputs {
            database_url: "postgres://u:p@127.0.0.1:5432/db",
            redis_url: Some("redis://127.0.0.1:6379"),
            port: 41000,
            seed_users: 100,
            seed_buddy_requests: 300,
            sink: Some(&sink),
            pgbouncer: None,
            scenario_env: Some(&scenario),
            arm_env: Some(&arm),
        });
        assert_eq!(env["BIND_ADDR"], "127.0.0.1:41000");
        assert_eq!(env["SEED_USERS"], "100");
        assert_eq!(env["SEED_BUDDY_REQUESTS"], "300");
        assert_eq!(env["SLACK_WEBHOOK_URL"], "http://127.0.0.1:4000/slack");
        assert_eq!(env["DATABASE_POOL_SIZE"], "8");
        assert_eq!(env["ENABLE_CONNECTION_POOLING"], "false");
        assert_eq!(env["REDIS_URL"], "redis://127.0.0.1:6379");
    }

    #[test]
    fn without_redis_or_sink_those_variables_are_absent() {
        let env = instance_env(&EnvInputs {
            database_url: "postgres://127.0.0.1/db",
            port: 1,
            ..EnvInputs::default()
        });
        for k in [
            "REDIS_URL",
            "SLACK_WEBHOOK_URL",
            "RESEND_API_URL",
            "RESEND_API_KEY",
        ] {
            assert!(!env.contains_key(k), "{k}");
        }
    }

    #[test]
    fn pooled_app_behind_pgbouncer_migrates_at_postgres_and_prepares_nothing_per_transaction() {
        let behind = |per_transaction| {
            instance_env(&EnvInputs {
                database_url: "postgres://u:p@127.0.0.1:6432/db",
                pgbouncer: Some(BehindPgbouncer {
                    postgres_url: "postgres://u:p@127.0.0.1:5432/db",
                    per_transaction,
                }),
                ..EnvInputs::default()
            })
        };
        let env = behind(true);
        assert_eq!(env["DATABASE_URL"], "postgres://u:p@127.0.0.1:6432/db");
        assert_eq!(
            env["DATABASE_MIGRATION_URL"],
            "postgres://u:p@127.0.0.1:5432/db"
        );
        assert_eq!(env["DATABASE_PREPARED_STATEMENTS"], "false");
        // Session pooling keeps a server connection per client: statements may be prepared.
        let env = behind(false);
        assert!(!env.contains_key("DATABASE_PREPARED_STATEMENTS"));
        assert!(env.contains_key("DATABASE_MIGRATION_URL"));
    }
}

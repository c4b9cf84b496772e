//! The environment of one app instance: service URLs from the provider, its bind address,
//! fixture sizes, the webhook sink's URLs, then the scenario's `app.env` and the arm's env on top
//! (later layers win, so a scenario can override anything the harness sets).

use std::collections::BTreeMap;

/// Where the harness's notifier sink listens, when a run has one.
#[derive(Debug, Clone)]
pub struct SinkUrls {
    pub slack: String,
    pub resend: String,
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
}

//! pooled-app behind a real PgBouncer 1.18 in transaction mode (started by
//! `poolproof-services`): with `DATABASE_PREPARED_STATEMENTS=false` and its migrations at
//! Postgres (`DATABASE_MIGRATION_URL`) every request succeeds and answers what the app answers
//! straight from Postgres; with sqlx's prepared statements (the default) requests fail, which
//! is why poolproof turns them off behind PgBouncer (docs/services.md).

use crate::support::app::{vars, TestApp};
use crate::support::services;
use poolproof_services::{start_pgbouncer, Options, PgBouncerSettings, PoolMode};

/// Two instances (pool 10 each, no cache: every profile is a database read) through 4 server
/// connections, 24 requests in flight per instance: writes, profile reads and buddy lists.
async fn load_two_instances(a: &TestApp, b: &TestApp) -> Vec<u16> {
    let (mut x, y) = tokio::join!(load_one(a), load_one(b));
    x.extend(y);
    x
}

async fn load_one(app: &TestApp) -> Vec<u16> {
    let mut statuses = app.respond_load(150, 24).await;
    statuses.extend(app.buddies_load(150, 24).await);
    statuses
}

fn behind(bouncer_url: &str, postgres_url: &str, prepared: &str) -> Vec<(String, String)> {
    vars(
        bouncer_url,
        None,
        &[
            ("DATABASE_MIGRATION_URL", postgres_url),
            ("DATABASE_PREPARED_STATEMENTS", prepared),
            ("DATABASE_POOL_SIZE", "10"),
            ("DATABASE_POOL_MIN", "10"),
            ("SEED_USERS", "500"),
            ("SEED_BUDDY_REQUESTS", "1000"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_pooling_works_without_prepared_statements_and_fails_with_them() {
    let pg = services::postgres().await;
    let bouncer = start_pgbouncer(
        &Options::default(),
        &pg,
        &PgBouncerSettings::new(PoolMode::Transaction, 4),
    )
    .await
    .unwrap_or_else(|e| panic!("start PgBouncer: {e}"));

    let a = TestApp::start(behind(&bouncer.url(), &pg.url(), "false")).await;
    let b = TestApp::start(behind(&bouncer.url(), &pg.url(), "false")).await;
    a.wait_ready().await;
    b.wait_ready().await;
    let statuses = load_two_instances(&a, &b).await;
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed through PgBouncer without prepared statements",
        statuses.len()
    );

    // The same answers as straight from Postgres with prepared statements (the text-format
    // rows decode to the same values as binary ones).
    let direct = TestApp::start(vars(&pg.url(), None, &[("SEED_USERS", "500")])).await;
    direct.wait_ready().await;
    for path in ["/api/users/7", "/api/buddies?user_id=7", "/api/users/499"] {
        let (s1, via_bouncer) = a.get(path).await;
        let (s2, straight) = direct.get(path).await;
        assert_eq!((s1, s2), (200, 200), "{path}");
        assert_eq!(via_bouncer, straight, "{path}");
    }
    direct.stop().await;
    a.stop().await;
    b.stop().await;

    // sqlx's default, prepared statements, through the same PgBouncer: statements parsed on one
    // server connection are missing or another client's on the next.
    let a = TestApp::start(behind(&bouncer.url(), &pg.url(), "true")).await;
    let b = TestApp::start(behind(&bouncer.url(), &pg.url(), "true")).await;
    a.wait_ready().await;
    b.wait_ready().await;
    let statuses = load_two_instances(&a, &b).await;
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(
        failed > 0,
        "prepared statements through transaction pooling all succeeded ({} requests): the \
         reason for DATABASE_PREPARED_STATEMENTS=false is gone",
        statuses.len()
    );
    a.stop().await;
    b.stop().await;
    services::ok("shutdown PgBouncer", bouncer.shutdown().await);
    services::ok("shutdown Postgres", pg.shutdown().await);
}

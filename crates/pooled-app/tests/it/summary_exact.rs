//! Summaries over hours from a real Redis are exact: two instances' stored minute roll-ups and
//! seconds (as the writer stores them, the last ~90 s not rolled up yet) merge into the very
//! percentiles of all raw values in the window; data before the window is left out.

use std::sync::Arc;
use std::time::Duration;

use pooled_app::clock::unix_now;
use pooled_app::metrics::bucket::LiveBucket;
use pooled_app::metrics::collector::{CollectorConfig, MetricsCollector};
use pooled_app::metrics::histogram::{self, Latency};
use pooled_app::metrics::store::{keys, StoreStatus};
use pooled_app::metrics::summary;
use pooled_app::redis_link::RedisLink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hour_summary_equals_the_histogram_of_all_values() {
    let redis = poolproof_services::start_redis(&poolproof_services::Options::default())
        .await
        .expect("redis");
    let link = RedisLink::new(&redis.url(), Duration::from_secs(2)).unwrap();
    let now = unix_now();
    let window = 2 * 3600;
    let (start, end) = (now - window - 1800, now - 5);
    let mut expected = histogram::new_hist();
    let mut expected_errors = 0u64;
    let mut expected_route = histogram::new_hist();
    for (k, inst) in ["inst-a", "inst-b"].iter().enumerate() {
        let mut pipe = redis::pipe();
        let mut minute = LiveBucket::new(start - start % 60, 60);
        let mut seed = 0x9e37_79b9u64 + k as u64;
        for t in start..end {
            let m = t - t % 60;
            if m != minute.start {
                // Roll-ups exist for every finished minute except the last one (not written yet).
                if m + 120 <= end {
                    pipe.zadd(keys::minutes(inst), minute.finish().encode(), minute.start)
                        .ignore();
                }
                minute = LiveBucket::new(m, 60);
            }
            let mut sec = LiveBucket::new(t, 1);
            // No data right at the window's edge, so a clock tick between here and the read
            // cannot move a second in or out.
            let n = if (now - window - 20..now - window + 10).contains(&t) {
                0
            } else {
                t % 5 + k as u64
            };
            for _ in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let us = 100 + (seed >> 33) % 400_000;
                let err = (seed >> 20).is_multiple_of(50);
                let route = if (seed >> 40).is_multiple_of(3) {
                    "GET /api/buddies"
                } else {
                    "GET /api/users/{id}"
                };
                sec.record(route, us, err, true);
                if t >= now - window + 10 {
                    histogram::record(&mut expected, us);
                    expected_errors += u64::from(err);
                    if route == "GET /api/buddies" {
                        histogram::record(&mut expected_route, us);
                    }
                }
            }
            minute.absorb_live(&sec);
            pipe.zadd(keys::seconds(inst), sec.finish().encode(), t)
                .ignore();
        }
        pipe.zadd(keys::INSTANCES, *inst, now).ignore();
        link.run_within(Duration::from_secs(30), move |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await
        .unwrap();
    }

    let (collector, _task) = MetricsCollector::start(
        CollectorConfig::new("reader".into()),
        None,
        Arc::default(),
        None,
    );
    let t = std::time::Instant::now();
    let s = summary::summary(Some(&link), &collector, StoreStatus::default(), 2.0).await;
    println!("2 h summary over 2 instances read in {:?}", t.elapsed());
    assert_eq!(s.source, "redis");
    assert_eq!(s.instances.len(), 2);
    assert_eq!(s.total_requests, expected.len());
    assert_eq!(s.total_errors, expected_errors);
    let want = Latency::of(&expected);
    let got = s.latency_percentiles_ms;
    assert_eq!(
        (got.p50, got.p95, got.p99, got.max),
        (want.p50_ms, want.p95_ms, want.p99_ms, want.max_ms)
    );
    let r = s
        .routes
        .iter()
        .find(|r| r.route == "GET /api/buddies")
        .unwrap();
    assert_eq!(r.requests, expected_route.len());
    assert_eq!(
        r.latency_percentiles_ms.p95,
        Latency::of(&expected_route).p95_ms
    );
    drop(redis);
}

//! A small closed-loop load on the workload routes (buddy lists and profiles) until stopped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Counts of a load run.
#[derive(Debug, Default)]
pub struct LoadCounts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Closed-loop load on the workload routes until stopped.
pub struct Load {
    pub counts: Arc<LoadCounts>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(bases: &[String], concurrency: usize) -> Load {
        let counts = Arc::new(LoadCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..concurrency {
            let (counts, stop, client) = (counts.clone(), stop.clone(), client.clone());
            let base = bases[i % bases.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut n = i as u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let path = if n.is_multiple_of(4) {
                        format!("/api/buddies?user_id={}", 1 + (n >> 33) % 200)
                    } else {
                        format!("/api/users/{}", 1 + (n >> 33) % 200)
                    };
                    match client.get(format!("{base}{path}")).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        Load {
            counts,
            stop,
            tasks,
        }
    }

    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.counts.ok.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }
}

//! Drives poolproof's load generator against one endpoint and prints its client-side figures,
//! for comparing with an independent tool (docs/benchmarks.md, "load generator accuracy").
//!
//! `cargo run --release -p poolproof --example loadcheck -- URL PATH USERS SECONDS [RATE] [WARMUP_SECONDS]`
//! e.g. `... -- http://127.0.0.1:8000 '/api/users/{{rand:1..5000}}' 8 20`

use anyhow::{bail, Context};
use poolproof::load::{Attack, HttpMethod, LoadPlan, Template, TransactionPlan};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: loadcheck URL PATH USERS SECONDS [RATE] [WARMUP_SECONDS]");
    }
    let users: usize = args[2].parse().context("USERS must be a whole number")?;
    let secs: u64 = args[3].parse().context("SECONDS must be a whole number")?;
    let rate: Option<f64> = match args.get(4) {
        Some(r) if r != "-" => Some(r.parse().context("RATE must be a number")?),
        _ => None,
    };
    let warmup: u64 = match args.get(5) {
        Some(w) => w.parse().context("WARMUP_SECONDS must be a whole number")?,
        None => 2,
    };
    let plan = LoadPlan {
        targets: vec![args[0].clone()],
        users,
        ramp: Duration::ZERO,
        warmup: Duration::from_secs(warmup),
        duration: Duration::from_secs(secs),
        rate_limit: rate,
        open: None,
        transactions: vec![TransactionPlan {
            name: "target".into(),
            weight: 1,
            method: HttpMethod::Get,
            path: Template::parse(&args[1]).context("PATH")?,
            body: None,
            expect_status: 200,
        }],
        request_timeout: Duration::from_secs(10),
        bearer_token: None,
        shard: None,
    };
    let out = Attack::new(plan)?.run().await?;
    let w = out.client.window(&[out.load], None);
    let ms = |q: f64| w.latency.quantile_ms(q).unwrap_or(f64::NAN);
    println!(
        "requests={} errors={} rps={:.1} p50_ms={:.3} p90_ms={:.3} p95_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        w.requests,
        w.error_count(),
        w.request_rps().unwrap_or(0.0),
        ms(0.5),
        ms(0.9),
        ms(0.95),
        ms(0.99),
        w.latency.max_ms().unwrap_or(f64::NAN)
    );
    Ok(())
}

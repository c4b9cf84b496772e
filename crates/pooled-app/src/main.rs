//! The `pooled-app` binary: configuration from the environment, JSON logs on stdout, serve until
//! SIGINT/SIGTERM. Exit codes: see the crate docs (0 clean stop, 1 runtime failure, 2 bad configuration).

use std::process::ExitCode;

use pooled_app::config::{Config, VARIABLES};

/// mimalloc: per-thread heaps. With glibc's malloc, the monitoring's once-a-second histogram
/// work (tens of 20 KiB allocations freed together) made glibc consolidate its bins inside the
/// request path's next small allocations: `malloc_consolidate` and `unlink_chunk` cost the
/// monitored app ~0.5 µs per request, more than the monitoring code itself (issue 18,
/// docs/benchmarks.md "monitoring: where the CPU goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> String {
    format!(
        "pooled-app: serves the buddy-matching workload with pooled Postgres access and monitoring.\n\
         Usage: pooled-app (no arguments; settings come from the environment)\n\
         Variables: {}\n\
         Exit codes: 0 clean shutdown, 1 runtime failure, 2 invalid configuration or usage",
        VARIABLES.join(", ")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("pooled-app {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("pooled-app: unexpected argument {other:?}: expected none (settings come from the environment; see --help)");
            return ExitCode::from(2);
        }
    }

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pooled-app: {e}");
            return ExitCode::from(2);
        }
    };

    // A bad rule file is a configuration error: one located line, exit 2, before anything starts.
    if let Err(e) = pooled_app::alerts::rules::load_rules(config.alert_rules_file.as_deref()) {
        eprintln!("pooled-app: ALERT_RULES_FILE: {e}");
        return ExitCode::from(2);
    }

    init_tracing();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pooled-app: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.bind_addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "pooled-app: cannot bind BIND_ADDR={}: {e}",
                    config.bind_addr
                );
                return ExitCode::from(1);
            }
        };
        match pooled_app::serve(config, listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pooled-app: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// JSON lines on stdout; `RUST_LOG` overrides the default filter (`info`, sqlx quieter).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

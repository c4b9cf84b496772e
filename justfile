# poolproof tasks. Run through `ci/just` on a fresh machine (it installs just).
set shell := ["bash", "-euo", "pipefail", "-c"]

images_ok := 'docker image inspect "${POOLPROOF_POSTGRES_IMAGE:-poolproof/postgres:15}" "${POOLPROOF_REDIS_IMAGE:-poolproof/redis:7}" >/dev/null 2>&1'

# List the recipes.
default:
    @just --list

# Real Postgres and Redis for tests: Docker engine + local images, else local processes;
# and asyncpg-app's pinned Python packages (fixtures/apps/asyncpg-app/.venv).
services:
    ci/services.sh
    ci/ensure-asyncpg-app.sh >/dev/null
    cargo build --quiet --release --workspace --bins
    target/release/poolproof-services sweep

# Everything CI checks: lints and the whole test suite against real services.
test: services
    #!/usr/bin/env bash
    set -euo pipefail
    # Container tests must not silently skip where the engine and images are there.
    if {{images_ok}}; then export POOLPROOF_EXPECT_CONTAINERS=1; fi
    # Prometheus, promtool and amtool for the /metrics, rules and real-Prometheus tests: installed
    # once here rather than by several test processes at a time.
    ci/ensure-promtool.sh >/dev/null
    cargo clippy --release --workspace --all-targets -- -D warnings
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --release --workspace --no-fail-fast
    else
        cargo test --release --workspace --no-fail-fast
    fi

# Start Postgres and Redis and keep them up (prints URLs without passwords; Ctrl-C stops).
up: services
    target/release/poolproof-services up

# Run pooled-app against locally started Postgres and Redis (Ctrl-C stops everything).
app: services
    target/release/poolproof-services run -- target/release/pooled-app

# Gate the work tree against a git revision: both pooled-apps built (the base in a git worktree,
# cached in target/gate-cache/<commit>/), run side by side pair by pair, paired bootstrap verdict.
# Exit 0 no regression, 1 regression, 2 usage, 3 infrastructure, 4 inconclusive.
# E.g. `just gate origin/main`, `just gate HEAD~1 scenarios/gate.yaml --replicates 6`.
gate BASE="main" SCENARIO="scenarios/gate.yaml" *ARGS: services
    target/release/poolproof gate --base {{BASE}} {{ARGS}} {{SCENARIO}}

# The main job: the smoke scenarios (smoke.yaml, then smoke-external.yaml against a locally
# started pooled-app); reports in reports/<scenario>/<run-id>/. See ci/validate.sh.
validate *ARGS:
    ci/validate.sh {{ARGS}}

#!/usr/bin/env bash
# The main job (`just validate`): runs the smoke scenarios and exits with the worst code.
#   1. services: a Docker engine and the local images (else the processes provider);
#   2. release binaries of the workspace (poolproof, pooled-app, poolproof-services);
#   3. scenarios/smoke.yaml — services, app and load all started by poolproof;
#   4. scenarios/smoke-external.yaml — the pre-deploy smoke, against a pooled-app started by
#      ci/with-app.sh on services from `poolproof-services run` (a deployed app stand-in).
# Extra arguments go to both `poolproof validate` runs (e.g. --reports-dir DIR).
# Exit codes: poolproof's (0 met, 1 SLA failed, 2 invalid, 3 infrastructure, 130 interrupted).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ci/services.sh
# The whole workspace's binaries: the same packages and features as the test build, so after
# `just test` nothing is compiled again (Cargo.toml: feature unification).
cargo build --release --quiet --workspace --bins

# Worst of two poolproof exit codes: interrupted > invalid > infrastructure > failed > ok.
rank() { case $1 in 0) echo 0;; 4) echo 1;; 1) echo 2;; 3) echo 3;; 2) echo 4;; 130) echo 6;; *) echo 5;; esac; }
worst=0
note() { if [ "$(rank "$1")" -gt "$(rank "$worst")" ]; then worst=$1; fi; }

rc=0; target/release/poolproof validate scenarios/smoke.yaml "$@" || rc=$?
note $rc
[ "$rc" = 130 ] && exit 130

rc=0
target/release/poolproof-services run -- \
    ci/with-app.sh target/release/poolproof validate scenarios/smoke-external.yaml "$@" || rc=$?
note $rc
exit "$worst"

#!/usr/bin/env bash
# Runs a command against a locally started pooled-app, the stand-in for a deployed app in
# `just validate` (scenarios/smoke-external.yaml). Meant to run under
# `poolproof-services run --`, which provides DATABASE_URL and REDIS_URL.
#
#   ci/with-app.sh CMD...   starts target/release/pooled-app on a free loopback port with a
#                           random performance-API token, exports POOLPROOF_APP_URL and
#                           POOLPROOF_APP_TOKEN, runs CMD, stops the app; exits with CMD's code.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
APP=${POOLPROOF_APP_BINARY:-$ROOT/target/release/pooled-app}
say() { echo "with-app: $*" >&2; }

[ $# -gt 0 ] || { say "usage: ci/with-app.sh CMD..."; exit 2; }
[ -n "${DATABASE_URL:-}" ] || { say "DATABASE_URL is not set (run under poolproof-services run --)"; exit 3; }
[ -x "$APP" ] || { say "$APP missing (cargo build --release -p pooled-app)"; exit 3; }

WORK=$(mktemp -d)
LOG="$WORK/pooled-app.log"
APP_PID=
cleanup() {
    if [ -n "$APP_PID" ]; then
        kill -TERM "$APP_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$APP_PID" 2>/dev/null || true
        wait "$APP_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOKEN=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Port 0: the app binds a free port and logs the address it got.
BIND_ADDR=127.0.0.1:0 PERFORMANCE_API_TOKEN=$TOKEN "$APP" >"$LOG" 2>&1 &
APP_PID=$!

ADDR=
for _ in $(seq 600); do
    ADDR=$(grep -o '"message":"listening"[^}]*"addr":"127\.0\.0\.1:[0-9]*"' "$LOG" 2>/dev/null \
        | grep -o '127\.0\.0\.1:[0-9]*' | head -1 || true)
    [ -z "$ADDR" ] || break
    kill -0 "$APP_PID" 2>/dev/null || { say "pooled-app exited at start-up:"; tail -5 "$LOG" >&2; exit 3; }
    sleep 0.1
done
[ -n "$ADDR" ] || { say "pooled-app did not start listening within 60s"; tail -5 "$LOG" >&2; exit 3; }
say "pooled-app listening on $ADDR"

export POOLPROOF_APP_URL="http://$ADDR" POOLPROOF_APP_TOKEN="$TOKEN"
set +e
"$@"
rc=$?
set -e
exit $rc

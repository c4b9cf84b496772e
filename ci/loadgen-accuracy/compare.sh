#!/bin/sh
# Load generator accuracy: wrk and poolproof (examples/loadcheck) alternately against one
# pooled-app endpoint. Run from the repository root through poolproof-services, which sets
# DATABASE_URL/REDIS_URL and tears Postgres and Redis down afterwards:
#
#   cargo build --release -p pooled-app -p poolproof-services --bins
#   cargo build --release -p poolproof --example loadcheck
#   target/release/poolproof-services run -- ci/loadgen-accuracy/compare.sh paced
#   target/release/poolproof-services run -- ci/loadgen-accuracy/compare.sh closed
#   RATE=65 CONNS=2 target/release/poolproof-services run -- ci/loadgen-accuracy/compare.sh slots
#
# slots:  both at RATE requests/s over CONNS connections / users, paced the same way: one
#         schedule of evenly spaced slots shared by all connections (wrk: buddies-slots.lua),
#         i.e. the same request rate *and* the same arrival pattern.
# paced:  wrk CONNS connections with 20 ms think time; poolproof CONNS users rate-limited to
#         the rate wrk achieved (same request rate, but wrk's arrivals are burstier).
# closed: both closed loop at CONNS connections / users (same concurrency).
# CONNS (default 1), SECS (20), REPS (4) and RATE (slots only, 65) come from the environment.
# With one connection both tools send the same pattern (one request at a time), isolating measurement accuracy;
# with more, wrk's independent think times overlap requests more often than poolproof's
# evenly spaced rate slots, which changes the load itself.
# The app runs with ENABLE_CONNECTION_POOLING=false so each request opens a Postgres
# connection (~10 ms): latencies large against either tool's own overhead.
set -u
MODE=${1:-paced}
SECS=${SECS:-20}
REPS=${REPS:-4}
CONNS=${CONNS:-1}
HERE=$(dirname "$0")
BIN=${BIN:-target/release}
PATH_T='/api/buddies?user_id={{rand:1..5000}}'
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
ENABLE_CONNECTION_POOLING=false BIND_ADDR=127.0.0.1:$PORT LOG_REQUESTS=false "$BIN/pooled-app" >/dev/null 2>&1 &
APP=$!
trap 'kill $APP 2>/dev/null; wait $APP 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 150); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
case $MODE in paced) THINK=20 ;; *) THINK=0 ;; esac
SCRIPT=$HERE/buddies.lua
if [ "$MODE" = slots ]; then SCRIPT=$HERE/buddies-slots.lua; RATE=${RATE:-65}; export RATE; fi
THINK_MS=$THINK wrk -t1 -c"$CONNS" -d3s -s "$SCRIPT" "$URL" >/dev/null 2>&1 # warm-up
for rep in $(seq 1 "$REPS"); do
  echo "== $MODE, $CONNS connection(s), rep $rep, ${SECS} s, load $(cut -d' ' -f1 /proc/loadavg)"
  W=$(THINK_MS=$THINK wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$SCRIPT" "$URL" | grep '^wrk')
  echo "$W"
  case $MODE in
    paced) RATE=$(echo "$W" | sed -n 's/.*rps=\([0-9]*\).*/\1/p') ;;
    slots) ;;
    *) RATE=- ;;
  esac
  echo "poolproof(rate=$RATE) $("$BIN/examples/loadcheck" "$URL" "$PATH_T" "$CONNS" "$SECS" "$RATE" 1)"
done

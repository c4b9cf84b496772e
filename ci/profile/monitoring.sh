#!/bin/bash
# Where the monitoring's CPU goes, outside the bench: pooled-app processes with monitoring on
# and off against the Postgres and Redis that poolproof-services starts (it sets DATABASE_URL and
# REDIS_URL and tears them down). Run from the repository root:
#
#   cargo build --release -p pooled-app -p poolproof-services --bins
#   target/release/poolproof-services run -- ci/profile/monitoring.sh idle
#   target/release/poolproof-services run -- ci/profile/monitoring.sh perf-idle
#   target/release/poolproof-services run -- ci/profile/monitoring.sh perf-load
#
# idle:      on and off side by side, a 10 s wrk burst on each, then both processes' CPU over 20 s
#            of idleness (schedstat): the per-second cost of the monitoring stack.
# perf-idle: perf record (DWARF call graphs) of a monitored process idle after a burst, 30 s.
# perf-load: perf record of a monitored process (MON=false: unmonitored) under wrk -c8 for 15 s.
# attribute: the scenario's load per app (RATE req/s, default 2000, 3:1 users:buddies, oha at a
#            fixed rate), a monitored and an unmonitored process side by side, both under
#            `perf record` for SECS (default 20) s; ROUNDS (default 3) rounds of fresh processes.
#            Each sample's call chain is put in one component (ci/profile/attribute.py) and the
#            table shows CPU per request per component, on against off: where the difference is.
# aa-noise:  two unmonitored processes (MON=true: two monitored), each under oha at RATE
#            (default 1000) req/s, 3:1 users:buddies, for SECS (default 20) s; per-second CPU of
#            each (ci/profile/aa_noise.py): the A/A drift of two processes that differ in nothing.
# perf data goes to $OUT (default /tmp/poolproof-profile); read it with
#   perf report -i $OUT/<name>.data --children --sort sym --stdio -g none | grep pooled_app
set -u
MODE=${1:-idle}
BIN=${BIN:-target/release}
OUT=${OUT:-/tmp/poolproof-profile}
LUA=$(dirname "$0")/users.lua
mkdir -p "$OUT"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # start <monitoring true|false>: sets APP (pid) and APP_PORT
  APP_PORT=$(port)
  LOG_REQUESTS=false RUST_LOG=warn BIND_ADDR=127.0.0.1:$APP_PORT ENABLE_PERFORMANCE_MONITORING=$1 \
    "$BIN/pooled-app" >/dev/null 2>&1 &
  APP=$!
  PIDS+=("$APP")
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$APP_PORT/readyz" >/dev/null && break; sleep 0.2; done
}
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {print s}'; }
burst() { wrk -t1 -c8 -d"$2"s -s "$LUA" "http://127.0.0.1:$1" | grep Requests/sec; }
case $MODE in
  idle)
    start true; ON=$APP; PON=$APP_PORT
    start false; OFF=$APP; POFF=$APP_PORT
    burst "$PON" 10 & BURST=$!
    burst "$POFF" 10; wait "$BURST"
    sleep 1
    a1=$(cpu_ns "$ON"); b1=$(cpu_ns "$OFF"); sleep 20; a2=$(cpu_ns "$ON"); b2=$(cpu_ns "$OFF")
    python3 -c "print(f'idle after a burst: on {($a2-$a1)/20e6:.3f} ms CPU/s, off {($b2-$b1)/20e6:.3f} ms CPU/s')"
    ;;
  perf-idle)
    start true; ON=$APP; PON=$APP_PORT
    burst "$PON" 10
    sleep 1
    perf record -F 4999 --call-graph dwarf,16384 -o "$OUT/idle.data" -p "$ON" -- sleep 30 >/dev/null 2>&1
    echo "perf data: $OUT/idle.data"
    ;;
  perf-load)
    start "${MON:-true}"; ON=$APP; PON=$APP_PORT
    burst "$PON" 5 >/dev/null
    perf record -F 2999 --call-graph dwarf,16384 -o "$OUT/load.data" -p "$ON" -- sleep 15 >/dev/null 2>&1 &
    PERF=$!
    burst "$PON" 15
    wait "$PERF"
    echo "perf data: $OUT/load.data"
    ;;
  attribute)
    RATE=${RATE:-2000}; SECS=${SECS:-20}; ROUNDS=${ROUNDS:-3}
    for r in $(seq 1 "$ROUNDS"); do
      # Spawn order alternates so neither arm is always the older process.
      if [ $((r % 2)) = 1 ]; then start true; ON=$APP; PON=$APP_PORT; start false; OFF=$APP; POFF=$APP_PORT
      else start false; OFF=$APP; POFF=$APP_PORT; start true; ON=$APP; PON=$APP_PORT; fi
      JOBS=()
      for p in "$PON" "$POFF"; do burst "$p" 3 >/dev/null & JOBS+=($!); done
      wait "${JOBS[@]}"; JOBS=()
      for arm in on off; do
        pid=$ON; p=$PON; [ $arm = off ] && { pid=$OFF; p=$POFF; }
        perf record -F 999 -g --call-graph dwarf,16384 -o "$OUT/$arm-$r.data" -p "$pid" -- sleep "$SECS" >/dev/null 2>&1 &
        JOBS+=($!)
        oha --no-tui --output-format json -q $((RATE * 3 / 4)) -c 6 -z "${SECS}s" \
          --rand-regex-url "http://127.0.0.1:$p/api/users/[1-9][0-9]{0,2}" >"$OUT/$arm-$r.users.json" 2>/dev/null &
        JOBS+=($!)
        oha --no-tui --output-format json -q $((RATE / 4)) -c 2 -z "${SECS}s" \
          --rand-regex-url "http://127.0.0.1:$p/api/buddies\\?user_id=[1-9][0-9]{0,2}" >"$OUT/$arm-$r.buddies.json" 2>/dev/null &
        JOBS+=($!)
      done
      wait "${JOBS[@]}"
      kill "$ON" "$OFF"; wait "$ON" "$OFF" 2>/dev/null
    done
    python3 "$(dirname "$0")/attribute.py" "$OUT" "$ROUNDS"
    ;;
  aa-noise)
    RATE=${RATE:-1000}; SECS=${SECS:-20}
    start "${MON:-false}"; A=$APP; PA=$APP_PORT
    start "${MON:-false}"; B=$APP; PB=$APP_PORT
    for p in "$PA" "$PB"; do
      oha --no-tui -q $((RATE * 3 / 4)) -c 6 -z "$((SECS + 3))s" \
        --rand-regex-url "http://127.0.0.1:$p/api/users/[1-9][0-9]{0,2}" >/dev/null 2>&1 &
      PIDS+=($!)
      oha --no-tui -q $((RATE / 4)) -c 2 -z "$((SECS + 3))s" \
        --rand-regex-url "http://127.0.0.1:$p/api/buddies\\?user_id=[1-9][0-9]{0,2}" >/dev/null 2>&1 &
      PIDS+=($!)
    done
    sleep 2   # past the first connections
    python3 "$(dirname "$0")/aa_noise.py" "$A" "$B" "$SECS"
    ;;
  *) echo "usage: $0 idle|perf-idle|perf-load|attribute|aa-noise" >&2; exit 2 ;;
esac

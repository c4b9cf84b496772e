#!/bin/sh
# Corrected tail latency: poolproof's open model against oha (`-q R --latency-correction`) on
# the same pooled-app at the same arrival rate, with and without a Postgres stall of known
# length; and what poolproof's closed model (USERS users paced at R) reports for the stall.
# Run from the repository root through poolproof-services with containers (the stall is
# `docker pause` of the Postgres container for STALL seconds, STALL_AT seconds into each run):
#
#   cargo build --release -p pooled-app -p poolproof -p poolproof-services --bins
#   POOLPROOF_SERVICES_PROVIDER=containers \
#     target/release/poolproof-services run -- ci/loadgen-accuracy/open-vs-oha.sh
#
# RATE (200), SECS (20), CONNS (oha connections = poolproof max_in_flight, 50), USERS (closed
# model, 32), STALL (2), STALL_AT (8) and REPS (2) come from the environment. oha is installed
# with `cargo install oha --locked` when missing. Each line gives p50/p95/p99 in ms and, for
# poolproof, the uncorrected p95 and the late/dropped counts.
set -u
RATE=${RATE:-200}
SECS=${SECS:-20}
CONNS=${CONNS:-50}
USERS=${USERS:-32}
STALL=${STALL:-2}
STALL_AT=${STALL_AT:-8}
REPS=${REPS:-2}
BIN=${BIN:-target/release}
TARGET_PATH='/api/buddies?user_id=7'
command -v oha >/dev/null 2>&1 || cargo install oha --locked || exit 3
PG_PORT=$(echo "$DATABASE_URL" | sed -n 's#.*@[^:]*:\([0-9]*\)/.*#\1#p')
PG=$(docker ps -q --filter "publish=$PG_PORT" | head -1)
[ -n "$PG" ] || { echo "no Postgres container publishes port $PG_PORT (use containers)" >&2; exit 3; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
BIND_ADDR=127.0.0.1:$PORT LOG_REQUESTS=false "$BIN/pooled-app" >"$WORK/app.log" 2>&1 &
APP=$!
trap 'docker unpause "$PG" >/dev/null 2>&1; kill $APP 2>/dev/null; wait $APP 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
for _ in $(seq 1 150); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done

# stall [on|off]: pauses Postgres STALL seconds at STALL_AT seconds from now, in the background.
# Waiting on its pid only: a bare `wait` would wait for the app too.
stall() {
  STALL_PID=
  [ "$1" = on ] || return 0
  (sleep "$STALL_AT"; docker pause "$PG" >/dev/null; sleep "$STALL"; docker unpause "$PG" >/dev/null) &
  STALL_PID=$!
}
stall_done() { [ -z "$STALL_PID" ] || wait "$STALL_PID"; }

scenario() { # $1 model: open | closed
  if [ "$1" = open ]; then
    LOAD="  model: open
  rate: $RATE
  max_in_flight: $CONNS"
  else
    LOAD="  users: $USERS
  rate_limit: $RATE"
  fi
  cat <<YAML
name: accuracy-$1
services: { provider: external }
app: { url: "$URL" }
load:
$LOAD
  duration: ${SECS}s
  transactions:
    - { name: buddies, path: "$TARGET_PATH" }
YAML
}

poolproof_run() { # $1 model, $2 stall
  scenario "$1" >"$WORK/s-$1.yaml"
  rm -rf "$WORK/reports"
  stall "$2"
  "$BIN/poolproof" validate "$WORK/s-$1.yaml" --reports-dir "$WORK/reports" >"$WORK/pp.log" 2>&1
  stall_done
  python3 - "$WORK/reports" "$1" "$2" <<'PY'
import json, glob, sys
r = json.load(open(glob.glob(sys.argv[1] + "/*/*/report.json")[0]))
s = r["summary"]
f = lambda v: "-" if v is None else f"{v:.1f}"
print(f"poolproof {sys.argv[2]:6} stall={sys.argv[3]:3} p50={f(s['p50_ms'])} p95={f(s['p95_ms'])} p99={f(s['p99_ms'])}"
      f"  uncorrected p95={f(s.get('uncorrected_p95_ms'))} p99={f(s.get('uncorrected_p99_ms'))}"
      f"  requests={s['requests']} late={s.get('late', 0)} dropped={s.get('dropped', 0)} throughput={f(s['throughput_rps'])}")
PY
}

oha_run() { # $1 stall
  stall "$1"
  oha -z "${SECS}s" -q "$RATE" -c "$CONNS" --latency-correction --no-tui --output-format json "$URL$TARGET_PATH" >"$WORK/oha.json" 2>/dev/null
  stall_done
  python3 - "$WORK/oha.json" "$1" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
p = o["latencyPercentiles"]
ms = lambda k: f"{p[k] * 1000:.1f}"
print(f"oha       open   stall={sys.argv[2]:3} p50={ms('p50')} p95={ms('p95')} p99={ms('p99')}"
      f"  rps={o['summary'].get('requestsPerSec', 0):.1f}")
PY
}

oha -z 3s -q "$RATE" -c "$CONNS" --no-tui "$URL$TARGET_PATH" >/dev/null 2>&1 # warm-up
for rep in $(seq 1 "$REPS"); do
  echo "== rep $rep: $RATE req/s, ${SECS} s, ${STALL} s stall at ${STALL_AT} s, load $(cut -d' ' -f1 /proc/loadavg)"
  for s in off on; do
    oha_run "$s"
    poolproof_run open "$s"
  done
  poolproof_run closed on
done

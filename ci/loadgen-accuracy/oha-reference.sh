#!/bin/bash
# An independent reference for the sharded-load figures: one pooled-app (pool of 20, request
# logging off) under oha at the same 300 req/s open-model rate, 3:1 users:buddies, with
# --latency-correction, 15 s after 5 s of warm-up. Run under poolproof-services (it sets
# DATABASE_URL and REDIS_URL):
#   target/release/poolproof-services run -- ci/loadgen-accuracy/oha-reference.sh
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_POOL_SIZE=20 LOG_REQUESTS=false RUST_LOG=warn BIND_ADDR=127.0.0.1:$P target/release/pooled-app >/dev/null 2>&1 &
APP=$!; OUT=$(mktemp -d); trap 'kill $APP 2>/dev/null; wait 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$P/readyz" >/dev/null && break; sleep 0.2; done
oha --no-tui -q 300 -c 60 -z 5s --latency-correction --rand-regex-url "http://127.0.0.1:$P/api/users/[1-9][0-9]{0,2}" >/dev/null 2>&1
oha --no-tui --output-format json -q 225 -c 45 -z 15s --latency-correction --rand-regex-url "http://127.0.0.1:$P/api/users/[1-9][0-9]{0,2}" > "$OUT/u.json" 2>/dev/null &
USERS=$!
oha --no-tui --output-format json -q 75 -c 15 -z 15s --latency-correction --rand-regex-url "http://127.0.0.1:$P/api/buddies\\?user_id=[1-9][0-9]{0,2}" > "$OUT/b.json" 2>/dev/null
wait "$USERS"
python3 - "$OUT" <<'PY'
import sys
import json
for n in ("u","b"):
    d=json.load(open(f"{sys.argv[1]}/{n}.json")); p=d["latencyPercentiles"]
    print({"u": "users", "b": "buddies"}[n], "success rate", d["summary"].get("successRate"), "p50 %.2f p95 %.2f p99 %.2f ms" % (p["p50"]*1e3, p["p95"]*1e3, p["p99"]*1e3))
PY

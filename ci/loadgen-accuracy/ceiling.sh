#!/bin/sh
# The generator's own limit: the highest rate one poolproof process reaches against a cheap
# route, as a ratio to wrk and oha at the same concurrency, in the same script, on the same
# app (pooled-app, GET /api/users/7: a cached profile). All three run closed loop at CONNS
# connections / users with no pacing for SECS seconds each, in rotating order, REPS times.
# Run from the repository root through poolproof-services:
#
#   cargo build --release -p pooled-app -p poolproof -p poolproof-services --bins
#   target/release/poolproof-services run -- ci/loadgen-accuracy/ceiling.sh
#
# CONNS (16), SECS (10), REPS (3) come from the environment. wrk (Debian) and oha
# (`cargo install oha --locked`) are installed when missing. The app shares the machine's
# cores with the generator, so the figures are ratios in one run, not absolute capacities.
set -u
CONNS=${CONNS:-16}
SECS=${SECS:-10}
REPS=${REPS:-3}
BIN=${BIN:-target/release}
TARGET_PATH='/api/users/7'
command -v wrk >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || exit 3; }
command -v oha >/dev/null 2>&1 || cargo install oha --locked || exit 3
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
BIND_ADDR=127.0.0.1:$PORT LOG_REQUESTS=false "$BIN/pooled-app" >"$WORK/app.log" 2>&1 &
APP=$!
trap 'kill $APP 2>/dev/null; wait $APP 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
for _ in $(seq 1 150); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done

cat >"$WORK/ceiling.yaml" <<YAML
name: ceiling
services: { provider: external }
app: { url: "$URL" }
load:
  users: $CONNS
  warmup: 0s
  duration: ${SECS}s
  transactions:
    - { name: user, path: "$TARGET_PATH" }
YAML

wrk_run() {
  wrk -t2 -c "$CONNS" -d "${SECS}s" "$URL$TARGET_PATH" | awk '/Requests\/sec/ {print $2}'
}
oha_run() {
  oha -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL$TARGET_PATH" 2>/dev/null \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["summary"]["requestsPerSec"], 1))'
}
poolproof_run() {
  rm -rf "$WORK/reports"
  "$BIN/poolproof" validate "$WORK/ceiling.yaml" --reports-dir "$WORK/reports" >"$WORK/pp.log" 2>&1
  python3 -c 'import json,glob,sys; r=json.load(open(glob.glob(sys.argv[1]+"/*/*/report.json")[0])); print(round(r["summary"]["throughput_rps"], 1))' "$WORK/reports"
}

wrk -t2 -c "$CONNS" -d 3s "$URL$TARGET_PATH" >/dev/null # warm-up: cache and connections
echo "| rep | load | wrk rps | oha rps | poolproof rps | poolproof / wrk | poolproof / oha |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for rep in $(seq 1 "$REPS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  # Rotate the order so that no tool always runs first (warmest cache, coolest CPU).
  case $((rep % 3)) in
    1) w=$(wrk_run); o=$(oha_run); p=$(poolproof_run) ;;
    2) o=$(oha_run); p=$(poolproof_run); w=$(wrk_run) ;;
    0) p=$(poolproof_run); w=$(wrk_run); o=$(oha_run) ;;
  esac
  python3 - "$rep" "$load" "$w" "$o" "$p" <<'PY'
import sys
rep, load, w, o, p = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f"| {rep} | {load} | {w:,.0f} | {o:,.0f} | {p:,.0f} | {p / w:.2f}x | {p / o:.2f}x |")
PY
done

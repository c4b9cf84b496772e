#!/usr/bin/env bash
# Equivalence of sharded load: scenarios/sharded-load.yaml (open model) at the same total rate,
# run with 1 generator in the validate process and with N shards on an engine, alternately,
# REPS times each. Prints per run p50/p95/p99 (corrected, ms), requests and the sum of the
# shards' requests (they must be equal: histograms added, counts summed).
#
#   cargo build --release -p pooled-app -p poolproof
#   ci/services.sh                          # Docker engine + local images
#   ci/loadgen-accuracy/sharded-equivalence.sh
#
# ENGINE (swarm), SHARDS (3), REPS (2), RATE (unchanged when empty) come from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENGINE=${ENGINE:-swarm}
SHARDS=${SHARDS:-3}
REPS=${REPS:-2}
RATE=${RATE:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
scenario=scenarios/sharded-load.yaml
if [ -n "$RATE" ]; then
    sed "s/^  rate: .*/  rate: $RATE/" "$scenario" > "$WORK/sharded-load.yaml"
    scenario=$WORK/sharded-load.yaml
fi
row() {
    python3 - "$1" "$2" <<'PY'
import json, sys, glob
label, d = sys.argv[1], sys.argv[2]
r = json.load(open(glob.glob(f"{d}/sharded-load/*/report.json")[0]))
s = r["summary"]
shards = r.get("generators", [])
total = sum(g["requests"] for g in shards) if shards else s["requests"]
print(f"| {label} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['p99_ms']:.2f} | {s['requests']} | {total} | {len(shards) or 1} |")
PY
}
echo "| run | p50 ms | p95 ms | p99 ms | requests | sum of shards | generators |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for rep in $(seq 1 "$REPS"); do
    for mode in one sharded; do
        out=$WORK/$mode-$rep
        if [ $mode = one ]; then
            target/release/poolproof validate --generators 1 --generator-engine local --reports-dir "$out" "$scenario" >"$out.log" 2>&1 || true
            row "1 local generator, rep $rep" "$out"
        else
            target/release/poolproof validate --generators "$SHARDS" --generator-engine "$ENGINE" --reports-dir "$out" "$scenario" >"$out.log" 2>&1 || true
            row "$SHARDS $ENGINE generators, rep $rep" "$out"
        fi
    done
done

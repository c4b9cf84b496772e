#!/usr/bin/env bash
# Equivalence of sharded load: scenarios/sharded-load.yaml (open model) at the same total rate,
# run with 1 generator in the validate process and with N shards on an engine, alternately,
# REPS times each. Prints per run p50/p95/p99 (corrected, ms), requests and the sum of the
# shards' requests (they must be equal: histograms added, counts summed), then each mode's
# mean over its runs and the sharded mean against the single generator's. One run's p99
# rests on its 45 slowest requests and moves by up to 20 % between two runs of the same mode,
# so the means are what to compare.
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
# row LABEL MODE REPORTS_DIR: prints the run's table row and keeps its quantiles by mode.
row() {
    python3 - "$1" "$2" "$3" "$WORK/quantiles.tsv" <<'PY'
import json, sys, glob
label, mode, d, keep = sys.argv[1:5]
r = json.load(open(glob.glob(f"{d}/sharded-load/*/report.json")[0]))
s = r["summary"]
shards = r.get("generators", [])
total = sum(g["requests"] for g in shards) if shards else s["requests"]
print(f"| {label} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['p99_ms']:.2f} | {s['requests']} | {total} | {len(shards) or 1} |")
with open(keep, "a") as f:
    f.write(f"{mode}\t{s['p50_ms']}\t{s['p95_ms']}\t{s['p99_ms']}\n")
PY
}
echo "| run | p50 ms | p95 ms | p99 ms | requests | sum of shards | generators |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for rep in $(seq 1 "$REPS"); do
    for mode in one sharded; do
        out=$WORK/$mode-$rep
        if [ $mode = one ]; then
            target/release/poolproof validate --generators 1 --generator-engine local --reports-dir "$out" "$scenario" >"$out.log" 2>&1 || true
            row "1 local generator, rep $rep" "1 local generator" "$out"
        else
            target/release/poolproof validate --generators "$SHARDS" --generator-engine "$ENGINE" --reports-dir "$out" "$scenario" >"$out.log" 2>&1 || true
            row "$SHARDS $ENGINE generators, rep $rep" "$SHARDS $ENGINE generators" "$out"
        fi
    done
done
python3 - "$WORK/quantiles.tsv" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    mode, *q = line.rstrip("\n").split("\t")
    runs.setdefault(mode, []).append([float(x) for x in q])
means = {m: [sum(c) / len(c) for c in zip(*v)] for m, v in runs.items()}
one, sharded = list(means)
print()
print("| mean over runs | p50 ms | p95 ms | p99 ms | runs |")
print("|---|---:|---:|---:|---:|")
for m, q in means.items():
    print(f"| {m} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} | {len(runs[m])} |")
d = [100 * (b / a - 1) for a, b in zip(means[one], means[sharded])]
print(f"| {sharded} against {one} | {d[0]:+.1f} % | {d[1]:+.1f} % | {d[2]:+.1f} % | |")
PY

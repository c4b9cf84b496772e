#!/usr/bin/env python3
"""Per-component CPU of a monitored and an unmonitored pooled-app, from `monitoring.sh attribute`.

Each perf sample's call chain (leaf first) is put in the first component whose pattern matches
one of its frames, components tried in the order below (most specific first), so a histogram
merge inside the alert evaluator's window read counts as the collector's drain only when the
drain itself is on the stack. Samples are taken at a fixed frequency, so a component's samples
are proportional to its CPU time; divided by the requests oha completed against that process,
they give CPU per request per component. The table sums all rounds.

usage: attribute.py <dir with on-N.data, off-N.data, on-N.users.json, ...> <rounds>
"""
import json
import os
import re
import subprocess
import sys
from collections import Counter

# (component, frame pattern). Symbols as perf prints them (demangled, without inlined frames).
COMPONENTS = [
    ("request path: observer + inbox push", r"metrics::inbox::Inbox::push|RequestObserver|MetricsCollector::push"),
    ("collector: drain (route HDR + /metrics buckets)", r"metrics::collector::drain|HttpSeries::record|LiveBucket::record"),
    ("pool: query-time interval histograms", r"take_query_times|PoolStats::record_query"),
    ("collector: per-second finish", r"metrics::collector::finish_second|metrics::rolling|build_realtime"),
    ("Redis writer (per-second buckets)", r"metrics::store"),
    ("alert evaluator", r"pooled_app::alerts"),
    ("health checks", r"pooled_app::health"),
    ("monitoring API (harness sampling, /metrics)", r"pooled_app::api::|pooled_app::exposition"),
    ("Redis client", r"\bredis::"),
    ("HTTP server (hyper, axum, middleware)", r"\bhyper::|\baxum::|pooled_app::middleware|tower"),
    ("database (sqlx, pool)", r"\bsqlx|pooled_app::pool|tokio_postgres|postgres_protocol"),
    ("tokio runtime (scheduling, timers, I/O driver)", r"\btokio::|\bmio::"),
]
OTHER = "other (kernel, allocator, cache)"
PATTERNS = [(name, re.compile(p)) for name, p in COMPONENTS]


def classify(frames):
    for name, pat in PATTERNS:
        for f in frames:
            if pat.search(f):
                return name
    return OTHER


def samples(path):
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,ip,sym", "--no-inline"],
        capture_output=True, text=True, check=True,
    ).stdout
    counts = Counter()
    frames = []
    for line in out.splitlines() + [""]:
        if not line.strip():
            if frames:
                counts[classify(frames)] += 1
            frames = []
            continue
        if line.startswith(("\t", " ")):
            frames.append(line.strip())
    return counts


def requests(prefix):
    n = 0
    for route in ("users", "buddies"):
        with open(f"{prefix}.{route}.json") as f:
            n += len_ok(json.load(f))
    return n


def len_ok(report):
    # oha's JSON: statusCodeDistribution counts every answered request by status.
    return sum(v for k, v in report.get("statusCodeDistribution", {}).items() if k.startswith("2"))


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    total = {"on": Counter(), "off": Counter()}
    reqs = {"on": 0, "off": 0}
    for r in range(1, rounds + 1):
        for arm in ("on", "off"):
            total[arm] += samples(f"{d}/{arm}-{r}.data")
            reqs[arm] += requests(f"{d}/{arm}-{r}")
    freq = float(os.environ.get("FREQ", "999"))
    # µs of CPU per request = samples / frequency / requests.
    per = {a: {k: v / freq / reqs[a] * 1e6 for k, v in total[a].items()} for a in total}
    all_on, all_off = sum(per["on"].values()), sum(per["off"].values())
    print(f"requests: on {reqs['on']}, off {reqs['off']}; samples: on {sum(total['on'].values())}, off {sum(total['off'].values())}")
    print(f"| component | on (µs/request) | off (µs/request) | difference | share of off's total |")
    print("|---|---:|---:|---:|---:|")
    for name in [n for n, _ in COMPONENTS] + [OTHER]:
        a, b = per["on"].get(name, 0.0), per["off"].get(name, 0.0)
        print(f"| {name} | {a:.2f} | {b:.2f} | {a - b:+.2f} | {(a - b) / all_off * 100:+.2f} % |")
    print(f"| **total** | {all_on:.2f} | {all_off:.2f} | {all_on - all_off:+.2f} | {(all_on - all_off) / all_off * 100:+.2f} % |")


if __name__ == "__main__":
    main()

"""Per-second CPU of two identical pooled-app processes under the same fixed-rate load
(ci/profile/monitoring.sh aa-noise): how far two processes that differ in nothing drift apart,
and whether it is per second (averages out) or per process (does not).

usage: aa_noise.py PID_A PID_B SECONDS
"""
import os
import statistics as st
import sys
import time


def cpu_ns(pid):
    """Nanoseconds on a CPU, summed over the process's threads (schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that exited between listing and reading
    return total


def main():
    a, b, secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    start = time.monotonic()
    samples = []
    for i in range(secs + 1):
        time.sleep(max(0.0, start + i - time.monotonic()))
        samples.append((cpu_ns(a), cpu_ns(b)))
    per_a = [(x1 - x0) / 1e6 for (x0, _), (x1, _) in zip(samples, samples[1:])]
    per_b = [(y1 - y0) / 1e6 for (_, y0), (_, y1) in zip(samples, samples[1:])]
    ratio = [100 * (x / y - 1) for x, y in zip(per_a, per_b)]
    print(
        f"CPU ms/s: A {st.mean(per_a):.1f}, B {st.mean(per_b):.1f}; "
        f"per-second correlation {st.correlation(per_a, per_b):.2f}"
    )
    print(
        f"A/B - 1 per second: mean {st.mean(ratio):+.2f} %, sd {st.stdev(ratio):.2f} %; "
        f"over all {secs} s: {100 * (sum(per_a) / sum(per_b) - 1):+.2f} %"
    )


if __name__ == "__main__":
    main()

"""Monitoring's fixed (per-second) cost: a monitored and an unmonitored pooled-app side by side,
warmed with 2,000 requests each, then their CPU time (schedstat, as poolproof reads it) over
SECS (default 20) idle seconds. Run under the services:

  target/release/poolproof-services run -- python3 ci/profile/idle_cost.py

VARIANT="K=V,K=V" adds variables to the monitored process only (an ablation, e.g.
VARIANT=ENABLE_PERFORMANCE_ALERTS=false); BIN (default target/release) holds pooled-app.
"""
import http.client
import os
import socket
import subprocess
import sys
import time

from aa_noise import cpu_ns

BIN = os.environ.get("BIN", "target/release")
SECS = float(os.environ.get("SECS", "20"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mix_path(n):
    """The scenario's mix: 3 profiles to 1 buddy list."""
    return f"/api/users/{n % 1000 + 1}" if n % 4 else f"/api/buddies?user_id={n % 1000 + 1}"


def cpu_ms(pid):
    """Milliseconds on a CPU, summed over the process's threads (schedstat)."""
    return cpu_ns(pid) / 1e6


def start(monitored):
    port = free_port()
    env = dict(os.environ, LOG_REQUESTS="false", RUST_LOG="warn",
               BIND_ADDR=f"127.0.0.1:{port}",
               ENABLE_PERFORMANCE_MONITORING="true" if monitored else "false")
    if monitored and os.environ.get("VARIANT"):
        env.update(kv.split("=", 1) for kv in os.environ["VARIANT"].split(","))
    proc = subprocess.Popen([f"{BIN}/pooled-app"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"pooled-app (monitoring {monitored}) not ready on port {port}")


def main():
    apps = {}
    try:
        for monitored in (True, False):
            apps[monitored] = start(monitored)
        for monitored, (_, port) in apps.items():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for n in range(2000):
                c.request("GET", mix_path(n))
                c.getresponse().read()
            c.close()
        time.sleep(5)
        before = {m: cpu_ms(p.pid) for m, (p, _) in apps.items()}
        time.sleep(SECS)
        after = {m: cpu_ms(p.pid) for m, (p, _) in apps.items()}
        on, off = ((after[m] - before[m]) / SECS for m in (True, False))
        print(f"idle: monitored {on:.3f} ms CPU/s, unmonitored {off:.3f} ms CPU/s, "
              f"difference {on - off:.3f} ms CPU/s")
    finally:
        for proc, _ in apps.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()

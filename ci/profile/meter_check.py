"""The CPU meter poolproof uses (schedstat run time, crates/poolproof/src/app/cpu.rs) against
two others over the same windows of one loaded, monitored pooled-app: `perf stat -e task-clock`
and /proc/<pid>/stat utime + stime (the kernel's tick-sampled account). Two closed-loop clients
load the app; WINDOWS (default 6) windows of 5 s. Run under the services:

  target/release/poolproof-services run -- python3 ci/profile/meter_check.py
"""
import http.client
import os
import subprocess
import threading
import time

from idle_cost import cpu_ms, mix_path, start

TICK = os.sysconf("SC_CLK_TCK")


def ticks_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK


def main():
    app, port = start(monitored=True)
    stop = threading.Event()

    def load():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        n = 0
        while not stop.is_set():
            try:
                c.request("GET", mix_path(n))
                c.getresponse().read()
            except OSError:
                return  # the app is being stopped
            n += 1

    try:
        clients = [threading.Thread(target=load, daemon=True) for _ in range(2)]
        for t in clients:
            t.start()
        time.sleep(3)
        print("window | schedstat ms | perf task-clock ms | utime+stime ms | perf/schedstat | ticks/schedstat")
        for w in range(int(os.environ.get("WINDOWS", "6"))):
            s0, k0 = cpu_ms(app.pid), ticks_ms(app.pid)
            out = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "-p", str(app.pid),
                                  "--", "sleep", "5"], capture_output=True, text=True).stderr
            s1, k1 = cpu_ms(app.pid), ticks_ms(app.pid)
            task_clock = float(next(l for l in out.splitlines() if "task-clock" in l).split(",")[0])
            sched = s1 - s0
            print(f"{w + 1} | {sched:.1f} | {task_clock:.1f} | {k1 - k0:.0f} | "
                  f"{task_clock / sched:.4f} | {(k1 - k0) / sched:.4f}", flush=True)
    finally:
        stop.set()
        app.terminate()
        app.wait()


if __name__ == "__main__":
    main()

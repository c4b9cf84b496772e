#!/usr/bin/env bash
# Makes a Docker engine answer on this machine, idempotently.
# If `docker info` already answers: nothing to do. Otherwise install Debian's docker.io
# and iptables (when missing), start dockerd in the background and wait for it.
# Exit 0 when an engine answers, 1 with one clear line when none could be had.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/poolproof-dockerd.log}
DEADLINE_SECS=${DOCKERD_DEADLINE_SECS:-60}

say() { echo "ensure-docker: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

# Note: the newer client in /usr/local/bin (28.x) negotiates down to Debian's engine API
# (1.41) by itself, and so does bollard (testcontainers); no DOCKER_API_VERSION needed.

# Under cgroup v1 with dockerd's cgroupfs driver, all containers live below one `docker` CPU
# cgroup whose default weight (cpu.shares 1024) is that of a single host thread. On a busy host
# (the test suite, a build beside it) Postgres in a container then got so little CPU that a new
# connection took over 5 s, and pooled-app rightly took the database for gone: overload.yaml
# switched to fallback (docs/claims.md). Weighing the group like one host thread per core lets
# containers compete like the host processes they stand in for. Idempotent; nothing to do
# under cgroup v2 or without root.
fair_container_cpu() {
    local root=/sys/fs/cgroup/cpu
    [ -f "$root/cpu.shares" ] && [ -w "$root" ] || return 0
    mkdir -p "$root/docker" 2>/dev/null || return 0
    echo $(( 1024 * $(nproc) )) > "$root/docker/cpu.shares" 2>/dev/null || true
}

if engine_answers; then
    fair_container_cpu
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    say "no Docker engine answers and not root: cannot install or start one"
    exit 1
fi

apt_updated=0
apt_install() {
    if [ $apt_updated = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || { say "apt-get update failed"; return 1; }
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt_install "${need[@]}" || { say "could not install ${need[*]}"; exit 1; }
fi
# Debian's docker.io ships its own `docker` client in /usr/bin; any of them works once pinned.
command -v docker >/dev/null 2>&1 || { say "no docker client on PATH"; exit 1; }

# A live (not zombie) dockerd process: a killed one may linger as a zombie when PID 1
# does not reap orphans.
dockerd_running() {
    local pid state
    for pid in $(pgrep -x dockerd 2>/dev/null); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
        [ -n "$state" ] && [ "$state" != Z ] && return 0
    done
    return 1
}

if ! dockerd_running; then
    # Left by a dockerd that was killed (e.g. at the end of a previous session): a pid file
    # naming a reused pid would stop the new daemon.
    rm -f /var/run/docker.pid
    say "starting dockerd (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    # setsid: the daemon must outlive this script and the CI step's process group.
    setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi

start=$(date +%s)
until engine_answers; do
    if [ $(( $(date +%s) - start )) -ge "$DEADLINE_SECS" ]; then
        say "dockerd did not answer within ${DEADLINE_SECS}s; last log lines:"
        tail -n 15 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.3
done
say "engine answers after $(( $(date +%s) - start ))s"
fair_container_cpu

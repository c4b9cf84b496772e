#!/usr/bin/env bash
# Makes Debian's Prometheus tools available, idempotently: package `prometheus` (the server and
# `promtool`, for the /metrics format test, the rule checks and the real-Prometheus test) and
# `prometheus-alertmanager` (`amtool`, for `amtool check-config` of deploy/alertmanager/).
# Neither package's service is started. Exit 0 when all three binaries run, 1 with one clear line
# otherwise. Prints the promtool path on stdout (`prometheus` and `amtool` are found on PATH).
set -euo pipefail
say() { echo "ensure-promtool: $*" >&2; }
missing() {
    local b
    for b in promtool prometheus amtool; do command -v "$b" >/dev/null 2>&1 || return 0; done
    return 1
}
if missing; then
    if [ "$(id -u)" != 0 ]; then say "promtool, prometheus or amtool missing and not root: install Debian's prometheus and prometheus-alertmanager packages"; exit 1; fi
    say "installing prometheus and prometheus-alertmanager"
    # Without starting a Prometheus or Alertmanager on this machine.
    "$(dirname "$0")/apt-install.sh" prometheus prometheus-alertmanager ||
        { say "apt-get install prometheus prometheus-alertmanager failed"; exit 1; }
fi
for b in promtool prometheus amtool; do
    p=$(command -v "$b" 2>/dev/null || true)
    [ -n "$p" ] || { say "$b not found after install"; exit 1; }
    "$p" --version >/dev/null 2>&1 || { say "$p does not run"; exit 1; }
done
command -v promtool

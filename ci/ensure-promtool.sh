#!/usr/bin/env bash
# Makes `promtool` (Debian package `prometheus`) available for the /metrics format test, idempotently.
# The package's service is not started. Exit 0 when promtool runs, 1 with one clear line otherwise.
# Prints the binary path on stdout.
set -euo pipefail
say() { echo "ensure-promtool: $*" >&2; }
bin=$(command -v promtool 2>/dev/null || true)
if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then say "promtool missing and not root: install Debian's prometheus package"; exit 1; fi
    say "installing prometheus (for promtool)"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d 101: the package must not start a Prometheus server on this machine.
    had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    if [ $had_policy = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
    rc=0
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || rc=$?
    [ $rc = 0 ] && { apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2 || rc=$?; }
    [ $had_policy = 0 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { say "apt-get install prometheus failed"; exit 1; }
    bin=$(command -v promtool 2>/dev/null || true)
fi
[ -n "$bin" ] || { say "promtool not found after install"; exit 1; }
"$bin" --version >/dev/null 2>&1 || { say "$bin does not run"; exit 1; }
echo "$bin"

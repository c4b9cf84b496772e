#!/usr/bin/env bash
# Makes Debian's PgBouncer (`pgbouncer`, 1.18 on bookworm) available, idempotently: for the
# `services.pgbouncer` of scenarios (processes provider) and for ci/build-images.sh's
# poolproof/pgbouncer image. The package's own service is not started. Exit 0 when
# /usr/sbin/pgbouncer runs, 1 with one clear line otherwise. Prints its path on stdout.
set -euo pipefail
say() { echo "ensure-pgbouncer: $*" >&2; }
BIN=/usr/sbin/pgbouncer
if [ ! -x "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then say "pgbouncer missing and not root: install Debian's pgbouncer package"; exit 1; fi
    say "installing pgbouncer"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d 101: the package must not start a PgBouncer on this machine.
    had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    if [ $had_policy = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
    rc=0
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || rc=$?
    [ $rc = 0 ] && { apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends pgbouncer >&2 || rc=$?; }
    [ $had_policy = 0 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { say "apt-get install pgbouncer failed"; exit 1; }
fi
"$BIN" --version >/dev/null 2>&1 || { say "$BIN does not run"; exit 1; }
echo "$BIN"

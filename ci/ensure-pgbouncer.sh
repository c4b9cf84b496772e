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
    # Without starting a PgBouncer on this machine.
    "$(dirname "$0")/apt-install.sh" pgbouncer || { say "apt-get install pgbouncer failed"; exit 1; }
fi
"$BIN" --version >/dev/null 2>&1 || { say "$BIN does not run"; exit 1; }
echo "$BIN"

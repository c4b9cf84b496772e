#!/usr/bin/env bash
# Gets everything tests and local runs need for real Postgres 15, Redis and PgBouncer, idempotently:
# the machine's own postgres and redis-server binaries (the processes provider, always),
# then a Docker engine and the local images (the containers provider) when they can be had.
# Without an engine it still succeeds: poolproof-services then falls back to processes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
say() { echo "services: $*" >&2; }

need=()
# POOLPROOF_PG_BINDIR points the processes provider at another Postgres (e.g. 16 elsewhere).
[ -x "${POOLPROOF_PG_BINDIR:-/usr/lib/postgresql/15/bin}/postgres" ] || need+=(postgresql-15)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client-15)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "missing ${need[*]} and not root: install them"; exit 1
    fi
    say "installing ${need[*]}"
    # Not fatal: with an engine and images the containers provider needs none of these.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }; then
        say "could not install ${need[*]}: the processes provider will not work here"
    fi
fi

# PgBouncer for scenarios with services.pgbouncer (processes provider, and the image).
"$HERE/ensure-pgbouncer.sh" >/dev/null || say "no pgbouncer: scenarios with services.pgbouncer will not run"

if "$HERE/ensure-docker.sh" && "$HERE/build-images.sh"; then
    say "containers provider ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') engine)"
else
    say "no usable Docker engine or images: the processes provider will be used"
fi

#!/bin/sh
# Entrypoint of the locally built poolproof/postgres image. Behaves like the official
# image's for what tests rely on: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB /
# POSTGRES_HOST_AUTH_METHOD, initdb on first start, the bridge network admitted,
# extra arguments passed to postgres (e.g. `-c fsync=off`).
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
export PGDATA

if [ "${1:-}" = postgres ]; then shift; fi

# An initdb'd cluster made when the image was built (bootstrap superuser `postgres`):
# copying it and adding the role and database takes a fraction of initdb's second.
TEMPLATE=/var/lib/postgresql/template

if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
else
    auth=${POSTGRES_HOST_AUTH_METHOD:-trust}
fi

init_from_template() {
    cp -a "$TEMPLATE/." "$PGDATA/"
    if [ "$POSTGRES_USER" = postgres ]; then
        sql='ALTER ROLE postgres'
    else
        sql="CREATE ROLE \"$POSTGRES_USER\" SUPERUSER LOGIN"
    fi
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        sql="$sql PASSWORD '$POSTGRES_PASSWORD'"
    fi
    sql="$sql;
"
    if [ "$POSTGRES_DB" != postgres ]; then
        sql="$sql
CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";
"
    fi
    # Output discarded: an error would echo the statement, password included.
    printf '%s\n' "$sql" | postgres --single -j -F -D "$PGDATA" postgres >/dev/null 2>&1
}

init_with_initdb() {
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=/tmp/.pwfile
        (umask 077; printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile")
        initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C \
            --auth-local=trust --auth-host="$auth" --no-sync >/dev/null
        rm -f "$pwfile"
    else
        initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C \
            --auth-local=trust --auth-host="$auth" --no-sync >/dev/null
    fi
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -j -F -D "$PGDATA" postgres >/dev/null
    fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    case "${POSTGRES_PASSWORD:-}$POSTGRES_USER$POSTGRES_DB" in
        # Quotes would need escaping inside SQL literals: let initdb take them as they are.
        *\'* | *\"*) init_with_initdb ;;
        *) if [ -s "$TEMPLATE/PG_VERSION" ]; then init_from_template; else init_with_initdb; fi ;;
    esac
    printf '%s\n' \
        'local all all trust' \
        "host all all 127.0.0.1/32 $auth" \
        "host all all ::1/128 $auth" \
        "host all all 0.0.0.0/0 $auth" \
        "host all all ::/0 $auth" >"$PGDATA/pg_hba.conf"
    printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\n" >>"$PGDATA/postgresql.conf"
    echo "PostgreSQL init process complete; ready for start up."
fi

# postgres runs as this shell's child: `docker stop` sends SIGTERM, which postgres reads as a
# "smart" shutdown that waits for every client to leave; forward it as SIGINT (fast shutdown),
# like the official image's STOPSIGNAL (which `docker import` cannot set).
postgres "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' TERM INT

# Announce readiness on stdout too, as the official image does (its temporary init server
# logs there): testcontainers-modules waits for the line on both streams.
(
    until pg_isready -q -h 127.0.0.1 -p 5432 -t 1 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.05
    done
    echo "database system is ready to accept connections"
) &

# `wait` returns early when a trapped signal arrives; keep waiting until postgres is gone.
status=0
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" && status=0 || status=$?
done
exit "$status"

#!/usr/bin/env bash
# Builds the local images poolproof/postgres:15, poolproof/redis:7 and poolproof/pgbouncer:1.18
# without any registry: a root filesystem assembled from this machine's own Postgres 15,
# redis-server and pgbouncer files
# (plus the shared libraries they need) is fed to `docker import`. Idempotent: an image whose
# poolproof.build label matches the hash of its inputs is kept. Takes seconds.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PG_IMAGE=${POOLPROOF_POSTGRES_IMAGE:-poolproof/postgres:15}
REDIS_IMAGE=${POOLPROOF_REDIS_IMAGE:-poolproof/redis:7}
PGB_IMAGE=${POOLPROOF_PGBOUNCER_IMAGE:-poolproof/pgbouncer:1.18}
PGB_BIN=/usr/sbin/pgbouncer
PGBIN=/usr/lib/postgresql/15/bin
PGLIB=/usr/lib/postgresql/15/lib
PGSHARE=/usr/share/postgresql/15
APP_UID=999

say() { echo "build-images: $*" >&2; }

docker info >/dev/null 2>&1 || { say "no Docker engine answers (run ci/ensure-docker.sh)"; exit 1; }
if [[ "$PG_IMAGE" == poolproof/* ]] && [ ! -x "$PGBIN/postgres" ]; then
    say "Postgres 15 is not installed ($PGBIN/postgres missing)"; exit 1
fi
if [[ "$REDIS_IMAGE" == poolproof/* ]] && ! command -v redis-server >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { say "redis-server missing and not root"; exit 1; }
    say "installing redis-server"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
fi
REDIS_BIN=$(command -v redis-server || true)
if [[ "$PGB_IMAGE" == poolproof/* ]] && [ ! -x "$PGB_BIN" ]; then
    "$HERE/ensure-pgbouncer.sh" >/dev/null
fi

# Copies files into the root $1 at their canonical paths (the root is merged-/usr like the
# host), then the targets of symlinks among them.
put() {
    local root=$1; shift
    local f d p
    for f in "$@"; do
        d=$(readlink -f "$(dirname "$f")")
        p="$d/$(basename "$f")"
        if [ -e "$root$p" ] || [ -L "$root$p" ]; then continue; fi
        mkdir -p "$root$d"
        cp -a "$p" "$root$p"
        if [ -L "$p" ]; then put "$root" "$(readlink -f "$p")"; fi
    done
}

# Copies every shared library the given ELF files need (per ldd), and the loader.
put_libs() {
    local root=$1; shift
    local libs
    libs=$(for f in "$@"; do
        if file -b "$f" 2>/dev/null | grep -q ELF || head -c4 "$f" | grep -q 'ELF'; then
            ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}'
        fi
    done | sort -u)
    # shellcheck disable=SC2086
    [ -z "$libs" ] || put "$root" $libs
}

# The shell and the few tools the entrypoints use.
BASE_TOOLS="/bin/sh /usr/bin/locale /bin/cp /usr/bin/dash /bin/mkdir /bin/chmod /bin/rm /bin/sleep /bin/cat /usr/bin/env"

base_root() {
    local root=$1 user=$2 home=$3
    mkdir -p "$root"/{etc,tmp,dev,proc,sys,usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin}
    ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
    chmod 1777 "$root/tmp"
    # shellcheck disable=SC2086
    put "$root" $BASE_TOOLS
    # shellcheck disable=SC2086
    put_libs "$root" $BASE_TOOLS
    printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:%s:%s:%s:%s:/bin/sh\n' "$user" $APP_UID $APP_UID "$user" "$home" >"$root/etc/passwd"
    printf 'root:x:0:\n%s:x:%s:\n' "$user" $APP_UID >"$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
}

# Hash of everything an image is made from: this script, the entrypoint, the binaries.
inputs_hash() {
    { cat "$0" "$@"; } | sha256sum | cut -c1-16
}

image_label() {
    docker image inspect -f '{{index .Config.Labels "poolproof.build"}}' "$1" 2>/dev/null || true
}

import_root() {
    local root=$1 image=$2; shift 2
    local old
    old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    tar -C "$root" --numeric-owner -c . | docker import "$@" - "$image" >/dev/null
    # Drop the replaced build (fails harmlessly while a container still uses it).
    [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

WORK=$(mktemp -d /tmp/poolproof-images.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# The service user initdb runs as must reach into the staging tree.
chmod 755 "$WORK"

# initdb (refuses root) as a throwaway system user into $1; the entrypoint copies it.
make_template() {
    local dest=$1 user=poolproof
    id -u "$user" >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$user" 2>/dev/null || id -u "$user" >/dev/null
    mkdir -p "$dest"
    chown "$user:" "$dest"
    chmod 700 "$dest"
    (cd "$dest" && runuser -u "$user" -- "$PGBIN/initdb" -D "$dest" -U postgres -E UTF8 \
        --locale=C --auth-local=trust --auth-host=trust --no-sync >/dev/null)
}

build_postgres() {
    local hash
    hash=$(inputs_hash "$HERE/images/postgres-entrypoint.sh" "$PGBIN/postgres" "$PGBIN/initdb")
    if [ "$(image_label "$PG_IMAGE")" = "$hash" ]; then
        say "$PG_IMAGE is up to date"; return 0
    fi
    local t0=$SECONDS root=$WORK/postgres
    base_root "$root" postgres /var/lib/postgresql
    local bins=("$PGBIN/postgres" "$PGBIN/initdb" "$PGBIN/pg_isready" "$PGBIN/pg_ctl")
    put "$root" "${bins[@]}"
    put "$root" "$PGLIB"
    # JIT pulls in libLLVM (~100 MB); without its provider postgres simply runs without JIT.
    rm -rf "$root$PGLIB"/llvmjit* "$root$PGLIB/bitcode"
    put "$root" "$PGSHARE"
    # initdb lists locales (`locale -a`); C.utf8 comes with libc.
    [ -d /usr/lib/locale/C.utf8 ] && put "$root" /usr/lib/locale/C.utf8
    mkdir -p "$root/usr/share"
    cp -a /usr/share/zoneinfo "$root/usr/share/zoneinfo"
    put_libs "$root" "${bins[@]}" $(find "$root$PGLIB" -name '*.so')
    install -m 0755 "$HERE/images/postgres-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
    make_template "$root/var/lib/postgresql/template"
    mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
    chown -R $APP_UID:$APP_UID "$root/var/lib/postgresql" "$root/var/run/postgresql"
    chmod 700 "$root/var/lib/postgresql/data"
    import_root "$root" "$PG_IMAGE" \
        -c "ENV PATH=$PGBIN:/usr/local/bin:/usr/bin:/bin PGDATA=/var/lib/postgresql/data LANG=C.UTF-8 TZ=UTC" \
        -c 'USER postgres' \
        -c 'WORKDIR /var/lib/postgresql' \
        -c 'EXPOSE 5432' \
        -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        -c 'CMD ["postgres"]' \
        -c "LABEL poolproof.build=$hash"
    say "built $PG_IMAGE in $((SECONDS - t0))s"
}

build_redis() {
    local hash
    hash=$(inputs_hash "$REDIS_BIN")
    if [ "$(image_label "$REDIS_IMAGE")" = "$hash" ]; then
        say "$REDIS_IMAGE is up to date"; return 0
    fi
    local t0=$SECONDS root=$WORK/redis
    base_root "$root" redis /data
    put "$root" "$REDIS_BIN"
    put_libs "$root" "$REDIS_BIN"
    mkdir -p "$root/data"
    chown $APP_UID:$APP_UID "$root/data"
    import_root "$root" "$REDIS_IMAGE" \
        -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        -c 'USER redis' \
        -c 'WORKDIR /data' \
        -c 'EXPOSE 6379' \
        -c 'ENTRYPOINT ["/usr/bin/redis-server"]' \
        -c 'CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
        -c "LABEL poolproof.build=$hash"
    say "built $REDIS_IMAGE in $((SECONDS - t0))s"
}

# Debian's PgBouncer; poolproof copies its pgbouncer.ini and userlist.txt into
# /etc/pgbouncer of each container and runs it on the host network.
build_pgbouncer() {
    local hash
    hash=$(inputs_hash "$PGB_BIN")
    if [ "$(image_label "$PGB_IMAGE")" = "$hash" ]; then
        say "$PGB_IMAGE is up to date"; return 0
    fi
    local t0=$SECONDS root=$WORK/pgbouncer
    base_root "$root" pgbouncer /var/lib/pgbouncer
    put "$root" "$PGB_BIN"
    put_libs "$root" "$PGB_BIN"
    mkdir -p "$root/etc/pgbouncer" "$root/var/lib/pgbouncer"
    chown $APP_UID:$APP_UID "$root/etc/pgbouncer" "$root/var/lib/pgbouncer"
    import_root "$root" "$PGB_IMAGE" \
        -c 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/bin' \
        -c 'USER pgbouncer' \
        -c 'WORKDIR /var/lib/pgbouncer' \
        -c 'EXPOSE 6432' \
        -c 'ENTRYPOINT ["/usr/sbin/pgbouncer"]' \
        -c 'CMD ["/etc/pgbouncer/pgbouncer.ini"]' \
        -c "LABEL poolproof.build=$hash"
    say "built $PGB_IMAGE in $((SECONDS - t0))s"
}

# Images named elsewhere (POOLPROOF_*_IMAGE=postgres:15 where a registry is reachable) are
# pulled, not built.
local_build() { case "$1" in poolproof/*) return 0 ;; *) return 1 ;; esac; }
ensure_pulled() {
    docker image inspect "$1" >/dev/null 2>&1 && return 0
    say "pulling $1"
    docker pull -q "$1" >/dev/null || { say "cannot pull $1 (no registry reachable?)"; return 1; }
}

if local_build "$PG_IMAGE"; then build_postgres; else ensure_pulled "$PG_IMAGE"; fi
if local_build "$REDIS_IMAGE"; then build_redis; else ensure_pulled "$REDIS_IMAGE"; fi
if local_build "$PGB_IMAGE"; then build_pgbouncer; else ensure_pulled "$PGB_IMAGE"; fi
# Earlier builds that were still in use when they were replaced, now untagged and unused.
docker image prune -f --filter label=poolproof.build >/dev/null 2>&1 || true

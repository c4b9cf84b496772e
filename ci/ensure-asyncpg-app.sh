#!/usr/bin/env bash
# Installs fixtures/apps/asyncpg-app's pinned packages from PyPI into its own venv
# (fixtures/apps/asyncpg-app/.venv), idempotently: a venv whose stamp matches the hash of
# requirements.txt is kept. Needs python3 (3.11) with venv. Exit 0 when the app's imports work,
# 1 with one clear line otherwise. Prints the launcher's path on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
APP="$HERE/../fixtures/apps/asyncpg-app"
APP=$(cd "$APP" && pwd)
VENV="$APP/.venv"
say() { echo "ensure-asyncpg-app: $*" >&2; }

PY=${POOLPROOF_PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || { say "$PY not found: install Python 3.11"; exit 1; }
want=$(sha256sum "$APP/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null || true)" != "$want" ]; then
    say "installing $(grep -vc '^#' "$APP/requirements.txt") pinned packages into $VENV"
    rm -rf "$VENV"
    if ! "$PY" -m venv "$VENV" >&2; then
        # Debian's python3 needs python3-venv for this.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends python3-venv >&2
            "$PY" -m venv "$VENV" >&2
        else
            say "cannot create a venv with $PY (install python3-venv)"; exit 1
        fi
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --require-virtualenv -r "$APP/requirements.txt" >&2 \
        || { say "pip install -r requirements.txt failed"; rm -rf "$VENV"; exit 1; }
    echo "$want" > "$VENV/.stamp"
fi
"$VENV/bin/python" -c "import asyncpg, starlette, uvicorn, prometheus_client, uvloop, httptools" \
    || { say "the venv's packages do not import"; exit 1; }
echo "$APP/run.sh"

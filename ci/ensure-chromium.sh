#!/usr/bin/env bash
# Makes Debian's headless-capable chromium available (for the dashboard rendering test), idempotently.
# Exit 0 when `chromium` runs, 1 with one clear line otherwise. Prints the binary path on stdout.
set -euo pipefail
say() { echo "ensure-chromium: $*" >&2; }
find_bin() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true; }
bin=$(find_bin)
if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then say "chromium missing and not root: install Debian's chromium package"; exit 1; fi
    say "installing chromium (Debian package)"
    # Wait for a concurrent apt/dpkg run instead of failing on its lock.
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || { say "apt-get update failed"; exit 1; }
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2 \
        || { say "apt-get install chromium failed"; exit 1; }
    bin=$(find_bin)
fi
[ -n "$bin" ] || { say "chromium not found after install"; exit 1; }
"$bin" --version >/dev/null 2>&1 || { say "$bin does not run"; exit 1; }
echo "$bin"

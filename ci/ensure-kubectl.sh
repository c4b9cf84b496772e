#!/usr/bin/env bash
# Makes `kubectl` (Debian package `kubernetes-client`) available for the generator manifest
# test, idempotently. No cluster is needed or contacted: the test renders the Indexed Job and
# checks it with a client-side dry run. Exit 0 when kubectl runs, 1 with one clear line
# otherwise. Prints the binary path on stdout.
set -euo pipefail
say() { echo "ensure-kubectl: $*" >&2; }
bin=$(command -v kubectl 2>/dev/null || true)
if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then say "kubectl missing and not root: install Debian's kubernetes-client package"; exit 1; fi
    say "installing kubernetes-client (for kubectl)"
    export DEBIAN_FRONTEND=noninteractive
    rc=0
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends kubernetes-client >&2 || rc=$?
    if [ $rc != 0 ]; then
        rc=0
        apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || rc=$?
        [ $rc = 0 ] && { apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends kubernetes-client >&2 || rc=$?; }
    fi
    [ $rc = 0 ] || { say "apt-get install kubernetes-client failed"; exit 1; }
    bin=$(command -v kubectl 2>/dev/null || true)
fi
[ -n "$bin" ] || { say "kubectl not found after install"; exit 1; }
"$bin" version --client >/dev/null 2>&1 || { say "$bin does not run"; exit 1; }
echo "$bin"

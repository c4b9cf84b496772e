#!/usr/bin/env bash
# Installs Debian packages without letting them start their services (a policy-rc.d that
# answers 101 while apt-get runs), waiting up to 5 minutes for another apt-get's lock.
# Usage: ci/apt-install.sh PACKAGE...  Exit 0 when installed, else apt-get's failure.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "apt-install: not root: install $* by hand" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ $had_policy = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2

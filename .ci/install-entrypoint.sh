#!/usr/bin/env bash
# What tests/entrypoint and benchmarks/entrypoint_bench.py need on a fresh Debian 12 machine (run
# as root): git (checkpoints), util-linux + mount (unshare, setpriv, overlay and bind mounts for
# the private namespace the tests build) and the system python3 (>= 3.11), which uid 1000 can run
# (the tests drop to uid 1000; an interpreter under /root would not be reachable). Idempotent.
set -euo pipefail

wanted=(
    "git=1:2.39.5-0+deb12u3"
    "util-linux=2.38.1-5+deb12u3"
    "mount=2.38.1-5+deb12u3"
    "python3=3.11.2-1+b1"
)
missing=()
for pin in "${wanted[@]}"; do
    package=${pin%%=*}
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pin")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    # The pins are Debian 12's versions when this was written; a point release replaces them on
    # the mirror, so fall back to the release's current version of the same packages.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}"
fi

# The tests need overlayfs and a tmpfs /dev/shm (the stand-in CLIs record there).
modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || { echo "install-entrypoint: the kernel has no overlayfs" >&2; exit 1; }
[ -d /dev/shm ] || { echo "install-entrypoint: /dev/shm is missing" >&2; exit 1; }

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
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install_pinned install-entrypoint "${wanted[@]}"

# The tests need overlayfs and a tmpfs /dev/shm (the stand-in CLIs record there).
modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || { echo "install-entrypoint: the kernel has no overlayfs" >&2; exit 1; }
[ -d /dev/shm ] || { echo "install-entrypoint: /dev/shm is missing" >&2; exit 1; }

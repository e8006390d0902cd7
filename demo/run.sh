#!/usr/bin/env bash
# The demo, one command on a fresh Debian 12 machine as root: install the project and the pinned
# CLIs, then run a real agent CLI inside the rendered sandbox (see docs/demo.md).
#   bash demo/run.sh            Claude Code
#   bash demo/run.sh codex      or gemini
set -euo pipefail
cd "$(dirname "$0")/.."
cli="${1:-claude}"
case "$cli" in claude|codex|gemini) ;; *) echo "usage: bash demo/run.sh [claude|codex|gemini]" >&2; exit 2 ;; esac
[[ $(id -u) == 0 ]] || { echo "demo: run as root (it builds a private mount namespace; the CLI itself runs as uid 1000)" >&2; exit 2; }

missing=()
for tool in git unshare setpriv node npm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
python3 -m pip --version >/dev/null 2>&1 || missing+=(pip)
if (( ${#missing[@]} )); then
    echo "== demo: installing what is missing: ${missing[*]} (the CLIs need Node.js >= 20)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq git util-linux nodejs npm python3-pip >/dev/null
fi

echo "== demo: installing the project (pip install -e .)"
PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install -q -e .
echo "== demo: installing the pinned CLIs (.ci/install-clis.sh)"
bash .ci/install-clis.sh
echo
exec python3 demo/demo.py "$cli"

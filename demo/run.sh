#!/usr/bin/env bash
# The demo, one command on a fresh Debian 12 machine as root: install the project (in .venv) and
# the pinned CLIs, then run a real agent CLI inside the rendered sandbox (see docs/demo.md).
#   bash demo/run.sh            Claude Code
#   bash demo/run.sh codex      or gemini
set -euo pipefail
cd "$(dirname "$0")/.."
cli="${1:-claude}"
case "$cli" in claude|codex|gemini) ;; *) echo "usage: bash demo/run.sh [claude|codex|gemini]" >&2; exit 2 ;; esac
[[ $(id -u) == 0 ]] || { echo "demo: run as root (it builds a private mount namespace; the CLI itself runs as uid 1000)" >&2; exit 2; }

missing=()
for tool in git unshare setpriv python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if (( ${#missing[@]} )); then
    echo "== demo: installing what is missing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends git util-linux python3 ca-certificates >/dev/null </dev/null
fi

echo "== demo: the project and a pinned Node.js in .venv (the first time: pip, about 30 s)"
source .ci/lib/project-env.sh
project_env "$PWD"
echo "== demo: the pinned CLIs (.ci/install-clis.sh; the first time about 900 MB from npm, a minute or so)"
bash .ci/install-clis.sh </dev/null
echo
exec python3 -m demo.demo "$cli"

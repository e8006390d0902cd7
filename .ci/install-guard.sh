#!/usr/bin/env bash
# What tests/guard needs on a fresh Debian 12 machine (sourced by .ci/run; idempotent).
# The guard itself is standard-library Python; its tests also run the shims under dash
# (/bin/sh) and the Gemini regexes under Node, the engine Gemini CLI evaluates them with.
set -euo pipefail
guard_missing=()
command -v node >/dev/null 2>&1 || guard_missing+=(nodejs)
command -v dash >/dev/null 2>&1 || guard_missing+=(dash)
if [ "${#guard_missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${guard_missing[@]}"
fi
unset guard_missing
command -v agent-guard >/dev/null 2>&1 || { echo "install-guard: agent-guard is not on PATH: run through .ci/run (it installs the project in .venv)" >&2; exit 1; }

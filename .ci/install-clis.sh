#!/usr/bin/env bash
# Installs the three agent CLIs pinned in package.json / package-lock.json into
# node_modules/ and checks that each one answers --version with no network.
# Idempotent: a second run with an unchanged lockfile does nothing but the check.
#
# --ignore-scripts: the only install script the CLIs need is Claude's postinstall,
# which hard-links the native binary from the optional platform package (it
# downloads nothing); it is run explicitly below. The other scripts (node-pty's
# node-gyp rebuild, keytar's prebuild download) would compile or fetch code the
# CLIs do not need: Gemini uses the prebuilt @lydell/node-pty.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

command -v node >/dev/null || { echo "install-clis: node is not installed (need Node.js >= 20 and npm)" >&2; exit 1; }

stamp=node_modules/.agent-sandbox-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    rm -f "$stamp"
    npm ci --prefer-offline --ignore-scripts --no-audit --no-fund
    node node_modules/@anthropic-ai/claude-code/install.cjs
    printf '%s\n' "$want" > "$stamp"
fi

# Each CLI must report exactly the version package.json pins, offline.
check() {
    local bin="$1" pkg="$2" want_version got
    want_version="$(node -p "require('./package.json').dependencies['$pkg']")"
    got="$(timeout 60 unshare -n "node_modules/.bin/$bin" --version 2>&1)" || {
        echo "install-clis: '$bin --version' failed offline: $got" >&2; exit 1; }
    [[ "$got" == *"$want_version"* ]] || {
        echo "install-clis: $bin reports '$got', package.json pins $pkg@$want_version; run npm install" >&2; exit 1; }
    echo "install-clis: $bin $want_version ok"
}
check claude @anthropic-ai/claude-code
check codex @openai/codex
check gemini @google/gemini-cli

#!/usr/bin/env bash
# Installs the three agent CLIs pinned in package.json / package-lock.json into
# node_modules/ and checks that each one answers --version with no network.
# Idempotent: a second run with an unchanged lockfile does nothing but the check.
# Safe to execute or to source (.ci/run sources it): the work runs in a subshell.
#
# --ignore-scripts: the only install script the CLIs need is Claude's postinstall,
# which hard-links the native binary from the optional platform package (it
# downloads nothing); it is run explicitly below. The other scripts (node-pty's
# node-gyp rebuild, keytar's prebuild download) would compile or fetch code the
# CLIs do not need: Gemini uses the prebuilt @lydell/node-pty.

_install_clis() (
    set -euo pipefail
    cd "$(dirname "${BASH_SOURCE[0]}")/.."

    command -v node >/dev/null && command -v npm >/dev/null || {
        echo "install-clis: node and npm are required (Node.js >= 20)" >&2; exit 1; }

    stamp=node_modules/.agent-sandbox-lock.sha256
    want="$(sha256sum package-lock.json | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        rm -f "$stamp"
        npm ci --prefer-offline --ignore-scripts --no-audit --no-fund
        node node_modules/@anthropic-ai/claude-code/install.cjs
        printf '%s\n' "$want" > "$stamp"
    fi

    # Each CLI must report exactly the version package.json pins, with no network.
    for entry in claude:@anthropic-ai/claude-code codex:@openai/codex gemini:@google/gemini-cli; do
        bin="${entry%%:*}" pkg="${entry#*:}"
        pinned="$(node -p "require('./package.json').dependencies['$pkg']")"
        # setsid: no controlling terminal, so a CLI that touches the terminal cannot stop itself
        # in the background (plain `timeout` puts it in a background group, where it waits for
        # ever); --kill-after: a child that ignores TERM is killed.
        got="$(setsid --wait timeout --kill-after=10 60 unshare --net "node_modules/.bin/$bin" --version \
               </dev/null 2>&1)" || {
            echo "install-clis: '$bin --version' failed offline: $got" >&2; exit 1; }
        [[ "$got" == *"$pinned"* ]] || {
            echo "install-clis: $bin reports '$got' but package.json pins $pkg@$pinned: run npm install" >&2; exit 1; }
        echo "install-clis: $bin $pinned ok"
    done
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _install_clis || return 1
else
    _install_clis
fi

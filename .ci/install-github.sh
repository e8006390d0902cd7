#!/usr/bin/env bash
# What tests/github needs on a fresh Debian 12 machine (run as root): git, whose git-http-backend
# serves the fake GitHub's repositories and whose client pushes through the policy, and gh, the
# GitHub CLI driven through the gateway. npm comes from the project environment
# (.ci/lib/project-env.sh). Idempotent.
set -euo pipefail

wanted=(
    "git=1:2.39.5-0+deb12u3"
    "gh=2.23.0+dfsg1-1"
)
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install_pinned install-github "${wanted[@]}"
[ -x /usr/lib/git-core/git-http-backend ] || { echo "install-github: git-http-backend is missing" >&2; exit 1; }
gh --version >/dev/null || { echo "install-github: gh does not start" >&2; exit 1; }

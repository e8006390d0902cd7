#!/usr/bin/env bash
# What the Kubernetes suites need on a fresh Debian 12 machine, as root: catatonit, the init
# process podman 4.3 builds its pod's pause image from (`podman kube play` of the rendered agent
# pod, tests/renderer/test_kubernetes_play.py). The Python side (kubernetes-validate, the official
# kubernetes client) comes with the project's test extras. Idempotent; safe to execute or to source.

_install_kubernetes() (
    set -euo pipefail
    export DEBIAN_FRONTEND=noninteractive
    source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
    apt_install_pinned install-kubernetes catatonit=0.1.7-1+b2
    command -v catatonit >/dev/null || { echo "install-kubernetes: catatonit missing after install" >&2; exit 1; }
    python3 -c 'import kubernetes, kubernetes_validate' \
        || { echo "install-kubernetes: kubernetes or kubernetes-validate missing: run through .ci/run (test extras)" >&2; exit 1; }
    echo "install-kubernetes: catatonit $(dpkg-query -W -f '${Version}' catatonit), kubernetes $(python3 -c 'import kubernetes; print(kubernetes.__version__)') ok"
)

_install_kubernetes
